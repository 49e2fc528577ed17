/**
 * A configuration made runnable: one generation of the gateway. Providers become `ChatClient`s
 * (through `Providers`, or a `FakeProvider` the gateway starts); each logical model becomes a
 * `Deployments` router of its own over them (routing strategy, rate limits, bulkheads, a circuit
 * per deployment, prices); every virtual model becomes a route that runs its pattern over the
 * routers, with its options and its rate limit; every gateway key gets its budgets. What holds
 * state (provider clients and fake servers, routers, experiments) is a component shared between
 * generations through reference-counted maps: a reload that leaves a component's configuration as
 * it was keeps it (an open circuit stays open, an experiment keeps its data), and a component
 * nothing uses any more is closed once the last generation using it has drained. Rate limits and
 * budgets live in stores that outlive every generation, so a reload never hands out fresh room.
 *
 * @internal
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import * as BestOfN from "@resilient-llm/core/BestOfN"
import * as Budget from "@resilient-llm/core/Budget"
import * as ChatClient from "@resilient-llm/core/ChatClient"
import type * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as CircuitBreaker from "@resilient-llm/core/CircuitBreaker"
import type * as Cost from "@resilient-llm/core/Cost"
import * as Deployments from "@resilient-llm/core/Deployments"
import * as Experiment from "@resilient-llm/core/Experiment"
import * as Fallback from "@resilient-llm/core/Fallback"
import * as Judge from "@resilient-llm/core/Judge"
import * as LlmError from "@resilient-llm/core/LlmError"
import * as RateLimit from "@resilient-llm/core/RateLimit"
import * as Retry from "@resilient-llm/core/Retry"
import * as CoreStores from "@resilient-llm/core/Stores"
import * as Providers from "@resilient-llm/openai/Providers"
import * as FakeProvider from "@resilient-llm/testing/FakeProvider"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Hash from "effect/Hash"
import * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import type * as RateLimiter from "effect/persistence/RateLimiter"
import * as RcMap from "effect/RcMap"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as GatewayConfig from "../GatewayConfig.js"
import * as ConfigInternal from "./config.js"
import type * as Errors from "./errors.js"
import type { History } from "./history.js"
import * as Keys from "./keys.js"

/** A mistake found while building: the field it is about, and what is wrong. */
export interface BuildIssue {
  readonly path: ReadonlyArray<PropertyKey>
  readonly message: string
}

/** Who is asking: the gateway key's name and the request's `user`, for sticky experiments. */
export interface Caller {
  readonly key: string | undefined
  readonly user: string | undefined
}

/**
 * A served answer: the completion, the logical model and (when the pattern reports it) the
 * deployment that served it, how many attempts it took.
 */
export interface Answer {
  readonly completion: ChatCompletion.ChatCompletion
  readonly model: string
  readonly deployment: string | undefined
  readonly attempts: number
}

/** A served stream, known once its first chunk has arrived. */
export interface StreamAnswer {
  readonly stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError>
  readonly model: string
  readonly deployment: string | undefined
  readonly attempts: number
  /** Whether the stream is real, or a whole answer sent as chunks (best-of-n). */
  readonly incremental: boolean
}

/** A virtual model's own rate limit. */
export interface RouteLimit {
  readonly limiter: RateLimit.Limiter
  readonly maxWait: Duration.Duration
}

/** A virtual model, ready to serve. */
export interface Route {
  readonly name: string
  readonly pattern: "fallback" | "experiment" | "best-of-n"
  readonly description: string | undefined
  /** The logical models it calls, in the configuration's order, each once. */
  readonly models: ReadonlyArray<string>
  readonly experiment: Experiment.Experiment | undefined
  /** The prices of every deployment it can reach: a request's cost is estimated at the dearest. */
  readonly prices: ReadonlyArray<Cost.Price>
  /** How many calls a request makes at least: 1, or best-of-n's candidates and their judging. */
  readonly calls: number
  readonly limit: RouteLimit | undefined
  /** Whether a deployment it can reach has a price: its streams then ask for their usage. */
  readonly priced: boolean
  readonly complete: (request: ChatCompletion.PromptRequest, caller: Caller) => Effect.Effect<
    Answer,
    Errors.PatternFailure
  >
  readonly stream: (request: ChatCompletion.PromptRequest, caller: Caller) => Effect.Effect<
    StreamAnswer,
    Errors.PatternFailure,
    Scope.Scope
  >
}

