/**
 * A real OpenAI-compatible HTTP server on `127.0.0.1` and an ephemeral port, whose models
 * misbehave on purpose: each model answers after a latency, and fails by a seeded random rate per
 * fault kind or by a script per call index. The faults are the ones production clients meet:
 * 5xx and 529, 429 with `retry-after` in every form, 401/403, `context_length_exceeded`, content
 * filter refusals, other 400s, a request that never answers, malformed JSON, valid JSON of the
 * wrong shape, an SSE stream cut short, a reset connection, and raw bytes of any size.
 *
 * It serves `POST /v1/chat/completions` (JSON, or SSE with `stream: true`) and `GET /v1/models`
 * well enough for the official `openai` SDK, records every chat request it receives (bounded),
 * counts its open sockets for leak tests, and stops, closing every connection, when its scope
 * closes. The same `seed` gives every model the same sequence of outcomes.
 *
 * Time: latency and chunk delays are `Effect.sleep` in the server's own fibers, which run with
 * the services of the fiber that started the server. Start it from a live runtime (`it.live`,
 * `NodeRuntime.runMain`); under `TestClock` its sleeps never end.
 *
 * @example
 * ```ts
 * import { FakeProvider } from "@resilient-llm/testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const fake = yield* FakeProvider.make({
 *     seed: 42,
 *     models: {
 *       "gpt-4o": {
 *         latency: { min: "20 millis", max: "80 millis" },
 *         faults: [
 *           { rate: 0.1, fault: FakeProvider.serverError(503) },
 *           { rate: 0.05, fault: FakeProvider.rateLimited({ retryAfter: { seconds: 1 } }) }
 *         ]
 *       },
 *       "claude-sonnet": { script: [FakeProvider.hang(), FakeProvider.reply("second call answers")] }
 *     }
 *   })
 *   // point any OpenAI-compatible client at fake.url ("http://127.0.0.1:<port>/v1")
 *   yield* fake.setModel("gpt-4o", { script: () => FakeProvider.serverError(503) }) // an outage starts
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import type * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as bodies from "./internal/fakeBodies.js"
import * as internal from "./internal/fakeServer.js"
import * as validation from "./internal/fakeValidation.js"

// ---------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------

/**
 * How long a model waits before it answers: a fixed duration, or a uniform draw between `min`
 * and `max` from the model's seeded generator.
 *
 * @since 0.1.0
 * @category models
 */
export type Latency =
  | Duration.Input
  | { readonly min: Duration.Input; readonly max: Duration.Input }

/**
 * The hint a 429 carries:
 *
 * - `{ seconds }`: `retry-after: <seconds>`;
 * - `{ date }`: `retry-after` as an HTTP date that far after the moment of the response;
 * - `{ millis }`: `retry-after-ms: <millis>`;
 * - `{ header, value }`: any header with any value, verbatim (`retry-after: NaN`, `-1`, ...).
 *
 * @since 0.1.0
 * @category models
 */
export type RetryAfter =
  | { readonly seconds: number }
  | { readonly date: Duration.Input }
  | { readonly millis: number }
  | { readonly header: string; readonly value: string }

/**
 * A raw response body: a string, bytes, or a stream of bytes written chunk by chunk with
 * backpressure (see {@link repeatBytes} and {@link nestedJson} for large bodies that are never
 * held in memory whole). A stream is run anew for every response that plays it.
 *
 * @since 0.1.0
 * @category models
 */
export type RawBody = string | Uint8Array | Stream.Stream<Uint8Array>

/**
 * Fields every outcome may carry: `latency` replaces the model's latency for this one call.
 *
 * @since 0.1.0
 * @category models
 */
export interface OutcomeOptions {
  readonly latency?: Latency
}

