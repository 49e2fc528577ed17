/**
 * Every way a model call can fail, as tagged errors in the error channel. Each class carries the
 * `model` it concerns and the fields a caller needs to decide what to do next (`status`,
 * `retryAfter`, `timeout`); `isRetryable` and `isFallbackable` classify them once, so every
 * pattern agrees on what is worth another attempt and what is worth another model.
 *
 * | class | retryable | falls back |
 * | --- | --- | --- |
 * | `RateLimitError` | yes, never sooner than `retryAfter` | yes |
 * | `TimeoutError`, `ServerError`, `ConnectionError`, `ResponseDecodeError` | yes | yes |
 * | `AuthenticationError`, `ModelNotFoundError`, `ContextLengthError`, `ContentFilterError` | no | yes |
 * | `RedirectError` | no | yes |
 * | `BadRequestError` | no | no: the request itself is at fault |
 * | `CircuitOpenError`, `ThrottledError`, `BulkheadFullError` | no | yes |
 * | `AnswerRejectedError` | yes | yes |
 * | `BudgetExceededError` | no | no: every model spends the same budget |
 *
 * An error mapped from a provider's response may carry `retryable`, the provider's own verdict
 * (its `x-should-retry` header), which `isRetryable` follows instead of the table.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"

const detailSuffix = (detail: string | undefined): string => detail ? `: ${detail}` : ""

// dollars with the digits a sum needs: $12.50, $0.2500, $0.000075
const usd = (amount: number): string => `$${amount.toFixed(Math.abs(amount) < 0.01 ? 6 : Math.abs(amount) < 1 ? 4 : 2)}`

/**
 * The provider refused the call for its rate limit (HTTP 429). `retryAfter` is the provider's
 * own hint, when it sent one.
 *
 * @since 0.1.0
 * @category errors
 */
export class RateLimitError extends Data.TaggedError("RateLimitError")<{
  readonly model: string
  readonly retryAfter: Option.Option<Duration.Duration>
  readonly detail?: string
  /** The provider's own verdict on retrying (its `x-should-retry` header); `isRetryable` follows it. */
  readonly retryable?: boolean
}> {
  override get message(): string {
    const after = Option.match(this.retryAfter, {
      onNone: () => "",
      onSome: (d) => ` (retry after ${Duration.format(d)})`
    })
    return `Model ${this.model} is rate limited${after}${detailSuffix(this.detail)}`
  }
}

/**
 * An attempt ran past its timeout and was interrupted. `detail` says which timeout, when it was not
 * the attempt's own (a client's idle timeout: no byte or event for that long).
 *
 * @since 0.1.0
 * @category errors
 */
export class TimeoutError extends Data.TaggedError("TimeoutError")<{
  readonly model: string
  readonly timeout: Duration.Duration
  readonly detail?: string
}> {
  override get message(): string {
    return `Model ${this.model} did not answer within ${Duration.format(this.timeout)}${detailSuffix(this.detail)}`
  }
}

/**
 * The provider failed on its side (HTTP 5xx, or Anthropic's 529 "overloaded"), or refused the call
 * for a passing reason: 408 (request timeout, often a proxy's) and 409 (conflict, a lock that timed
 * out), which the official SDKs retry too.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerError extends Data.TaggedError("ServerError")<{
  readonly model: string
  readonly status: number
  readonly detail?: string
  /** The provider's own verdict on retrying (its `x-should-retry` header); `isRetryable` follows it. */
  readonly retryable?: boolean
}> {
  override get message(): string {
    return `Model ${this.model} failed with HTTP ${this.status}${detailSuffix(this.detail)}`
  }
}

/**
 * The connection could not be made or broke: refused, reset, DNS.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionError extends Data.TaggedError("ConnectionError")<{
  readonly model: string
  readonly detail: string
}> {
  override get message(): string {
    return `Could not reach model ${this.model}: ${this.detail}`
  }
}

/**
 * The provider answered with something that is not a completion: bad JSON, the wrong shape, a
 * body too large, a stream cut off before its end.
 *
 * @since 0.1.0
 * @category errors
 */
