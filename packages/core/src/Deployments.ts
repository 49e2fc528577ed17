/**
 * One logical model, several deployments: `gpt-4o` served by an Azure deployment and by OpenAI,
 * `llama-3.1-70b` by two hosts. `Deployments.layer` provides a `ChatClient` whose model names are
 * the logical ones, so every pattern (`Fallback`, `Experiment`, `BestOfN`, `Judge`) keeps working
 * on them; behind it, each call goes
 *
 * ```text
 * logical model ─▶ order its deployments (strategy) ─▶ budget ─▶ rate limit ─▶ bulkhead ─▶ breaker ─▶ provider
 * ```
 *
 * - **Deployments**: each names its provider (a `ProviderClients` entry, such as an
 *   `@resilient-llm/openai` endpoint with its own key), the provider's own model name (an Azure
 *   deployment name, `openai/gpt-4o` on OpenRouter), a `weight` and a `priority`.
 * - **Routing** (`Routing`): `weighted`, `least-busy`, `lowest-latency` or `cheapest`, within
 *   priority groups; a deployment whose circuit is open, whose rate limit has no room or whose
 *   bulkhead is full is skipped, without sending anything.
 * - **Rate limits** (`RateLimit`): requests and tokens per minute per deployment, adaptive to the
 *   provider's 429s. When no deployment has room, the call waits for room up to the model's
 *   `maxWait`, then fails with `ThrottledError`, naming the limit.
 * - **Bulkheads** (`Bulkhead`): `maxConcurrent` calls in flight and `maxQueued` waiting per
 *   deployment; beyond that, `BulkheadFullError` at once.
 * - **Circuit breakers**: one circuit per deployment (the key is the deployment's name).
 * - **Failover**: a deployment that fails with an error another model could get past
 *   (`LlmError.isFallbackable`) hands the call to the next deployment at once, before the error
 *   reaches the caller.
 * - **Cost and budgets** (`Cost`, `Budget`): every call is priced from its `usage`, and charged to
 *   the key set with `Budget.withKey`.
 *
 * Each deployment call is a span `resilient-llm.deployment` (`llm.model`, `llm.deployment`,
 * `llm.provider`, `llm.provider_model`, `llm.outcome`, `llm.latency_ms`, tokens, `llm.cost_usd`)
 * and updates `resilient_llm_deployment_requests_total`, `resilient_llm_deployment_latency_ms`,
 * `resilient_llm_deployment_tokens_total` and `resilient_llm_cost_usd_total`, labelled with
 * `model` (the logical one) and `deployment`; a skipped deployment is a span
 * `resilient-llm.deployment.refused` and counts in `resilient_llm_deployment_skips_total` (label
 * `reason`). Inside a pattern, the attempt's span and log line name the deployment and the cost,
 * and `Fallback.chain` reports each deployment tried as an attempt.
 *
 * The configuration is plain data (what a JSON or YAML file holds), checked by `Config` when the
 * layer is built: a mistake is a `DeploymentsConfigError` naming the model and deployment, never a
 * surprise at the first call.
 *
 * @example
 * ```ts
 * import { ChatClient, ChatCompletion, Deployments } from "@resilient-llm/core"
 * import { Effect, Layer } from "effect"
 *
 * const RouterLive = Deployments.layer({
 *   models: {
 *     "gpt-4o": {
 *       strategy: "weighted",
 *       maxWait: "2 seconds",
 *       deployments: [
 *         { name: "azure-east", provider: "azure", model: "gpt-4o-prod", weight: 3, rpm: 600, tpm: 150_000 },
 *         { name: "openai", provider: "openai", model: "gpt-4o", weight: 1, maxConcurrent: 32 }
 *       ]
 *     }
 *   },
 *   budget: { limitUsd: 20, period: "1 day" }
 * }).pipe(Layer.provide(Deployments.layerStoresMemory))
 * // then provide the providers: Providers.clients([...]) from @resilient-llm/openai
 *
 * const program = ChatClient.create(ChatCompletion.withModel(ChatCompletion.prompt("Hello"), "gpt-4o"))
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type * as RateLimiter from "effect/persistence/RateLimiter"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Budget from "./Budget.js"
import * as ChatClient from "./ChatClient.js"
import type * as CircuitBreaker from "./CircuitBreaker.js"
import * as Cost from "./Cost.js"
import { DurationText, Name, NonNegative, NonNegativeInt, PositiveInt } from "./internal/configSchema.js"
import * as internal from "./internal/deployments.js"
import * as RateLimit from "./RateLimit.js"

/**
 * One deployment of a logical model, as plain data.
 *
 * | field | default | meaning |
 * | --- | --- | --- |
 * | `provider` | (required) | the `ProviderClients` entry that serves it |
 * | `model` | (required) | the provider's own model name, sent in place of the logical one |
 * | `name` | `provider/model` | unique across the config; the key of its circuit and limits, and the `deployment` label |
 * | `weight` | 1 | share of traffic within its priority group; 0 makes it a standby |
 * | `priority` | 0 | lower is tried first |
 * | `rpm`, `tpm` | none | requests and tokens per minute |
 * | `adaptive` | on | how a 429 lowers the rate (`RateLimit.Adaptive`), `false` to keep it fixed |
 * | `maxConcurrent`, `maxQueued` | none, 0 | the bulkhead |
 * | `timeout` | none | time limit of one call to this deployment; past it, `TimeoutError` and the next deployment |
 * | `price` | none | `Cost.Price`, US dollars per million tokens |
 *
 * @since 0.2.0
 * @category schemas
 */