/**
 * A normal answer: `content` when given, else the model's `reply`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reply extends OutcomeOptions {
  readonly _tag: "Reply"
  readonly content: string | undefined
}

/**
 * A 5xx (or 529) with an OpenAI error body.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerError extends OutcomeOptions {
  readonly _tag: "ServerError"
  readonly status: number
  readonly message: string | undefined
  readonly headers: Readonly<Record<string, string>>
}

/**
 * A 429 `rate_limit_exceeded`, with the given `retry-after` hint or none.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimited extends OutcomeOptions {
  readonly _tag: "RateLimited"
  readonly retryAfter: RetryAfter | undefined
  readonly headers: Readonly<Record<string, string>>
}

/**
 * A 401 `invalid_api_key` or a 403.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthenticationError extends OutcomeOptions {
  readonly _tag: "AuthenticationError"
  readonly status: 401 | 403
}

/**
 * A 400 `context_length_exceeded`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ContextLengthExceeded extends OutcomeOptions {
  readonly _tag: "ContextLengthExceeded"
}

/**
 * A content policy refusal: as a 400 with code `content_filter` (`"error"`), or as a 200 whose
 * choice has `content: null` and `finish_reason: "content_filter"` (`"finish_reason"`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ContentFilter extends OutcomeOptions {
  readonly _tag: "ContentFilter"
  readonly mode: "error" | "finish_reason"
}

/**
 * Any other client error, as an OpenAI error body.
 *
 * @since 0.1.0
 * @category models
 */
export interface BadRequest extends OutcomeOptions {
  readonly _tag: "BadRequest"
  readonly status: number
  readonly type: string
  readonly code: string | null
  readonly param: string | null
  readonly message: string
}

/**
 * Never answer, until the client goes away or the server stops. On a streamed request with
 * `afterChunks`, the headers and that many SSE events are sent first.
 *
 * @since 0.1.0
 * @category models
 */
export interface Hang extends OutcomeOptions {
  readonly _tag: "Hang"
  readonly afterChunks: number | undefined
}

/**
 * A 200 whose body is not JSON (streamed: an event whose `data` is not JSON, then `[DONE]`).
 *
 * @since 0.1.0
 * @category models
 */
export interface MalformedJson extends OutcomeOptions {
  readonly _tag: "MalformedJson"
}

/**
 * A 200 with valid JSON that is not a completion: no `choices` (streamed: chunks without
 * `choices`, then `[DONE]`).
 *
 * @since 0.1.0
 * @category models
 */
export interface WrongShape extends OutcomeOptions {
  readonly _tag: "WrongShape"
}

/**
 * A stream that ends, cleanly at the HTTP level, after `afterChunks` SSE events and without
 * `[DONE]`; with `midEvent`, half of the next event is sent too. Without `stream: true`, the
 * JSON body is cut in half.
 *
 * @since 0.1.0
 * @category models
 */
export interface TruncatedStream extends OutcomeOptions {
  readonly _tag: "TruncatedStream"
  readonly afterChunks: number
  readonly midEvent: boolean
}

/**
 * The socket is reset (TCP RST): before any byte, or on a streamed request with `afterChunks`,
 * after the headers and that many SSE events.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResetConnection extends OutcomeOptions {
  readonly _tag: "ResetConnection"
  readonly afterChunks: number | undefined
}

/**
 * Exactly this status (a final one, 200 to 599), these headers and this body, whatever the
 * request asked for. `content-type` is `application/json` unless `headers` says otherwise.
 *
 * @since 0.1.0
 * @category models
 */
export interface Raw extends OutcomeOptions {
  readonly _tag: "Raw"
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: RawBody
}

/**
 * Every way a call can go wrong.
 *
 * @since 0.1.0
 * @category models
 */
export type Fault =
  | ServerError
  | RateLimited
  | AuthenticationError
  | ContextLengthExceeded
  | ContentFilter
  | BadRequest
  | Hang
  | MalformedJson
  | WrongShape
  | TruncatedStream
  | ResetConnection
  | Raw

/**
 * What one call plays: a reply or a fault.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = Reply | Fault

/**
 * A fault drawn at random with probability `rate` (between 0 and 1) on each call.
 *
 * @since 0.1.0
 * @category models
 */
export interface FaultRate {
  readonly rate: number
  readonly fault: Fault
}

/**
 * What a reply function learns about the call it answers.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallInfo {
  readonly model: string
  /** 0 for the first call to this model since it was configured. */
  readonly index: number
}

