/**
 * Client-side rate limits for one deployment, in requests and tokens per minute, so an
 * application stays under its provider's limits instead of learning them from 429s. The counting
 * is Effect's `RateLimiter` (`effect/persistence`): a token bucket per limit, refilled evenly over
 * the minute, in whatever `RateLimiterStore` the application provides (in memory, or Redis to
 * share the limits between processes).
 *
 * - **Tokens are estimated, then corrected.** A call takes its estimated tokens (prompt and the
 *   output it may write) before it is sent; once the provider reports `usage`, the difference is
 *   taken too, or given back, so the bucket follows real use.
 * - **Adaptive.** A 429 from the provider means the real limit is lower than the configured one:
 *   the deployment's rate is multiplied by `decrease` (down to `floor`) and the deployment cools
 *   down for the 429's `retry-after` (or `cooldown`); every success raises the rate by `increase`,
 *   back to the configured one.
 * - **Refusals are typed.** A call with no room fails with `ThrottledError`, which names the limit
 *   (`rpm`, `tpm`, or `cooldown`) and when room is expected; `acquire` first waits for room up to a
 *   bound.
 *
 * Why not Effect's adaptive mode (`RateLimiter.adaptiveConsume`)? It learns a limit only from a
 * 429 that carries `retry-after` (a 429 without one changes nothing), returns a delay but never
 * says "no room" (so a router could not move on to another deployment), and returns to the
 * configured rate only when its learned state expires, not as calls succeed. The windows are
 * Effect's; the adaptive factor and the cooldown are kept in an `AdaptiveStore` of their own.
 *
 * @example
 * ```ts
 * import { RateLimit } from "@resilient-llm/core"
 * import { Effect, Layer } from "effect"
 * import * as RateLimiter from "effect/persistence/RateLimiter"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimit.make({ model: "gpt-4o", deployment: "azure-east", rpm: 600, tpm: 150_000 })
 *   const permit = yield* limiter.acquire(1_200, "2 seconds") // or ThrottledError
 *   // ... call the deployment; it reports 900 tokens used
 *   yield* limiter.settle(permit, 900)
 *   yield* limiter.succeeded
 * }).pipe(Effect.provide(RateLimit.layerStoresMemory))
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as RateLimiter from "effect/persistence/RateLimiter"
import * as Schema from "effect/Schema"
import { DurationText, PositiveInt } from "./internal/configSchema.js"
import * as internal from "./internal/rateLimit.js"
import type * as LlmError from "./LlmError.js"

/**
 * How the rate adapts to the provider's 429s, as plain data. `decrease` multiplies the rate at
 * each 429 (default 0.5), never below `floor` times the configured rate (default 0.1); each
 * success adds `increase` times the configured rate (default 0.05), up to the configured rate.
 * `cooldown` is how long the deployment gets no calls after a 429 that gave no `retry-after`
 * (default `"1 second"`); with one, the cooldown is the provider's.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Adaptive = Schema.Struct({
  decrease: Schema.optionalKey(
    Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1, exclusiveMinimum: true }))
  ),
  increase: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 }))),
  floor: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1, exclusiveMinimum: true }))),
  cooldown: Schema.optionalKey(DurationText({ positive: false }))
})

/**
 * How a deployment's rate reacts to 429s, as decoded by the `Adaptive` schema. Every field is
 * optional: `decrease` (0.5), `increase` (0.05), `floor` (0.1) are shares of the configured rate,
 * `cooldown` (`"1 second"`) a duration.
 *
 * @example
 * ```ts
 * import type { RateLimit } from "@resilient-llm/core"
 *
 * // halve the rate at a 429 (never below a quarter), win back 10% per success
 * const adaptive: RateLimit.Adaptive = { decrease: 0.5, floor: 0.25, increase: 0.1, cooldown: "5 seconds" }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Adaptive extends Schema.Schema.Type<typeof Adaptive> {}

/**
 * A deployment's limits as plain data: requests per minute, tokens per minute (prompt and
 * completion together, as providers count them), and the adaptive policy (`false` turns it off:
 * no cooldown, no change of rate).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Limits = Schema.Struct({
  rpm: Schema.optionalKey(PositiveInt),
  tpm: Schema.optionalKey(PositiveInt),
  adaptive: Schema.optionalKey(Schema.Union([Adaptive, Schema.Literal(false)]))
})

/**
 * A deployment's limits, as decoded by the `Limits` schema: `rpm` (requests per minute) and
 * `tpm` (tokens per minute), each a whole number of at least 1 and unlimited when absent, and the
 * `adaptive` policy (on with its defaults when absent, `false` to keep the rate fixed).
 *
 * @since 0.2.0
 * @category models
 */
export interface Limits extends Schema.Schema.Type<typeof Limits> {}

/**
 * What `RateLimit.make` takes: the deployment's `Limits`, and the names it is known by. `model`
 * and `deployment` name it in `ThrottledError` and in metrics; `key` is where its buckets and
 * adaptive state are kept in the stores (the deployment's name, or the model's, by default), so
 * two limiters with one key share their limits.
 *
 * @example
 * ```ts
 * import type { RateLimit } from "@resilient-llm/core"
 *
 * const options: RateLimit.Options = { model: "gpt-4o", deployment: "azure-east", rpm: 600, tpm: 150_000 }
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Options extends Limits {
  /** Named in refusals and metrics. */
  readonly model: string
  readonly deployment?: string | undefined
  /** The key of the limits in the stores; the deployment (or model) name by default. */
  readonly key?: string | undefined
}

