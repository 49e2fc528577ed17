/**
 * Where the patterns keep their state: in this process's memory (the default, nothing to run), or
 * in Redis, so that several instances of an application share one view: the spending of budgets,
 * the rate limits of deployments and their adaptive state, the recorded outcomes of experiments,
 * and the circuits of breakers.
 *
 * `Stores.layerRedis` provides every store over the `Redis` service of `effect/persistence`, which
 * `NodeRedis.layer` (from `@effect/platform-node`, over the `redis` npm client) supplies:
 *
 * - **Same semantics.** Each store does in Redis what it does in memory, and the same test suite
 *   runs against both. Every decision is one atomic Lua script over one key, so instances cannot
 *   race: no limit or budget admits more than it would in one process.
 * - **Fail open.** When Redis is slow or down, no call waits on it longer than `timeout`: the
 *   call goes on with this process's local view, a warning is logged once per outage, every
 *   operation answered locally is counted (`resilient_llm_store_local_total`) and marked on the
 *   caller's span (the event `resilient-llm.store.unavailable`). Redis is tried again after
 *   `retryAfter`; writes made meanwhile (budget spending, experiment records) are queued and
 *   replayed once it answers, so nothing recorded is lost.
 * - **Namespaced and bounded.** Every key starts with `prefix` (one per application and
 *   environment), and every key expires when idle; no key holds a prompt, an answer or an API key.
 *
 * @example
 * ```ts
 * import * as NodeRedis from "@effect/platform-node/NodeRedis"
 * import { Stores } from "@resilient-llm/core"
 * import { Layer } from "effect"
 *
 * // every instance of billing-api in production shares limits, budgets, experiments and breakers
 * const SharedStores = Stores.layerRedis({ prefix: "billing-api:prod:", timeout: "50 millis" }).pipe(
 *   Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true }))
 * )
 * ```
 *
 * @since 0.2.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as RateLimiter from "effect/persistence/RateLimiter"
import * as Redis from "effect/persistence/Redis"
import * as Budget from "./Budget.js"
import * as CircuitBreaker from "./CircuitBreaker.js"
import * as Experiment from "./Experiment.js"
import * as BudgetStore from "./internal/budgetStore.js"
import * as CircuitStore from "./internal/circuitBreakerStore.js"
import * as ExperimentStore from "./internal/experimentStore.js"
import * as RateLimitStore from "./internal/rateLimitStore.js"
import * as SharedStore from "./internal/sharedStore.js"
import * as RateLimit from "./RateLimit.js"

/**
 * Options of `layerRedis`.
 *
 * @since 0.2.0
 * @category models
 */
export interface RedisOptions {
  /**
   * Starts every key: one per application and environment (`"billing-api:prod:"`), so that
   * instances of the same deployment share state and nothing else does. Required, not blank.
   */
  readonly prefix: string
  /** How long an operation waits for Redis before the local view answers it. Default: 100 millis. */
  readonly timeout?: Duration.Input
  /**
   * After Redis failed or was too slow, how long operations use the local view before one tries
   * Redis again. Default: 1 second.
   */
  readonly retryAfter?: Duration.Input
  /**
   * Circuits, adaptive rate state and experiments not written for this long expire (rate-limit
   * buckets expire once full again, budgets a day after their period). Default: 7 days.
   */
  readonly expireAfterIdle?: Duration.Input
  /**
   * Writes made during an outage that are kept to be replayed (budget spending, experiment
   * records); past this many, further ones are kept only locally and counted
   * (`resilient_llm_store_dropped_total`). Default: 10,000.
   */
  readonly maxPendingWrites?: number
}

/**
 * The options of `layerRedis` describe no store.
 *
 * @since 0.2.0
 * @category errors
 */
export class StoreConfigError extends Data.TaggedError("StoreConfigError")<{
  readonly reason: string
}> {
  override get message(): string {
    return `The shared store is misconfigured: ${this.reason}`
  }
}

/**
 * The health of the shared store, for a status page or a test.
 *
 * @since 0.2.0
 * @category services
 */
export class Health extends Context.Service<Health, {
  /** Whether the last operation reached Redis: `false` during an outage. */
  readonly available: Effect.Effect<boolean>
  /** Writes made during an outage, waiting to be replayed. */
  readonly pendingWrites: Effect.Effect<number>
  /** Operations answered by this process's local view since the store started (Redis failed, was slow or away). */
  readonly localAnswers: Effect.Effect<number>
  /** Operations sent to Redis and not answered yet. */
  readonly inFlight: Effect.Effect<number>
}>()("@resilient-llm/core/Stores/Health") {}

/**
 * Every store in memory: what the patterns use when nothing else is provided.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory: Layer.Layer<
  Budget.BudgetStore | RateLimiter.RateLimiter | RateLimit.AdaptiveStore | Health
> = Layer.mergeAll(
  Budget.layerStoreMemory,
  RateLimit.layerStoresMemory,
  // memory is always there
  Layer.succeed(Health, {
    available: Effect.succeed(true),
    pendingWrites: Effect.succeed(0),
    localAnswers: Effect.succeed(0),
    inFlight: Effect.succeed(0)
  })
)

const guardOf = (options: RedisOptions) =>
  Effect.suspend(() => {
    const settings = SharedStore.validate(options)
    return typeof settings === "string"
      ? Effect.fail(new StoreConfigError({ reason: settings }))
      : SharedStore.makeGuard(settings)
  })

/**
 * Every store in Redis, under `prefix`, over the `Redis` service in context. Fails with
 * `StoreConfigError` when the prefix is blank or a duration or count is not positive.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerRedis = (
  options: RedisOptions
): Layer.Layer<
  Budget.BudgetStore | RateLimiter.RateLimiter | RateLimit.AdaptiveStore | Health,
  StoreConfigError,
  Redis.Redis
> =>
  Layer.effectContext(Effect.gen(function*() {
    const guard = yield* guardOf(options)
    const redis = yield* Redis.Redis
    const clock = yield* Clock.Clock
    const limiters = yield* RateLimitStore.limiterStore(guard)
    const limiter = yield* RateLimiter.make.pipe(Effect.provideService(RateLimiter.RateLimiterStore, limiters))
    return Context.make(Health, {
      available: guard.available,
      pendingWrites: guard.pendingWrites,
      localAnswers: guard.localAnswers,
      inFlight: guard.inFlight
    }).pipe(
      Context.add(Budget.BudgetStore, BudgetStore.redis(redis, guard, clock)),
      Context.add(RateLimiter.RateLimiter, limiter),
      Context.add(RateLimit.AdaptiveStore, RateLimitStore.adaptiveStore(redis, guard)),
      Context.add(Experiment.CurrentStore, ExperimentStore.redis(redis, guard)),
      Context.add(CircuitBreaker.CurrentStore, CircuitStore.redis(redis, guard))
    )
  }))

/**
 * A Redis URL as it may be shown in a log line, an error or a report: a password in it (with or
 * without a user name) is replaced by `***`, the rest kept.
 *
 * @example
 * ```ts
 * import { Stores } from "@resilient-llm/core"
 *
 * Stores.redactUrl("redis://app:hunter2@cache:6379/0") // "redis://app:***@cache:6379/0"
 * ```
 *
 * @since 0.2.0
 * @category utils
 */
export const redactUrl = (url: string): string => url.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@")