/**
 * How one model behaves. Every field is optional: `{}` is a model that answers at once with
 * `"Hello from <model>."`.
 *
 * - `latency`: waited before anything is sent, on every call (see {@link Latency}).
 * - `reply`: the answer's text, fixed or computed from the request.
 * - `chunkSize`: how a streamed answer is split: `"word"` (the default, whitespace kept with the
 *   word before it) or a number of characters.
 * - `chunkDelay`: the pause between two SSE events of a stream.
 * - `usage`: the token counts reported; by default prompt words and answer words; `false` leaves
 *   `usage` out of the response.
 * - `script`: outcomes by call index, played before any random fault: a list (call `i` plays
 *   `script[i]` while there is one), or a function (`undefined` lets the call go on to the random
 *   faults).
 * - `faults`: random faults, one draw per call from the model's seeded generator; the rates add up
 *   to at most 1, and the rest of the calls reply normally.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelBehaviour {
  readonly latency?: Latency
  readonly reply?: string | ((request: ChatCompletion.ChatRequest, call: CallInfo) => string)
  readonly chunkSize?: "word" | number
  readonly chunkDelay?: Duration.Input
  readonly usage?:
    | ChatCompletion.Usage
    | false
    | ((request: ChatCompletion.ChatRequest, reply: string) => ChatCompletion.Usage)
  readonly script?:
    | ReadonlyArray<Outcome>
    | ((index: number, request: ChatCompletion.ChatRequest) => Outcome | undefined)
  readonly faults?: ReadonlyArray<FaultRate>
}

/**
 * The server's configuration.
 *
 * - `models`: the models it serves, by name; any other model gets a 404 `model_not_found`.
 * - `seed`: seeds every model's generators (default 0): the same seed gives the same outcomes and
 *   latencies per model, call after call. Each model draws from its own generators (one for
 *   faults, one for latency), so one model's traffic never shifts another's sequence.
 * - `apiKey`: when set, a request without `Authorization: Bearer <apiKey>` gets a 401.
 * - `maxRecordedRequests`: how many of the latest requests `requests` keeps (default 1,000).
 * - `port`: default 0, an ephemeral port chosen by the system.
 * - `keepAliveTimeout`: how long an idle keep-alive connection stays open (Node's default, 5 s).
 *
 * @since 0.1.0
 * @category models
 */
export interface Config {
  readonly models: Readonly<Record<string, ModelBehaviour>>
  readonly seed?: number
  readonly apiKey?: string | Redacted.Redacted<string>
  readonly maxRecordedRequests?: number
  readonly port?: number
  readonly keepAliveTimeout?: Duration.Input
}

/**
 * One chat request as the server received it and what it did with it.
 *
 * - `seq`: its number among all requests since the server started (from 0);
 * - `callIndex`: its index among the calls to its model since the model was (re)configured;
 *   `undefined` when the request was rejected before reaching a model;
 * - `body`: the parsed JSON body (`undefined` when it was not JSON);
 * - `authorization`: the `Authorization` header exactly as received;
 * - `status`: the status line served, `undefined` when none was (a hang or a reset before the
 *   headers);
 * - `outcome`: the outcome played; `undefined` for a rejection, and for a call whose script, reply
 *   or usage function threw (or gave no valid outcome), which is served as a 500
 *   `fake_provider_error`;
 * - `rejection`: why the request was turned away before reaching a model, if it was.
 *
 * @since 0.1.0
 * @category models
 */
export interface Received {
  readonly seq: number
  readonly receivedAt: number
  readonly model: string | undefined
  readonly callIndex: number | undefined
  readonly stream: boolean
  readonly body: unknown
  readonly authorization: string | undefined
  readonly status: number | undefined
  readonly latency: Duration.Duration
  readonly outcome: Outcome | undefined
  readonly rejection: "unauthorized" | "invalid_request" | "model_not_found" | undefined
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

/**
 * The server could not start (`"Listen"`: the port could not be bound), or a configuration is
 * invalid (`"InvalidConfig"`: a rate outside [0, 1], rates adding up to more than 1, a latency
 * range upside down, an impossible status, a header Node would refuse).
 *
 * @since 0.1.0
 * @category errors
 */
export class FakeProviderError extends Data.TaggedError("FakeProviderError")<{
  readonly reason: "Listen" | "InvalidConfig"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return this.reason === "Listen"
      ? `FakeProvider could not listen: ${this.detail}`
      : `Invalid FakeProvider configuration: ${this.detail}`
  }
}