export const Deployment = Schema.Struct({
  name: Schema.optionalKey(Name),
  provider: Name,
  model: Name,
  weight: Schema.optionalKey(NonNegative),
  priority: Schema.optionalKey(Schema.Int),
  rpm: Schema.optionalKey(PositiveInt),
  tpm: Schema.optionalKey(PositiveInt),
  adaptive: Schema.optionalKey(Schema.Union([RateLimit.Adaptive, Schema.Literal(false)])),
  maxConcurrent: Schema.optionalKey(PositiveInt),
  maxQueued: Schema.optionalKey(NonNegativeInt),
  timeout: Schema.optionalKey(DurationText({ positive: true })),
  price: Schema.optionalKey(Cost.Price)
})

/**
 * @since 0.2.0
 * @category models
 */
export interface Deployment extends Schema.Schema.Type<typeof Deployment> {}

/**
 * A logical model: its deployments, the strategy that orders them (default `weighted`), how long
 * a call may wait for a rate limit to have room (`maxWait`, default `"0 millis"`: not at all, the
 * call moves on), and whether a failed deployment hands the call to the next one (`failover`,
 * default `true`).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Model = Schema.Struct({
  strategy: Schema.optionalKey(Schema.Literals(["weighted", "least-busy", "lowest-latency", "cheapest"])),
  maxWait: Schema.optionalKey(DurationText({ positive: false })),
  failover: Schema.optionalKey(Schema.Boolean),
  deployments: Schema.Array(Deployment)
})

/**
 * @since 0.2.0
 * @category models
 */
export interface Model extends Schema.Schema.Type<typeof Model> {}

/**
 * The router's configuration as plain data: logical models by name, and an optional budget per
 * key (`Budget.Config`).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Config = Schema.Struct({
  models: Schema.Record(Schema.String, Model),
  budget: Schema.optionalKey(Budget.Config)
})

/**
 * @since 0.2.0
 * @category models
 */
export interface Config extends Schema.Schema.Type<typeof Config> {}

/**
 * What is not plain data: the circuit breaker of each deployment (its options, or `false` for
 * none; by default `CircuitBreaker`'s defaults: open after 5 failures in a row, for 30 seconds),
 * and how the tokens of a request are estimated before it is sent (`RateLimit.estimateTokens`
 * by default).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly breaker?: CircuitBreaker.Options | false
  readonly estimateTokens?: (request: {
    readonly messages: ReadonlyArray<unknown>
    readonly max_tokens?: number | null | undefined
  }) => { readonly input: number; readonly output: number }
}

/**
 * The configuration describes no router: `reason` says what is wrong, and where.
 *
 * @since 0.2.0
 * @category errors
 */
