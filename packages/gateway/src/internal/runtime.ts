/**
 * A configuration made runnable: one generation of the gateway. Providers become `ChatClient`s
 * (through `Providers`, or a `FakeProvider` the gateway starts), deployments a client that maps a
 * logical model to a provider and the provider's model name, and every virtual model a route that
 * runs its pattern with its options. What holds state (provider clients and fake servers, circuit
 * breakers, experiments) is a component shared between generations through reference-counted maps:
 * a reload that leaves a component's configuration as it was keeps it (an open circuit stays open,
 * an experiment keeps its data), and a component nothing uses any more is closed once the last
 * generation using it has drained.
 *
 * @internal
 */
import * as BestOfN from "@resilient-llm/core/BestOfN"
import * as ChatClient from "@resilient-llm/core/ChatClient"
import type * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as CircuitBreaker from "@resilient-llm/core/CircuitBreaker"
import * as Experiment from "@resilient-llm/core/Experiment"
import * as Fallback from "@resilient-llm/core/Fallback"
import * as Judge from "@resilient-llm/core/Judge"
import * as LlmError from "@resilient-llm/core/LlmError"
import * as Retry from "@resilient-llm/core/Retry"
import * as Providers from "@resilient-llm/openai/Providers"
import * as FakeProvider from "@resilient-llm/testing/FakeProvider"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Hash from "effect/Hash"
import * as HttpClient from "effect/http/HttpClient"
import * as Random from "effect/Random"
import * as RcMap from "effect/RcMap"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as GatewayConfig from "../GatewayConfig.js"
import { providerPatterns } from "./config.js"
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

/** A served answer: the completion, the deployment that served it, how many attempts it took. */
export interface Answer {
  readonly completion: ChatCompletion.ChatCompletion
  readonly model: string
  readonly attempts: number
}

/** A served stream, known once its first chunk has arrived. */
export interface StreamAnswer {
  readonly stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError>
  readonly model: string
  readonly attempts: number
  /** Whether the stream is real, or a whole answer sent as chunks (experiments and best-of-n). */
  readonly incremental: boolean
}

