/**
 * Every error the gateway answers with, in OpenAI's shape (`{ "error": { message, type, param,
 * code } }`) and with the status the official SDKs expect, so that their own retries behave: they
 * retry 408, 409, 429 and 5xx, honour `retry-after`, `retry-after-ms` and `x-should-retry`, and give
 * up on every other 4xx. A failure of the patterns is classified from what every attempt met; the
 * message names the deployments and the kind of each failure, never a provider's URL, key or body.
 *
 * @internal
 */
import type * as BestOfN from "@resilient-llm/core/BestOfN"
import type * as Fallback from "@resilient-llm/core/Fallback"
import type * as Judge from "@resilient-llm/core/Judge"
import * as LlmError from "@resilient-llm/core/LlmError"
import * as Duration from "effect/Duration"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"

/** @internal */
export interface ApiError {
  readonly status: number
  readonly type: string
  readonly code: string | null
  readonly param: string | null
  readonly message: string
  readonly headers: Readonly<Record<string, string>>
}

const make = (
  status: number,
  type: string,
  code: string | null,
  message: string,
  headers: Readonly<Record<string, string>> = {},
  param: string | null = null
): ApiError => ({ status, type, code, param, message, headers })

/** The body of an error, as OpenAI writes it. */
export const body = (error: ApiError): { readonly error: Omit<ApiError, "status" | "headers"> } => ({
  error: { message: error.message, type: error.type, param: error.param, code: error.code }
})