/** One configuration, running. */
export interface Generation {
  readonly id: number
  readonly config: GatewayConfig.Config
  readonly text: string
  readonly routes: ReadonlyMap<string, Route>
  /** The router of each logical model. */
  readonly routers: ReadonlyMap<string, Deployments.Service>
  /** Gateway keys by the SHA-256 of their text. */
  readonly keys: ReadonlyMap<string, Keys.Key>
  readonly scope: Scope.Closeable
  /** Requests holding this generation. */
  active: number
  /** Replaced by a newer one: closed when its last request ends. */
  retired: boolean
}

/**
 * A stateful part of a generation, identified by its configuration: two keys with the same `id`
 * are the same component, so a new generation gets the one an older generation already holds.
 */
class ComponentKey<A> implements Equal.Equal {
  constructor(
    readonly id: string,
    readonly build: Effect.Effect<A, BuildIssue, Scope.Scope>
  ) {}
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof ComponentKey && that.id === this.id
  }
  [Hash.symbol](): number {
    return Hash.string(this.id)
  }
}

type Components<A> = RcMap.RcMap<ComponentKey<A>, A, BuildIssue>

/**
 * What the routers keep their limits, adaptive state and budgets in, for the gateway's whole life:
 * memory, or Redis shared with the other instances (which also holds the circuits and the
 * experiments' outcomes, through the references `Stores.layerRedis` sets).
 */
export type Stores = RateLimiter.RateLimiter | RateLimit.AdaptiveStore | Budget.BudgetStore | CoreStores.Health

/** Redis could not be reached at start. */
export interface StoreUnreachable {
  readonly _tag: "StoreUnreachable"
  readonly detail: string
}

/** The stores of a configuration's `redis` entry (read at start only), or memory without one. */
export const makeStores = (
  redis: GatewayConfig.RedisStore | undefined
): Effect.Effect<Context.Context<Stores>, BuildIssue | StoreUnreachable, Scope.Scope> => {
  if (redis === undefined) return Layer.build(CoreStores.layerMemory)
  return Effect.gen(function*() {
    const url = redis.urlEnv === undefined
      ? redis.url ?? ""
      : Redacted.value(yield* envRedacted(redis.urlEnv, ["redis", "urlEnv"]))
    const password = URL.canParse(url) ? decodeURIComponent(new URL(url).password) : ""
    const scrub = (text: string) => password === "" ? text : text.split(password).join("***")
    const options: CoreStores.RedisOptions = {
      prefix: redis.prefix,
      ...(redis.timeout === undefined ? {} : { timeout: redis.timeout }),
      ...(redis.retryAfter === undefined ? {} : { retryAfter: redis.retryAfter }),
      ...(redis.expireAfterIdle === undefined ? {} : { expireAfterIdle: redis.expireAfterIdle }),
      ...(redis.maxPendingWrites === undefined ? {} : { maxPendingWrites: redis.maxPendingWrites })
    }
    return yield* Layer.build(
      CoreStores.layerRedis(options).pipe(Layer.provide(NodeRedis.layer({ url, disableOfflineQueue: true })))
    ).pipe(
      Effect.catchTags({
        StoreConfigError: (error) => Effect.fail<BuildIssue>({ path: ["redis"], message: error.reason }),
        RedisError: (error) =>
          Effect.fail<StoreUnreachable>({
            _tag: "StoreUnreachable",
            detail: scrub(
              `cannot reach Redis at ${CoreStores.redactUrl(url)}: ${
                error.cause instanceof Error ? error.cause.message : String(error.cause)
              }`
            )
          })
      })
    )
  })
}

/** The long-lived parts every generation shares. */
export interface Shared {
  readonly clients: Components<ChatClient.Service>
  readonly routers: Components<Deployments.Service>
  readonly experiments: Components<Experiment.Experiment>
  readonly stores: Context.Context<Stores>
  readonly history: History
  readonly httpClient: HttpClient.HttpClient
}

const lookup = <A>(key: ComponentKey<A>) => key.build

/** @internal */
export const makeShared = (
  history: History,
  httpClient: HttpClient.HttpClient,
  stores: Context.Context<Stores>
): Effect.Effect<Shared, never, Scope.Scope> =>
  Effect.gen(function*() {
    return {
      clients: yield* RcMap.make({ lookup: lookup<ChatClient.Service> }),
      routers: yield* RcMap.make({ lookup: lookup<Deployments.Service> }),
      experiments: yield* RcMap.make({ lookup: lookup<Experiment.Experiment> }),
      stores,
      history,
      httpClient
    }
  })

const stableJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => Duration.isDuration(v) ? `${Duration.toMillis(v)}ms` : v)

const envRedacted = (name: string, path: ReadonlyArray<PropertyKey>) =>
  Config.Redacted(name).pipe(
    Effect.mapError((): BuildIssue => ({ path, message: `the environment variable ${name} is not set` }))
  )

const fakeBehaviour = (model: GatewayConfig.FakeModel): FakeProvider.ModelBehaviour => {
  const faults: Array<FakeProvider.FaultRate> = []
  const rates = model.faults ?? {}
  if (rates.serverError !== undefined) faults.push({ rate: rates.serverError, fault: FakeProvider.serverError(503) })
  if (rates.rateLimited !== undefined) {
    faults.push({ rate: rates.rateLimited, fault: FakeProvider.rateLimited({ retryAfter: { seconds: 1 } }) })
  }
  if (rates.hang !== undefined) faults.push({ rate: rates.hang, fault: FakeProvider.hang() })
  if (rates.malformed !== undefined) faults.push({ rate: rates.malformed, fault: FakeProvider.malformedJson() })
  const latency = model.latency
  return {
    ...(model.reply === undefined ? {} : { reply: model.reply }),
    ...(latency === undefined
      ? {}
      : { latency: Duration.isDuration(latency) ? latency : { min: latency.min, max: latency.max } }),
    ...(model.chunkDelay === undefined ? {} : { chunkDelay: model.chunkDelay }),
    ...(faults.length === 0 ? {} : { faults })
  }
}

/** A provider's client: the `Providers.clients` client of its endpoint, or of a `FakeProvider` started here. */
const providerClient = (
  shared: Shared,
  name: string,
  provider: GatewayConfig.Provider
): ComponentKey<ChatClient.Service> =>
  new ComponentKey(
    `provider:${name}:${stableJson(provider)}`,
    Effect.gen(function*() {
      const at = ["providers", name]
      const endpoint = provider.fake !== undefined
        ? yield* Effect.map(
          FakeProvider.make({
            seed: provider.fake.seed ?? 0,
            models: Object.fromEntries(
              Object.entries(provider.fake.models).map(([model, behaviour]) => [model, fakeBehaviour(behaviour)])
            )
          }).pipe(Effect.mapError((error): BuildIssue => ({ path: [...at, "fake"], message: error.message }))),
          (fake) => ({ baseUrl: fake.url })
        )
        : yield* Effect.gen(function*() {
          const apiKey = provider.apiKeyEnv === undefined
            ? undefined
            : yield* envRedacted(provider.apiKeyEnv, [...at, "apiKeyEnv"])
          const headers: Record<string, string | Redacted.Redacted<string>> = { ...provider.headers }
          for (const [header, variable] of Object.entries(provider.secretHeadersEnv ?? {})) {
            headers[header] = yield* envRedacted(variable, [...at, "secretHeadersEnv", header])
          }
          return {
            baseUrl: provider.baseUrl ?? "",
            ...(apiKey === undefined ? {} : { apiKey }),
            headers,
            ...(provider.maxResponseBytes === undefined ? {} : { maxResponseBytes: provider.maxResponseBytes })
          }
        })
      // the endpoint's own client, as deployments call it: no routing by model name on the way
      const clients = yield* Layer.build(Providers.clients([{ name, ...endpoint }])).pipe(
        Effect.provideService(HttpClient.HttpClient, shared.httpClient),
        Effect.mapError((error): BuildIssue => ({ path: at, message: error.reason }))
      )
      const client = Context.get(clients, Deployments.ProviderClients).get(name)
      return client === undefined
        ? yield* Effect.fail<BuildIssue>({ path: at, message: "the provider's client could not be built" })
        : client
    })
  )

/** A duration as the library's configuration text. */
const durationText = (duration: Duration.Duration): string => `${Duration.toMillis(duration)} millis`