/** A virtual model, ready to serve. */
export interface Route {
  readonly name: string
  readonly pattern: "fallback" | "experiment" | "best-of-n"
  readonly description: string | undefined
  /** The deployments it calls, in the configuration's order. */
  readonly models: ReadonlyArray<string>
  readonly breaker: CircuitBreaker.Service | undefined
  readonly experiment: Experiment.Experiment | undefined
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

/** The long-lived parts every generation shares. */
export interface Shared {
  readonly clients: Components<ChatClient.Service>
  readonly breakers: Components<CircuitBreaker.Service>
  readonly experiments: Components<Experiment.Experiment>
  readonly history: History
  readonly httpClient: HttpClient.HttpClient
}

const lookup = <A>(key: ComponentKey<A>) => key.build

/** @internal */
export const makeShared = (
  history: History,
  httpClient: HttpClient.HttpClient
): Effect.Effect<Shared, never, Scope.Scope> =>
  Effect.gen(function*() {
    return {
      clients: yield* RcMap.make({ lookup: lookup<ChatClient.Service> }),
      breakers: yield* RcMap.make({ lookup: lookup<CircuitBreaker.Service> }),
      experiments: yield* RcMap.make({ lookup: lookup<Experiment.Experiment> }),
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

/** A provider's client: a `Providers` client over its endpoint, or over a `FakeProvider` started here. */
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
      return yield* Providers.make([{ name, ...endpoint, models: ["*"] }]).pipe(
        Effect.provideService(HttpClient.HttpClient, shared.httpClient),
        Effect.mapError((error): BuildIssue => ({ path: at, message: error.reason }))
      )
    })
  )

interface Target {
  readonly client: ChatClient.Service
  readonly model: string
  readonly weight: number
}

/** `*` stands for any run of characters. */
const globToMatcher = (pattern: string): (name: string) => boolean => {
  if (!pattern.includes("*")) return (name) => name === pattern
  const parts = pattern.split("*").map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
  const regex = new RegExp(`^${parts.join(".*")}$`, "s")
  return (name) => regex.test(name)
}

/**
 * The client the patterns call: a logical model goes to one of its deployments (drawn by weight),
 * with the provider's model name; a name no deployment declares goes to the first provider whose
 * `models` match it, unchanged; any other name is a `ModelNotFoundError`, and nothing is sent.
 */
const deploymentsClient = (
  config: GatewayConfig.Config,
  clients: ReadonlyMap<string, ChatClient.Service>
): ChatClient.Service => {
  const table = new Map<string, ReadonlyArray<Target>>()
  for (const [logical, entry] of Object.entries(config.deployments ?? {})) {
    const list = Array.isArray(entry) ? entry : [entry]
    table.set(
      logical,
      list.flatMap((d) => {
        const client = clients.get(d.provider)
        return client === undefined ? [] : [{ client, model: d.model ?? logical, weight: d.weight ?? 1 }]
      })
    )
  }
  const passThrough = Object.entries(config.providers).flatMap(([name, provider]) => {
    const client = clients.get(name)
    return client === undefined ? [] : providerPatterns(provider).map((p) => ({ matches: globToMatcher(p), client }))
  })
  const notServed = (model: string) =>
    new LlmError.ModelNotFoundError({ model, detail: "no deployment or provider of the gateway serves it" })

  const choose = (model: string): Effect.Effect<Target, LlmError.ModelNotFoundError> => {
    const targets = table.get(model)
    if (targets !== undefined) {
      if (targets.length === 1) return Effect.succeed(targets[0])
      const total = targets.reduce((sum, t) => sum + t.weight, 0)
      return Effect.map(Random.next, (u) => {
        let point = u * total
        for (const target of targets) {
          point -= target.weight
          if (point < 0) return target
        }
        return targets[targets.length - 1]
      })
    }
    const route = passThrough.find((r) => r.matches(model))
    return route === undefined
      ? Effect.fail(notServed(model))
      : Effect.succeed({ client: route.client, model, weight: 1 })
  }

  return {
    create: (request) => Effect.flatMap(choose(request.model), (t) => t.client.create({ ...request, model: t.model })),
    stream: (request) =>
      Stream.unwrap(Effect.map(choose(request.model), (t) => t.client.stream({ ...request, model: t.model })))
  }
}

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
  readonly breaker: CircuitBreaker.Service | undefined
}

/** For experiments and best-of-n: every call at a deployment timed out, guarded and retried as a chain's would be. */
const guarded = (options: AttemptOptions, client: ChatClient.Service): ChatClient.Service => ({
  create: (request) => {
    const model = request.model
    let call: Effect.Effect<ChatCompletion.ChatCompletion, LlmError.LlmError> = client.create(request)
    if (options.timeout !== undefined) call = checked(Retry.withTimeout(call, { model, timeout: options.timeout }))
    if (options.breaker !== undefined) call = options.breaker.protect(model)(call)
    if (options.retry !== undefined) call = checked(Retry.withRetry(call, options.retry))
    return call
  },
  stream: client.stream
})

// `checkAttemptOptions` refused, when the configuration was built, the options the library refuses
const checked = <A>(
  effect: Effect.Effect<A, LlmError.LlmError | Retry.RetryConfigError>
): Effect.Effect<A, LlmError.LlmError> => Effect.catchTag(effect, "RetryConfigError", Effect.die)

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

const breakerComponent = (
  history: History,
  virtual: string,
  breaker: GatewayConfig.BreakerOptions
): ComponentKey<CircuitBreaker.Service> =>
  new ComponentKey(
    `breaker:${virtual}:${stableJson(breaker)}`,
    Effect.gen(function*() {
      const service = yield* CircuitBreaker.make(breakerOptions(breaker)).pipe(
        Effect.mapError((error): BuildIssue => ({ path: ["models", virtual, "breaker"], message: error.reason }))
      )
      // the status page's circuit history: every transition, from the moment the breaker exists
      const subscription = yield* service.subscribe
      yield* Stream.fromSubscription(subscription).pipe(
        Stream.runForEach((t) =>
          Effect.sync(() =>
            history.transition(`${virtual}/${t.key}`, { at: t.at, from: t.from, to: t.to, reason: t.reason })
          )
        ),
        Effect.forkScoped
      )
      return service
    })
  )

