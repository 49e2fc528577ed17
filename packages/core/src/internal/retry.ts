/**
 * The retry policy as a `Schedule` fed with the failed attempt's error: exponential backoff,
 * optional jitter from `Random`, a cap, a number of retries, the provider's `retryAfter` as a
 * floor, a caller's maximum wait, and (for fallback chains) a deadline no retry may start past.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Pull from "effect/Pull"
import * as Random from "effect/Random"
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

/** A step's output and delay are the same: the wait before the next retry. */
const wait = (delay: Duration.Duration): Effect.Effect<[Duration.Duration, Duration.Duration]> =>
  Effect.succeed([delay, delay])

interface Backoff {
  /** The delay before retry number `attempt` (from 1), or none when the retries are spent. */
  readonly delay: (attempt: number) => Effect.Effect<Option.Option<Duration.Duration>>
}

const makeBackoff = (options: Retry.ScheduleOptions): Backoff => {
  const baseMillis = Duration.toMillis(Duration.fromInputUnsafe(options.base ?? defaults.base))
  const factor = nonNegative(options.factor, defaults.factor)
  const maxDelayMillis = Duration.toMillis(Duration.fromInputUnsafe(options.maxDelay ?? defaults.maxDelay))
  const retries = Math.floor(nonNegative(options.retries, defaults.retries))
  const bounds = jitterBounds(options.jitter)
  // The cap applies after the jitter, so no delay ever exceeds `maxDelay`; whole milliseconds
  // keep virtual times and logs exact.
  const capped = (millis: number) => Option.some(Duration.millis(Math.floor(Math.min(millis, maxDelayMillis))))
  return {
    delay: (attempt) => {
      if (attempt > retries) return Effect.succeed(Option.none())
      const exponential = baseMillis * Math.pow(factor, attempt - 1)
      return Option.match(bounds, {
        onNone: () => Effect.succeed(capped(exponential)),
        onSome: ({ max, min }) => Effect.map(Random.nextBetween(min, max), (jitter) => capped(exponential * jitter))
      })
    }
  }
}

/**
 * The backoff alone: its input is ignored, its output is the delay before the next retry.
 *
 * @internal
 */
export const backoff = (options: Retry.ScheduleOptions = {}): Schedule.Schedule<Duration.Duration, unknown> => {
  const { delay } = makeBackoff(options)
  return Schedule.fromStepWithMetadata(
    Effect.succeed((meta: Schedule.InputMetadata<unknown>) =>
      Effect.flatMap(delay(meta.attempt), (next) =>
        Option.match(next, {
          onNone: () => Cause.done(Duration.zero),
          onSome: wait
        }))
    )
  )
}

/**
 * The whole policy, one step per failed attempt with its error as input. It stops on an error
 * `while` rejects and on a `retryAfter` longer than `maxWait`; otherwise it waits the backoff's
 * delay, and at least `retryAfter`. With `deadline` (epoch millis by `Clock`), it also stops when
 * the next retry would start at or after it, and then runs `onStop`.
 *
 * @internal
 */
export const policy = <E>(
  options: Retry.Options<E> = {},
  deadline?: { readonly at: number; readonly onStop: Effect.Effect<void> }
): Schedule.Schedule<Duration.Duration, E> => {
  const shouldRetry: (error: E) => boolean = options.while ?? LlmError.isRetryable
  const maxWait = Duration.fromInputUnsafe(options.maxWait ?? defaults.maxWait)
  const { delay } = makeBackoff(options)
  const stop = Cause.done(Duration.zero)
  return Schedule.fromStepWithMetadata(Effect.succeed((meta: Schedule.InputMetadata<E>) => {
    const error = meta.input
    const retryAfter = LlmError.retryAfter(error)
    if (!shouldRetry(error) || Option.exists(retryAfter, (after) => Duration.isGreaterThan(after, maxWait))) {
      return stop
    }
    return Effect.flatMap(delay(meta.attempt), (next) => {
      if (Option.isNone(next)) return stop
      const wait = Option.match(retryAfter, {
        onNone: () => next.value,
        onSome: (after) => Duration.max(next.value, after)
      })
      const step = Effect.succeed([wait, wait] as [Duration.Duration, Duration.Duration])
      if (deadline === undefined) return step
      return Effect.flatMap(
        Clock.currentTimeMillis,
        (now) => now + Duration.toMillis(wait) < deadline.at ? step : Effect.andThen(deadline.onStop, stop)
      )
    })
  }))
}

/**
 * `Effect.retry(self, policy())`, except that the policy and its step function are made only once
 * `self` has failed: an attempt that succeeds at once, the common case, pays for neither. Each
 * retry runs with the step's `Schedule.CurrentMetadata`, as under `Effect.retry`; the first try
 * runs with the default metadata.
 *
 * @internal
 */
export const retrying = <A, E, R, Out, R2>(
  self: Effect.Effect<A, E, R>,
  policy: () => Schedule.Schedule<Out, E, never, R2>
): Effect.Effect<A, E, R | R2> =>
  Effect.catch(self, (first) =>
    Effect.flatMap(Schedule.toStepWithMetadata(policy()), (step) => {
      const loop = (error: E): Effect.Effect<A, E, R | R2> =>
        Pull.matchEffect(step(error), {
          onSuccess: (meta) => Effect.catch(Effect.provideService(self, Schedule.CurrentMetadata, meta), loop),
          onFailure: Effect.failCause,
          onDone: () => Effect.fail(error)
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
  Effect.timeoutOrElse(self, {
    duration: limit,
    orElse: () => Effect.fail(new LlmError.TimeoutError({ model, timeout: limit }))
  })