/** A deployment of the file as the library's `Deployments.Deployment`. */
const coreDeployment = (resolved: ConfigInternal.ResolvedDeployment): Deployments.Deployment => {
  const d = resolved.deployment
  const adaptive = d.adaptive
  return {
    name: resolved.name,
    provider: d.provider,
    model: resolved.model,
    ...(d.weight === undefined ? {} : { weight: d.weight }),
    ...(d.priority === undefined ? {} : { priority: d.priority }),
    ...(d.rpm === undefined ? {} : { rpm: d.rpm }),
    ...(d.tpm === undefined ? {} : { tpm: d.tpm }),
    ...(adaptive === undefined ? {} : {
      adaptive: adaptive === false ? false : {
        ...(adaptive.decrease === undefined ? {} : { decrease: adaptive.decrease }),
        ...(adaptive.increase === undefined ? {} : { increase: adaptive.increase }),
        ...(adaptive.floor === undefined ? {} : { floor: adaptive.floor }),
        ...(adaptive.cooldown === undefined ? {} : { cooldown: durationText(adaptive.cooldown) })
      }
    }),
    ...(d.maxConcurrent === undefined ? {} : { maxConcurrent: d.maxConcurrent }),
    ...(d.maxQueued === undefined ? {} : { maxQueued: d.maxQueued }),
    ...(d.timeout === undefined ? {} : { timeout: durationText(d.timeout) }),
    ...(d.price === undefined ? {} : { price: d.price })
  }
}

/** A logical model of the file as the library's `Deployments.Model`. */
const coreModel = (logical: ConfigInternal.Logical): Deployments.Model => ({
  ...(logical.options.strategy === undefined ? {} : { strategy: logical.options.strategy }),
  ...(logical.options.maxWait === undefined ? {} : { maxWait: durationText(logical.options.maxWait) }),
  ...(logical.options.failover === undefined ? {} : { failover: logical.options.failover }),
  deployments: logical.deployments.map(coreDeployment)
})

/**
 * A logical model's router: `Deployments` over the clients of the providers its deployments name,
 * with a circuit per deployment whose transitions go to the status history. Its identity is its
 * configuration and its providers': a reload that changes neither keeps its circuits, bulkheads
 * and moving latencies.
 */
const routerComponent = (
  shared: Shared,
  config: GatewayConfig.Config,
  logical: ConfigInternal.Logical
): ComponentKey<Deployments.Service> => {
  const providers = [...new Set(logical.deployments.map((d) => d.deployment.provider))]
  const providerKeys = providers.map((name) => providerClient(shared, name, config.providers[name]))
  const model = coreModel(logical)
  const breaker = logical.breaker
  return new ComponentKey(
    `router:${logical.name}:${stableJson({ model, breaker })}:${providerKeys.map((key) => key.id).join("\u0000")}`,
    Effect.gen(function*() {
      const clients = new Map<string, ChatClient.Service>()
      for (const [index, key] of providerKeys.entries()) {
        clients.set(providers[index], yield* RcMap.get(shared.clients, key))
      }
      const router = yield* Deployments.make(
        { models: { [logical.name]: model } },
        breaker === undefined ? {} : { breaker: breaker === false ? false : breakerOptions(breaker) }
      ).pipe(
        Effect.provideService(Deployments.ProviderClients, { names: providers, get: (name) => clients.get(name) }),
        Effect.provide(shared.stores),
        Effect.mapError((error): BuildIssue => {
          const index = error.deployment !== undefined && /^#\d+$/.test(error.deployment)
            ? Number(error.deployment.slice(1)) - 1
            : logical.deployments.findIndex((d) => d.name === error.deployment)
          return { path: logical.deployments[index]?.path ?? logical.path, message: error.reason }
        })
      )
      // the status page's circuit history: every transition, from the moment the router exists
      if (router.breaker !== undefined) {
        const subscription = yield* router.breaker.subscribe
        yield* Stream.fromSubscription(subscription).pipe(
          Stream.runForEach((t) =>
            Effect.sync(() =>
              shared.history.transition(`${logical.name}/${t.key}`, {
                at: t.at,
                from: t.from,
                to: t.to,
                reason: t.reason
              })
            )
          ),
          Effect.forkScoped
        )
      }
      return router
    })
  )
}

const notServed = (model: string) =>
  new LlmError.ModelNotFoundError({ model, detail: "no deployment or provider of the gateway serves it" })

/** The client the patterns call: each logical model goes to its own router. */
const dispatch = (routers: ReadonlyMap<string, Deployments.Service>): ChatClient.Service => ({
  create: (request) => {
    const router = routers.get(request.model)
    return router === undefined ? Effect.fail(notServed(request.model)) : router.create(request)
  },
  stream: (request) => {
    const router = routers.get(request.model)
    return router === undefined ? Stream.fail(notServed(request.model)) : router.stream(request)
  }
})