const experimentComponent = (
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
): Effect.Effect<ReadonlyMap<string, Route>, BuildIssue, Scope.Scope> =>
  Effect.gen(function*() {
    const clients = new Map<string, ChatClient.Service>()
    for (const [name, provider] of Object.entries(config.providers)) {
      clients.set(name, yield* RcMap.get(shared.clients, providerClient(shared, name, provider)))
    }
    const deployments = deploymentsClient(config, clients)
    const routes = new Map<string, Route>()

    for (const [name, model] of Object.entries(config.models)) {
      const breaker = model.breaker === false
        ? undefined
        : yield* RcMap.get(shared.breakers, breakerComponent(shared.history, name, model.breaker ?? {}))
      const retry = model.retry === undefined || model.retry === false ? undefined : retryOptions(model.retry)
      const client = recorded(shared.history, name, deployments)
      const common = { name, description: model.description, breaker }

      if (model.fallback !== undefined) {
        const options: Fallback.Options = {
          ...(model.timeout === undefined ? {} : { timeout: model.timeout }),
          ...(model.deadline === undefined ? {} : { deadline: model.deadline }),
          ...(retry === undefined ? {} : { retry }),
          ...(breaker === undefined ? {} : { breaker })
        }
        const complete = Fallback.chain(model.fallback, options)
        const stream = Fallback.stream(model.fallback, options)
        routes.set(name, {
          ...common,
          pattern: "fallback",
          models: model.fallback,
          experiment: undefined,
          complete: (request) =>
            complete(request).pipe(
              Effect.map((served) => ({
                completion: served.value,
                model: served.model,
                attempts: served.attempts.length
              })),
              Effect.provideService(ChatClient.ChatClient, client)
            ),
          stream: (request) =>
            stream(request).pipe(
              Effect.map((served) => ({
                stream: served.value,
                model: served.model,
                attempts: served.attempts.length,
                incremental: true
              })),
              Effect.provideService(ChatClient.ChatClient, client)
            )
        })
        continue
      }

      const attemptOptions: AttemptOptions = { timeout: model.timeout, retry, breaker }
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
            attempts: served.attempts,
            incremental: false
          }))
      })

      if (model.experiment !== undefined) {
        const experiment = yield* RcMap.get(shared.experiments, experimentComponent(name, model.experiment))
        const sticky = (model.experiment.assignment ?? "random") === "sticky"
        routes.set(name, {
          ...common,
          pattern: "experiment",
          models: model.experiment.variants.map((v) => v.model),
          experiment,
          ...whole((request, caller) => {
            const key = caller.user ?? caller.key
            return experiment.complete(request, sticky && key !== undefined ? { key } : {}).pipe(
              Effect.map((served) => ({ completion: served.completion, model: served.model, attempts: 1 })),
              deadline,
              Effect.provideService(ChatClient.ChatClient, attemptClient)
            )
          })
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
          models: bestOfN.models,
          experiment: undefined,
          ...whole((request) =>
            BestOfN.complete(request, options).pipe(
              Effect.map((report) => ({
                completion: report.best.completion,
                model: report.best.model,
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
    return routes
  })

/** The gateway keys of a configuration, by the hash of their text. */
const buildKeys = (config: GatewayConfig.Config): Effect.Effect<ReadonlyMap<string, Keys.Key>, BuildIssue> =>
  Effect.gen(function*() {
    const keys = new Map<string, Keys.Key>()
    for (const [index, key] of (config.keys ?? []).entries()) {
      const hash = key.sha256 ??
        Keys.sha256(Redacted.value(yield* envRedacted(key.keyEnv ?? "", ["keys", index, "keyEnv"])))
      if (keys.has(hash)) {
        return yield* Effect.fail({ path: ["keys", index], message: "another key has the same value" })
      }
      keys.set(hash, Keys.makeKey(key, key.budget === undefined ? undefined : Duration.toMillis(key.budget.period)))
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
      Effect.all({ routes: buildRoutes(shared, config), keys: buildKeys(config) }).pipe(Scope.provide(scope))
    )
    if (Exit.isFailure(built)) {
      yield* Scope.close(scope, built)
      return yield* Effect.failCause(built.cause)
    }
    return { id, config, text, routes: built.value.routes, keys: built.value.keys, scope, active: 0, retired: false }
  })