export class DeploymentsConfigError extends Data.TaggedError("DeploymentsConfigError")<{
  readonly model: string | undefined
  readonly deployment: string | undefined
  readonly reason: string
}> {
  override get message(): string {
    // a deployment without a name is known by its place in the list, "#2"
    const deployment = this.deployment !== undefined && /^#\d+$/.test(this.deployment)
      ? this.deployment
      : JSON.stringify(this.deployment)
    const where = this.deployment !== undefined
      ? `deployment ${deployment} of model ${JSON.stringify(this.model)}: `
      : this.model !== undefined
      ? `model ${JSON.stringify(this.model)}: `
      : ""
    return `The deployments are misconfigured: ${where}${this.reason}`
  }
}

/**
 * The clients of the providers deployments name, by provider name: what sends a deployment's
 * request to its own endpoint with its own key. `@resilient-llm/openai`'s `Providers.clients`
 * provides it over HTTP; `providers` and `providersFromChatClient` build it from clients at hand.
 *
 * @since 0.2.0
 * @category services
 */
export class ProviderClients extends Context.Service<ProviderClients, {
  readonly names: ReadonlyArray<string>
  readonly get: (provider: string) => ChatClient.Service | undefined
}>()("@resilient-llm/core/Deployments/ProviderClients") {}

/**
 * `ProviderClients` from a record of clients by provider name.
 *
 * @since 0.2.0
 * @category layers
 */
export const providers = (clients: Readonly<Record<string, ChatClient.Service>>): Layer.Layer<ProviderClients> =>
  Layer.succeed(ProviderClients, {
    names: Object.keys(clients),
    get: (provider) => Object.prototype.hasOwnProperty.call(clients, provider) ? clients[provider] : undefined
  })

/**
 * `ProviderClients` where every name in `names` is served by the `ChatClient` in context (a
 * `Providers.layer` that routes by model name, a test client): the deployment's model name is
 * what reaches it.
 *
 * @since 0.2.0
 * @category layers
 */
export const providersFromChatClient = (
  names: ReadonlyArray<string>
): Layer.Layer<ProviderClients, never, ChatClient.ChatClient> =>
  Layer.effect(ProviderClients)(
    ChatClient.ChatClient.useSync((client) => ({
      names,
      get: (provider: string) => names.includes(provider) ? client : undefined
    }))
  )

/**
 * Calls to deployments by `model` (logical), `deployment` and `outcome`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const requests = internal.requests

/**
 * Latency of calls to deployments in milliseconds, by `model` and `deployment`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const latency = internal.latency

/**
 * Tokens by `model`, `deployment` and `kind` (`input`, `output`).
 *
 * @since 0.2.0
 * @category metrics
 */
export const tokens = internal.tokens

/**
 * What calls cost in US dollars, by `model` and `deployment`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const cost = internal.cost

/**
 * Calls in flight by `model` and `deployment`.
 *
 * @since 0.2.0
 * @category metrics
 */
export const inFlight = internal.inFlight

/**
 * Deployments skipped without a call, by `model`, `deployment` and `reason` (`rpm`, `tpm`,
 * `cooldown`, `bulkhead`, `circuit-open`, `budget`).
 *
 * @since 0.2.0
 * @category metrics
 */
export const skips = internal.skips

/**
 * A deployment call that ended: its logical model and deployment, how it ended (`success`, the
 * error's tag, or `interrupted`), how long it took, the tokens of its reported usage and what they
 * cost at the deployment's price (`undefined` without a usage or a price).
 *
 * @since 0.2.0
 * @category models
 */
export interface CallEnd {
  readonly model: string
  readonly deployment: string
  readonly outcome: string
  readonly durationMs: number
  readonly tokens: Cost.Tokens | undefined
  readonly costUsd: number | undefined
}

/**
 * The function told of every deployment call an effect makes, as each ends; none by default.
 * The router reads it when it routes a call, so a stream's call, which ends when the stream does,
 * is told to the observer of the effect that opened it.
 *
 * @since 0.2.0
 * @category references
 */
export const CallObserver: Context.Reference<((call: CallEnd) => void) | undefined> = internal.CallObserver