export class ResponseDecodeError extends Data.TaggedError("ResponseDecodeError")<{
  readonly model: string
  readonly detail: string
}> {
  override get message(): string {
    return `Model ${this.model} sent a response that could not be decoded: ${this.detail}`
  }
}

/**
 * The provider refused the credentials (HTTP 401 or 403).
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthenticationError extends Data.TaggedError("AuthenticationError")<{
  readonly model: string
  readonly status: number
  readonly detail?: string
  /** The provider's own verdict on retrying (its `x-should-retry` header); `isRetryable` follows it. */
  readonly retryable?: boolean
}> {
  override get message(): string {
    return `Model ${this.model} refused the credentials (HTTP ${this.status})${detailSuffix(this.detail)}`
  }
}

/**
 * The provider does not serve this model (HTTP 404 or `model_not_found`), or no provider is
 * configured for it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ModelNotFoundError extends Data.TaggedError("ModelNotFoundError")<{
  readonly model: string
  readonly detail?: string
  /** The provider's own verdict on retrying (its `x-should-retry` header); `isRetryable` follows it. */
  readonly retryable?: boolean
}> {
  override get message(): string {
    return `Model ${this.model} was not found${detailSuffix(this.detail)}`
  }
}

/**
 * The request is longer than the model's context window (`context_length_exceeded`). Another
 * model with a larger window may still serve it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ContextLengthError extends Data.TaggedError("ContextLengthError")<{
  readonly model: string
  readonly detail?: string
  /** The provider's own verdict on retrying (its `x-should-retry` header); `isRetryable` follows it. */
  readonly retryable?: boolean
}> {
  override get message(): string {
    return `The request exceeds the context length of model ${this.model}${detailSuffix(this.detail)}`
  }
}

/**
 * The provider's content policy refused the request or the reply.
 *
 * @since 0.1.0
 * @category errors
 */
export class ContentFilterError extends Data.TaggedError("ContentFilterError")<{
  readonly model: string
  readonly detail?: string
  /** The provider's own verdict on retrying (its `x-should-retry` header); `isRetryable` follows it. */
  readonly retryable?: boolean
}> {
  override get message(): string {
    return `Model ${this.model} refused the content under its policy${detailSuffix(this.detail)}`
  }
}

/**
 * The endpoint answered with a redirect (HTTP 3xx). Redirects are never followed: the request and
 * its credentials go only to the configured endpoint. `location` is the origin the redirect points
 * to (scheme, host and port; never its path or query), when it has a valid `Location` header. Not
 * retryable (the endpoint would redirect again); another model may serve the call.
 *
 * @since 0.1.0
 * @category errors
 */
export class RedirectError extends Data.TaggedError("RedirectError")<{
  readonly model: string
  readonly status: number
  readonly location: Option.Option<string>
  /** The provider's own verdict on retrying (its `x-should-retry` header); `isRetryable` follows it. */
  readonly retryable?: boolean
}> {
  override get message(): string {
    const target = Option.match(this.location, { onNone: () => "", onSome: (origin) => ` to ${origin}` })
    return `Model ${this.model} answered HTTP ${this.status}, a redirect${target}, which is not followed`
  }
}

/**
 * The provider rejected the request itself (any other 4xx). Another model would reject it too,
 * so it neither retries nor falls back by default.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadRequestError extends Data.TaggedError("BadRequestError")<{
  readonly model: string
  readonly status: number
  readonly code: Option.Option<string>
  readonly detail?: string
  /** The provider's own verdict on retrying (its `x-should-retry` header); `isRetryable` follows it. */
  readonly retryable?: boolean
}> {
  override get message(): string {
    const code = Option.match(this.code, { onNone: () => "", onSome: (c) => ` (${c})` })
    return `Model ${this.model} rejected the request with HTTP ${this.status}${code}${detailSuffix(this.detail)}`
  }
}

/**
 * A circuit breaker refused the call: the model failed too often lately, or an operator isolated
 * it. Nothing was sent. `retryAfter` is how long until the breaker admits a probe (infinite while
 * the circuit is isolated).
 *
 * @since 0.1.0
 * @category errors
 */
