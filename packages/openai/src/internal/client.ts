/**
 * The `ChatClient` over one OpenAI-compatible endpoint: building the HTTP request, running it in
 * a scope that aborts it when the call ends, times out or is interrupted (holding one of the
 * endpoint's connections meanwhile), and turning whatever comes back into a completion, a stream
 * of chunks, or an `LlmError`.
 *
 * @internal
 */
import type * as ChatClient from "@resilient-llm/core/ChatClient"
import * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as LlmError from "@resilient-llm/core/LlmError"
import * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as Headers from "effect/http/Headers"
import * as HttpClient from "effect/http/HttpClient"
import type * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import type * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as UrlParams from "effect/http/UrlParams"
import * as Option from "effect/Option"
import * as Pull from "effect/Pull"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import { bodyReadFailure, decodeUtf8, describeCause, idleBounded, parseJson, readLimited, readPrefix } from "./body.js"
import type { Endpoint } from "./endpoint.js"
import * as Errors from "./errors.js"
import { type Frame, makeFrameReader } from "./sse.js"
import { scrubbingTracer } from "./tracing.js"

/**
 * How much of an error body is read: enough for any provider's error message, and the rest is
 * not waited for.
 *
 * @internal
 */
export const maxErrorBodyBytes = 64 * 1024

const isSuccess = (status: number): boolean => status >= 200 && status <= 299

const isRedirect = (status: number): boolean => status >= 300 && status <= 399

/**
 * The body's content coding, when it has one: the client asks for `identity` only, since the
 * transports disagree on the rest (fetch decodes gzip in full before anyone can count the bytes,
 * undici and `node:http` hand over the compressed bytes), and the decoded size of a compressed
 * body is not known until it is decoded.
 */
const contentCoding = (headers: Headers.Headers): string | undefined => {
  const value = headers["content-encoding"]?.trim().toLowerCase()
  return value === undefined || value === "" || value === "identity" ? undefined : value
}

/**
 * `fetch` follows redirects by default, re-sending the request (and its headers) to wherever the
 * `Location` says. Every fetch the client makes asks for `redirect: "manual"` instead, so that the
 * 3xx comes back as it is.
 */
const manualRedirects = new WeakMap<typeof globalThis.fetch, typeof globalThis.fetch>()
const withoutRedirects = (fetch: typeof globalThis.fetch): typeof globalThis.fetch => {
  let wrapped = manualRedirects.get(fetch)
  if (wrapped === undefined) {
    wrapped = (input, init) => fetch(input, { ...init, redirect: "manual" })
    manualRedirects.set(fetch, wrapped)
  }
  return wrapped
}

/**
 * What a call tells its watchdog: its response's headers came, a read of its body came.
 */
interface Progress {
  readonly headers: () => void
  readonly read: () => void
}

const noProgress: Progress = { headers: () => {}, read: () => {} }

/**
 * Which headers a span shows as `<redacted>`. Effect records headers on the HTTP client's span only
 * when `HttpClient.TracerHeaderFilter` lets it (by default it records none); when it does, a
 * provider may echo a key back under any header name, so every header but plainly safe ones (and
 * the caller's own plain headers) is recorded as `<redacted>`: what is worth seeing in a trace
 * (content type, request id, rate-limit state) stays readable.
 *
 * @internal
 */
