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
import { count, duration, finite, optionalFunction, show } from "./options.js"

/** @internal */
export const defaults = {
  base: Duration.millis(250),
  factor: 2,
  maxDelay: Duration.seconds(10),
  retries: 3,
  jitter: { min: 0.8, max: 1.2 },
  maxWait: Duration.seconds(10)
} as const

/**
 * The backoff's numbers, checked: milliseconds, the factor, the number of retries, and the
 * jitter's bounds (none without jitter).
 *
 * @internal
 */
export interface BackoffConfig {
  readonly baseMillis: number
  readonly factor: number
  readonly maxDelayMillis: number
  readonly retries: number
  readonly jitter: Option.Option<{ readonly min: number; readonly max: number }>
}

/**
 * The whole policy, checked.
 *
 * @internal
 */
export interface Config<E> extends BackoffConfig {
  readonly while: (error: E) => boolean
  readonly maxWait: Duration.Duration
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const checkJitter = (
  name: string,
  jitter: unknown
): Option.Option<{ readonly min: number; readonly max: number }> | string => {
  if (jitter === false) return Option.none()
  if (jitter === undefined || jitter === true) return Option.some(defaults.jitter)
  if (!isRecord(jitter)) return `${name} must be true, false or { min, max }, got ${show(jitter)}`
  const min = finite(`${name}.min`, jitter.min ?? defaults.jitter.min, { min: 0 })
  if (typeof min === "string") return min
  const max = finite(`${name}.max`, jitter.max ?? Math.max(min, defaults.jitter.max), { min })
  if (typeof max === "string") return max
  return Option.some({ min, max })
}

/**
 * Checks the backoff's options; `prefix` names where they sit (`"retry."` inside a chain's
 * options). Returns why they describe no backoff, or the config.
 *
 * @internal
 */
export const checkBackoff = (options: Retry.ScheduleOptions | undefined, prefix = ""): BackoffConfig | string => {
  const given: Retry.ScheduleOptions = options ?? {}
  // the types say an object; a config file may say anything
  const raw: unknown = given
  if (!isRecord(raw)) {
    return prefix === ""
      ? `options must be an object, got ${show(raw)}`
      : `${prefix.slice(0, -1)} must be an object of Retry options, got ${show(raw)}`
  }
  const base = duration(`${prefix}base`, given.base ?? defaults.base, { zero: true })
  if (typeof base === "string") return base
  const factor = finite(`${prefix}factor`, given.factor ?? defaults.factor, { min: 1 })
  if (typeof factor === "string") return factor
  const maxDelay = duration(`${prefix}maxDelay`, given.maxDelay ?? defaults.maxDelay, { zero: true, infinite: true })
  if (typeof maxDelay === "string") return maxDelay
  const retries = count(`${prefix}retries`, given.retries ?? defaults.retries, 0)
  if (typeof retries === "string") return retries
  const jitter = checkJitter(`${prefix}jitter`, given.jitter)
  if (typeof jitter === "string") return jitter
  return {
    baseMillis: Duration.toMillis(base),
    factor,
    maxDelayMillis: Duration.toMillis(maxDelay),
    retries,
    jitter
  }
}

/**
 * Checks the policy's options: the backoff's, `while` and `maxWait`.
 *
 * @internal
 */
export const check = <E>(options: Retry.Options<E> | undefined, prefix = ""): Config<E> | string => {
  const backoff = checkBackoff(options, prefix)
  if (typeof backoff === "string") return backoff
  const given: Retry.Options<E> = options ?? {}
  const notAFunction = optionalFunction(`${prefix}while`, given.while)
  if (notAFunction !== undefined) return notAFunction
  const maxWait = duration(`${prefix}maxWait`, given.maxWait ?? defaults.maxWait, { zero: true, infinite: true })
  if (typeof maxWait === "string") return maxWait
  return { ...backoff, while: given.while ?? LlmError.isRetryable, maxWait }
}

/** A step's output and delay are the same: the wait before the next retry. */
const wait = (delay: Duration.Duration): Effect.Effect<[Duration.Duration, Duration.Duration]> =>
  Effect.succeed([delay, delay])

/** The delay before retry number `attempt` (from 1), or none when the retries are spent. */
const delayOf = (config: BackoffConfig) => {
  const { baseMillis, factor, jitter, maxDelayMillis, retries } = config
  // The cap applies after the jitter, so no delay ever exceeds `maxDelay`; whole milliseconds
  // keep virtual times and logs exact.
  const capped = (millis: number) => Option.some(Duration.millis(Math.floor(Math.min(millis, maxDelayMillis))))
  return (attempt: number): Effect.Effect<Option.Option<Duration.Duration>> => {
    if (attempt > retries) return Effect.succeed(Option.none())
    const exponential = baseMillis * Math.pow(factor, attempt - 1)
    return Option.match(jitter, {
      onNone: () => Effect.succeed(capped(exponential)),
      onSome: ({ max, min }) => Effect.map(Random.nextBetween(min, max), (factor) => capped(exponential * factor))
    })
  }
}

/**
 * The backoff alone: its input is ignored, its output is the delay before the next retry.
 *
 * @internal
 */
export const backoff = (config: BackoffConfig): Schedule.Schedule<Duration.Duration, unknown> => {
  const delay = delayOf(config)
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
 * A schedule that fails with `error` at its first step: what a misconfigured policy is, so
 * `Effect.retry` fails with it instead of retrying.
 *
 * @internal
 */
export const refusing = <E>(error: E): Schedule.Schedule<never, unknown, E> =>
  Schedule.fromStepWithMetadata(Effect.fail(error))

/**
 * The whole policy, one step per failed attempt with its error as input. It stops on an error
 * `while` rejects and on a `retryAfter` longer than `maxWait`; otherwise it waits the backoff's
 * delay, and at least `retryAfter`. With `deadline` (epoch millis by `Clock`), it also stops when
 * the next retry would start at or after it, and then runs `onStop`.
 *
 * @internal
 */
export const policy = <E>(
  config: Config<E>,
  deadline?: { readonly at: number; readonly onStop: Effect.Effect<void> }
): Schedule.Schedule<Duration.Duration, E> => {
  const shouldRetry = config.while
  const maxWait = config.maxWait
  const delay = delayOf(config)
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

/**
 * Checks `withTimeout`'s options: a model name and a positive time limit (`Duration.infinity`
 * is no limit).
 *
 * @internal
 */
export const checkTimeout = (
  options: Retry.TimeoutOptions
): { readonly model: string; readonly timeout: Duration.Duration } | string => {
  const raw: unknown = options
  if (!isRecord(raw)) return `options must be an object, got ${show(raw)}`
  if (typeof options.model !== "string" || options.model.trim() === "") {
    return `model must be a model name, got ${show(options.model)}`
  }
  const timeout = duration("timeout", options.timeout, { infinite: true })
  if (typeof timeout === "string") return timeout
  return { model: options.model, timeout }
}
