/**
 * The gateway's server: the routes, the request path of a chat completion (authenticate, read and
 * check the body, check the key's model and budget, run the virtual model's pattern, answer in
 * OpenAI's wire format), the generations of the configuration and their reloads, the status
 * history's clock, and the order of shutdown.
 *
 * @internal
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as Deployments from "@resilient-llm/core/Deployments"
import * as LlmError from "@resilient-llm/core/LlmError"
import * as Stores from "@resilient-llm/core/Stores"
import * as ByteSize from "effect/ByteSize"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FileSystem from "effect/FileSystem"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpEffect from "effect/http/HttpEffect"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import * as References from "effect/References"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import * as Http from "node:http"
import type * as Gateway from "../Gateway.js"
import * as GatewayConfig from "../GatewayConfig.js"
import * as Accounting from "./accounting.js"
import { locate } from "./config.js"
import * as Errors from "./errors.js"
import { History } from "./history.js"
import * as Keys from "./keys.js"
import * as Metrics from "./metrics.js"
import * as Runtime from "./runtime.js"
import * as StatusPage from "./statusPage.js"

/** @internal */
export interface StartFailure {
  readonly _tag: "StartFailure"
  readonly reason: "ReadFile" | "Listen" | "Store"
  readonly detail: string
}

const defaults = {
  host: "127.0.0.1",
  port: 8787,
  shutdownTimeout: Duration.seconds(30),
  maxBodyBytes: 4 * 1024 * 1024,
  historyInterval: Duration.seconds(10),
  historyPoints: 360,
  reloadInterval: Duration.seconds(1)
}

const logLevels: Record<NonNullable<GatewayConfig.Server["logLevel"]>, LogLevel.LogLevel> = {
  all: "All",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  error: "Error",
  none: "None"
}

const decodeRequest = Schema.decodeUnknownResult(ChatCompletion.ChatRequest)
const issueFormatter = SchemaIssue.makeFormatterStandardSchemaV1()

/** The first problem of a request body, in the words of OpenAI's validation errors. */
const requestProblem = (error: Schema.SchemaError): Errors.ApiError => {
  const [issue] = issueFormatter(error.issue).issues
  const path = (issue?.path ?? []).map((segment) =>
    typeof segment === "object" && segment !== null ? String(segment.key) : String(segment)
  )
  const param = path.length === 0 ? null : path.join(".")
  return Errors.invalidRequest(
    `Invalid request body${param === null ? "" : ` at ${param}`}: ${issue?.message ?? "not a chat completion request"}`,
    param
  )
}

// how often, while draining, keep-alive connections that have gone idle are closed
const IDLE_SWEEP = Duration.millis(50)

const encoder = new TextEncoder()
const cutError = new LlmError.ServerError({ model: "gateway", status: 503, detail: "the gateway is shutting down" })
const done = encoder.encode("data: [DONE]\n\n")
const event = (payload: unknown) => encoder.encode(`data: ${JSON.stringify(payload)}\n\n`)
// dollars to the tenth of a micro-dollar: enough for a one-token call at the cheapest prices
const costText = (usd: number): string => String(Math.round(usd * 1e10) / 1e10)

const issuesOf = (text: string, issue: Runtime.BuildIssue): ReadonlyArray<GatewayConfig.Issue> => {
  const located = locate(text, issue.path)
  return [{ ...located, message: issue.message }]
}

/** @internal */
export const make = (
  options: Gateway.Options
): Effect.Effect<
  Gateway.Service,
  GatewayConfig.GatewayConfigError | StartFailure,
  Scope.Scope | HttpClient.HttpClient | FileSystem.FileSystem
> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const httpClient = yield* HttpClient.HttpClient
    const source = options.path ?? "(text)"
    const readText: Effect.Effect<string, StartFailure> = options.path === undefined
      ? Effect.succeed(options.text ?? "")
      : fs.readFileString(options.path).pipe(
        Effect.mapError((error): StartFailure => ({ _tag: "StartFailure", reason: "ReadFile", detail: error.message }))
      )

    const text = yield* readText
    const config = yield* GatewayConfig.parse(text, { source })
    const server = config.server ?? {}
    const historyInterval = server.history?.interval ?? defaults.historyInterval
    const history = new History(server.history?.points ?? defaults.historyPoints)
    const stores = yield* Runtime.makeStores(config.redis).pipe(
      Effect.mapError((error) =>
        "_tag" in error
          ? { _tag: "StartFailure" as const, reason: "Store" as const, detail: error.detail }
          : new GatewayConfig.GatewayConfigError({ source, issues: issuesOf(text, error) })
      )
    )
    const health = Context.get(stores, Stores.Health)
    const shared = yield* Runtime.makeShared(history, httpClient, stores)
    const startedAt = yield* Clock.currentTimeMillis
    // the gateway's context: its metric registry, for updates made outside an effect
    const context = yield* Effect.context<never>()

    const buildGeneration = (id: number, config: GatewayConfig.Config, text: string) =>
      Runtime.build(shared, id, config, text).pipe(
        Effect.mapError((issue) => new GatewayConfig.GatewayConfigError({ source, issues: issuesOf(text, issue) }))
      )

    let current = yield* buildGeneration(1, config, text)
    let inFlight = 0
    // Registered before the server, so it runs after the server has drained: the generation
    // running at shutdown is closed once no request holds it.
    yield* Effect.addFinalizer(() => Effect.suspend(() => Scope.close(current.scope, Exit.void)))

    const release = (generation: Runtime.Generation) =>
      Effect.suspend(() => {
        generation.active--
        inFlight--
        Metrics.inFlight.updateUnsafe(inFlight, context)
        return generation.retired && generation.active === 0 ? Scope.close(generation.scope, Exit.void) : Effect.void
      })

    /** The generation now, held by the request's scope: a reload cannot close it under the request. */
    const acquire = Effect.acquireRelease(
      Effect.sync(() => {
        const generation = current
        generation.active++
        inFlight++
        Metrics.inFlight.updateUnsafe(inFlight, context)
        return generation
      }),
      release
    )

    const reloading = yield* Semaphore.make(1)
    const apply = (text: string): Effect.Effect<void, GatewayConfig.GatewayConfigError> =>
      reloading.withPermits(1)(Effect.gen(function*() {
        if (text === current.text) return
        const outcome = yield* Effect.exit(Effect.gen(function*() {
          const config = yield* GatewayConfig.parse(text, { source })
          return yield* buildGeneration(current.id + 1, config, text)
        }))
        if (Exit.isFailure(outcome)) {
          Metrics.reloadsWith({ result: "rejected" }).updateUnsafe(1, context)
          const error = Cause.findErrorOption(outcome.cause)
          if (error._tag === "Some") {
            yield* Effect.logError(
              `configuration not applied; generation ${current.id} keeps running\n${error.value.message}`
            )
          }
          return yield* Effect.failCause(outcome.cause)
        }
        const previous = current
        current = outcome.value
        previous.retired = true
        yield* Metric.update(Metrics.reloadsWith({ result: "applied" }), 1)
        yield* Effect.logInfo(`configuration applied: generation ${current.id}`).pipe(
          Effect.annotateLogs({ "gateway.generation": current.id })
        )
        const before = previous.config.server ?? {}
        const after = current.config.server ?? {}
        if (before.host !== after.host || before.port !== after.port) {
          yield* Effect.logWarning("server.host and server.port take effect at the next start")
        }
        if (JSON.stringify(previous.config.redis) !== JSON.stringify(current.config.redis)) {
          yield* Effect.logWarning("redis takes effect at the next start")
        }
        if (previous.active === 0) yield* Scope.close(previous.scope, Exit.void)
      }))

    const reload = options.path === undefined
      ? Effect.void
      : Effect.flatMap(
        readText.pipe(
          Effect.catch((error) =>
            Effect.andThen(Effect.logError(`cannot read ${source}: ${error.detail}`), Effect.succeed(current.text))
          )
        ),
        apply
      )

    // The status history's clock: one point per interval.
    yield* Effect.sleep(historyInterval).pipe(
      Effect.andThen(Clock.currentTimeMillis),
      Effect.map((now) => history.tick(now)),
      Effect.forever,
      Effect.forkScoped
    )

    // The file's watcher: a poll, which also sees the rename an editor's save often is.
    const reloadSetting = server.reload
    if (options.path !== undefined && reloadSetting !== false) {
      yield* reload.pipe(
        Effect.ignore,
        Effect.repeat(Schedule.spaced(reloadSetting?.interval ?? defaults.reloadInterval)),
        Effect.forkScoped
      )
    }

    // --- shutdown ----------------------------------------------------------------------------
    // Completed once `shutdownTimeout` has passed since shutdown began: the requests still running
    // then answer 503 in OpenAI's shape (a stream ends with an error event), their provider calls
    // are cancelled, and the server can finish closing.
    const cut = Deferred.makeUnsafe<void>()
    /** The fibers of the chat requests being handled (streams being sent are cut by `cut`). */
    const running = new Set<Fiber.Fiber<unknown, unknown>>()
    const cutResponse = Errors.toResponse(Errors.draining, { connection: "close" })
    let draining = false
    const shutdownTimeout = server.shutdownTimeout ?? defaults.shutdownTimeout
    const drainingHeaders = () => draining ? { connection: "close" } : undefined

    // --- the chat completion path ------------------------------------------------------------

    const clock = yield* Clock.Clock
    let requestCount = 0

    const recordRequest = (virtual: string, key: string, status: number, startedMs: number) => {
      const latency = clock.currentTimeMillisUnsafe() - startedMs
      Metrics.requestsWith({ model: virtual, key, status: String(status) }).updateUnsafe(1, context)
      Metrics.durationWith({ model: virtual }).updateUnsafe(latency, context)
      history.record(virtual, latency, status === 429 || status >= 500)
    }

    /** Once a request is over: what it spent, in the metrics and the status history, and in its key's budgets. */
    const settle = (
      virtual: string,
      key: string,
      admission: Accounting.Admission,
      tally: Accounting.Tally
    ): Effect.Effect<void> => {
      if (tally.priced > 0) {
        Metrics.costWith({ model: virtual, key }).updateUnsafe(tally.costUsd, context)
        history.addCost(virtual, tally.costUsd)
      }
      return Accounting.settle(admission, tally)
    }

    const refusal = (virtual: string, key: string, refused: Accounting.Refusal): Errors.ApiError =>
      refused._tag === "Throttled"
        ? Errors.virtualRateLimited(virtual, refused.error)
        : Errors.budgetExceeded(key, refused.kind, refused.limit, refused.resetsAt - clock.currentTimeMillisUnsafe())

    const costHeader = (tally: Accounting.Tally): Record<string, string> =>
      tally.priced > 0 ? { "x-resilient-llm-cost-usd": costText(tally.costUsd) } : {}

    const handleChat = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const started = clock.currentTimeMillisUnsafe()
      const generation = yield* acquire
      const requestId = `req_gw_${(++requestCount).toString(36)}`
      const baseHeaders = { "x-request-id": requestId }
      const fail = (error: Errors.ApiError, virtual = "", key = "") => {
        if (virtual !== "") recordRequest(virtual, key, error.status, started)
        return Effect.succeed(Errors.toResponse(error, baseHeaders))
      }

      // who is asking
      let key: Keys.Key | undefined
      const token = Keys.tokenOf(request.headers)
      if (generation.keys.size > 0 || generation.config.allowUnauthenticated !== true) {
        if (token === undefined || token === "") return yield* fail(Errors.missingKey)
        key = generation.keys.get(Keys.sha256(token))
        if (key === undefined) return yield* fail(Errors.wrongKey)
      }

      // what they ask
      const limit = generation.config.server?.maxBodyBytes ?? defaults.maxBodyBytes
      const body = yield* Effect.result(
        Effect.provideService(request.text, HttpIncomingMessage.MaxBodySize, ByteSize.fromInputUnsafe(limit))
      )
      if (Result.isFailure(body)) {
        const tooLarge = body.failure.reason._tag === "RequestParseError" &&
          body.failure.reason.reason === "BodyTooLarge"
        return yield* fail(tooLarge ? Errors.bodyTooLarge(limit) : Errors.invalidJson)
      }
      let json: unknown
      try {
        json = JSON.parse(body.success)
      } catch {
        return yield* fail(Errors.invalidJson)
      }
      const decoded = decodeRequest(json)
      if (Result.isFailure(decoded)) return yield* fail(requestProblem(decoded.failure))
      const { model: virtual, stream, ...prompt } = decoded.success
      if (stream !== undefined && stream !== null && typeof stream !== "boolean") {
        return yield* fail(Errors.invalidRequest("Invalid request body at stream: Expected a boolean", "stream"))
      }
      if (prompt.messages.length === 0) {
        return yield* fail(Errors.invalidRequest("messages must contain at least one message", "messages"))
      }
      const route = generation.routes.get(virtual)
      if (route === undefined || (key !== undefined && !Keys.allows(key, virtual))) {
        return yield* fail(Errors.modelNotFound(virtual))
      }
      const keyName = key?.name ?? ""

      // what they may spend
      let admission = Accounting.nothing
      if (Accounting.isAccounted(route, key)) {
        const admitted = yield* Effect.result(Accounting.admit(route, key, prompt))
        if (Result.isFailure(admitted)) {
          return yield* fail(refusal(virtual, keyName, admitted.failure), virtual, keyName)
        }
        admission = admitted.success
      }
      const tally = new Accounting.Tally(history)
      const caller: Runtime.Caller = { key: key?.name, user: prompt.user }
      const logLevel = logLevels[generation.config.server?.logLevel ?? "info"]

      if (stream !== true) {
        const answer = yield* route.complete(prompt, caller).pipe(
          Deployments.observeCalls(tally.observe),
          Effect.provideService(References.MinimumLogLevel, logLevel),
          Effect.result
        )
        yield* settle(virtual, keyName, admission, tally)
        if (Result.isFailure(answer)) {
          const error = Errors.fromFailure(virtual, answer.failure)
          recordRequest(virtual, keyName, error.status, started)
          return Errors.toResponse(error, { ...baseHeaders, ...costHeader(tally) })
        }
        const { completion, model } = answer.success
        const deployment = answer.success.deployment ?? tally.servedBy(model)
        recordRequest(virtual, keyName, 200, started)
        return HttpServerResponse.text(
          JSON.stringify({
            id: completion.id === "" ? `chatcmpl-${requestId}` : completion.id,
            object: "chat.completion",
            created: Math.floor(clock.currentTimeMillisUnsafe() / 1000),
            model,
            choices: completion.choices,
            ...(completion.usage == null
              ? {}
              : { usage: tally.priced > 0 ? { ...completion.usage, cost_usd: tally.costUsd } : completion.usage })
          }),
          {
            contentType: "application/json",
            headers: {
              ...baseHeaders,
              "x-resilient-llm-model": model,
              ...(deployment === undefined ? {} : { "x-resilient-llm-deployment": deployment }),
              "x-resilient-llm-attempts": String(answer.success.attempts),
              ...costHeader(tally)
            }
          }
        )
      }

      // What a stream spent is known from its usage: ask for it when a price, a budget or a rate
      // limit needs it, and keep its chunk from a client that did not.
      const clientWantsUsage = prompt.stream_options?.include_usage === true
      const upstream: ChatCompletion.PromptRequest =
        !clientWantsUsage && (route.priced || Accounting.isAccounted(route, key))
          ? { ...prompt, stream_options: { ...prompt.stream_options, include_usage: true } }
          : prompt
      const answer = yield* route.stream(upstream, caller).pipe(
        Deployments.observeCalls(tally.observe),
        Effect.provideService(References.MinimumLogLevel, logLevel),
        Effect.result
      )
      if (Result.isFailure(answer)) {
        yield* settle(virtual, keyName, admission, tally)
        return yield* fail(Errors.fromFailure(virtual, answer.failure), virtual, keyName)
      }
      const { model } = answer.success
      const deployment = answer.success.deployment ?? tally.servedBy(model)
      recordRequest(virtual, keyName, 200, started)
      const created = Math.floor(clock.currentTimeMillisUnsafe() / 1000)
      const id = `chatcmpl-${requestId}`
      const chunkEvent = (chunk: ChatCompletion.ChatCompletionChunk, usage: unknown) =>
        event({
          id: chunk.id === "" ? id : chunk.id,
          object: "chat.completion.chunk",
          created,
          model,
          choices: chunk.choices,
          ...(usage === undefined ? {} : { usage })
        })
      // The usage chunk comes last; it is held until the stream has ended, when its calls' cost is known.
      let usageChunk: ChatCompletion.ChatCompletionChunk | undefined
      const events = answer.success.stream.pipe(
        Stream.filter((chunk) => {
          if (chunk.usage == null || chunk.choices.length > 0) return true
          usageChunk = chunk
          return false
        }),
        Stream.map((chunk) => chunkEvent(chunk, chunk.usage == null || !clientWantsUsage ? undefined : chunk.usage)),
        Stream.concat(Stream.suspend(() => {
          const last = usageChunk
          if (last === undefined || !clientWantsUsage) return Stream.succeed(done)
          return Stream.make(
            chunkEvent(last, tally.priced > 0 ? { ...last.usage, cost_usd: tally.costUsd } : last.usage),
            done
          )
        })),
        Stream.interruptWhen(Effect.andThen(Deferred.await(cut), Effect.fail(cutError))),
        // Part of the answer has been sent with a 200: a failure now can only be an error event,
        // which the official SDKs raise as an APIError.
        Stream.catch((error) => Stream.succeed(event(Errors.body(Errors.fromFailure(virtual, error))))),
        Stream.ensuring(Effect.suspend(() => settle(virtual, keyName, admission, tally)))
      )
      return HttpEffect.scopeTransferToStream(HttpServerResponse.stream(events, {
        contentType: "text/event-stream; charset=utf-8",
        headers: {
          ...baseHeaders,
          "cache-control": "no-cache",
          "x-resilient-llm-model": model,
          ...(deployment === undefined ? {} : { "x-resilient-llm-deployment": deployment }),
          "x-resilient-llm-attempts": String(answer.success.attempts)
        }
      }))
    })

    // The route runs uninterruptible and the request's work interruptible inside it: interrupting
    // the request's fiber (the cut, or the client going away) ends the work, and the route still
    // answers, with the cut's 503. Cheaper than racing every request against the cut, which forks
    // two fibers per request.
    const chat = Effect.withFiber((fiber) => {
      running.add(fiber)
      return Effect.flatMap(Effect.exit(Effect.interruptible(handleChat)), (exit) => {
        running.delete(fiber)
        // a defect goes on to the app's handler, which logs it and answers 500
        if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) return Effect.failCause(exit.cause)
        const response = Exit.isSuccess(exit) ? exit.value : cutResponse
        const headers = drainingHeaders()
        return Effect.succeed(headers === undefined ? response : HttpServerResponse.setHeaders(response, headers))
      })
    })

    // --- the other routes --------------------------------------------------------------------

    const authorised = <E, R>(
      respond: (generation: Runtime.Generation, key: Keys.Key | undefined) => Effect.Effect<
        HttpServerResponse.HttpServerResponse,
        E,
        R
      >
    ) =>
      Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        const generation = current
        if (generation.keys.size === 0 && generation.config.allowUnauthenticated === true) {
          return respond(generation, undefined)
        }
        const token = Keys.tokenOf(request.headers)
        if (token === undefined || token === "") return Effect.succeed(Errors.toResponse(Errors.missingKey))
        const key = generation.keys.get(Keys.sha256(token))
        return key === undefined ? Effect.succeed(Errors.toResponse(Errors.wrongKey)) : respond(generation, key)
      })

    const modelObject = (id: string) => ({
      id,
      object: "model",
      created: Math.floor(startedAt / 1000),
      owned_by: "resilient-llm"
    })

    const listModels = authorised((generation, key) =>
      Effect.succeed(HttpServerResponse.jsonUnsafe({
        object: "list",
        data: [...generation.routes.keys()].filter((name) => key === undefined || Keys.allows(key, name)).map(
          modelObject
        )
      }))
    )

    const getModel = authorised((generation, key) =>
      Effect.map(HttpRouter.params, ({ model }) =>
        model !== undefined && generation.routes.has(model) && (key === undefined || Keys.allows(key, model))
          ? HttpServerResponse.jsonUnsafe(modelObject(model))
          : Errors.toResponse(Errors.modelNotFound(model ?? "")))
    )

    const statusOf: Effect.Effect<Gateway.Status> = Effect.gen(function*() {
      const generation = current
      const now = yield* Clock.currentTimeMillis
      // each router once, however many virtual models call its logical model
      const routers = new Map<string, ReadonlyArray<Gateway.DeploymentStatus>>()
      const deploymentsOf = (logical: string) =>
        Effect.gen(function*() {
          const known = routers.get(logical)
          if (known !== undefined) {
            return known
          }
          const router = generation.routers.get(logical)
          if (router === undefined) {
            return []
          }
          const circuits = router.breaker === undefined ? [] : yield* router.breaker.snapshot
          const deployments = (yield* router.snapshot).map((d): Gateway.DeploymentStatus => {
            const circuit = circuits.find((c) =>
              c.key === d.deployment
            )
            const series = Accounting.deploymentSeries(logical, d.deployment)
            return {
              name: d.deployment,
              provider: d.provider,
              providerModel: d.providerModel,
              weight: d.weight,
              priority: d.priority,
              circuit: router.breaker === undefined ? undefined : {
                state: d.circuit,
                since: circuit?.since ?? startedAt,
                openUntil: circuit?.openUntil
              },
              transitions: history.transitionsOf(`${logical}/${d.deployment}`),
              inFlight: d.inFlight,
              queued: d.queued,
              latencyMs: d.latencyMs,
              limits: d.limits,
              totals: history.totalsOf(series),
              points: history.pointsOf(series)
            }
          })
          routers.set(logical, deployments)
          return deployments
        })
      const models: Array<Gateway.ModelStatus> = []
      for (const route of generation.routes.values()) {
        const logical: Array<Gateway.LogicalModelStatus> = []
        for (const name of route.models) {
          const series = `${route.name}/${name}`
          const { errors, requests } = history.totalsOf(series)
          logical.push({
            name,
            strategy: generation.routers.get(name)?.config.models[name]?.strategy ?? "weighted",
            totals: { requests, errors },
            points: history.pointsOf(series),
            deployments: yield* deploymentsOf(name)
          })
        }
        models.push({
          name: route.name,
          pattern: route.pattern,
          description: route.description,
          totals: history.totalsOf(route.name),
          points: history.pointsOf(route.name),
          models: logical,
          experiment: route.experiment === undefined ? undefined : yield* route.experiment.summary
        })
      }
      return {
        generation: generation.id,
        startedAt,
        now,
        inFlight,
        historyIntervalMs: Duration.toMillis(historyInterval),
        historyPoints: history.points,
        models
      }
    })

    const statusEnabled = () => current.config.server?.statusPage !== false
    const notFound = (request: HttpServerRequest.HttpServerRequest) =>
      Errors.toResponse(Errors.unknownUrl(request.method, request.url))

    const routes = HttpRouter.addAll([
      HttpRouter.route("POST", "/v1/chat/completions", chat, { uninterruptible: true }),
      HttpRouter.route("POST", "/chat/completions", chat, { uninterruptible: true }),
      HttpRouter.route("GET", "/v1/models", listModels),
      HttpRouter.route("GET", "/v1/models/:model", getModel),
      HttpRouter.route("GET", "/health", (_request) =>
        Effect.gen(function*() {
          // the gateway serves with or without its store: an outage of Redis is shown, not failed
          const store = {
            kind: config.redis === undefined ? "memory" : "redis",
            available: yield* health.available,
            pendingWrites: yield* health.pendingWrites
          }
          return HttpServerResponse.jsonUnsafe({
            status: "ok",
            generation: current.id,
            models: current.routes.size,
            inFlight,
            store
          })
        })),
      HttpRouter.route("GET", "/metrics", (_request) =>
        Effect.map(
          PrometheusMetrics.format(),
          (text) => HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
        )),
      HttpRouter.route("GET", "/status", (request) =>
        statusEnabled()
          ? Effect.map(statusOf, (status) => HttpServerResponse.html(StatusPage.render(status)))
          : Effect.succeed(notFound(request))),
      HttpRouter.route("GET", "/status/data", (request) =>
        statusEnabled()
          ? Effect.map(statusOf, (status) => HttpServerResponse.jsonUnsafe(status))
          : Effect.succeed(notFound(request)))
    ])

    const app = (yield* HttpRouter.toHttpEffect(routes)).pipe(
      Effect.catchReason("HttpServerError", "RouteNotFound", (reason) => Effect.succeed(notFound(reason.request))),
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.failCause(cause)
          : Effect.andThen(
            Effect.logError("the gateway failed to handle a request", cause),
            Effect.succeed(Errors.toResponse(Errors.internal))
          )
      )
    )

    const host = options.host ?? server.host ?? defaults.host
    const nodeServer = Http.createServer({ keepAliveTimeout: 65_000 })
    const httpServer = yield* NodeHttpServer.make(() => nodeServer, {
      host,
      port: options.port ?? server.port ?? defaults.port,
      // our own cut comes first (see `cut`); this is the last resort
      gracefulShutdownTimeout: Duration.sum(shutdownTimeout, Duration.seconds(5))
    }).pipe(
      Effect.mapError((error): StartFailure => ({
        _tag: "StartFailure",
        reason: "Listen",
        detail: String(error.cause)
      }))
    )
    const address = nodeServer.address()
    const port = address !== null && typeof address === "object" ? address.port : 0
    yield* httpServer.serve(app)
    // Added after `serve`, so it runs first at shutdown, before the server's own close: idle
    // keep-alive connections are closed (now and as requests finish) so the drain waits for
    // requests, not sockets, and the cut is armed.
    // Both run on the gateway's `Clock`, detached from the scope that is closing, and stop when
    // the server has closed.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        draining = true
        const idle = yield* Effect.forkDetach(
          Effect.repeat(Effect.sync(() => nodeServer.closeIdleConnections()), Schedule.spaced(IDLE_SWEEP))
        )
        const cutter = yield* Effect.forkDetach(Effect.andThen(
          Effect.sleep(shutdownTimeout),
          Effect.sync(() => {
            Deferred.doneUnsafe(cut, Effect.void)
            for (const fiber of running) fiber.interruptUnsafe()
          })
        ))
        nodeServer.once("close", () => {
          idle.interruptUnsafe()
          cutter.interruptUnsafe()
        })
      })
    )
    yield* Effect.logInfo(`gateway listening on http://${host}:${port}`).pipe(
      Effect.annotateLogs({ "gateway.generation": current.id })
    )

    return {
      url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
      port,
      reload,
      apply,
      generation: Effect.sync(() => current.id),
      inFlight: Effect.sync(() => inFlight),
      status: statusOf
    }
  })