// ---------------------------------------------------------------------------------------------
// service
// ---------------------------------------------------------------------------------------------

/**
 * A running fake provider.
 *
 * - `url`: the base URL, `/v1` included (`http://127.0.0.1:<port>/v1`), as OpenAI clients take it;
 * - `openConnections`: sockets open right now (0 once every client has gone and no keep-alive
 *   connection is idle);
 * - `activeRequests`: requests whose handler or streamed body is still running (0 once every
 *   response is done or abandoned: a hang released when its client left is not active);
 * - `requests`, `requestsTo(model)`: the latest recorded chat requests, oldest first;
 * - `requestCount`: chat requests received since the server started, recorded or not;
 * - `clearRequests`: forgets the recorded requests;
 * - `setModel(name, behaviour)`: replaces a model's behaviour while the server runs (an outage
 *   starts or ends), adds a model, or with `undefined` removes it. The model's call index and
 *   generators start again from the beginning;
 * - `fetch`: the same server reached in-process, without a socket, for `FetchHttpClient`'s `Fetch`.
 *   Its handlers run in the context of the fiber that made the server, with its `Clock`: made
 *   inside `it.effect`, a fake reached this way plays its latencies on `TestClock`, and a whole
 *   program over HTTP runs in virtual time. The requests are recorded as usual (not counted in
 *   `openConnections`); a `resetConnection` breaks the body instead of the socket.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly url: string
  readonly port: number
  readonly openConnections: Effect.Effect<number>
  readonly activeRequests: Effect.Effect<number>
  readonly requests: Effect.Effect<ReadonlyArray<Received>>
  readonly requestsTo: (model: string) => Effect.Effect<ReadonlyArray<Received>>
  readonly requestCount: Effect.Effect<number>
  readonly clearRequests: Effect.Effect<void>
  readonly setModel: (name: string, behaviour: ModelBehaviour | undefined) => Effect.Effect<void, FakeProviderError>
  readonly fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>
}

/**
 * The service tag of a running fake, for programs that take it from context (`FakeProvider.layer`)
 * rather than from `make`; `requests`, `requestsTo` and `setModel` reach the one in context.
 *
 * @since 0.1.0
 * @category services
 */
export class FakeProvider extends Context.Service<FakeProvider, Service>()("@resilient-llm/testing/FakeProvider") {}

// ---------------------------------------------------------------------------------------------
// constructors: outcomes
// ---------------------------------------------------------------------------------------------

/**
 * A normal answer; `content` overrides the model's `reply` for this call.
 *
 * @since 0.1.0
 * @category constructors
 */
export const reply = (content?: string, options?: OutcomeOptions): Reply => ({
  _tag: "Reply",
  content,
  ...options
})

/**
 * A normal answer with the model's own `reply`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const ok: Reply = reply()

/**
 * A server error: 500 by default; 502, 503 and 529 are the usual others.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serverError = (
  status: 500 | 502 | 503 | 504 | 529 | (number & {}) = 500,
  options?: OutcomeOptions & {
    readonly message?: string
    readonly headers?: Readonly<Record<string, string>>
  }
): ServerError => ({
  _tag: "ServerError",
  status,
  ...options,
  message: options?.message,
  headers: options?.headers ?? {}
})

/**
 * A 429 with the given `retry-after` hint (none by default); `headers` adds more, such as both
 * `retry-after` and `retry-after-ms`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const rateLimited = (
  options?: OutcomeOptions & {
    readonly retryAfter?: RetryAfter
    readonly headers?: Readonly<Record<string, string>>
  }
): RateLimited => ({
  _tag: "RateLimited",
  ...options,
  retryAfter: options?.retryAfter,
  headers: options?.headers ?? {}
})

/**
 * A 401 (`invalid_api_key`, the default) or a 403.
 *
 * @since 0.1.0
 * @category constructors
 */