/** @internal */
export const toResponse = (
  error: ApiError,
  headers?: Readonly<Record<string, string>>
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(JSON.stringify(body(error)), {
    status: error.status,
    contentType: "application/json",
    headers: headers === undefined ? error.headers : { ...error.headers, ...headers }
  })

const noRetry = { "x-should-retry": "false" }

/** @internal */
export const missingKey: ApiError = make(
  401,
  "invalid_request_error",
  "missing_api_key",
  "You didn't provide an API key. Send your gateway key as an `Authorization: Bearer <key>` header."
)

/** @internal */
export const wrongKey: ApiError = make(
  401,
  "invalid_request_error",
  "invalid_api_key",
  "Incorrect API key provided. Use a key this gateway was configured with."
)

/** @internal */
export const modelNotFound = (model: string): ApiError =>
  make(
    404,
    "invalid_request_error",
    "model_not_found",
    `The model \`${model}\` does not exist or your key cannot use it.`,
    {},
    "model"
  )

/** @internal */
export const invalidRequest = (message: string, param: string | null = null): ApiError =>
  make(400, "invalid_request_error", null, message, {}, param)

/** @internal */
export const invalidJson: ApiError = make(
  400,
  "invalid_request_error",
  null,
  "We could not parse the JSON body of your request. Send a JSON object with model and messages."
)

/** @internal */
export const bodyTooLarge = (limit: number): ApiError =>
  make(413, "invalid_request_error", "request_too_large", `The request body is larger than ${limit} bytes.`)

/** @internal */
export const unknownUrl = (method: string, url: string): ApiError =>
  make(404, "invalid_request_error", "unknown_url", `Invalid URL (${method} ${url.split("?")[0]})`)

const budgetOf = (kind: "usd" | "requests" | "tokens", limit: number): string =>
  kind === "usd" ? `US$${limit.toFixed(limit < 1 ? 4 : 2)}` : `${limit} ${kind}`

/** @internal */
export const budgetExceeded = (
  key: string,
  kind: "usd" | "requests" | "tokens",
  limit: number,
  resetInMs: number
): ApiError =>
  make(
    429,
    "insufficient_quota",
    "insufficient_quota",
    `Key ${key} has used its budget of ${budgetOf(kind, limit)} for this period; it renews in ${
      Duration.format(Duration.seconds(Math.max(1, Math.ceil(resetInMs / 1000))))
    }.`,
    // waiting a few seconds would not help: tell the SDK not to retry
    noRetry
  )

/** @internal */
export const virtualRateLimited = (virtual: string, error: LlmError.ThrottledError): ApiError =>
  make(
    429,
    "requests",
    "rate_limit_exceeded",
    `The virtual model ${virtual} is at its rate limit (${error.limit}); try again later.`,
    retryHeaders([error.retryAfter])
  )

/** @internal */
export const internal: ApiError = make(500, "server_error", null, "The gateway failed to handle the request.")

/** @internal */
export const draining: ApiError = make(503, "service_unavailable", null, "The gateway is shutting down.")

/** What a pattern can fail with. */
export type PatternFailure =
  | Fallback.AllModelsFailed
  | Fallback.FallbackConfigError
  | BestOfN.NoCandidatesError
  | BestOfN.BestOfNConfigError
  | LlmError.LlmError

type AttemptError = LlmError.LlmError | Judge.JudgeError

const isJudgeError = (u: unknown): u is Judge.JudgeError => Predicate.isTagged(u, "JudgeError")

/** What went wrong in one attempt, in a few words that give away nothing of the provider. */
const kind = (error: AttemptError): string => {
  switch (error._tag) {
    case "ServerError":
      return `ServerError (${error.status})`
    case "AuthenticationError":
      return `AuthenticationError (${error.status})`
    case "BadRequestError":
      return `BadRequestError (${error.status}${
        Option.match(error.code, { onNone: () => "", onSome: (code) => `, ${code}` })
      })`
    case "JudgeError":
      return `JudgeError (${error.reason})`
    case "ThrottledError":
      return `ThrottledError (${error.limit})`
    default:
      return error._tag
  }
}

const retryHeaders = (durations: ReadonlyArray<Duration.Duration>): Record<string, string> => {
  const finite = durations.filter(Duration.isFinite).map(Duration.toMillis)
  if (finite.length === 0) return {}
  const ms = Math.max(0, Math.min(...finite))
  return { "retry-after": String(Math.ceil(ms / 1000)), "retry-after-ms": String(Math.ceil(ms)) }
}

const upstreamMessage = (error: LlmError.LlmError): string =>
  Predicate.hasProperty(error, "detail") && typeof error.detail === "string" && error.detail.length > 0
    ? error.detail
    : error.message

/** The response for errors that come from the request itself, whichever model saw it. */
const requestFault = (error: LlmError.LlmError): ApiError | undefined => {
  switch (error._tag) {
    case "BadRequestError": {
      // 401, 403, 404 and 429 would tell the client something false about its own key or model.
      const status = error.status >= 400 && error.status < 500 && ![401, 403, 404, 429].includes(error.status)
        ? error.status
        : 400
      return make(status, "invalid_request_error", Option.getOrNull(error.code), upstreamMessage(error))
    }
    case "ContextLengthError":
      return make(
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "The messages are longer than the models of this virtual model accept.",
        {},
        "messages"
      )
    case "ContentFilterError":
      return make(
        400,
        "invalid_request_error",
        "content_filter",
        "The request was refused by the models' content policy."
      )
    default:
      return undefined
  }
}

/**
 * The response for a failed request to `virtual`, from every attempt's error (`errors`, in order)
 * and the error that stopped a chain early, if one did.
 *
 * @internal
 */
export const classify = (
  virtual: string,
  errors: ReadonlyArray<readonly [target: string, error: AttemptError]>,
  stoppedBy: LlmError.LlmError | undefined,
  deadlineReached: boolean
): ApiError => {
  if (stoppedBy !== undefined) {
    const fault = requestFault(stoppedBy)
    if (fault !== undefined) return fault
  }
  const all = (tags: ReadonlyArray<string>) => errors.length > 0 && errors.every(([, e]) => tags.includes(e._tag))
  const llm = errors.map(([, e]) => e).filter((e): e is LlmError.LlmError => !isJudgeError(e))
  const detail = errors.length === 0
    ? ""
    : `: ${errors.map(([model, error]) => `${model}: ${kind(error)}`).join("; ")}`
  if (all(["ContextLengthError"]) || all(["ContentFilterError"]) || all(["BadRequestError"])) {
    const fault = requestFault(llm[llm.length - 1])
    if (fault !== undefined) return fault
  }
  if (llm.some((e) => e._tag === "BudgetExceededError")) {
    return make(
      429,
      "insufficient_quota",
      "insufficient_quota",
      `The budget of this request's key is spent${detail}`,
      noRetry
    )
  }
  const refusals = ["RateLimitError", "ThrottledError", "CircuitOpenError", "BulkheadFullError"]
  if (all(refusals) && llm.some((e) => e._tag === "RateLimitError" || e._tag === "ThrottledError")) {
    const hints = llm.flatMap((e) => {
      if (e._tag === "CircuitOpenError" || e._tag === "ThrottledError") return [e.retryAfter]
      return e._tag === "RateLimitError" ? Option.toArray(e.retryAfter) : []
    })
    return make(
      429,
      "requests",
      "rate_limit_exceeded",
      `Every model of ${virtual} is rate limited${detail}`,
      retryHeaders(hints)
    )
  }
  if (all(["CircuitOpenError"])) {
    const hints = llm.flatMap((e) => e._tag === "CircuitOpenError" ? [e.retryAfter] : [])
    return make(
      503,
      "service_unavailable",
      "circuit_open",
      `Every model of ${virtual} is out of rotation after repeated failures${detail}`,
      retryHeaders(hints)
    )
  }
  if (all(["CircuitOpenError", "BulkheadFullError"])) {
    return make(
      503,
      "service_unavailable",
      "overloaded",
      `Every deployment of ${virtual} is at its limit of calls in flight${detail}`
    )
  }
  if (deadlineReached || all(["TimeoutError", "CircuitOpenError"])) {
    return make(504, "timeout", "timeout", `No model of ${virtual} answered in time${detail}`)
  }
  if (all(["AuthenticationError", "ModelNotFoundError", "CircuitOpenError"])) {
    // the gateway's own configuration is wrong: a retry by the client cannot fix it
    return make(
      502,
      "upstream_error",
      "upstream_misconfigured",
      `The providers of ${virtual} refused the gateway's credentials or model names${detail}`,
      noRetry
    )
  }
  return make(502, "upstream_error", "upstream_failed", `Every model of ${virtual} failed${detail}`)
}

/** @internal */
export const fromFailure = (virtual: string, failure: PatternFailure): ApiError => {
  switch (failure._tag) {
    case "AllModelsFailed":
      return classify(
        virtual,
        failure.attempts.map((attempt) =>
          [
            attempt.deployment === undefined ? attempt.model : `${attempt.model}@${attempt.deployment}`,
            attempt.error
          ] as const
        ),
        failure.stoppedBy,
        failure.reason === "DeadlineReached"
      )
    case "NoCandidatesError":
      return classify(
        virtual,
        failure.candidates.flatMap((c) => c.error === undefined ? [] : [[c.model, c.error] as const]),
        undefined,
        false
      )
    // the gateway's own configuration is at fault, not the request
    case "BestOfNConfigError":
    case "FallbackConfigError":
      return internal
    default:
      return classify(
        virtual,
        [[failure.model, failure]],
        LlmError.isFallbackable(failure) ? undefined : failure,
        false
      )
  }
}