const isFailure = (exit: Exit.Exit<unknown, unknown>): boolean => Exit.isFailure(exit) && !Exit.hasInterrupts(exit)

/** Records each attempt at a deployment in the status history, as `virtual/deployment`. */
const recorded = (history: History, virtual: string, client: ChatClient.Service): ChatClient.Service => ({
  create: (request) =>
    Effect.clockWith((clock) => {
      const start = clock.currentTimeMillisUnsafe()
      return client.create(request).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (Exit.isFailure(exit) && Exit.hasInterrupts(exit)) return
            history.record(`${virtual}/${request.model}`, clock.currentTimeMillisUnsafe() - start, isFailure(exit))
          })
        )
      )
    }),
  // a stream's latency is its time to the first chunk, as a fallback chain measures it
  stream: (request) =>
    Stream.unwrap(Effect.clockWith((clock) =>
      Effect.sync(() => {
        const start = clock.currentTimeMillisUnsafe()
        let settled = false
        const settle = (failed: boolean) => {
          if (settled) return
          settled = true
          history.record(`${virtual}/${request.model}`, clock.currentTimeMillisUnsafe() - start, failed)
        }
        return client.stream(request).pipe(
          Stream.tap(() => Effect.sync(() => settle(false))),
          Stream.onExit((exit) =>
            Effect.sync(() => {
              if (Exit.isFailure(exit) && Exit.hasInterrupts(exit)) return
              settle(Exit.isFailure(exit) || !settled)
            })
          )
        )
      })
    ))
})

interface AttemptOptions {
  readonly timeout: Duration.Duration | undefined
  readonly retry: Retry.Options<LlmError.LlmError> | undefined
}

/** For experiments and best-of-n: every call of a logical model timed out and retried as a chain's would be. */
const guarded = (options: AttemptOptions, client: ChatClient.Service): ChatClient.Service => ({
  create: (request) => {
    const model = request.model
    let call: Effect.Effect<ChatCompletion.ChatCompletion, LlmError.LlmError> = client.create(request)
    if (options.timeout !== undefined) call = checked(Retry.withTimeout(call, { model, timeout: options.timeout }))
    if (options.retry !== undefined) call = checked(Retry.withRetry(call, options.retry))
    return call
  },
  stream: client.stream
})

// `checkAttemptOptions` refused, when the configuration was built, the options the library refuses
const checked = <A, R>(
  effect: Effect.Effect<A, LlmError.LlmError | Retry.RetryConfigError, R>
): Effect.Effect<A, LlmError.LlmError, R> => Effect.catchTag(effect, "RetryConfigError", Effect.die)

/** Refuses, as a configuration issue, timeout and retry options the library itself would refuse. */
const checkAttemptOptions = (name: string, options: AttemptOptions): Effect.Effect<void, BuildIssue> =>
  Effect.gen(function*() {
    if (options.timeout !== undefined) {
      yield* Retry.withTimeout(Effect.void, { model: name, timeout: options.timeout }).pipe(
        Effect.mapError((error): BuildIssue => ({ path: ["models", name, "timeout"], message: error.message }))
      )
    }
    if (options.retry !== undefined) {
      yield* Retry.withRetry(Effect.void, options.retry).pipe(
        Effect.mapError((error): BuildIssue => ({ path: ["models", name, "retry"], message: error.message }))
      )
    }
  })

const retryOptions = (retry: GatewayConfig.RetryOptions): Retry.Options<LlmError.LlmError> => ({
  ...(retry.retries === undefined ? {} : { retries: retry.retries }),
  ...(retry.base === undefined ? {} : { base: retry.base }),
  ...(retry.factor === undefined ? {} : { factor: retry.factor }),
  ...(retry.maxDelay === undefined ? {} : { maxDelay: retry.maxDelay }),
  ...(retry.maxWait === undefined ? {} : { maxWait: retry.maxWait }),
  ...(retry.jitter === undefined ? {} : { jitter: retry.jitter })
})

