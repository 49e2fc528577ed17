/**
 * The same resilience stack built with each library, so every benchmark compares like with like:
 * retry (3 retries, exponential from 250 ms), a 30 s timeout per attempt and a circuit breaker
 * (5 consecutive failures, 30 s break), around a call that returns a promise. Ours is
 * `Fallback.chain` over one model with the same options, which adds the fallback layer and its
 * observability on top. Every Effect runtime here also gets `DiscardLogs`.
 */
import { CircuitBreaker } from "@resilient-llm/core"
import {
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleAll,
  retry,
  timeout,
  TimeoutStrategy,
  wrap
} from "cockatiel"
import type { CircuitBreakerPolicy, IPolicy } from "cockatiel"
import { Layer, Logger, Tracer } from "effect"
import OpossumBreaker from "opossum"

export const attemptTimeoutMs = 30_000
export const breakMs = 30_000
export const retries = 3
export const tripAfter = 5

/**
 * The loggers of every Effect runtime in the benchmarks: one that drops each record. Our code still
 * builds its log records (it skips them only when no logger is installed, or below the minimum
 * level), so what is measured is the library's work, not the console's. `Logger.layer([])` would
 * install no logger at all, and measure less than a real application pays.
 */
export const DiscardLogs: Layer.Layer<never> = Logger.layer([Logger.make(() => {})])

/**
 * A tracer installed as an application installs one (OpenTelemetry, Datadog), for the rows that
 * measure spans: it keeps each span in memory, as Effect's default tracer does, and exports it
 * nowhere, so what is measured is our spans, not an exporter. Without an installed tracer the
 * patterns make no spans (Effect's default exports nothing; see `Observability.tracing`).
 */
export const KeepSpans: Layer.Layer<never> = Layer.succeed(
  Tracer.Tracer,
  Tracer.make({ span: (options) => new Tracer.NativeSpan(options) })
)

/** Our breaker's options: open after `tripAfter` consecutive failures, for `breakMs`. */
export const breakerOptions: CircuitBreaker.Options = {
  trip: CircuitBreaker.consecutiveFailures(tripAfter),
  breakDuration: breakMs
}

/** cockatiel's breaker with the same policy. */
export const cockatielBreaker = (): CircuitBreakerPolicy =>
  circuitBreaker(handleAll, { halfOpenAfter: breakMs, breaker: new ConsecutiveBreaker(tripAfter) })

/** opossum's breaker options closest to the same policy (it counts a failure rate over a volume). */
export const opossumBreakerOptions = {
  resetTimeout: breakMs,
  errorThresholdPercentage: 50,
  volumeThreshold: tripAfter
} as const

/** cockatiel: `wrap(retry, circuitBreaker, timeout)`, the order its README recommends. */
export const cockatielStack = (): IPolicy => {
  const retryPolicy = retry(handleAll, {
    maxAttempts: retries,
    backoff: new ExponentialBackoff({ initialDelay: 250 })
  })
  const breakerPolicy = cockatielBreaker()
  // Aggressive: stop waiting at the deadline (and abort the signal), as our timeout interrupts.
  const timeoutPolicy = timeout(attemptTimeoutMs, TimeoutStrategy.Aggressive)
  return wrap(retryPolicy, breakerPolicy, timeoutPolicy)
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * opossum has a breaker with a timeout but no retry: the retry is the loop its users write
 * around `fire`.
 */
export const opossumStack = <A>(call: () => Promise<A>): {
  readonly run: () => Promise<A>
  readonly breaker: OpossumBreaker<[], A>
} => {
  const breaker = new OpossumBreaker<[], A>(call, { timeout: attemptTimeoutMs, ...opossumBreakerOptions })
  const run = async (): Promise<A> => {
    for (let attempt = 0;; attempt++) {
      try {
        return await breaker.fire()
      } catch (error) {
        if (attempt >= retries || breaker.opened) throw error
        await sleep(250 * 2 ** attempt)
      }
    }
  }
  return { run, breaker }
}