export class CircuitOpenError extends Data.TaggedError("CircuitOpenError")<{
  readonly model: string
  readonly retryAfter: Duration.Duration
}> {
  override get message(): string {
    return Duration.isFinite(this.retryAfter)
      ? `The circuit for model ${this.model} is open; retry in ${Duration.format(this.retryAfter)}`
      : `The circuit for model ${this.model} is isolated until it is reset`
  }
}

/**
 * A client-side rate limit of a deployment had no room for the call, and the wait for room was
 * longer than the caller allows: nothing was sent. `limit` says which: `rpm` (requests per minute),
 * `tpm` (tokens per minute), or `cooldown` (the provider answered 429 lately and asked to wait).
 * `retryAfter` is when room is expected.
 *
 * @since 0.2.0
 * @category errors
 */
export class ThrottledError extends Data.TaggedError("ThrottledError")<{
  readonly model: string
  readonly deployment: string | undefined
  readonly limit: "rpm" | "tpm" | "cooldown"
  readonly retryAfter: Duration.Duration
  readonly detail?: string
}> {
  override get message(): string {
    const where = this.deployment === undefined
      ? `Model ${this.model}`
      : `Deployment ${this.deployment} of ${this.model}`
    const what = this.limit === "rpm"
      ? "has no room under its requests-per-minute limit"
      : this.limit === "tpm"
      ? "has no room under its tokens-per-minute limit"
      : "is cooling down after the provider's rate limit"
    return `${where} ${what}; room again in ${Duration.format(this.retryAfter)}${detailSuffix(this.detail)}`
  }
}

/**
 * A bulkhead refused the call at once: `maxConcurrent` calls were in flight and `maxQueued` were
 * already waiting. Nothing was sent.
 *
 * @since 0.2.0
 * @category errors
 */
export class BulkheadFullError extends Data.TaggedError("BulkheadFullError")<{
  readonly model: string
  readonly deployment: string | undefined
  readonly maxConcurrent: number
  readonly maxQueued: number
}> {
  override get message(): string {
    const where = this.deployment === undefined
      ? `Model ${this.model}`
      : `Deployment ${this.deployment} of ${this.model}`
    return `${where} is full: ${this.maxConcurrent} calls in flight and ${this.maxQueued} waiting`
  }
}

/**
 * The budget of the caller's key is spent for this period: the call was refused before any model
 * was asked. Another model would spend the same budget, so it does not fall back. `resetsAt` is
 * when the next period starts, in epoch milliseconds.
 *
 * @since 0.2.0
 * @category errors
 */
export class BudgetExceededError extends Data.TaggedError("BudgetExceededError")<{
  readonly model: string
  readonly key: string
  readonly spentUsd: number
  readonly limitUsd: number
  readonly resetsAt: number
}> {
  override get message(): string {
    return `The budget of key ${JSON.stringify(this.key)} is spent (${usd(this.spentUsd)} of ${usd(this.limitUsd)}) ` +
      `until ${new Date(this.resetsAt).toISOString()}; model ${this.model} was not called`
  }
}

/**
 * The model answered, but the answer is no answer: empty, cut off by `max_tokens`, or refused by
 * the caller's check (a schema for structured output, a predicate, an effect). It is a failure of
 * that model: retried and passed to the next model like an error. `countsForBreaker` says whether
 * a circuit breaker around the call counts it (only when the caller asked for it).
 *
 * @since 0.2.0
 * @category errors
 */
export class AnswerRejectedError extends Data.TaggedError("AnswerRejectedError")<{
  readonly model: string
  readonly reason: "empty" | "truncated" | "invalid" | "rejected"
  readonly detail: string
  readonly countsForBreaker: boolean
}> {
  override get message(): string {
    const why = {
      empty: "an empty answer",
      truncated: "an answer cut off by its token limit",
      invalid: "an answer that does not match the expected schema",
      rejected: "an answer the caller's check rejected"
    }[this.reason]
    return `Model ${this.model} gave ${why}${detailSuffix(this.detail)}`
  }
}

/**
 * Every failure of a model call.
 *
 * @since 0.1.0
 * @category models
 */
