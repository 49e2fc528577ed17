/**
 * The fake provider's HTTP server: a `node:http` server created here (so its sockets can be
 * counted and closed), served through Effect's `HttpRouter` on `NodeHttpServer`. Each chat
 * request is authorised, parsed, decided (see `fakeModels.ts`), recorded, delayed, then played.
 *
 * @internal
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Headers from "effect/http/Headers"
import * as HttpEffect from "effect/http/HttpEffect"
import * as HttpRouter from "effect/http/HttpRouter"
import type * as HttpServerError from "effect/http/HttpServerError"
import type * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Http from "node:http"
import type * as Net from "node:net"
import type * as FakeProvider from "../FakeProvider.js"
import * as ModelTable from "./fakeModels.js"
import type { NormalisedBehaviour, NormalisedConfig } from "./fakeValidation.js"
import * as Wire from "./fakeWire.js"
import * as RequestLog from "./requestLog.js"

/** @internal */
export interface Server {
  readonly url: string
  readonly port: number
  readonly openConnections: Effect.Effect<number>
  readonly activeRequests: Effect.Effect<number>
  readonly requests: Effect.Effect<ReadonlyArray<FakeProvider.Received>>
  readonly requestsTo: (model: string) => Effect.Effect<ReadonlyArray<FakeProvider.Received>>
  readonly requestCount: Effect.Effect<number>
  readonly clearRequests: Effect.Effect<void>
  readonly setModel: (name: string, behaviour: Option.Option<NormalisedBehaviour>) => Effect.Effect<void>
  readonly fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>
}

const encoder = new TextEncoder()

const decodeRequest = Schema.decodeUnknownResult(ChatCompletion.ChatRequest)

const requestIdHeader = (seq: number) => ({ "x-request-id": `req_fake_${seq}` })

