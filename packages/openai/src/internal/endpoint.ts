/**
 * An endpoint's options, checked once when its layer is built: the URL requests go to, the
 * headers they carry (secrets still `Redacted`), the secrets to scrub from errors and spans, and
 * the limits.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import type * as OpenAiCompatible from "../OpenAiCompatible.js"

/**
 * What `resolveEndpoint` reads: the client's options but its `transformClient`, which applies to
 * the `HttpClient`, not to the endpoint.
 *
 * @internal
 */
export type EndpointOptions = Omit<OpenAiCompatible.Options, "transformClient">

/**
 * @internal
 */
export interface Endpoint {
  /** Where chat completions are posted. */
  readonly url: string
  /** The origin of `url`, the only place the key is sent. */
  readonly origin: string
  readonly apiKey: Redacted.Redacted<string> | undefined
  /** Extra headers, by lower-case name; secret values stay `Redacted`. */
  readonly headers: ReadonlyArray<readonly [string, string | Redacted.Redacted<string>]>
  /** Every secret value to scrub from error details: the key and secret header values. */
  readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  /** Header names whose values spans and logs must not show. */
  readonly redactedHeaderNames: ReadonlyArray<string>
  /** Query parameter names whose values spans must not show: all of `url`'s but plainly safe ones. */
  readonly redactedQueryNames: ReadonlyArray<string>
  readonly maxResponseBytes: number
  /** The bound on a whole `create` call, and on a `stream` call until its headers; infinite when off. */
  readonly timeout: Duration.Duration
  /** The longest wait for the next byte of a body, or the next event of a stream; infinite when off. */
  readonly idleTimeout: Duration.Duration
  /** The most requests in flight at once; `Infinity` when unbounded. */
  readonly maxConnections: number
}

/**
 * @internal
 */
export const defaultMaxResponseBytes = 8 * 1024 * 1024

/**
 * The official SDKs' default: long enough for a slow reasoning model to answer in one piece.
 *
 * @internal
 */
export const defaultTimeout: Duration.Duration = Duration.minutes(10)

/**
 * Long enough for a model that thinks for minutes between two events; short enough that a stalled
 * body or stream does not hold a call for the whole `timeout`, or forever for a stream.
 *
 * @internal
 */
export const defaultIdleTimeout: Duration.Duration = Duration.minutes(5)

/**
 * Enough concurrent calls for a busy service, well under a default `ulimit -n` of 1024.
 *
 * @internal
 */
export const defaultMaxConnections = 256

const chatPath = "/chat/completions"

/** Header names whose plain-string values are secrets all the same. */
const sensitiveHeaders: ReadonlySet<string> = new Set([
  "authorization",
  "proxy-authorization",
  "api-key",
  "x-api-key",
  "x-goog-api-key",
  "cookie"
])

/** Headers the HTTP client or this library sets. */
const reservedHeaders: ReadonlySet<string> = new Set([
  "accept",
  "connection",
  "content-length",
  "content-type",
  "host",
  "transfer-encoding",
  // always `identity`: a compressed body's decoded size is not known until it is decoded
  "accept-encoding"
])

/**
 * Query parameters whose values are not secrets (Azure's `api-version`). Every other value in a
 * `baseUrl`'s query is treated as one (Gemini takes its key as `?key=`).
 */
const plainQueryNames: ReadonlySet<string> = new Set(["api-version"])

/**
 * A value shorter than this is redacted from spans by its name, but not scrubbed from error text:
 * replacing every occurrence of `"1"` or `"true"` would garble the text and protect nothing.
 */
const minQuerySecretLength = 8

const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// Visible ASCII, space, tab and Latin-1: what Node accepts in a header value (no CR, LF, NUL).
const headerValue = /^[\t\x20-\x7e\x80-\xff]*$/

/**
 * Checks endpoint options; a failure is the reason they are invalid (never containing a secret).
 *
 * - `baseUrl` must be an absolute `http:` or `https:` URL without credentials (those belong in
 *   `apiKey` or `headers`, where they stay redacted). Requests go to `baseUrl` + `/chat/completions`
 *   (query string kept), or to `baseUrl` itself when it already ends in `/chat/completions`.
 * - Header names must be valid HTTP tokens and values must not contain line breaks; names are
 *   case-insensitive, so `X-A` and `x-a` together are a duplicate. `accept`, `content-type`,
 *   `content-length`, `accept-encoding`, `host`, `connection` and `transfer-encoding` are set by the
 *   client. `authorization` next to `apiKey` is ambiguous and refused.
 * - An `apiKey` that is empty (an empty environment variable) counts as no key.
 * - `maxResponseBytes` must be a positive integer; `maxConnections` too, or `Infinity`.
 * - `timeout` and `idleTimeout` must be positive durations; `"Infinity"` turns one off.
 * - Query parameters of `baseUrl` other than `api-version` count as secrets: their values are
 *   scrubbed from errors and spans.
 *
 * @internal
 */