const breakerOptions = (breaker: GatewayConfig.BreakerOptions): CircuitBreaker.Options => ({
  trip: breaker.failureRate === undefined
    ? CircuitBreaker.consecutiveFailures(breaker.consecutiveFailures ?? 5)
    : CircuitBreaker.failureRate(breaker.failureRate),
  ...(breaker.breakDuration === undefined ? {} : { breakDuration: breaker.breakDuration }),
  ...(breaker.halfOpenProbes === undefined ? {} : { halfOpenProbes: breaker.halfOpenProbes }),
  ...(breaker.maxProbeDuration === undefined ? {} : { maxProbeDuration: breaker.maxProbeDuration }),
  ...(breaker.slowCallThreshold === undefined ? {} : { slowCallThreshold: breaker.slowCallThreshold })
})

const experimentComponent = (
  shared: Shared,
  virtual: string,
  experiment: GatewayConfig.ExperimentOptions
): ComponentKey<Experiment.Experiment> =>
  new ComponentKey(
    `experiment:${virtual}:${stableJson(experiment)}`,
    Experiment.make({
      name: experiment.name ?? virtual,
      variants: experiment.variants,
      assignment: experiment.assignment ?? "random",
      ...(experiment.control === undefined ? {} : { control: experiment.control }),
      ...(experiment.shadow === undefined ? {} : { shadow: experiment.shadow }),
      ...(experiment.minSamples === undefined ? {} : { minSamples: experiment.minSamples })
    }).pipe(
      // the experiment's store: Redis's when the gateway shares its state
      Effect.provide(shared.stores),
      Effect.mapError((error): BuildIssue => ({ path: ["models", virtual, "experiment"], message: error.reason }))
    )
  )

/** A whole answer as a stream of chunks: the content, then the finish reason and usage. */
const asChunks = (completion: ChatCompletion.ChatCompletion): Stream.Stream<ChatCompletion.ChatCompletionChunk> => {
  const choice = completion.choices[0]
  const toolCalls = (choice.message.tool_calls ?? []).flatMap((call, index) =>
    call.type === "function" ? [{ index, id: call.id, type: "function", function: call.function }] : []
  )
  return Stream.make(
    {
      id: completion.id,
      model: completion.model,
      choices: [{
        index: 0,
        delta: {
          role: "assistant",
          content: choice.message.content,
          ...(toolCalls.length === 0 ? {} : { tool_calls: toolCalls })
        },
        finish_reason: null
      }]
    },
    {
      id: completion.id,
      model: completion.model,
      choices: [{ index: 0, delta: {}, finish_reason: choice.finish_reason }],
      ...(completion.usage == null ? {} : { usage: completion.usage })
    }
  )
}

const withDeadline =
  (virtual: string, deadline: Duration.Duration | undefined) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | LlmError.TimeoutError, R> =>
    deadline === undefined ? effect : Effect.timeoutOrElse(effect, {
      duration: deadline,
      orElse: () => Effect.fail(new LlmError.TimeoutError({ model: virtual, timeout: deadline }))
    })