export const authenticationError = (status: 401 | 403 = 401, options?: OutcomeOptions): AuthenticationError => ({
  _tag: "AuthenticationError",
  status,
  ...options
})

/**
 * A 400 `context_length_exceeded`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const contextLengthExceeded = (options?: OutcomeOptions): ContextLengthExceeded => ({
  _tag: "ContextLengthExceeded",
  ...options
})

/**
 * A content policy refusal, as a 400 (`"error"`, the default) or as a 200 with
 * `finish_reason: "content_filter"`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const contentFilter = (
  mode: "error" | "finish_reason" = "error",
  options?: OutcomeOptions
): ContentFilter => ({ _tag: "ContentFilter", mode, ...options })

/**
 * Any other client error: status 400, type `invalid_request_error` and code `invalid_value`
 * unless told otherwise.
 *
 * @since 0.1.0
 * @category constructors
 */
export const badRequest = (
  options?: OutcomeOptions & {
    readonly status?: number
    readonly type?: string
    readonly code?: string | null
    readonly param?: string | null
    readonly message?: string
  }
): BadRequest => ({
  _tag: "BadRequest",
  ...options,
  status: options?.status ?? 400,
  type: options?.type ?? "invalid_request_error",
  code: options?.code === undefined ? "invalid_value" : options.code,
  param: options?.param ?? null,
  message: options?.message ?? "Invalid value in the request."
})

/**
 * Never answer (see {@link Hang}).
 *
 * @since 0.1.0
 * @category constructors
 */
export const hang = (options?: OutcomeOptions & { readonly afterChunks?: number }): Hang => ({
  _tag: "Hang",
  ...options,
  afterChunks: options?.afterChunks
})

/**
 * A 200 whose body is not JSON.
 *
 * @since 0.1.0
 * @category constructors
 */
export const malformedJson = (options?: OutcomeOptions): MalformedJson => ({ _tag: "MalformedJson", ...options })

/**
 * A 200 with valid JSON but no `choices`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const wrongShape = (options?: OutcomeOptions): WrongShape => ({ _tag: "WrongShape", ...options })

/**
 * A stream that stops without `[DONE]` after `afterChunks` events (default 2), optionally in
 * the middle of the next one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const truncatedStream = (
  options?: OutcomeOptions & { readonly afterChunks?: number; readonly midEvent?: boolean }
): TruncatedStream => ({
  _tag: "TruncatedStream",
  ...options,
  afterChunks: options?.afterChunks ?? 2,
  midEvent: options?.midEvent ?? false
})

/**
 * A reset connection, before anything is sent or after `afterChunks` events of a stream.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resetConnection = (
  options?: OutcomeOptions & { readonly afterChunks?: number }
): ResetConnection => ({
  _tag: "ResetConnection",
  ...options,
  afterChunks: options?.afterChunks
})

/**
 * Exactly this response.
 *
 * @example
 * ```ts
 * import { FakeProvider } from "@resilient-llm/testing"
 *
 * const oddRetryAfter = FakeProvider.raw({ status: 429, headers: { "retry-after": "NaN" }, body: "{}" })
 * const invalidUtf8 = FakeProvider.raw({ status: 200, body: new Uint8Array([0xff, 0xfe, 0xfd]) })
 * const twentyMegabytes = FakeProvider.raw({ status: 200, body: FakeProvider.repeatBytes(20 * 1024 * 1024) })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const raw = (
  options: OutcomeOptions & {
    readonly status: number
    readonly headers?: Readonly<Record<string, string>>
    readonly body: RawBody
  }
): Raw => ({
  _tag: "Raw",
  ...options,
  headers: options.headers ?? {}
})

/**
 * The same outcome with its own latency, in place of the model's.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withLatency = <O extends Outcome>(outcome: O, latency: Latency): O => ({ ...outcome, latency })

// ---------------------------------------------------------------------------------------------
// constructors: large bodies
// ---------------------------------------------------------------------------------------------

/**
 * Exactly `totalBytes` bytes of `pattern` repeated (default `"a"`), produced lazily in chunks of
 * `chunkBytes` (default 64 KiB): a 20 MB body costs one chunk of memory, and a client that stops
 * reading stops the production.
 *
 * @since 0.1.0
 * @category constructors
 */
