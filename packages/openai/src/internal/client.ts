/**
 * The `ChatClient` over one OpenAI-compatible endpoint: building the HTTP request, running it in
 * a scope that aborts it when the call ends or is interrupted, and turning whatever comes back
 * into a completion, a stream of chunks, or an `LlmError`.
 *
 * @internal
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as ChatClient from "@resilient-llm/core/ChatClient"
import * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as LlmError from "@resilient-llm/core/LlmError"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { bodyReadFailure, decodeUtf8, describeCause, parseJson, readLimited, readPrefix } from "./body.js"
import type { Endpoint } from "./endpoint.js"
import * as Errors from "./errors.js"
import { type Frame, makeFrameReader } from "./sse.js"

/**
 * How much of an error body is read: enough for any provider's error message, and the rest is
 * not waited for.
 *
 * @internal
 */
export const maxErrorBodyBytes = 64 * 1024

const isSuccess = (status: number): boolean => status >= 200 && status <= 299

/**
 * `@effect/platform` records every request and response header on the `http.client` span. A
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

const isJsonContentType = (value: string | undefined): boolean =>
  value !== undefined && /^\s*application\/([\w.+-]+\+)?json\b/i.test(value)

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

  // What every request to this endpoint shares, built once; the secrets are not part of it.
  const basePost = HttpClientRequest.post(endpoint.url).pipe(HttpClientRequest.setHeaders(plainHeaders))
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

  const transportFailure = (model: string, error: HttpClientError.HttpClientError): LlmError.ConnectionError =>
    new LlmError.ConnectionError({
      model,
      detail: Errors.sanitize(
        error.reason === "InvalidUrl" ? "the request URL is invalid" : describeCause(error.cause),
        secrets
      )
    })

  const execute = (
    model: string,
    request: HttpClientRequest.HttpClientRequest
  ): Effect.Effect<HttpClientResponse.HttpClientResponse, LlmError.ConnectionError, Scope.Scope> =>
    client.execute(request).pipe(
      Effect.mapError((error) => transportFailure(model, error)),
      Effect.locallyWith(
        Headers.currentRedactedNames,
        (names) => [...names, ...redactedNames]
      )
    )

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

  /** An error status: its body (the first 64 KiB, whatever they hold) and headers, classified. */
  const statusFailure = (model: string, response: HttpClientResponse.HttpClientResponse) =>
    Effect.flatMap(readPrefix(response, maxErrorBodyBytes), (bytes) => {
      const text = bytes === undefined ? "" : new TextDecoder().decode(bytes)
      const error = Either.match(parseJson(text), {
        onLeft: () => Errors.fromText(text),
        onRight: Errors.readProviderError
      })
      return classifyAt(model, response, error, { status: response.status })
    })

  /** An error object where a success was expected: the status comes from the object itself. */
  const envelopeFailure = (
    model: string,
    response: HttpClientResponse.HttpClientResponse,
    body: unknown,
    prefix: string
  ) => {
    const error = Errors.readProviderError(body)
    return classifyAt(model, response, error, { status: Errors.inferStatus(error), prefix })
  }

  const decodeFailure = (model: string, detail: string) =>
    new LlmError.ResponseDecodeError({ model, detail: Errors.sanitize(detail, secrets) })

  const readJson = (model: string, response: HttpClientResponse.HttpClientResponse) =>
    readLimited(response, { model, maxBytes: endpoint.maxResponseBytes, secrets }).pipe(
      Effect.flatMap((bytes) =>
        Either.flatMap(decodeUtf8(bytes), parseJson).pipe(
          Either.mapLeft((reason) => decodeFailure(model, `the body ${reason}`))
        )
      )
    )

  const create = (
    request: ChatCompletion.ChatRequest
  ): Effect.Effect<ChatCompletion.ChatCompletion, LlmError.LlmError> =>
    Effect.scoped(Effect.gen(function*() {
      const model = request.model
      const body = yield* encodeBody(request, false)
      const response = yield* execute(model, buildRequest(body, "application/json"))
      if (!isSuccess(response.status)) return yield* Effect.flip(statusFailure(model, response))
      const json = yield* readJson(model, response)
      if (Errors.isErrorEnvelope(json)) {
        return yield* Effect.flip(envelopeFailure(model, response, json, "error object in a successful response"))
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
    }))

  const chunks = (
    model: string,
    response: HttpClientResponse.HttpClientResponse
  ): Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError> =>
    decodeEventStream(Stream.mapError(response.stream, (error) => bodyReadFailure(model, error, secrets)), {
      model,
      maxEventSize: endpoint.maxResponseBytes,
      secrets,
      onErrorEvent: (json) => envelopeFailure(model, response, json, "error event in the stream")
    })

  const stream = (
    request: ChatCompletion.ChatRequest
  ): Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError> =>
    Stream.unwrapScoped(Effect.gen(function*() {
      const model = request.model
      const body = yield* encodeBody(request, true)
      const response = yield* execute(model, buildRequest(body, "text/event-stream"))
      if (!isSuccess(response.status)) return yield* Effect.flip(statusFailure(model, response))
      if (isJsonContentType(response.headers["content-type"])) {
        // Asked for a stream, got JSON: an error object is mapped; anything else is not a stream.
        const json = yield* readJson(model, response)
        return yield* Effect.fail(
          Errors.isErrorEnvelope(json)
            ? yield* envelopeFailure(model, response, json, "error object instead of a stream")
            : decodeFailure(model, "expected an event stream (stream: true) but got a JSON body")
        )
      }
      return chunks(model, response)
    }))

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
  Effect.map(HttpClient.HttpClient, (client) => make(endpoint, transformClient?.(client) ?? client))

const decodeChunkEither = Schema.decodeUnknownEither(ChatCompletion.ChatCompletionChunk)

/**
 * The first issues of a schema failure, one line each (`choices.0.message: Expected ...`),
 * sanitized. Formatting walks the value; it cannot overflow (values deeper than `maxJsonDepth`
 * never get here), and would it throw, a plain description is used instead.
 */
const formatSchemaError = (
  error: ParseResult.ParseError,
  secrets: ReadonlyArray<Redacted.Redacted<string>>
): string => {
  try {
    const issues = ParseResult.ArrayFormatter.formatErrorSync(error)
    const lines = issues.slice(0, 3).map((issue) => {
      const path = issue.path.length === 0 ? "the value" : issue.path.map(String).join(".")
      return issue._tag === "Missing" ? `${path} is missing` : `${path}: ${issue.message}`
    })
    const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : ""
    return Errors.sanitize(`${lines.join("; ")}${more}`, secrets)
  } catch {
    return "the value does not have the expected shape"
  }
}

/**
 * The chunks of an event stream's body, up to `[DONE]`; reading stops there, so the caller's scope
 * can abort the request. A body that ends before `[DONE]`, an event that is not JSON or not a
 * chunk, invalid UTF-8 and an event longer than `maxEventSize` fail with `ResponseDecodeError`; an
 * error object sent as an event (`{"error": {...}}`, or any `event: error`) fails with what
 * `onErrorEvent` maps it to.
 *
 * @internal
 */
export const decodeEventStream = (
  body: Stream.Stream<Uint8Array, LlmError.LlmError>,
  options: {
    readonly model: string
    readonly maxEventSize: number
    readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
    readonly onErrorEvent: (json: unknown) => Effect.Effect<LlmError.LlmError>
  }
): Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError> =>
  Stream.suspend(() => {
    const { model, secrets } = options
    const decodeFailure = (detail: string) =>
      new LlmError.ResponseDecodeError({ model, detail: Errors.sanitize(detail, secrets) })
    const reader = makeFrameReader(options.maxEventSize)
    // The frames of one network read, decoded in one synchronous pass (a read holds hundreds of
    // events; an effect per event cost more than the decoding): the chunks decoded, and what ended
    // the stream, if something in this read did. Nothing after the first frame that ends it counts.
    const decodeRead = (frames: ReadonlyArray<Frame>): {
      readonly chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>
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
            const parsed = parseJson(frame.data)
            if (Either.isLeft(parsed)) {
              return { chunks, end: Effect.succeed(decodeFailure(`an event's data ${parsed.left}`)) }
            }
            const json = parsed.right
            if (frame.event === "error" || Errors.isErrorEnvelope(json)) {
              return { chunks, end: options.onErrorEvent(json) }
            }
            const decoded = decodeChunkEither(json)
            if (Either.isLeft(decoded)) {
              return {
                chunks,
                end: Effect.sync(() =>
                  decodeFailure(`an event is not a chunk: ${formatSchemaError(decoded.left, secrets)}`)
                )
              }
            }
            if (decoded.right.choices.some((choice) => choice.finish_reason === "content_filter")) {
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
            chunks.push(decoded.right)
          }
        }
      }
      return { chunks, end: undefined }
    }
    const toChunks = (
      frames: ReadonlyArray<Frame>
    ): Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError> => {
      const { chunks, end } = decodeRead(frames)
      const decoded = Stream.fromIterable(chunks)
      return end === undefined || end === "Done" ? decoded : Stream.concat(decoded, Stream.fromEffect(Effect.flip(end)))
    }
    return body.pipe(
      Stream.map(reader.feed),
      Stream.concat(Stream.fromEffect(Effect.sync(reader.end))),
      // Stop pulling the body after the read that holds [DONE], the end, or a fault.
      Stream.takeUntil((frames) => frames.some((frame) => frame._tag !== "Data")),
      Stream.flatMap(toChunks)
    )
  })