/** Builds the routes of a configuration, holding its components in the current scope. */
const buildRoutes = (
  shared: Shared,
  config: GatewayConfig.Config
): Effect.Effect<
  { readonly routes: ReadonlyMap<string, Route>; readonly routers: ReadonlyMap<string, Deployments.Service> },
  BuildIssue,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const logicals = new Map<string, ConfigInternal.Logical>()
    const routers = new Map<string, Deployments.Service>()
    for (const logical of ConfigInternal.logicalModels(config)) {
      logicals.set(logical.name, logical)
      routers.set(logical.name, yield* RcMap.get(shared.routers, routerComponent(shared, config, logical)))
    }
    const deployments = dispatch(routers)
    const routes = new Map<string, Route>()

    for (const [name, model] of Object.entries(config.models)) {
      const retry = model.retry === undefined || model.retry === false ? undefined : retryOptions(model.retry)
      const client = recorded(shared.history, name, deployments)
      const called = ConfigInternal.calledBy(model)
      const prices = called.flatMap((logical) =>
        (logicals.get(logical)?.deployments ?? []).flatMap((d) =>
          d.deployment.price === undefined ? [] : [d.deployment.price]
        )
      )
      const rateLimit = model.rateLimit
      const limit = rateLimit === undefined ? undefined : {
        limiter: yield* RateLimit.make({
          model: name,
          key: `virtual:${name}`,
          ...(rateLimit.rpm === undefined ? {} : { rpm: rateLimit.rpm }),
          ...(rateLimit.tpm === undefined ? {} : { tpm: rateLimit.tpm }),
          adaptive: false
        }).pipe(
          Effect.provide(shared.stores),
          Effect.mapError((error): BuildIssue => ({ path: ["models", name, "rateLimit"], message: error.reason }))
        ),
        maxWait: rateLimit.maxWait ?? Duration.zero
      }
      const common = {
        name,
        description: model.description,
        models: called,
        prices,
        priced: prices.length > 0,
        limit
      }

      if (model.fallback !== undefined) {
        const options: Fallback.Options = {
          ...(model.timeout === undefined ? {} : { timeout: model.timeout }),
          ...(model.deadline === undefined ? {} : { deadline: model.deadline }),
          ...(retry === undefined ? {} : { retry }),
          // one state for both paths: the latencies they learn and the hedges in flight are the model's
          ...(model.hedge === undefined ? {} : { hedge: Fallback.hedge(model.hedge) })
        }
        const complete = Fallback.chain(model.fallback, options)
        const stream = Fallback.stream(model.fallback, options)
        routes.set(name, {
          ...common,
          pattern: "fallback",
          experiment: undefined,
          calls: 1,
          complete: (request) =>
            complete(request).pipe(
              Effect.map((served) => ({
                completion: served.value,
                model: served.model,
                deployment: served.deployment,
                attempts: served.attempts.length
              })),
              Effect.provideService(ChatClient.ChatClient, client)
            ),
          stream: (request) =>
            stream(request).pipe(
              Effect.map((served) => ({
                stream: served.value,
                model: served.model,
                deployment: served.deployment,
                attempts: served.attempts.length,
                incremental: true
              })),
              Effect.provideService(ChatClient.ChatClient, client)
            )
        })
        continue
      }

      const attemptOptions: AttemptOptions = { timeout: model.timeout, retry }
      yield* checkAttemptOptions(name, attemptOptions)
      const attemptClient = guarded(attemptOptions, client)
      const deadline = withDeadline(name, model.deadline)
      const whole = (
        answer: (request: ChatCompletion.PromptRequest, caller: Caller) => Effect.Effect<Answer, Errors.PatternFailure>
      ) => ({
        complete: answer,
        stream: (request: ChatCompletion.PromptRequest, caller: Caller) =>
          Effect.map(answer(request, caller), (served): StreamAnswer => ({
            stream: asChunks(served.completion),
            model: served.model,
            deployment: served.deployment,
            attempts: served.attempts,
            incremental: false
          }))
      })

      if (model.experiment !== undefined) {
        const experiment = yield* RcMap.get(shared.experiments, experimentComponent(shared, name, model.experiment))
        const sticky = (model.experiment.assignment ?? "random") === "sticky"
        const keyOf = (caller: Caller) => {
          const key = caller.user ?? caller.key
          return sticky && key !== undefined ? key : undefined
        }
        // a stream is bounded by the experiment itself: timeout and retry before its first chunk
        const streamOptions: Experiment.StreamOptions = {
          ...(model.timeout === undefined ? {} : { timeout: model.timeout }),
          ...(retry === undefined ? {} : { retry })
        }
        const wholeDeadline = model.deadline
        routes.set(name, {
          ...common,
          pattern: "experiment",
          experiment,
          calls: 1,
          complete: (request, caller) => {
            const key = keyOf(caller)
            return experiment.complete(request, key === undefined ? {} : { key }).pipe(
              Effect.map((served) => ({
                completion: served.completion,
                model: served.model,
                deployment: undefined,
                attempts: 1
              })),
              deadline,
              Effect.provideService(ChatClient.ChatClient, attemptClient)
            )
          },
          stream: (request, caller) => {
            const key = keyOf(caller)
            return Effect.clockWith((clock) => {
              const startedAt = clock.currentTimeMillisUnsafe()
              return experiment.stream(request, key === undefined ? streamOptions : { ...streamOptions, key }).pipe(
                checked,
                deadline,
                Effect.map((served): StreamAnswer => ({
                  // the deadline is the whole request's: the stream is cut when it comes
                  stream: wholeDeadline === undefined ? served.stream : served.stream.pipe(
                    Stream.interruptWhen(Effect.suspend(() =>
                      Effect.andThen(
                        Effect.sleep(
                          Duration.millis(
                            Math.max(0, startedAt + Duration.toMillis(wholeDeadline) - clock.currentTimeMillisUnsafe())
                          )
                        ),
                        Effect.fail(new LlmError.TimeoutError({ model: name, timeout: wholeDeadline }))
                      )
                    ))
                  ),
                  model: served.model,
                  deployment: undefined,
                  attempts: 1,
                  incremental: true
                })),
                Effect.provideService(ChatClient.ChatClient, client)
              )
            })
          }
        })
        continue
      }

      if (model.bestOfN !== undefined) {
        const bestOfN = model.bestOfN
        const judgeOptions = bestOfN.judge
        const judge = yield* Judge.llm({
          model: judgeOptions.model,
          ...(judgeOptions.rubric === undefined ? {} : { rubric: judgeOptions.rubric }),
          ...(judgeOptions.scale === undefined ? {} : { scale: judgeOptions.scale })
        }).pipe(
          Effect.provideService(ChatClient.ChatClient, attemptClient),
          Effect.mapError((error): BuildIssue => ({
            path: ["models", name, "bestOfN", "judge"],
            message: error.message
          }))
        )
        const options: BestOfN.Options = {
          models: bestOfN.models,
          ...(bestOfN.candidateTimeout === undefined ? {} : { candidateTimeout: bestOfN.candidateTimeout }),
          ...(bestOfN.judgeTimeout === undefined ? {} : { judgeTimeout: bestOfN.judgeTimeout }),
          ...(bestOfN.minCandidates === undefined ? {} : { minCandidates: bestOfN.minCandidates }),
          ...(bestOfN.concurrency === undefined ? {} : { concurrency: bestOfN.concurrency })
        }
        routes.set(name, {
          ...common,
          pattern: "best-of-n",
          experiment: undefined,
          // every candidate, and the judge's reading of each
          calls: 2 * bestOfN.models.length,
          ...whole((request) =>
            BestOfN.complete(request, options).pipe(
              Effect.map((report) => ({
                completion: report.best.completion,
                model: report.best.model,
                deployment: undefined,
                attempts: report.candidates.length
              })),
              deadline,
              Effect.provideService(ChatClient.ChatClient, attemptClient),
              Effect.provideService(Judge.Judge, judge)
            )
          )
        })
      }
    }
    return { routes, routers }
  })