export const repeatBytes: (
  totalBytes: number,
  pattern?: string | Uint8Array,
  chunkBytes?: number
) => Stream.Stream<Uint8Array> = bodies.repeatBytes

/**
 * `depth` nested JSON arrays (`[[[...]]]`), produced lazily: valid JSON that naive recursive
 * parsers cannot walk.
 *
 * @since 0.1.0
 * @category constructors
 */
export const nestedJson: (depth: number) => Stream.Stream<Uint8Array> = bodies.nestedJson

// ---------------------------------------------------------------------------------------------
// constructors: the server
// ---------------------------------------------------------------------------------------------

const invalid = (detail: string) => new FakeProviderError({ reason: "InvalidConfig", detail })

/**
 * Starts the server on `127.0.0.1`; it stops when the scope closes, closing every open
 * connection (a hanging request included).
 *
 * @example
 * ```ts
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { ChatClient, ChatCompletion } from "@resilient-llm/core"
 * import { OpenAiCompatible } from "@resilient-llm/openai"
 * import { FakeProvider } from "@resilient-llm/testing"
 * import { Effect, Layer } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const fake = yield* FakeProvider.make({
 *     models: { "gpt-4o": { script: [FakeProvider.rateLimited({ retryAfter: { seconds: 1 } }), FakeProvider.ok] } }
 *   })
 *   const client = OpenAiCompatible.layer({ baseUrl: fake.url }).pipe(Layer.provide(NodeHttpClient.layerUndici))
 *   const first = yield* Effect.flip(ChatClient.create(ChatCompletion.withModel(ChatCompletion.prompt("Hi"), "gpt-4o")))
 *   // first is a RateLimitError whose retryAfter is 1 second
 *   return first
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(
  function*(config: Config): Effect.fn.Return<Service, FakeProviderError, Scope.Scope> {
    const checked = validation.validateConfig(config)
    if (Result.isFailure(checked)) return yield* invalid(checked.failure)
    const server = yield* internal.make(checked.success).pipe(
      Effect.mapError((error) =>
        new FakeProviderError({
          reason: "Listen",
          detail: `127.0.0.1:${config.port ?? 0}: ${String(error.cause)}`,
          cause: error.cause
        })
      )
    )
    return {
      url: server.url,
      port: server.port,
      openConnections: server.openConnections,
      activeRequests: server.activeRequests,
      requests: server.requests,
      requestsTo: server.requestsTo,
      requestCount: server.requestCount,
      clearRequests: server.clearRequests,
      fetch: server.fetch,
      setModel: (name, behaviour) =>
        behaviour === undefined
          ? server.setModel(name, Option.none())
          : Result.match(validation.validateBehaviour(name, behaviour), {
            onFailure: (detail) => Effect.fail(invalid(detail)),
            onSuccess: (normalised) => server.setModel(name, Option.some(normalised))
          })
    }
  }
)

/**
 * Provides a running `FakeProvider` for the lifetime of the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: Config): Layer.Layer<FakeProvider, FakeProviderError> =>
  Layer.effect(FakeProvider, make(config))

// ---------------------------------------------------------------------------------------------
// accessors
// ---------------------------------------------------------------------------------------------

/**
 * The recorded chat requests of the `FakeProvider` in context, oldest first.
 *
 * @since 0.1.0
 * @category accessors
 */
export const requests: Effect.Effect<ReadonlyArray<Received>, never, FakeProvider> = FakeProvider.use((fake) =>
  fake.requests
)

/**
 * The recorded chat requests to one model.
 *
 * @since 0.1.0
 * @category accessors
 */
export const requestsTo = (model: string): Effect.Effect<ReadonlyArray<Received>, never, FakeProvider> =>
  FakeProvider.use((fake) => fake.requestsTo(model))

/**
 * Replaces, adds or (with `undefined`) removes a model of the `FakeProvider` in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const setModel = (
  name: string,
  behaviour: ModelBehaviour | undefined
): Effect.Effect<void, FakeProviderError, FakeProvider> => FakeProvider.use((fake) => fake.setModel(name, behaviour))
