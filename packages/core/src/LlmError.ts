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
 * | `BadRequestError` | no | no: the request itself is at fault |
 * | `CircuitOpenError` | no | yes |
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"

const detailSuffix = (detail: string | undefined): string => detail ? `: ${detail}` : ""

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
 * An attempt ran past its timeout and was interrupted.
 *
 * @since 0.1.0
 * @category errors
 */
export class TimeoutError extends Data.TaggedError("TimeoutError")<{
  readonly model: string
  readonly timeout: Duration.Duration
}> {
  override get message(): string {
    return `Model ${this.model} did not answer within ${Duration.format(this.timeout)}`
  }
}

/**
 * The provider failed on its side (HTTP 5xx, or Anthropic's 529 "overloaded").
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerError extends Data.TaggedError("ServerError")<{
  readonly model: string
  readonly status: number
  readonly detail?: string
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
}> {
  override get message(): string {
    return `Model ${this.model} refused the content under its policy${detailSuffix(this.detail)}`
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
  | BadRequestError
  | CircuitOpenError

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
  "BadRequestError",
  "CircuitOpenError"
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
  "ResponseDecodeError"
])

/**
 * Whether another attempt at the same model may succeed: rate limits, timeouts, server errors,
 * broken connections and undecodable responses. Anything that is not an `LlmError` is not.
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
export const isRetryable = (u: unknown): boolean => isLlmError(u) && retryable.has(u._tag)

/**
 * Whether another model may serve the request: every `LlmError` but `BadRequestError`, which
 * says the request itself is at fault. Anything that is not an `LlmError` is not.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isFallbackable = (u: unknown): boolean => isLlmError(u) && u._tag !== "BadRequestError"

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
