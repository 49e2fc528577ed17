/**
 * From an HTTP failure to an `LlmError`: reading the provider's error body (whatever its shape),
 * the `retry-after` headers, and classifying status, code and type into the error table. Every
 * text that comes from the provider goes through `sanitize` before it lands in an error.
 *
 * @internal
 */
import * as LlmError from "@resilient-llm/core/LlmError"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"

// -----------------------------------------------------------------------------
// Sanitizing provider text
// -----------------------------------------------------------------------------

/**
 * Longest detail (in UTF-16 code units) an error takes from the provider.
 *
 * @internal
 */
export const maxDetailLength = 512

const redactedMark = "<redacted>"

/**
 * The shortest piece of a secret that is scrubbed on its own. Providers and runtimes quote bodies
 * in fragments (V8's JSON errors show ten characters around the fault), so a token that shares
 * eight consecutive characters with a secret is treated as part of it.
 *
 * @internal
 */
export const secretFragmentLength = 8

const fragmentsCache = new WeakMap<ReadonlyArray<Redacted.Redacted<string>>, ReadonlySet<string>>()
const lowerCaseFragmentsCache = new WeakMap<ReadonlyArray<Redacted.Redacted<string>>, ReadonlySet<string>>()

/** Every `secretFragmentLength` characters of each secret, as written or lower-cased. */
const fragmentsOf = (secrets: ReadonlyArray<Redacted.Redacted<string>>, lowerCase = false): ReadonlySet<string> => {
  const cache = lowerCase ? lowerCaseFragmentsCache : fragmentsCache
  const cached = cache.get(secrets)
  if (cached !== undefined) return cached
  const fragments = new Set<string>()
  for (const secret of secrets) {
    const value = lowerCase ? Redacted.value(secret).toLowerCase() : Redacted.value(secret)
    for (let i = 0; i + secretFragmentLength <= value.length; i++) {
      fragments.add(value.slice(i, i + secretFragmentLength))
    }
  }
  cache.set(secrets, fragments)
  return fragments
}

const tokenPattern = /[A-Za-z0-9._~+/=-]{8,}/g

const sharesFragment = (token: string, fragments: ReadonlySet<string>): boolean => {
  for (let i = 0; i + secretFragmentLength <= token.length; i++) {
    if (fragments.has(token.slice(i, i + secretFragmentLength))) return true
  }
  return false
}

/**
 * Makes a provider's text safe to put in an error:
 *
 * - every configured secret is replaced, and so is every token (a run of key-like characters)
 *   sharing eight consecutive characters with one, so a quoted fragment of a key is caught too;
 *   this happens before truncation, so a cut can never leave part of a key;
 * - bearer tokens and `sk-` style keys are masked even when they are not ours;
 * - control characters (newlines included, so a detail cannot forge log lines) become spaces;
 * - the result is cut to `maxLength`.
 *
 * @internal
 */
