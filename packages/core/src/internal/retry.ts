/**
 * The retry policy as a `Schedule` fed with the failed attempt's error: exponential backoff,
 * optional jitter from `Random`, a cap, a number of retries, the provider's `retryAfter` as a
 * floor, a caller's maximum wait, and (for fallback chains) a deadline no retry may start past.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as LlmError from "../LlmError.js"
import type * as Retry from "../Retry.js"

/** @internal */
export const defaults = {
  base: Duration.millis(250),
  factor: 2,
  maxDelay: Duration.seconds(10),
  retries: 3,
  jitter: { min: 0.8, max: 1.2 },
  maxWait: Duration.seconds(10)
} as const

const nonNegative = (n: number | undefined, fallback: number): number =>
  n === undefined || Number.isNaN(n) ? fallback : Math.max(0, n)

const jitterBounds = (
  jitter: Retry.ScheduleOptions["jitter"]
): Option.Option<{ readonly min: number; readonly max: number }> => {
  if (jitter === false) return Option.none()
  if (jitter === undefined || jitter === true) return Option.some(defaults.jitter)
  const min = nonNegative(jitter.min, defaults.jitter.min)
  const max = nonNegative(jitter.max, defaults.jitter.max)
  return Option.some({ min: Math.min(min, max), max: Math.max(min, max) })
}

/**
 * The backoff alone: its input is ignored, its output is the delay before the next retry.
 *
 * @internal
 */
export const backoff = (options: Retry.ScheduleOptions = {}): Schedule.Schedule<Duration.Duration, unknown> => {
  const base = Duration.decode(options.base ?? defaults.base)
  const factor = nonNegative(options.factor, defaults.factor)
  const maxDelay = Duration.decode(options.maxDelay ?? defaults.maxDelay)
  const retries = Math.floor(nonNegative(options.retries, defaults.retries))
  const exponential = Schedule.exponential(base, factor)
  const jittered = Option.match(jitterBounds(options.jitter), {
    onNone: () => exponential,
    onSome: (bounds) => Schedule.jitteredWith(exponential, bounds)
  })
  return jittered.pipe(
    // The cap applies after the jitter, so no delay ever exceeds `maxDelay`; whole milliseconds
    // keep virtual times and logs exact.
    Schedule.modifyDelay((_, delay) => Duration.millis(Math.floor(Duration.toMillis(Duration.min(delay, maxDelay))))),
    Schedule.intersect(Schedule.recurs(retries)),
    Schedule.delays
  )
}

/**
 * The whole policy: the backoff, given the error as input. It stops on an error `while` rejects
 * and on a `retryAfter` longer than `maxWait`; otherwise it waits at least `retryAfter`. With
 * `deadlineAt` (epoch millis by `Clock`), it also stops when the next retry would start at or
 * after it, and reports that through `onDeadline`.
 *
 * @internal
 */
export const policy = <E>(
  options: Retry.Options<E> = {},
  deadline?: { readonly at: number; readonly onStop: Effect.Effect<void> }
): Schedule.Schedule<Duration.Duration, E> => {
  const shouldRetry: (error: E) => boolean = options.while ?? LlmError.isRetryable
  const maxWait = Duration.decode(options.maxWait ?? defaults.maxWait)
  const waitsTooLong = (error: E): boolean =>
    Option.exists(LlmError.retryAfter(error), (after) => Duration.greaterThan(after, maxWait))
  const schedule = backoff(options).pipe(
    Schedule.intersect(Schedule.identity<E>()),
    Schedule.whileInput((error: E) => shouldRetry(error) && !waitsTooLong(error)),
    Schedule.modifyDelay(([, error], delay) =>
      Option.match(LlmError.retryAfter(error), {
        onNone: () => delay,
        onSome: (after) => Duration.max(delay, after)
      })
    ),
    Schedule.delays
  )
  if (deadline === undefined) return schedule
  return Schedule.checkEffect(
    schedule,
    (_, delay) =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => now + Duration.toMillis(delay) < deadline.at ? Effect.succeed(true) : Effect.as(deadline.onStop, false)
      )
  )
}

/**
 * `Effect.retry(self, policy())`, except that the policy and its driver are made only once `self`
 * has failed: an attempt that succeeds at once, the common case, pays for neither. Each retry
 * runs with the driver's `Schedule.CurrentIterationMetadata`, as under `Effect.retry`; the first
 * try runs without one, and so reads the default metadata, which is the driver's initial value.
 *
 * @internal
 */
export const retrying = <A, E, R, Out, R2>(
  self: Effect.Effect<A, E, R>,
  policy: () => Schedule.Schedule<Out, E, R2>
): Effect.Effect<A, E, R | R2> =>
  Effect.catchAll(self, (first) =>
    Effect.flatMap(Schedule.driver(policy()), (driver) => {
      const again = Effect.provideServiceEffect(self, Schedule.CurrentIterationMetadata, Ref.get(driver.iterationMeta))
      const loop = (error: E): Effect.Effect<A, E, R | R2> =>
        Effect.matchEffect(driver.next(error), {
          onFailure: () => Effect.fail(error),
          onSuccess: () => Effect.catchAll(again, loop)
        })
      return loop(first)
    }))

/**
 * Fails with `TimeoutError` once `timeout` has passed, interrupting `self`.
 *
 * @internal
 */
export const timeout = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  model: string,
  limit: Duration.Duration
): Effect.Effect<A, E | LlmError.TimeoutError, R> =>
  Effect.timeoutFail(self, {
    duration: limit,
    onTimeout: () => new LlmError.TimeoutError({ model, timeout: limit })
  })