export const resolveEndpoint = (options: EndpointOptions): Result.Result<Endpoint, string> => {
  let base: URL
  try {
    base = new URL(options.baseUrl)
  } catch {
    // The URL itself is not repeated: it could hold a key in its query string.
    return Result.fail("baseUrl is not a valid absolute URL (it must start with http:// or https://)")
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    return Result.fail(`baseUrl must use http: or https:, not ${base.protocol}`)
  }
  if (base.username !== "" || base.password !== "") {
    return Result.fail("baseUrl must not contain credentials; pass them as apiKey or headers, which stay redacted")
  }
  const url = new URL(base.href)
  url.hash = ""
  const path = url.pathname.replace(/\/+$/, "")
  url.pathname = path.endsWith(chatPath) ? path : `${path}${chatPath}`

  const maxResponseBytes = options.maxResponseBytes ?? defaultMaxResponseBytes
  if (!Number.isSafeInteger(maxResponseBytes) || maxResponseBytes < 1) {
    return Result.fail(`maxResponseBytes must be a positive integer, got ${String(maxResponseBytes)}`)
  }
  const maxConnections = options.maxConnections ?? defaultMaxConnections
  if (!(Number.isSafeInteger(maxConnections) && maxConnections >= 1) && maxConnections !== Infinity) {
    return Result.fail(`maxConnections must be a positive integer or Infinity, got ${String(maxConnections)}`)
  }
  const timeout = positiveDuration(options.timeout, defaultTimeout)
  if (timeout === undefined) return Result.fail(`timeout must be a positive duration, got ${describe(options.timeout)}`)
  const idleTimeout = positiveDuration(options.idleTimeout, defaultIdleTimeout)
  if (idleTimeout === undefined) {
    return Result.fail(`idleTimeout must be a positive duration, got ${describe(options.idleTimeout)}`)
  }

  const apiKey = options.apiKey !== undefined && Redacted.value(options.apiKey).trim().length > 0
    ? options.apiKey
    : undefined
  if (apiKey !== undefined && !headerValue.test(Redacted.value(apiKey))) {
    return Result.fail("apiKey contains characters that cannot be sent in an HTTP header (a line break?)")
  }

  const headers: Array<readonly [string, string | Redacted.Redacted<string>]> = []
  const secrets: Array<Redacted.Redacted<string>> = apiKey === undefined ? [] : [apiKey]
  const redactedHeaderNames: Array<string> = []
  const redactedQueryNames: Array<string> = []
  for (const [name, value] of url.searchParams) {
    if (plainQueryNames.has(name.toLowerCase())) continue
    redactedQueryNames.push(name)
    if (value.length >= minQuerySecretLength) secrets.push(Redacted.make(value))
  }
  const seen = new Set<string>()
  for (const [rawName, value] of Object.entries(options.headers ?? {})) {
    const name = rawName.toLowerCase()
    if (!headerName.test(rawName)) return Result.fail(`header name ${JSON.stringify(truncate(rawName))} is invalid`)
    if (seen.has(name)) return Result.fail(`header ${rawName} is set twice (header names are case-insensitive)`)
    seen.add(name)
    if (reservedHeaders.has(name)) return Result.fail(`header ${rawName} is set by the client and cannot be overridden`)
    if (name === "authorization" && apiKey !== undefined) {
      return Result.fail("both apiKey and an authorization header are set; use one")
    }
    const secret = Redacted.isRedacted(value) || sensitiveHeaders.has(name)
    const plain = Redacted.isRedacted(value) ? Redacted.value(value) : value
    if (!headerValue.test(plain)) {
      return Result.fail(`the value of header ${rawName} contains characters that cannot be sent (a line break?)`)
    }
    if (secret) {
      const redacted = Redacted.isRedacted(value) ? value : Redacted.make(value)
      headers.push([name, redacted])
      if (plain.length > 0) secrets.push(redacted)
      redactedHeaderNames.push(name)
    } else {
      headers.push([name, plain])
    }
  }

  return Result.succeed({
    url: url.href,
    origin: url.origin,
    apiKey,
    headers,
    secrets,
    redactedHeaderNames,
    redactedQueryNames,
    maxResponseBytes,
    timeout,
    idleTimeout,
    maxConnections
  })
}

/** The duration given (or the default), when it is a positive one; `undefined` when it is not. */
const positiveDuration = (
  input: Duration.Input | undefined,
  fallback: Duration.Duration
): Duration.Duration | undefined => {
  if (input === undefined) return fallback
  // `fromInput` never throws: an input that is no duration is `None`
  const decoded = Duration.fromInput(input)
  if (Option.isNone(decoded) || (typeof input === "number" && Number.isNaN(input))) return undefined
  return Duration.isGreaterThan(decoded.value, Duration.zero) ? decoded.value : undefined
}

const describe = (input: unknown): string =>
  typeof input === "string" ? JSON.stringify(truncate(input)) : typeof input === "number" ? String(input) : typeof input

const truncate = (s: string): string => s.length > 200 ? `${s.slice(0, 200)}…` : s