export const sanitize = (
  text: string,
  secrets: ReadonlyArray<Redacted.Redacted<string>>,
  maxLength: number = maxDetailLength
): string => {
  let out = text
  for (const secret of secrets) {
    const value = Redacted.value(secret)
    if (value.length > 0 && out.includes(value)) {
      out = out.split(value).join(redactedMark)
    }
  }
  const fragments = fragmentsOf(secrets)
  if (fragments.size > 0) {
    out = out.replace(tokenPattern, (token) => sharesFragment(token, fragments) ? redactedMark : token)
  }
  out = out
    .replace(/\b(Bearer|Basic)\s+[^\s"',;]+/gi, `$1 ${redactedMark}`)
    .replace(/\bsk-[A-Za-z0-9_-]{8,}/g, `sk-${redactedMark}`)
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ")
    .trim()
  if (out.length <= maxLength) return out
  let end = maxLength
  const last = out.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end-- // do not split a surrogate pair
  return `${out.slice(0, end)}…`
}

// -----------------------------------------------------------------------------
// Reading the provider's error body
// -----------------------------------------------------------------------------

/**
 * What could be read from a provider's error body. Every field is optional: providers disagree on
 * the shape, and a body that is not JSON at all still yields its text as `message`.
 *
 * @internal
 */
export interface ProviderError {
  readonly message: string | undefined
  /** `error.code` when it is a string. */
  readonly code: string | undefined
  /** `error.code` or `error.status` when numeric (Gemini, vLLM): an HTTP status hint. */
  readonly numericStatus: number | undefined
  /** `error.type`, or Gemini's textual `error.status` (`RESOURCE_EXHAUSTED`). */
  readonly type: string | undefined
  /** Azure's `error.innererror.code` (`ResponsibleAIPolicyViolation`). */
  readonly innerCode: string | undefined
  /** Gemini's `google.rpc.RetryInfo.retryDelay` (`"30s"`). */
  readonly retryDelay: string | undefined
}

const emptyProviderError: ProviderError = {
  message: undefined,
  code: undefined,
  numericStatus: undefined,
  type: undefined,
  innerCode: undefined,
  retryDelay: undefined
}

const stringField = (u: unknown, key: string): string | undefined =>
  Predicate.hasProperty(u, key) && typeof u[key] === "string" && u[key].length > 0 ? u[key] : undefined

const numberField = (u: unknown, key: string): number | undefined =>
  Predicate.hasProperty(u, key) && typeof u[key] === "number" && Number.isInteger(u[key]) ? u[key] : undefined

const retryDelayOf = (details: unknown): string | undefined => {
  if (!Array.isArray(details)) return undefined
  for (const detail of details.slice(0, 16)) {
    const delay = stringField(detail, "retryDelay")
    if (delay !== undefined) return delay
  }
  return undefined
}

const fromErrorObject = (error: object): ProviderError => {
  const code = Predicate.hasProperty(error, "code") ? error.code : undefined
  const status = Predicate.hasProperty(error, "status") ? error.status : undefined
  const inner = Predicate.hasProperty(error, "innererror") ? error.innererror : undefined
  return {
    message: stringField(error, "message") ?? stringField(error, "detail") ?? stringField(error, "error"),
    code: typeof code === "string" && code.length > 0 ? code : undefined,
    numericStatus: numberField(error, "code") ?? numberField(error, "status"),
    type: stringField(error, "type") ?? (typeof status === "string" && status.length > 0 ? status : undefined),
    innerCode: stringField(inner, "code"),
    retryDelay: Predicate.hasProperty(error, "details") ? retryDelayOf(error.details) : undefined
  }
}

/**
 * Reads a parsed JSON error body, tolerating the shapes seen in the wild:
 *
 * - OpenAI and most compatible servers: `{ "error": { "message", "type", "code", "param" } }`
 * - Anthropic: `{ "type": "error", "error": { "type": "overloaded_error", "message" } }`
 * - Gemini: `{ "error": { "code": 429, "message", "status": "RESOURCE_EXHAUSTED", "details" } }`,
 *   sometimes wrapped in an array
 * - vLLM: `{ "object": "error", "message", "type", "code": 400 }`
 * - Ollama and small servers: `{ "error": "model not found" }`; FastAPI: `{ "detail": "..." }`
 *
 * Anything else yields an empty `ProviderError`.
 *
 * @internal
 */
export const readProviderError = (body: unknown): ProviderError => {
  const root = Array.isArray(body) ? body[0] : body
  if (!Predicate.isObject(root)) return emptyProviderError
  const error = root["error"]
  if (typeof error === "string" && error.length > 0) {
    return { ...emptyProviderError, message: error }
  }
  if (Predicate.isObject(error)) return fromErrorObject(error)
  return fromErrorObject(root)
}

/**
 * Whether a parsed body is an error envelope rather than a completion: it has an `error` member
 * and no `choices`. Some providers answer `200 OK` with one, or send one as an SSE event.
 *
 * @internal
 */
export const isErrorEnvelope = (body: unknown): boolean => {
  const root = Array.isArray(body) && body.length === 1 ? body[0] : body
  return Predicate.isObject(root) && root["error"] !== undefined && root["error"] !== null &&
    root["choices"] === undefined
}

/**
 * Reads an error body that is not (or not valid) JSON: its text, unless it is an HTML page (a
 * proxy's error page says nothing the status does not).
 *
 * @internal
 */
export const fromText = (text: string): ProviderError => {
  const trimmed = text.trim()
  if (trimmed.length === 0 || trimmed.startsWith("<")) return emptyProviderError
  return { ...emptyProviderError, message: trimmed }
}

// -----------------------------------------------------------------------------
// retry-after
// -----------------------------------------------------------------------------

/**
 * The longest wait a `retry-after` hint can say: larger values (an absurd number of seconds, a
 * date far in the future, digits that overflow to `Infinity`) are clamped to it. A day is far
 * beyond any caller's retry budget, so a clamped hint still means "give up on this model for now".
 *
 * @internal
 */
export const maxRetryAfterMillis = 24 * 60 * 60 * 1000

const decimal = /^\d+(?:\.\d+)?$/

const clampMillis = (millis: number): Option.Option<Duration.Duration> =>
  Number.isNaN(millis) || millis < 0
    ? Option.none()
    : Option.some(Duration.millis(Math.min(millis, maxRetryAfterMillis)))

const parseDelay = (value: string, unitMillis: number): Option.Option<Duration.Duration> => {
  const trimmed = value.trim()
  return decimal.test(trimmed) ? clampMillis(Number(trimmed) * unitMillis) : Option.none()
}

const parseHttpDate = (value: string, nowMillis: number): Option.Option<Duration.Duration> => {
  const trimmed = value.trim()
  // An IMF-fixdate is 29 characters; a long or letterless value is not a date (`Date.parse("5")`
  // would read a bare number as a year), nor is one with five digits in a row: HTTP dates have
  // four-digit years, and V8 reads `01 Jan 10000` as a date all the same.
  if (trimmed.length > 64 || !/[a-z]/i.test(trimmed) || /\d{5}/.test(trimmed)) return Option.none()
  const at = Date.parse(trimmed)
  return Number.isNaN(at) ? Option.none() : clampMillis(Math.max(0, at - nowMillis))
}

/**
 * The provider's wait hint, first that is valid of: `retry-after-ms` (milliseconds),
 * `retry-after` as seconds, `retry-after` as an HTTP date (relative to `nowMillis`, from `Clock`;
 * a date in the past is zero), and Gemini's `retryDelay` in the body (`"30s"`). Negative numbers,
 * `NaN`, exponents and other garbage are no hint; values beyond `maxRetryAfterMillis` are clamped.
 *
 * @internal
 */
export const parseRetryAfter = (
  headers: Readonly<Record<string, string | undefined>>,
  nowMillis: number,
  retryDelay?: string
): Option.Option<Duration.Duration> => {
  const ms = headers["retry-after-ms"]
  const after = headers["retry-after"]
  return Option.orElse(
    ms === undefined ? Option.none() : parseDelay(ms, 1),
    () =>
      Option.orElse(
        after === undefined
          ? Option.none()
          : Option.orElse(parseDelay(after, 1000), () => parseHttpDate(after, nowMillis)),
        () => {
          const seconds = retryDelay?.trim().match(/^(\d+(?:\.\d+)?)s$/)
          return seconds ? parseDelay(seconds[1], 1000) : Option.none()
        }
      )
  )
}

// -----------------------------------------------------------------------------
// Classification
// -----------------------------------------------------------------------------

const normalize = (token: string): string => token.toLowerCase().replace(/[\s-]+/g, "_")

const tokensOf = (error: ProviderError): ReadonlyArray<string> =>
  [error.code, error.type, error.innerCode].filter(Predicate.isString).map(normalize)

const has = (error: ProviderError, set: ReadonlySet<string>): boolean => tokensOf(error).some((t) => set.has(t))

const contextCodes: ReadonlySet<string> = new Set(["context_length_exceeded"])
const contextMessage =
  /maximum context length|context[ _-]length[ _-]exceeded|context window|prompt is too long|input is too long for (the )?model|too many (input )?tokens/i

const contentCodes: ReadonlySet<string> = new Set([
  "content_filter",
  "content_filtered",
  "content_policy_violation",
  "responsibleaipolicyviolation",
  "moderation_blocked"
])
const contentMessage = /content[ _-]?(management[ _-]?)?polic(y|ies)|content[ _-]?filter|usage polic(y|ies)/i

const modelNotFoundCodes: ReadonlySet<string> = new Set(["model_not_found"])
const quotaCodes: ReadonlySet<string> = new Set(["insufficient_quota", "billing_hard_limit_reached"])

const statusByType: ReadonlyArray<readonly [ReadonlySet<string>, number]> = [
  [quotaCodes, 429],
  [
    new Set(["rate_limit_exceeded", "rate_limit_error", "rate_limited", "resource_exhausted", "too_many_requests"]),
    429
  ],
  [new Set(["authentication_error", "invalid_api_key", "unauthenticated", "invalid_authentication"]), 401],
  [new Set(["permission_error", "permission_denied"]), 403],
  [new Set(["not_found_error", "not_found", "model_not_found"]), 404],
  [new Set(["overloaded_error", "overloaded"]), 529],
  [new Set(["service_unavailable", "unavailable"]), 503],
  [
    new Set([
      "invalid_request_error",
      "invalid_argument",
      "bad_request",
      "badrequesterror",
      ...contextCodes,
      ...contentCodes
    ]),
    400
  ]
]

/**
 * The HTTP status an error that arrived without one (an error event in a stream, an error
 * envelope in a `200 OK` body) stands for: its own numeric code when that is a 4xx or 5xx, else
 * one inferred from its code or type, else 500 (the provider failed while answering).
 *
 * @internal
 */
export const inferStatus = (error: ProviderError): number => {
  if (error.numericStatus !== undefined && error.numericStatus >= 400 && error.numericStatus <= 599) {
    return error.numericStatus
  }
  for (const [set, status] of statusByType) {
    if (has(error, set)) return status
  }
  return 500
}

/**
 * What `classify` needs besides the error body.
 *
 * @internal
 */
export interface Context {
  readonly model: string
  readonly status: number
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly nowMillis: number
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  /** Put before the provider's message, e.g. "error event in stream". */
  readonly prefix?: string
}

/**
 * Maps a failed call to its `LlmError`, in this order:
 *
 * 1. 429: `RateLimitError` with the `retry-after` hint, unless the code says the quota or billing
 *    is exhausted (`insufficient_quota`), which waiting does not fix: `AuthenticationError`.
 * 2. 5xx and 529, and the passing refusals 408 (request timeout) and 409 (conflict):
 *    `ServerError`.
 * 3. a context-length code or message: `ContextLengthError`.
 * 4. a content-policy code or message: `ContentFilterError`.
 * 5. `model_not_found` (whatever the status) or 404: `ModelNotFoundError`.
 * 6. 401, 403, and 402 (payment required: the account, not the request, is at fault):
 *    `AuthenticationError`.
 * 7. any other 4xx: `BadRequestError` with the provider's code (or its type when it has no code).
 * 8. anything else (1xx; a 3xx never gets here, see `redirect`): `ResponseDecodeError`.
 *
 * Every error but the last carries the provider's `x-should-retry: true | false`, when it sent one,
 * as `retryable`.
 *
 * @internal
 */
export const classify = (error: ProviderError, context: Context): LlmError.LlmError => {
  const { model, status } = context
  const text = [error.message, error.code ?? error.type].find(Predicate.isString)
  const raw = context.prefix ? (text ? `${context.prefix}: ${text}` : context.prefix) : text
  const sanitized = raw === undefined ? undefined : sanitize(raw, context.secrets)
  const verdict = shouldRetry(context.headers)
  const detail = {
    ...(sanitized ? { detail: sanitized } : {}),
    ...(verdict === undefined ? {} : { retryable: verdict })
  }
  const message = error.message ?? ""

  if (status === 429) {
    if (has(error, quotaCodes)) return new LlmError.AuthenticationError({ model, status, ...detail })
    const retryAfter = parseRetryAfter(context.headers, context.nowMillis, error.retryDelay)
    return new LlmError.RateLimitError({ model, retryAfter, ...detail })
  }
  if ((status >= 500 && status <= 599) || status === 408 || status === 409) {
    return new LlmError.ServerError({ model, status, ...detail })
  }
  if (has(error, contextCodes) || contextMessage.test(message)) {
    return new LlmError.ContextLengthError({ model, ...detail })
  }
  if (has(error, contentCodes) || contentMessage.test(message)) {
    return new LlmError.ContentFilterError({ model, ...detail })
  }
  if (has(error, modelNotFoundCodes) || status === 404) return new LlmError.ModelNotFoundError({ model, ...detail })
  if (status === 401 || status === 402 || status === 403) {
    return new LlmError.AuthenticationError({ model, status, ...detail })
  }
  if (status >= 400 && status <= 499) {
    const code = error.code ?? error.type
    return new LlmError.BadRequestError({
      model,
      status,
      code: code === undefined ? Option.none() : Option.some(sanitize(code, context.secrets, 64)),
      ...detail
    })
  }
  return new LlmError.ResponseDecodeError({
    model,
    detail: sanitized ? `unexpected HTTP status ${status}: ${sanitized}` : `unexpected HTTP status ${status}`
  })
}

/**
 * The provider's own verdict on retrying, as the official SDKs read it: `x-should-retry: true` or
 * `false`; anything else is no verdict.
 *
 * @internal
 */
export const shouldRetry = (headers: Readonly<Record<string, string | undefined>>): boolean | undefined => {
  const value = headers["x-should-retry"]?.trim().toLowerCase()
  return value === "true" ? true : value === "false" ? false : undefined
}

/**
 * A 3xx, which is never followed. The error names the origin of its `Location` (resolved against
 * the request's URL, scrubbed of secrets), never its path or query: those can carry a token.
 *
 * @internal
 */
export const redirect = (options: {
  readonly model: string
  readonly status: number
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly url: string
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
}): LlmError.RedirectError => {
  const verdict = shouldRetry(options.headers)
  return new LlmError.RedirectError({
    model: options.model,
    status: options.status,
    location: originOf(options.headers["location"], options.url, options.secrets),
    ...(verdict === undefined ? {} : { retryable: verdict })
  })
}

const originOf = (
  location: string | undefined,
  base: string,
  secrets: ReadonlyArray<Redacted.Redacted<string>>
): Option.Option<string> => {
  if (location === undefined || location.trim().length === 0) return Option.none()
  let url: URL
  try {
    url = new URL(location.trim(), base)
  } catch {
    return Option.none()
  }
  // opaque origins (`data:`, `about:`) read "null": they name no place
  if (url.origin === "null") return Option.none()
  // A host is lower-cased by the URL parser, so a key echoed into it is looked for in any case.
  return Option.some(mentionsSecret(url.host, secrets) ? `${url.protocol}//${redactedMark}` : url.origin)
}

/**
 * Whether `text` holds a secret, or 8 consecutive characters of one, ignoring case.
 *
 * @internal
 */
const mentionsSecret = (text: string, secrets: ReadonlyArray<Redacted.Redacted<string>>): boolean =>
  sharesFragment(text.toLowerCase(), fragmentsOf(secrets, true))