export type LlmError =
  | RateLimitError
  | TimeoutError
  | ServerError
  | ConnectionError
  | ResponseDecodeError
  | AuthenticationError
  | ModelNotFoundError
  | ContextLengthError
  | ContentFilterError
  | RedirectError
  | BadRequestError
  | CircuitOpenError
  | ThrottledError
  | BulkheadFullError
  | BudgetExceededError
  | AnswerRejectedError

/**
 * The tags of `LlmError`, for exhaustive handling and for metric labels.
 *
 * @since 0.1.0
 * @category models
 */
export const tags = [
  "RateLimitError",
  "TimeoutError",
  "ServerError",
  "ConnectionError",
  "ResponseDecodeError",
  "AuthenticationError",
  "ModelNotFoundError",
  "ContextLengthError",
  "ContentFilterError",
  "RedirectError",
  "BadRequestError",
  "CircuitOpenError",
  "ThrottledError",
  "BulkheadFullError",
  "BudgetExceededError",
  "AnswerRejectedError"
] as const satisfies ReadonlyArray<LlmError["_tag"]>

const tagSet: ReadonlySet<string> = new Set(tags)

/**
 * Whether `u` is one of the `LlmError` classes, by its tag: for telling the library's typed
 * failures from anything else in an error channel or a cause.
 *
 * @since 0.1.0
 * @category guards
 */
export const isLlmError = (u: unknown): u is LlmError =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && tagSet.has(u._tag) &&
  Predicate.hasProperty(u, "model")

const retryable: ReadonlySet<string> = new Set<LlmError["_tag"]>([
  "RateLimitError",
  "TimeoutError",
  "ServerError",
  "ConnectionError",
  "ResponseDecodeError",
  "AnswerRejectedError"
])

/**
 * Whether another attempt at the same model may succeed: rate limits, timeouts, server errors,
 * broken connections, undecodable responses and rejected answers (another sample may pass),
 * unless the provider said otherwise (an error's `retryable`, from its `x-should-retry` header,
 * wins either way). Anything that is not an `LlmError` is not.
 *
 * @example
 * ```ts
 * import { ChatClient, ChatCompletion, LlmError } from "@resilient-llm/core"
 * import { Effect, Schedule } from "effect"
 *
 * const request = ChatCompletion.withModel(ChatCompletion.prompt("Hello"), "gpt-4o")
 * const answer = ChatClient.create(request).pipe(
 *   Effect.retry({ while: LlmError.isRetryable, schedule: Schedule.exponential("250 millis"), times: 3 })
 * )
 * ```
 *
 * @since 0.1.0
 * @category predicates
 */
export const isRetryable = (u: unknown): boolean => {
  if (!isLlmError(u)) return false
  const verdict = Predicate.hasProperty(u, "retryable") ? u.retryable : undefined
  return typeof verdict === "boolean" ? verdict : retryable.has(u._tag)
}

/**
 * Whether another model may serve the request: every `LlmError` but `BadRequestError`, which
 * says the request itself is at fault, and `BudgetExceededError`, since another model would spend
 * the same budget. Anything that is not an `LlmError` is not.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isFallbackable = (u: unknown): boolean =>
  isLlmError(u) && u._tag !== "BadRequestError" && u._tag !== "BudgetExceededError"

/**
 * Whether the error is a refusal on the client's side, before anything was sent: an open circuit,
 * a client-side rate limit, a full bulkhead, or a spent budget. A circuit breaker does not count
 * these against the model.
 *
 * @since 0.2.0
 * @category predicates
 */
export const isRefusal = (u: unknown): boolean =>
  isLlmError(u) &&
  (u._tag === "CircuitOpenError" || u._tag === "ThrottledError" || u._tag === "BulkheadFullError" ||
    u._tag === "BudgetExceededError")

/**
 * The provider's wait hint of a rate limit, if the error is one and carries one.
 *
 * @since 0.1.0
 * @category accessors
 */
export const retryAfter = (u: unknown): Option.Option<Duration.Duration> =>
  Predicate.isTagged(u, "RateLimitError") && Predicate.hasProperty(u, "retryAfter") && Option.isOption(u.retryAfter)
    ? Option.filter(u.retryAfter, Duration.isDuration)
    : Option.none()