/**
 * Tells `observer` of every deployment call `self` makes, as each ends: what a server needs to
 * report what one request cost across a fallback chain, an experiment or a best-of-n, or to keep
 * per-deployment history. The observer runs inside the router's bookkeeping: keep it short, and
 * never let it throw.
 *
 * @example
 * ```ts
 * import { ChatClient, ChatCompletion, Deployments } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const priced = Effect.suspend(() => {
 *   let costUsd = 0
 *   return ChatClient.create(ChatCompletion.withModel(ChatCompletion.prompt("Hello"), "gpt-4o")).pipe(
 *     Deployments.observeCalls((call) => {
 *       costUsd += call.costUsd ?? 0
 *     }),
 *     Effect.map((completion) => ({ completion, costUsd }))
 *   )
 * })
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const observeCalls: {
  (observer: (call: CallEnd) => void): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, observer: (call: CallEnd) => void): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, observer: (call: CallEnd) => void): Effect.Effect<A, E, R> =>
    Effect.provideService(self, internal.CallObserver, observer)
)

/**
 * One deployment now, for a status page.
 *
 * @since 0.2.0
 * @category models
 */
export interface DeploymentStatus {
  readonly model: string
  readonly deployment: string
  readonly provider: string
  readonly providerModel: string
  readonly weight: number
  readonly priority: number
  readonly inFlight: number
  /** Waiting for a bulkhead slot. */
  readonly queued: number
  /** Moving average of recent successes, `undefined` without one in the last minute. */
  readonly latencyMs: number | undefined
  /** The circuit's state, `closed` without a breaker. */
  readonly circuit: CircuitBreaker.State
  /** The rate limits now (after the adaptive factor). */
  readonly limits: RateLimit.Status
}

/**
 * The router.
 *
 * @since 0.2.0
 * @category models
 */
export interface Service extends ChatClient.Service {
  readonly config: Config
  /** The logical models, in the config's order. */
  readonly models: ReadonlyArray<string>
  /** Every deployment, model by model in the config's order. */
  readonly snapshot: Effect.Effect<ReadonlyArray<DeploymentStatus>>
  /** The deployments' circuit breaker, keyed by deployment name; `undefined` with `breaker: false`. */
  readonly breaker: CircuitBreaker.Service | undefined
  /** The budget, when the config has one. */
  readonly budget: Budget.Budget | undefined
}

/**
 * @since 0.2.0
 * @category services
 */
export class Deployments extends Context.Service<Deployments, Service>()("@resilient-llm/core/Deployments") {}

/**
 * Everything the router keeps state in, in this process's memory: the rate limits (Effect's
 * `RateLimiter` over its memory store), their adaptive state, and the budgets.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerStoresMemory: Layer.Layer<RateLimiter.RateLimiter | RateLimit.AdaptiveStore | Budget.BudgetStore> =
  Layer.mergeAll(RateLimit.layerStoresMemory, Budget.layerStoreMemory)

/**
 * Decodes plain data (a parsed JSON or YAML file) into a `Config`, with every check that does not
 * need the providers: a `DeploymentsConfigError` names the model and deployment at fault. Each
 * deployment comes back with its `name` filled in.
 *
 * @since 0.2.0
 * @category decoding
 */
export const decode: (input: unknown) => Effect.Effect<Config, DeploymentsConfigError> = internal.decode

/**
 * Builds the router from plain data, decoded and checked with `Config`, over the providers and
 * stores in context. Fails with `DeploymentsConfigError` when the data does not decode (a
 * deployment without a provider or a model, a negative price or weight, a limit that is not a
 * whole number), when there are no models, a model has no deployments, every weight of a model is
 * zero, two deployments share a name, a deployment names a provider nobody serves, `cheapest`
 * meets a deployment without a price, or `maxQueued` comes without `maxConcurrent`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: (
  config: Config,
  options?: Options
) => Effect.Effect<
  Service,
  DeploymentsConfigError,
  ProviderClients | RateLimiter.RateLimiter | RateLimit.AdaptiveStore | Budget.BudgetStore | Scope.Scope
> = internal.make

/**
 * Provides the router, as `Deployments` and as the `ChatClient` of logical model names.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  config: Config,
  options?: Options
): Layer.Layer<
  Deployments | ChatClient.ChatClient,
  DeploymentsConfigError,
  ProviderClients | RateLimiter.RateLimiter | RateLimit.AdaptiveStore | Budget.BudgetStore
> =>
  Layer.effectContext(
    Effect.map(make(config, options), (router) =>
      Context.make(Deployments, router).pipe(Context.add(ChatClient.ChatClient, router)))
  )
