/**
 * Retry schedules and per-attempt timeouts for model calls. `schedule` is the backoff alone
 * (exponential from 250 ms, factor 2, jittered through Effect's `Random`, capped, 3 retries);
 * `policy` feeds it the failed attempt's error so it retries only what `LlmError.isRetryable`
 * allows, waits at least a `RateLimitError`'s `retryAfter`, and gives up at once when that hint is
 * longer than the caller will wait; `withRetry` applies the policy to an effect; `withTimeout`
 * bounds one attempt with a `TimeoutError`. Everything is a `Schedule` or an `Effect`, so
 * `TestClock` moves every delay and a seeded `Random` makes the jitter reproducible.
 *
 * @example
 * ```ts
 * import { ChatClient, Retry } from "@resilient-llm/core"
 *
 * const answer = ChatClient.create({ model: "gpt-4o", messages: [{ role: "user", content: "Hi" }] }).pipe(
 *   Retry.withTimeout({ model: "gpt-4o", timeout: "20 seconds" }),
 *   Retry.withRetry({ retries: 2, maxWait: "5 seconds" })
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Schedule from "effect/Schedule"
import * as internal from "./internal/retry.js"
import type * as LlmError from "./LlmError.js"

/**
 * The numbers of the backoff. Every one is optional; the defaults give delays of about 250 ms,
 * 500 ms and 1 s.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduleOptions {
  /** The first delay; default 250 ms. */
  readonly base?: Duration.Input
  /** Each delay is the previous one times `factor`; default 2. */
  readonly factor?: number
  /** No delay is longer than this, jitter included; default 10 s. `retryAfter` may exceed it. */
  readonly maxDelay?: Duration.Input
  /** How many retries after the first attempt; default 3 (so at most 4 attempts). */
  readonly retries?: number
  /**
   * Multiplies each delay by a factor drawn uniformly from `[min, max)` with Effect's `Random`
   * (rounded down to the millisecond); default `true`, which is `{ min: 0.8, max: 1.2 }`. `false`
   * keeps the delays exact.
   */
  readonly jitter?: boolean | { readonly min?: number; readonly max?: number }
}

/**
 * The options of `policy` and `withRetry`: the backoff, which errors to retry, and how long a
 * provider's `retryAfter` may make the caller wait.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E = unknown> extends ScheduleOptions {
  /** Which errors are worth another attempt; default `LlmError.isRetryable`. */
  readonly while?: (error: E) => boolean
  /**
   * The longest `retryAfter` worth waiting for; default 10 s. A `RateLimitError` asking for more
   * ends the retries at once with that error, so a fallback chain moves on instead of sleeping.
   */
  readonly maxWait?: Duration.Input
}

/**
 * The options of `withTimeout`: the model the attempt calls (for the error) and its time limit.
 *
 * @since 0.1.0
 * @category models
 */
export interface TimeoutOptions {
  readonly model: string
  readonly timeout: Duration.Input
}

/**
 * The options describe no retry policy or timeout: a duration that is not one (`"soon"`, `NaN`)
 * or is negative, a count that is not a whole number, a `factor` below 1, jitter bounds out of
 * order, a `while` that is not a function. `reason` says which option and what it got.
 *
 * @since 0.1.0
 * @category errors
 */
export class RetryConfigError extends Data.TaggedError("RetryConfigError")<{
  readonly reason: string
}> {
  override get message(): string {
    return `The retry policy is misconfigured: ${this.reason}`
  }
}

/**
 * The backoff alone, for any `Effect.retry` or `Effect.repeat`: exponential from `base` by
 * `factor`, jittered unless `jitter: false`, each delay capped at `maxDelay`, `retries` times.
 * Its output is the delay before the next recurrence. Options that describe no backoff make a
 * schedule that fails with `RetryConfigError` at its first step: `Effect.retry` fails with it
 * when the effect first fails, instead of retrying.
 *
 * @example
 * ```ts
 * import { Retry } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * // 100 ms, 300 ms, 900 ms, 2 s, 2 s
 * const flaky = Effect.fail("boom").pipe(
 *   Effect.retry(Retry.schedule({ base: "100 millis", factor: 3, maxDelay: "2 seconds", retries: 5, jitter: false }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const schedule = (
  options?: ScheduleOptions
): Schedule.Schedule<Duration.Duration, unknown, RetryConfigError> => {
  const config = internal.checkBackoff(options)
  return typeof config === "string"
    ? internal.refusing(new RetryConfigError({ reason: config }))
    : internal.backoff(config)
}

/**
 * The retry policy for model calls, as a `Schedule` whose input is the error of the failed
 * attempt: it stops at once on an error `while` rejects (by default, one that is not
 * `LlmError.isRetryable`) and on a `RateLimitError` whose `retryAfter` exceeds `maxWait`;
 * otherwise it waits the backoff's delay or the `retryAfter`, whichever is longer. Its output is
 * the delay it chose. Options that describe no policy make a schedule that fails with
 * `RetryConfigError` at its first step, as `schedule`'s does.
 *
 * @since 0.1.0
 * @category constructors
 */
export const policy = <E = unknown>(
  options?: Options<E>
): Schedule.Schedule<Duration.Duration, E, RetryConfigError> => {
  const config = internal.check(options)
  return typeof config === "string"
    ? internal.refusing(new RetryConfigError({ reason: config }))
    : internal.policy(config)
}

/**
 * Retries an effect with `policy(options)`. When the retries end, the effect fails with the last
 * attempt's error. Options that describe no policy fail it with `RetryConfigError`, without
 * running the effect.
 *
 * @example
 * ```ts
 * import { ChatClient, Retry } from "@resilient-llm/core"
 *
 * const call = ChatClient.create({ model: "gpt-4o", messages: [{ role: "user", content: "Hi" }] })
 * const retried = call.pipe(Retry.withRetry({ retries: 5, maxDelay: "4 seconds" }))
 * const same = Retry.withRetry(call, { retries: 5, maxDelay: "4 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const withRetry: {
  <E0 = unknown>(
    options?: Options<E0>
  ): <A, E extends E0, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | RetryConfigError, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, options?: Options<E>): Effect.Effect<A, E | RetryConfigError, R>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(self: Effect.Effect<A, E, R>, options?: Options<E>): Effect.Effect<A, E | RetryConfigError, R> => {
    const config = internal.check(options)
    return typeof config === "string"
      ? Effect.fail(new RetryConfigError({ reason: config }))
      : Effect.retry(self, internal.policy(config))
  }
)

/**
 * Bounds one attempt: once `timeout` has passed, the attempt is interrupted (an HTTP request is
 * aborted) and the effect fails with `LlmError.TimeoutError` carrying `model` and `timeout`. Put
 * it inside `withRetry` so that each attempt, not the whole retry loop, gets the full time. An
 * answer that arrives exactly at the limit is served. A `timeout` that is not a positive
 * duration (`Duration.infinity` is no limit), or a blank `model`, fails with `RetryConfigError`
 * without running the attempt.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withTimeout: {
  (
    options: TimeoutOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | LlmError.TimeoutError | RetryConfigError, R>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    options: TimeoutOptions
  ): Effect.Effect<A, E | LlmError.TimeoutError | RetryConfigError, R>
} = dual(
  2,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    options: TimeoutOptions
  ): Effect.Effect<A, E | LlmError.TimeoutError | RetryConfigError, R> => {
    const config = internal.checkTimeout(options)
    return typeof config === "string"
      ? Effect.fail(new RetryConfigError({ reason: config }))
      : internal.timeout(self, config.model, config.timeout)
  }
)