/** A budget of one kind for one key, over the gateway's budget store. */
const keyBudget = (
  shared: Shared,
  limit: number | undefined,
  period: Duration.Duration
): Effect.Effect<Budget.Budget | undefined> =>
  limit === undefined
    ? Effect.succeed(undefined)
    : Budget.make({ limitUsd: limit, period: durationText(period) }).pipe(Effect.provide(shared.stores))

/** The gateway keys of a configuration, by the hash of their text. */
const buildKeys = (
  shared: Shared,
  config: GatewayConfig.Config
): Effect.Effect<ReadonlyMap<string, Keys.Key>, BuildIssue> =>
  Effect.gen(function*() {
    const keys = new Map<string, Keys.Key>()
    for (const [index, key] of (config.keys ?? []).entries()) {
      const hash = key.sha256 ??
        Keys.sha256(Redacted.value(yield* envRedacted(key.keyEnv ?? "", ["keys", index, "keyEnv"])))
      if (keys.has(hash)) {
        return yield* Effect.fail({ path: ["keys", index], message: "another key has the same value" })
      }
      const budget = key.budget
      keys.set(
        hash,
        Keys.makeKey(
          key,
          budget === undefined ? undefined : {
            usd: yield* keyBudget(shared, budget.usd, budget.period),
            requests: yield* keyBudget(shared, budget.requests, budget.period),
            tokens: yield* keyBudget(shared, budget.tokens, budget.period)
          }
        )
      )
    }
    return keys
  })

/**
 * Builds a generation in a scope of its own. On failure nothing it acquired is kept, and the
 * generation running before it is untouched.
 *
 * @internal
 */
export const build = (
  shared: Shared,
  id: number,
  config: GatewayConfig.Config,
  text: string
): Effect.Effect<Generation, BuildIssue> =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const built = yield* Effect.exit(
      Effect.all({ routes: buildRoutes(shared, config), keys: buildKeys(shared, config) }).pipe(Scope.provide(scope))
    )
    if (Exit.isFailure(built)) {
      yield* Scope.close(scope, built)
      return yield* Effect.failCause(built.cause)
    }
    const { keys, routes } = built.value
    return {
      id,
      config,
      text,
      routes: routes.routes,
      routers: routes.routers,
      keys,
      scope,
      active: 0,
      retired: false
    }
  })