const errorResponse = (
  fields: Wire.ErrorFields,
  headers: Readonly<Record<string, string>> = {}
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(Wire.errorBody(fields), {
    status: fields.status,
    contentType: "application/json",
    headers
  })

const jsonText = (body: string, headers: Readonly<Record<string, string>>, status = 200) =>
  HttpServerResponse.text(body, { status, contentType: "application/json", headers })

/** The status line an outcome serves, `undefined` when it sends none. */
const statusOf = (outcome: FakeProvider.Outcome, stream: boolean): number | undefined => {
  switch (outcome._tag) {
    case "Reply":
    case "MalformedJson":
    case "WrongShape":
    case "TruncatedStream":
      return 200
    case "ServerError":
    case "BadRequest":
    case "AuthenticationError":
    case "Raw":
      return outcome.status
    case "RateLimited":
      return 429
    case "ContextLengthExceeded":
      return 400
    case "ContentFilter":
      return outcome.mode === "error" ? 400 : 200
    case "Hang":
    case "ResetConnection":
      return stream && outcome.afterChunks !== undefined ? 200 : undefined
  }
}

/** The request's socket; none when the fake is reached in-process (`fetch`). */
const socketOf = (request: HttpServerRequest.HttpServerRequest): Net.Socket | undefined => {
  const source: unknown = request.source
  return source instanceof Http.IncomingMessage ? source.socket : undefined
}

/**
 * Resets the socket (RST) once the bytes already written have reached the kernel. In-process
 * there is no socket: the response dies instead, which its reader sees as a broken body.
 */
const resetSocket = (socket: Net.Socket | undefined): Effect.Effect<void> =>
  socket === undefined ? Effect.die(new Error("connection reset")) : Effect.callback<void>((resume) => {
    if (socket.destroyed) return resume(Effect.void)
    socket.write(new Uint8Array(0), () => {
      socket.resetAndDestroy()
      resume(Effect.void)
    })
  })

const rateLimitHeaders = (
  hint: FakeProvider.RetryAfter | undefined,
  now: number
): Readonly<Record<string, string>> => {
  if (hint === undefined) return {}
  if ("seconds" in hint) return { "retry-after": String(hint.seconds) }
  if ("millis" in hint) return { "retry-after-ms": String(hint.millis) }
  if ("date" in hint) {
    return { "retry-after": new Date(now + Duration.toMillis(Duration.fromInputUnsafe(hint.date))).toUTCString() }
  }
  return { [hint.header]: hint.value }
}

/** Runs a function the user gave the fake; a throw becomes a failure the server reports as a 500. */
const userFunction = <A>(what: string, f: () => A): Result.Result<A, string> => {
  try {
    return Result.succeed(f())
  } catch (error) {
    return Result.fail(`${what} threw: ${String(error)}`)
  }
}

const issues = SchemaIssue.makeFormatterStandardSchemaV1()

const pathKey = (segment: PropertyKey | { readonly key: PropertyKey }): string =>
  typeof segment === "object" ? String(segment.key) : String(segment)

const firstIssue = (error: Schema.SchemaError): string => {
  const [issue] = issues(error.issue).issues
  if (issue === undefined) return "Invalid request body."
  const path = issue.path ?? []
  return `Invalid request body: ${path.length > 0 ? `${path.map(pathKey).join(".")}: ` : ""}${issue.message}`
}

/** @internal */
export const make = Effect.fnUntraced(function*(
  config: NormalisedConfig
): Effect.fn.Return<Server, HttpServerError.ServeError, Scope.Scope> {
  const sockets = new Set<Net.Socket>()
  let active = 0
  const nodeServer = Http.createServer()
  nodeServer.on("connection", (socket) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
  })
  if (config.keepAliveTimeout !== undefined) {
    nodeServer.keepAliveTimeout = Duration.toMillis(config.keepAliveTimeout)
  }

  const server = yield* NodeHttpServer.make(() => nodeServer, {
    host: "127.0.0.1",
    port: config.port,
    // a soak opens a thousand connections at once: let them all queue
    backlog: 4096
  })
  const address = nodeServer.address()
  const port = typeof address === "object" && address !== null ? address.port : config.port
  const startedAt = Math.floor((yield* Clock.currentTimeMillis) / 1000)

  const log = yield* RequestLog.make<FakeProvider.Received>(config.maxRecordedRequests)
  const models = yield* ModelTable.make(config.seed, config.models)

  const enter = Effect.sync(() => {
    active++
  })
  const leave = Effect.sync(() => {
    active--
  })
  const trackedStream = <E>(body: Stream.Stream<Uint8Array, E>): Stream.Stream<Uint8Array, E> =>
    Stream.unwrap(Effect.as(Effect.acquireRelease(enter, () => leave), body))

  /** The SSE events, `chunkDelay` apart, then `tail`. */
  const sse = <E>(
    events: ReadonlyArray<string>,
    chunkDelay: Duration.Duration,
    tail: Stream.Stream<Uint8Array, E>
  ): Stream.Stream<Uint8Array, E> =>
    Stream.fromIterable(events).pipe(
      Stream.zipWithIndex,
      Stream.mapEffect(([event, i]) =>
        i === 0 || Duration.isZero(chunkDelay) ? Effect.succeed(event) : Effect.as(Effect.sleep(chunkDelay), event)
      ),
      Stream.map((event) => encoder.encode(event)),
      Stream.concat(tail),
      // one write per event, so that a client sees each event as it is sent
      Stream.rechunk(1)
    )

  const sseResponse = <E>(body: Stream.Stream<Uint8Array, E>, headers: Readonly<Record<string, string>>) =>
    HttpServerResponse.stream(trackedStream(body), {
      contentType: "text/event-stream; charset=utf-8",
      headers: { ...headers, "cache-control": "no-cache" }
    })

  const authorised = (authorization: string | undefined): Wire.ErrorFields | undefined => {
    if (config.apiKey === undefined) return undefined
    if (authorization === undefined) return Wire.missingApiKey
    return authorization === `Bearer ${Redacted.value(config.apiKey)}` ? undefined : Wire.authentication(401)
  }

  const authorizationOf = (request: HttpServerRequest.HttpServerRequest): string | undefined =>
    Option.getOrUndefined(Headers.get(request.headers, "authorization"))

  /**
   * The answer a call gives, with the reply and usage functions run once; a throw is a failure,
   * found before the call is recorded so that it is recorded as the 500 it is served as.
   */
  const answerOf = (
    seq: number,
    receivedAt: number,
    request: ChatCompletion.ChatRequest,
    decision: Extract<ModelTable.Decision, { _tag: "Play" }>
  ): Result.Result<Wire.Answer, string> => {
    const { behaviour, callIndex, outcome } = decision
    const content = outcome._tag === "Reply" && outcome.content !== undefined
      ? Result.succeed(outcome.content)
      : userFunction(
        `the reply function of model ${request.model}`,
        () => behaviour.reply(request, { model: request.model, index: callIndex })
      )
    return Result.flatMap(content, (text) => {
      const usageSetting = behaviour.usage
      const usage: Result.Result<ChatCompletion.Usage | undefined, string> = usageSetting === false
        ? Result.succeed(undefined)
        : usageSetting === undefined
        ? Result.succeed(Wire.defaultUsage(request, text))
        : typeof usageSetting === "function"
        ? userFunction(`the usage function of model ${request.model}`, () => usageSetting(request, text))
        : Result.succeed(usageSetting)
      const refused = outcome._tag === "ContentFilter" && outcome.mode === "finish_reason"
      return Result.map(usage, (usage): Wire.Answer => ({
        id: `chatcmpl-fake-${seq}`,
        created: Math.floor(receivedAt / 1000),
        model: request.model,
        content: refused ? null : text,
        finishReason: refused ? "content_filter" : "stop",
        usage
      }))
    })
  }

  interface Play {
    readonly seq: number
    readonly request: ChatCompletion.ChatRequest
    readonly stream: boolean
    readonly behaviour: NormalisedBehaviour
    readonly outcome: FakeProvider.Outcome
    readonly answer: Wire.Answer
    readonly socket: Net.Socket | undefined
  }

  const play = Effect.fnUntraced(function*(p: Play): Effect.fn.Return<HttpServerResponse.HttpServerResponse> {
    const { answer, behaviour, outcome, request, stream } = p
    const headers = requestIdHeader(p.seq)
    const includeUsage = request.stream_options?.include_usage === true
    const events = (): ReadonlyArray<string> => [
      ...Wire.chunks(
        answer,
        answer.content === null ? [] : Wire.pieces(answer.content, behaviour.chunkSize),
        includeUsage
      ).map((chunk) => Wire.event(JSON.stringify(chunk))),
      Wire.done
    ]
    const completionJson = () => JSON.stringify(Wire.completion(answer))
    const answered = () =>
      stream
        ? sseResponse(sse(events(), behaviour.chunkDelay, Stream.empty), headers)
        : jsonText(completionJson(), headers)

    switch (outcome._tag) {
      case "Reply":
        return answered()
      case "ContentFilter":
        // a `finish_reason` refusal is an answer whose content is null
        return outcome.mode === "error" ? errorResponse(Wire.contentFilter, headers) : answered()
      case "ServerError":
        return errorResponse(Wire.serverError(outcome.status, outcome.message), {
          ...outcome.headers,
          ...headers
        })
      case "RateLimited": {
        const now = yield* Clock.currentTimeMillis
        return errorResponse(Wire.rateLimited(request.model), {
          ...outcome.headers,
          ...rateLimitHeaders(outcome.retryAfter, now),
          ...headers
        })
      }
      case "AuthenticationError":
        return errorResponse(Wire.authentication(outcome.status), headers)
      case "ContextLengthExceeded":
        return errorResponse(Wire.contextLengthExceeded(Wire.defaultUsage(request, "").prompt_tokens), headers)
      case "BadRequest":
        return errorResponse(outcome, headers)
      case "MalformedJson":
        return stream
          ? sseResponse(
            sse(
              [Wire.event(Wire.malformed(JSON.stringify(Wire.chunks(answer, [], false)[0]))), Wire.done],
              Duration.zero,
              Stream.empty
            ),
            headers
          )
          : jsonText(Wire.malformed(completionJson()), headers)
      case "WrongShape":
        return stream
          ? sseResponse(
            sse([Wire.event(JSON.stringify(Wire.wrongShapeChunk(answer))), Wire.done], Duration.zero, Stream.empty),
            headers
          )
          : jsonText(JSON.stringify(Wire.wrongShape(answer)), headers)
      case "TruncatedStream": {
        if (!stream) {
          const json = completionJson()
          return jsonText(json.slice(0, Math.floor(json.length / 2)), headers)
        }
        const all = events()
        // never the last event: that is `[DONE]`
        const kept = all.slice(0, Math.min(outcome.afterChunks, all.length - 1))
        const next = all[kept.length]
        const partial = outcome.midEvent ? [next.slice(0, Math.ceil(next.length / 2))] : []
        return sseResponse(sse([...kept, ...partial], behaviour.chunkDelay, Stream.empty), headers)
      }
      case "Hang":
        if (stream && outcome.afterChunks !== undefined) {
          const kept = events().slice(0, outcome.afterChunks)
          return sseResponse(sse(kept, behaviour.chunkDelay, Stream.never), headers)
        }
        return yield* Effect.never
      case "ResetConnection":
        if (stream && outcome.afterChunks !== undefined) {
          const kept = events().slice(0, outcome.afterChunks)
          const reset = Stream.fromEffectDrain(resetSocket(p.socket))
          return sseResponse(sse(kept, behaviour.chunkDelay, Stream.concat(reset, Stream.never)), headers)
        }
        yield* resetSocket(p.socket)
        return yield* Effect.never
      case "Raw": {
        const rawHeaders = { "content-type": "application/json", ...outcome.headers }
        const body = outcome.body
        return typeof body === "string"
          ? HttpServerResponse.text(body, { status: outcome.status, headers: rawHeaders })
          : body instanceof Uint8Array
          ? HttpServerResponse.uint8Array(body, { status: outcome.status, headers: rawHeaders })
          : HttpServerResponse.stream(trackedStream(Stream.rechunk(body, 1)), {
            status: outcome.status,
            headers: rawHeaders
          })
      }
    }
  })

  const chatCompletions = Effect.fnUntraced(function*(
    request: HttpServerRequest.HttpServerRequest
  ): Effect.fn.Return<HttpServerResponse.HttpServerResponse> {
    const seq = yield* log.next
    const receivedAt = yield* Clock.currentTimeMillis
    const authorization = authorizationOf(request)
    const parsed = yield* Effect.result(request.json)
    const body = Result.getOrUndefined(parsed)
    const stream = Predicate.hasProperty(body, "stream") && body.stream === true
    const modelName = Predicate.hasProperty(body, "model") && Predicate.isString(body.model) ? body.model : undefined
    const headers = requestIdHeader(seq)
    const record = (
      fields: Pick<FakeProvider.Received, "callIndex" | "status" | "latency" | "outcome" | "rejection">
    ) => log.record({ seq, receivedAt, model: modelName, stream, body, authorization, ...fields })
    const reject = (rejection: NonNullable<FakeProvider.Received["rejection"]>, fields: Wire.ErrorFields) =>
      Effect.as(
        record({
          callIndex: undefined,
          status: fields.status,
          latency: Duration.zero,
          outcome: undefined,
          rejection
        }),
        errorResponse(fields, headers)
      )
    /** A script, reply or usage function of the test's own that threw or gave no outcome: a 500. */
    const fakeFailure = (callIndex: number, detail: string) =>
      Effect.as(
        record({ callIndex, status: 500, latency: Duration.zero, outcome: undefined, rejection: undefined }),
        errorResponse(Wire.fakeFailure(detail), headers)
      )

    const unauthorised = authorised(authorization)
    if (unauthorised !== undefined) return yield* reject("unauthorized", unauthorised)
    if (Result.isFailure(parsed)) return yield* reject("invalid_request", Wire.invalidJson)
    const decoded = decodeRequest(body)
    if (Result.isFailure(decoded)) {
      return yield* reject("invalid_request", Wire.invalidRequest(firstIssue(decoded.failure)))
    }
    const chatRequest = decoded.success

    const decision = yield* models.decide(chatRequest)
    switch (decision._tag) {
      case "UnknownModel":
        return yield* reject("model_not_found", Wire.modelNotFound(chatRequest.model))
      case "Invalid":
        return yield* fakeFailure(decision.callIndex, decision.detail)
      case "Play": {
        const answer = answerOf(seq, receivedAt, chatRequest, decision)
        if (Result.isFailure(answer)) return yield* fakeFailure(decision.callIndex, answer.failure)
        yield* record({
          callIndex: decision.callIndex,
          status: statusOf(decision.outcome, stream),
          latency: decision.latency,
          outcome: decision.outcome,
          rejection: undefined
        })
        if (!Duration.isZero(decision.latency)) yield* Effect.sleep(decision.latency)
        return yield* play({
          seq,
          request: chatRequest,
          stream,
          behaviour: decision.behaviour,
          outcome: decision.outcome,
          answer: answer.success,
          socket: socketOf(request)
        })
      }
    }
  })

  const guarded = <E, R>(
    handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ) =>
  (request: HttpServerRequest.HttpServerRequest) => {
    const unauthorised = authorised(authorizationOf(request))
    return unauthorised === undefined ? handler : Effect.succeed(errorResponse(unauthorised))
  }

  const listModels = guarded(Effect.map(models.names, (names) =>
    HttpServerResponse.jsonUnsafe({
      object: "list",
      data: names.map((id) => Wire.modelObject(id, startedAt))
    })))

  const getModel = guarded(Effect.gen(function*() {
    const { model } = yield* HttpRouter.params
    const names = yield* models.names
    return model !== undefined && names.includes(model)
      ? HttpServerResponse.jsonUnsafe(Wire.modelObject(model, startedAt))
      : errorResponse(Wire.modelNotFound(model ?? ""))
  }))

  // Effect 4 starts a request's fiber uninterruptible and only a route makes it interruptible
  // again: served through the router, a hang ends as soon as its client leaves.
  const routes = HttpRouter.addAll([
    HttpRouter.route(
      "POST",
      "/v1/chat/completions",
      (request) => Effect.acquireUseRelease(enter, () => chatCompletions(request), () => leave)
    ),
    HttpRouter.route("GET", "/v1/models", listModels),
    HttpRouter.route("GET", "/v1/models/:model", getModel)
  ])
  const app = (yield* HttpRouter.toHttpEffect(routes)).pipe(
    Effect.catchReason(
      "HttpServerError",
      "RouteNotFound",
      (notFound) => Effect.succeed(errorResponse(Wire.invalidUrl(notFound.request.method, notFound.request.url)))
    )
  )
  yield* server.serve(app)
  // The same app reached without a socket, in the fibers' own context: their `Clock` is the
  // context's, so a fake played in-process runs on a test's `TestClock`.
  const inProcess = HttpEffect.toWebHandlerWith<never, HttpServerRequest.HttpServerRequest | Scope.Scope>(
    yield* Effect.context<never>()
  )(app)

  // Added after `serve`, so it runs before the server's own finalizers, which would otherwise
  // wait (up to a 20 s graceful shutdown) for every keep-alive or hanging connection to end by
  // itself.
  yield* Effect.addFinalizer(() =>
    Effect.andThen(
      Effect.callback<void>((resume) => {
        nodeServer.close(() => resume(Effect.void))
        for (const socket of sockets) socket.destroy()
        nodeServer.closeAllConnections()
      }),
      // a destroyed socket emits "close" a little later: wait for it, so that `openConnections`
      // reads 0 as soon as the scope is closed
      Effect.forEach([...sockets], (socket) =>
        Effect.callback<void>((resume) => {
          if (!sockets.has(socket)) return resume(Effect.void)
          socket.once("close", () => resume(Effect.void))
        }), { discard: true })
    )
  )

  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    openConnections: Effect.sync(() => sockets.size),
    activeRequests: Effect.sync(() => active),
    requests: log.entries,
    requestsTo: (model) => Effect.map(log.entries, (entries) => entries.filter((entry) => entry.model === model)),
    requestCount: log.count,
    clearRequests: log.clear,
    setModel: models.set,
    fetch: (input, init) => inProcess(input instanceof Request ? input : new Request(input, init))
  }
})