export const redactAllHeadersBut = (plain: ReadonlyArray<string>): RegExp => {
  const escaped = plain.map((name) => name.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
  const safe = [
    "accept",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
    "server",
    "user-agent",
    "retry-after",
    "retry-after-ms",
    "x-request-id",
    "request-id",
    "x-ratelimit-[a-z-]+",
    "openai-[a-z-]+",
    ...escaped
  ]
  return new RegExp(`^(?!(?:${safe.join("|")})$)`, "i")
}

const untraced = (): boolean => true

const isJsonContentType = (value: string | undefined): boolean =>
  value !== undefined && /^\s*application\/([\w.+-]+\+)?json\b/i.test(value)

/** The provider's error in a body's text: its JSON error object, or the text itself. */
const providerErrorOf = (text: string): Errors.ProviderError =>
  Result.match(parseJson(text), { onFailure: () => Errors.fromText(text), onSuccess: Errors.readProviderError })

/**
 * The service for one endpoint. `httpClient` is the caller's client (with its own
 * `transformClient` applied); every request runs in its own scope, tied to the request with
 * `HttpClient.withScope`, so closing the scope (success, failure, interruption, the end of a
 * stream) aborts the request and releases its connection.
 *
 * @internal
 */
export const make = (endpoint: Endpoint, httpClient: HttpClient.HttpClient): ChatClient.Service => {
  const client = HttpClient.withScope(httpClient)
  const { secrets } = endpoint
  const plainHeaders: Record<string, string> = {}
  const secretHeaders: Array<readonly [string, Redacted.Redacted<string>]> = []
  for (const [name, value] of endpoint.headers) {
    if (Redacted.isRedacted(value)) secretHeaders.push([name, value])
    else plainHeaders[name] = value
  }
  const redactedNames = [...endpoint.redactedHeaderNames, redactAllHeadersBut(Object.keys(plainHeaders))]
  const withRedactedNames = (names: ReadonlyArray<string | RegExp>) => [...names, ...redactedNames]
  const withRedactedQueryNames = (names: ReadonlyArray<string | RegExp>) => [...names, ...endpoint.redactedQueryNames]
  const scrubbing = scrubbingTracer(secrets)
  /**
   * The HTTP client's span, when a tracer can see it, with its values scrubbed of secrets (without
   * a secret there is nothing to scrub). With no tracer installed (Effect's default, which exports
   * nothing) the request makes no span and sends no trace context, as the patterns make none: the
   * span, the header and URL attributes, the `traceparent` and the scrubbing of each value were a
   * third of the client's CPU per request over loopback.
   */
  const withClientSpan = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withFiber((fiber) => {
      if (!fiber.getRef(References.TracerEnabled) || fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer) {
        return Effect.provideService(effect, HttpClient.TracerDisabledWhen, untraced)
      }
      return secrets.length === 0 ? effect : Effect.updateService(effect, Tracer.Tracer, scrubbing)
    })

  // One permit per request in flight: calls past `maxConnections` wait, in order, for a free one.
  const connections = Number.isFinite(endpoint.maxConnections)
    ? Semaphore.makeUnsafe(endpoint.maxConnections)
    : undefined
  const takeConnection: Effect.Effect<void, never, Scope.Scope> = connections === undefined
    ? Effect.void
    : connections.takeScoped(1)
  const withConnection = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    connections === undefined ? effect : connections.withPermit(effect)

  const { idleTimeout, timeout } = endpoint
  const timeoutMillis = Duration.toMillis(timeout)
  const idleMillis = Duration.toMillis(idleTimeout)
  const timeoutError = (model: string, duration: Duration.Duration, detail: string) =>
    new LlmError.TimeoutError({ model, timeout: duration, detail })

  /**
   * Runs one call under a single watchdog that enforces both of the client's bounds: `timeout` from
   * the start, and `idleTimeout` from the response's headers and then from each read of its body
   * (`progress` says when those came). One timer per call: the watchdog sleeps until the earliest
   * moment a bound could run out (before the headers, an `idleTimeout` from now, since they may
   * come at once), checks, and sleeps again if the call moved on meanwhile. A call that ends first
   * interrupts it; a watchdog that fires interrupts the call, whose scope then aborts the request.
   * (Two `Effect.timeoutOrElse`, one per bound, cost a race each: a third of the client's CPU per
   * request over loopback.)
   */
  const watched = <A, R>(
    model: string,
    what: string,
    run: (progress: Progress) => Effect.Effect<A, LlmError.LlmError, R>
  ): Effect.Effect<A, LlmError.LlmError, R> => {
    if (!Number.isFinite(timeoutMillis) && !Number.isFinite(idleMillis)) return run(noProgress)
    return Effect.clockWith((clock) => {
      const start = clock.currentTimeMillisUnsafe()
      let headersAt: number | undefined
      let lastReadAt: number | undefined
      const progress: Progress = {
        headers: () => {
          headersAt = clock.currentTimeMillisUnsafe()
        },
        read: () => {
          lastReadAt = clock.currentTimeMillisUnsafe()
        }
      }
      const watchdog: Effect.Effect<never, LlmError.TimeoutError> = Effect.suspend(() => {
        const now = clock.currentTimeMillisUnsafe()
        const timeoutAt = start + timeoutMillis
        if (now >= timeoutAt) return Effect.fail(timeoutError(model, timeout, `${what} (the client's timeout)`))
        let wakeAt = timeoutAt
        if (headersAt === undefined) {
          wakeAt = Math.min(wakeAt, now + idleMillis)
        } else {
          const idleAt = (lastReadAt ?? headersAt) + idleMillis
          if (now >= idleAt) {
            return Effect.fail(
              timeoutError(
                model,
                idleTimeout,
                "no byte of the response arrived for that long (the client's idleTimeout)"
              )
            )
          }
          wakeAt = Math.min(wakeAt, idleAt)
        }
        return Effect.andThen(Effect.sleep(Duration.millis(wakeAt - now)), watchdog)
      })
      return Effect.raceFirst(run(progress), watchdog)
    })
  }

  // What every request to this endpoint shares, built once; the secrets are not part of it.
  const basePost = HttpClientRequest.post(endpoint.url).pipe(
    HttpClientRequest.setHeaders(plainHeaders),
    // see `contentCoding`: a compressed body is refused, so none is asked for
    HttpClientRequest.setHeader("accept-encoding", "identity")
  )
  const baseRequests: Record<string, HttpClientRequest.HttpClientRequest> = {
    "application/json": HttpClientRequest.setHeader(basePost, "accept", "application/json"),
    "text/event-stream": HttpClientRequest.setHeader(basePost, "accept", "text/event-stream")
  }

  const buildRequest = (
    body: string,
    accept: "application/json" | "text/event-stream"
  ): HttpClientRequest.HttpClientRequest => {
    let request = HttpClientRequest.bodyText(baseRequests[accept], body, "application/json")
    // Secrets are unwrapped here, at the last moment, and only for this endpoint's URL.
    for (const [name, value] of secretHeaders) {
      request = HttpClientRequest.setHeader(request, name, Redacted.value(value))
    }
    if (endpoint.apiKey !== undefined) request = HttpClientRequest.bearerToken(request, endpoint.apiKey)
    return request
  }

  const transportFailure = (model: string, error: HttpClientError.HttpClientError): LlmError.ConnectionError => {
    const { reason } = error
    const detail = reason._tag === "InvalidUrlError"
      ? "the request URL is invalid"
      : reason.cause === undefined
      ? reason.description ?? "transport failure"
      : describeCause(reason.cause)
    return new LlmError.ConnectionError({ model, detail: Errors.sanitize(detail, secrets) })
  }

  /**
   * The response, whatever its status. A `transformClient` may turn statuses into failures
   * (`HttpClient.filterStatusOk`, or what `retryTransient` gives up on); their response is taken
   * back, so it is mapped like any other status instead of passing for a broken connection.
   */
  const execute = (
    model: string,
    request: HttpClientRequest.HttpClientRequest
  ): Effect.Effect<HttpClientResponse.HttpClientResponse, LlmError.ConnectionError, Scope.Scope> =>
    client.execute(request).pipe(
      Effect.catch((error) =>
        error.reason._tag === "StatusCodeError"
          ? Effect.succeed(error.reason.response)
          : Effect.fail(transportFailure(model, error))
      ),
      Effect.updateService(Headers.CurrentRedactedNames, withRedactedNames),
      (effect) =>
        endpoint.redactedQueryNames.length === 0
          ? effect
          : Effect.updateService(effect, UrlParams.CurrentRedactedNames, withRedactedQueryNames),
      withClientSpan,
      Effect.updateService(FetchHttpClient.Fetch, withoutRedirects)
    )

  /**
   * A response that must not be read as an answer: a redirect (never followed), a 204 or 205 (no
   * body), a body compressed though the request accepted only `identity`.
   */
  const unusableResponse = (
    model: string,
    response: HttpClientResponse.HttpClientResponse
  ): LlmError.LlmError | undefined => {
    const status = response.status
    if (isRedirect(status)) {
      return Errors.redirect({ model, status, headers: response.headers, url: endpoint.url, secrets })
    }
    if (!isSuccess(status)) return undefined
    if (status === 204 || status === 205) {
      return decodeFailure(
        model,
        `HTTP ${status} (${status === 204 ? "no content" : "reset content"}): the provider sent no completion`
      )
    }
    const coding = contentCoding(response.headers)
    if (coding !== undefined) {
      return decodeFailure(
        model,
        `the response is compressed (content-encoding: ${Errors.sanitize(coding, secrets, 64)}) though the ` +
          "request accepted only identity; compressed bodies are refused"
      )
    }
    return undefined
  }

  const encodeBody = (request: ChatCompletion.ChatRequest, streaming: boolean) =>
    ChatCompletion.encodeRequest(request).pipe(
      Effect.mapError((error) => formatSchemaError(error, secrets)),
      Effect.flatMap((encoded) => {
        // `create` never streams (and OpenAI refuses `stream_options` without `stream`); `stream`
        // always does, with the caller's `stream_options` kept as given.
        const { stream: _stream, stream_options, ...rest } = encoded
        const payload = streaming
          ? { ...rest, ...(stream_options == null ? {} : { stream_options }), stream: true }
          : rest
        return Effect.try({ try: () => JSON.stringify(payload), catch: describeCause })
      }),
      Effect.mapError((reason) =>
        new LlmError.BadRequestError({
          model: request.model,
          status: 0,
          code: Option.some("request_not_encodable"),
          detail: Errors.sanitize(`the request could not be encoded, nothing was sent: ${reason}`, secrets)
        })
      )
    )

  const classifyAt = (
    model: string,
    response: HttpClientResponse.HttpClientResponse,
    error: Errors.ProviderError,
    options: { readonly status: number; readonly prefix?: string }
  ): Effect.Effect<LlmError.LlmError> =>
    Effect.map(Clock.currentTimeMillis, (nowMillis) =>
      Errors.classify(error, {
        model,
        status: options.status,
        headers: response.headers,
        nowMillis,
        secrets,
        ...(options.prefix === undefined ? {} : { prefix: options.prefix })
      }))

  /**
   * An error status: its body (the first 64 KiB, whatever they hold; nothing when it is compressed)
   * and headers, classified.
   */
  const statusFailure = (model: string, response: HttpClientResponse.HttpClientResponse, progress: Progress) =>
    Effect.flatMap(
      contentCoding(response.headers) === undefined
        ? readPrefix(response, maxErrorBodyBytes, progress.read)
        : Effect.succeed(undefined),
      (bytes) => {
        const text = bytes === undefined ? "" : new TextDecoder().decode(bytes)
        return classifyAt(model, response, providerErrorOf(text), { status: response.status })
      }
    )

  /** An error object where a success was expected: the status comes from the object itself. */
  const envelopeFailure = (
    model: string,
    response: HttpClientResponse.HttpClientResponse,
    error: Errors.ProviderError,
    prefix: string
  ) => classifyAt(model, response, error, { status: Errors.inferStatus(error), prefix })

  const decodeFailure = (model: string, detail: string) =>
    new LlmError.ResponseDecodeError({ model, detail: Errors.sanitize(detail, secrets) })

  const readJson = (model: string, response: HttpClientResponse.HttpClientResponse, progress: Progress) =>
    readLimited(response, {
      model,
      maxBytes: endpoint.maxResponseBytes,
      onProgress: progress.read,
      secrets
    }).pipe(
      Effect.flatMap((bytes) =>
        Result.flatMap(decodeUtf8(bytes), parseJson).pipe(
          Result.mapError((reason) => decodeFailure(model, `the body ${reason}`)),
          Effect.fromResult
        )
      )
    )

  /**
   * Sends the request and hands over a response to read as an answer. Anything else fails here,
   * mapped: a redirect, a 204 or 205, a compressed body, an error status (its body classified).
   */
  const respond = (
    model: string,
    request: HttpClientRequest.HttpClientRequest,
    progress: Progress
  ): Effect.Effect<HttpClientResponse.HttpClientResponse, LlmError.LlmError, Scope.Scope> =>
    Effect.flatMap(execute(model, request), (response) => {
      progress.headers()
      const refused = unusableResponse(model, response)
      if (refused !== undefined) return Effect.fail(refused)
      return isSuccess(response.status)
        ? Effect.succeed(response)
        : Effect.flip(statusFailure(model, response, progress))
    })

  const createScoped = Effect.fnUntraced(
    function*(request: ChatCompletion.ChatRequest, progress: Progress): Effect.fn.Return<
      ChatCompletion.ChatCompletion,
      LlmError.LlmError,
      Scope.Scope
    > {
      const model = request.model
      const body = yield* encodeBody(request, false)
      const response = yield* respond(model, buildRequest(body, "application/json"), progress)
      const json = yield* readJson(model, response, progress)
      if (Errors.isErrorEnvelope(json)) {
        return yield* Effect.flip(
          envelopeFailure(model, response, Errors.readProviderError(json), "error object in a successful response")
        )
      }
      const completion = yield* ChatCompletion.decodeCompletion(json).pipe(
        Effect.mapError((error) => decodeFailure(model, `not a chat completion: ${formatSchemaError(error, secrets)}`))
      )
      const [first] = completion.choices
      if (first.finish_reason === "content_filter") {
        // A withheld (or cut) reply is not an answer: a chain falls back instead of serving it.
        return yield* new LlmError.ContentFilterError({
          model,
          detail: Errors.sanitize(
            first.message.refusal ?? (first.message.content
              ? `the content filter cut the reply after ${first.message.content.length} characters`
              : "the content filter withheld the reply"),
            secrets
          )
        })
      }
      return completion
    },
    // the connection is released once the scope has closed, the request with it
    Effect.scoped,
    withConnection
  )

  const create = (
    request: ChatCompletion.ChatRequest
  ): Effect.Effect<ChatCompletion.ChatCompletion, LlmError.LlmError> =>
    watched(request.model, "no complete response", (progress) => createScoped(request, progress))

  const chunks = (
    model: string,
    response: HttpClientResponse.HttpClientResponse
  ): Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError> => {
    const events = decodeEventStream(
      Stream.mapError(response.stream, (error) => bodyReadFailure(model, error, secrets)),
      {
        model,
        maxEventSize: endpoint.maxResponseBytes,
        secrets,
        onErrorEvent: (error) => envelopeFailure(model, response, error, "error event in the stream")
      }
    )
    // Per event, not per byte: comments and keep-alives do not hold a stalled stream open.
    return idleBounded(events, idleTimeout, () =>
      timeoutError(
        model,
        idleTimeout,
        "no event arrived in the stream for that long (the client's idleTimeout; comments do not count)"
      ))
  }

  /** Sends a stream request; the stream's scope (see `Stream.unwrap`) is the request's. */
  const openStream = Effect.fnUntraced(function*(
    request: ChatCompletion.ChatRequest,
    progress: Progress
  ): Effect.fn.Return<
    Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError>,
    LlmError.LlmError,
    Scope.Scope
  > {
    const model = request.model
    const body = yield* encodeBody(request, true)
    yield* takeConnection
    const response = yield* respond(model, buildRequest(body, "text/event-stream"), progress)
    if (isJsonContentType(response.headers["content-type"])) {
      // Asked for a stream, got JSON: an error object is mapped; anything else is not a stream.
      const json = yield* readJson(model, response, progress)
      return yield* Effect.fail(
        Errors.isErrorEnvelope(json)
          ? yield* envelopeFailure(model, response, Errors.readProviderError(json), "error object instead of a stream")
          : decodeFailure(model, "expected an event stream (stream: true) but got a JSON body")
      )
    }
    return chunks(model, response)
  })

  /**
   * `timeout` bounds a stream until its response arrives; from then on, `idleTimeout` bounds the
   * wait for each event, and the stream may last as long as events keep coming.
   */
  const stream = (
    request: ChatCompletion.ChatRequest
  ): Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError> =>
    Stream.unwrap(watched(request.model, "no response", (progress) => openStream(request, progress)))

  return { create, stream }
}

/**
 * The service for an endpoint already resolved, over the `HttpClient` in context (with the
 * caller's `transformClient` applied): what `OpenAiCompatible.make`, `layerConfig` and
 * `Providers.make` share once their options are checked.
 *
 * @internal
 */
export const fromEndpoint = (
  endpoint: Endpoint,
  transformClient: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
): Effect.Effect<ChatClient.Service, never, HttpClient.HttpClient> =>
  Effect.map(Effect.service(HttpClient.HttpClient), (client) => make(endpoint, transformClient?.(client) ?? client))

const decodeChunkResult = Schema.decodeUnknownResult(ChatCompletion.ChatCompletionChunk)

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/**
 * The first issues of a schema failure, one line each (`choices.0.message: Expected ...`),
 * sanitized. Formatting walks the value; it cannot overflow (values deeper than `maxJsonDepth`
 * never get here), and would it throw, a plain description is used instead.
 */
const formatSchemaError = (
  error: Schema.SchemaError,
  secrets: ReadonlyArray<Redacted.Redacted<string>>
): string => {
  try {
    const { issues } = formatIssues(error.issue)
    const lines = issues.slice(0, 3).map((issue) => {
      const path = issue.path === undefined || issue.path.length === 0
        ? "the value"
        : issue.path.map((segment) => String(typeof segment === "object" ? segment.key : segment)).join(".")
      return `${path}: ${issue.message}`
    })
    const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : ""
    return Errors.sanitize(`${lines.join("; ")}${more}`, secrets)
  } catch {
    return "the value does not have the expected shape"
  }
}

type ChunkPull = Pull.Pull<Arr.NonEmptyReadonlyArray<ChatCompletion.ChatCompletionChunk>, LlmError.LlmError>

/**
 * The chunks of an event stream's body, up to `[DONE]`; reading stops there, so the caller's scope
 * can abort the request. A body that ends before `[DONE]`, an event that is not JSON or not a
 * chunk, invalid UTF-8 and an event longer than `maxEventSize` fail with `ResponseDecodeError`; an
 * error object sent as an event (`{"error": {...}}`), and any `event: error` whatever its data (an
 * error object, text, or nothing), fails with what `onErrorEvent` maps it to.
 *
 * @internal
 */
export const decodeEventStream = (
  body: Stream.Stream<Uint8Array, LlmError.LlmError>,
  options: {
    readonly model: string
    readonly maxEventSize: number
    readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
    readonly onErrorEvent: (error: Errors.ProviderError) => Effect.Effect<LlmError.LlmError>
  }
): Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError> =>
  Stream.transformPull(body, (pullReads) =>
    Effect.sync(() => {
      const { model, secrets } = options
      const decodeFailure = (detail: string) =>
        new LlmError.ResponseDecodeError({ model, detail: Errors.sanitize(detail, secrets) })
      const reader = makeFrameReader(options.maxEventSize)
      // The frames of the reads pulled at once, decoded in one synchronous pass (a read holds
      // hundreds of events; an effect per event cost more than the decoding): the chunks decoded,
      // and what ended the stream, if something in them did. Nothing after the first frame that
      // ends it counts.
      const decodeFrames = (frames: ReadonlyArray<Frame>): {
        readonly chunks: Array<ChatCompletion.ChatCompletionChunk>
        readonly end: "Done" | Effect.Effect<LlmError.LlmError> | undefined
      } => {
        const chunks: Array<ChatCompletion.ChatCompletionChunk> = []
        for (const frame of frames) {
          switch (frame._tag) {
            case "Done":
              return { chunks, end: "Done" }
            case "End":
              return { chunks, end: Effect.succeed(decodeFailure("the stream ended before [DONE]")) }
            case "Invalid":
              return { chunks, end: Effect.succeed(decodeFailure(frame.detail)) }
            case "Data": {
              if (frame.event === "error") return { chunks, end: options.onErrorEvent(providerErrorOf(frame.data)) }
              const parsed = parseJson(frame.data)
              if (Result.isFailure(parsed)) {
                return { chunks, end: Effect.succeed(decodeFailure(`an event's data ${parsed.failure}`)) }
              }
              const json = parsed.success
              if (Errors.isErrorEnvelope(json)) {
                return { chunks, end: options.onErrorEvent(Errors.readProviderError(json)) }
              }
              const decoded = decodeChunkResult(json)
              if (Result.isFailure(decoded)) {
                const issue = decoded.failure
                return {
                  chunks,
                  end: Effect.sync(() => decodeFailure(`an event is not a chunk: ${formatSchemaError(issue, secrets)}`))
                }
              }
              if (decoded.success.choices.some((choice) => choice.finish_reason === "content_filter")) {
                return {
                  chunks,
                  end: Effect.succeed(
                    new LlmError.ContentFilterError({
                      model,
                      detail: "the content filter stopped the stream (finish_reason: content_filter)"
                    })
                  )
                }
              }
              chunks.push(decoded.success)
            }
          }
        }
        return { chunks, end: undefined }
      }

      // Once something ended the stream, every later pull gets it and the body is not pulled
      // again: the stream ends, and its scope aborts the request.
      let ended: Pull.Pull<never, LlmError.LlmError> | undefined
      const pullFrames = pullReads.pipe(
        Effect.map((reads) => reads.length === 1 ? reader.feed(reads[0]) : reads.flatMap(reader.feed)),
        Pull.catchDone(() => Effect.sync(reader.end))
      )
      const emit = (frames: ReadonlyArray<Frame>): ChunkPull => {
        const { chunks, end } = decodeFrames(frames)
        if (end !== undefined) ended = end === "Done" ? Cause.done() : Effect.flatMap(end, Effect.fail)
        // A read of comments, keep-alives or half an event decodes to nothing: pull the next one.
        return Arr.isArrayNonEmpty(chunks) ? Effect.succeed(chunks) : pull
      }
      const pull: ChunkPull = Effect.suspend(() => ended ?? Effect.flatMap(pullFrames, emit))
      return pull
    }))