/**
 * A deployment's adaptive state: the share of its configured rate it may use now, and the time
 * (epoch milliseconds) until which it is cooling down after a 429.
 *
 * @since 0.2.0
 * @category models
 */
export interface AdaptiveState {
  readonly factor: number
  readonly cooldownUntil: number
}

/**
 * The adaptive store could not be read or written.
 *
 * @since 0.2.0
 * @category errors
 */
export class AdaptiveStoreError extends Data.TaggedError("AdaptiveStoreError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `The adaptive rate store failed: ${this.reason}`
  }
}

/**
 * Where each deployment's adaptive state lives. Each operation is atomic for its key. A key never
 * written reads as `{ factor: 1, cooldownUntil: 0 }`.
 *
 * @since 0.2.0
 * @category services
 */
export class AdaptiveStore extends Context.Service<AdaptiveStore, {
  readonly get: (key: string) => Effect.Effect<AdaptiveState, AdaptiveStoreError>
  /** A 429: multiplies the factor by `decrease` (not below `floor`), cools down until at least `cooldownUntil`. */
  readonly throttled: (options: {
    readonly key: string
    readonly decrease: number
    readonly floor: number
    readonly cooldownUntil: number
  }) => Effect.Effect<AdaptiveState, AdaptiveStoreError>
  /** A success: adds `increase` to the factor, up to 1. */
  readonly succeeded: (options: {
    readonly key: string
    readonly increase: number
  }) => Effect.Effect<AdaptiveState, AdaptiveStoreError>
}>()("@resilient-llm/core/RateLimit/AdaptiveStore") {}

/**
 * An `AdaptiveStore` in this process's memory. A key is forgotten once it is back at its full
 * rate and no longer cooling down.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerAdaptiveStoreMemory: Layer.Layer<AdaptiveStore> = Layer.sync(AdaptiveStore, internal.memoryStore)

/**
 * Everything `make` needs, in memory: Effect's `RateLimiter` over its in-memory store, and an
 * in-memory `AdaptiveStore`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerStoresMemory: Layer.Layer<RateLimiter.RateLimiter | AdaptiveStore> = Layer.mergeAll(
  RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreMemory)),
  layerAdaptiveStoreMemory
)

/**
 * What a call took from the limits, to be settled when it ends.
 *
 * @since 0.2.0
 * @category models
 */
export interface Permit {
  /** The tokens taken from the tokens-per-minute limit (0 without one). */
  readonly tokens: number
  /** The adaptive factor when the permit was granted. */
  readonly factor: number
}

/**
 * The limits of a deployment now.
 *
 * @since 0.2.0
 * @category models
 */
export interface Status {
  readonly factor: number
  /** The limits after the adaptive factor, `undefined` where none is configured. */
  readonly rpm: number | undefined
  readonly tpm: number | undefined
  /** Milliseconds of cooldown left, 0 when none. */
  readonly cooldownMs: number
}

/**
 * One deployment's limiter.
 *
 * @since 0.2.0
 * @category models
 */
export interface Limiter {
  readonly options: Options
  /**
   * Takes one request and `tokens` from the limits now, or fails with `ThrottledError` naming the
   * first limit without room (the cooldown, then requests, then tokens) and when room is expected.
   * A refused call takes nothing.
   */
  readonly tryAcquire: (tokens: number) => Effect.Effect<Permit, LlmError.ThrottledError>
  /**
   * `tryAcquire`, waiting for room as long as the limits say room comes within `maxWait`; past
   * that, the refusal at once (nothing is waited for in vain).
   */
  readonly acquire: (tokens: number, maxWait: Duration.Input) => Effect.Effect<Permit, LlmError.ThrottledError>
  /**
   * Corrects the tokens the permit took to what the call used (`usedTokens`, from its `usage`);
   * without a count the estimate stands.
   */
  readonly settle: (permit: Permit, usedTokens: number | undefined) => Effect.Effect<void>
  /** A call succeeded: the rate rises by `increase`, when it is below the configured one. */
  readonly succeeded: Effect.Effect<void>
  /** The provider answered 429: the rate falls by `decrease`, and the deployment cools down. */
  readonly rateLimited: (retryAfter: Option.Option<Duration.Duration>) => Effect.Effect<void>
  readonly status: Effect.Effect<Status>
}

/**
 * The limits describe no limiter.
 *
 * @since 0.2.0
 * @category errors
 */
export class RateLimitConfigError extends Data.TaggedError("RateLimitConfigError")<{
  readonly reason: string
}> {
  override get message(): string {
    return `The rate limit is misconfigured: ${this.reason}`
  }
}

/**
 * Builds a deployment's limiter over the `RateLimiter` and `AdaptiveStore` in context. Fails with
 * `RateLimitConfigError` when a limit is not a whole number of at least 1 or the adaptive policy
 * is out of range. A store that fails lets calls through and logs a warning: a limiter is not
 * worth an outage.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make: (
  options: Options
) => Effect.Effect<Limiter, RateLimitConfigError, RateLimiter.RateLimiter | AdaptiveStore> = internal.make

/**
 * The tokens a request is expected to use before it is sent: its prompt, at four characters a
 * token (text parts of multi-part messages included) plus a few tokens per message, and its
 * output, `max_tokens` (or `max_completion_tokens`) when set, else `defaultOutput` (256 unless
 * given).
 *
 * @since 0.2.0
 * @category accessors
 */
export const estimateTokens: (
  request: { readonly messages: ReadonlyArray<unknown>; readonly max_tokens?: number | null | undefined },
  options?: { readonly defaultOutput?: number }
) => { readonly input: number; readonly output: number } = internal.estimateTokens
