/**
 * A circuit breaker per model: when a model keeps failing, the breaker takes it out of rotation so
 * requests skip it at once (`CircuitOpenError`, nothing sent) instead of waiting for it to fail
 * again; after a break it lets a few probe calls through, and their success brings the model back.
 *
 * ```text
 *            trip (failures)                break elapsed
 *   closed ─────────────────▶ open ─────────────────────────▶ half-open
 *     ▲                        ▲                                  │
 *     │                        └── a probe fails or runs too long ┤
 *     └─────────────────── every probe needed succeeds ───────────┘
 *
 *   isolate(key): any state ─▶ isolated (refuses everything)   reset(key): any state ─▶ closed
 * ```
 *
 * It is exact where hand-written breakers are not: half-open admits exactly `halfOpenProbes`
 * calls and refuses the rest; every state change is one atomic step (read, decide, write, with no
 * yield in between), so a thousand fibers on one key cannot race it; an outcome counts only in the period it was admitted in, so a
 * success that started before the circuit opened cannot close it; the request's own faults
 * (`BadRequestError`, `ContextLengthError`, `ContentFilterError`), interruptions and refusals of
 * a nested breaker are not failures, while a timeout inside `protect` (ours or `Effect.timeout`'s)
 * is; a probe that hangs reopens the circuit after `maxProbeDuration` instead of holding it
 * half-open; and every time comes from `Clock`, so `TestClock` drives every transition.
 *
 * @example
 * ```ts
 * import { ChatClient, CircuitBreaker } from "@resilient-llm/core"
 * import { Effect, Schedule } from "effect"
 *
 * const BreakerLive = CircuitBreaker.layer({
 *   trip: CircuitBreaker.failureRate({ threshold: 0.5, window: "1 minute", minimumCalls: 20 }),
 *   // 30 s, then 1 min, 2 min, ... up to 10 min while the model keeps failing its probes
 *   breakDuration: Schedule.min([Schedule.exponential("30 seconds"), Schedule.spaced("10 minutes")])
 * })
 *
 * const answer = ChatClient.create({ model: "gpt-4o", messages: [{ role: "user", content: "Hello" }] }).pipe(
 *   CircuitBreaker.protect("gpt-4o")
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type * as PubSub from "effect/PubSub"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as internal from "./internal/circuitBreaker.js"
import type * as SharedCircuits from "./internal/circuitBreakerStore.js"
import type * as LlmError from "./LlmError.js"

/**
 * The state of one key's circuit.
 *
 * - `closed`: calls run and their outcomes are counted.
 * - `open`: calls are refused with `CircuitOpenError` until the break has elapsed.
 * - `half-open`: up to `halfOpenProbes` calls run as probes; the rest are refused.
 * - `isolated`: forced open by `isolate` until `reset`; calls are refused and nothing probes.
 *
 * @since 0.1.0
 * @category models
 */
export type State = "closed" | "open" | "half-open" | "isolated"

/**
 * Why a circuit changed state.
 *
 * | reason | transition |
 * | --- | --- |
 * | `consecutive-failures` | closed to open: the failures in a row reached the threshold |
 * | `failure-rate` | closed to open: the failure rate over the window reached the threshold |
 * | `break-elapsed` | open to half-open |
 * | `probes-succeeded` | half-open to closed: every probe needed succeeded |
 * | `probe-failed` | half-open to open |
 * | `probe-timed-out` | half-open to open: a probe ran for `maxProbeDuration` |
 * | `isolated` | any state to isolated, by `isolate` |
 * | `reset` | any state to closed, by `reset` |
 *
 * @since 0.1.0
 * @category models
 */
export type Reason =
  | "consecutive-failures"
  | "failure-rate"
  | "break-elapsed"
  | "probes-succeeded"
  | "probe-failed"
  | "probe-timed-out"
  | "isolated"
  | "reset"

/**
 * One state change of one key's circuit, as `changes` emits it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transition {
  readonly key: string
  readonly from: State
  readonly to: State
  /** When it happened, in epoch milliseconds by `Clock`. */
  readonly at: number
  readonly reason: Reason
  /** On a transition to `open`: how long the circuit stays open before it admits a probe. */
  readonly breakDuration?: Duration.Duration
}

/**
 * Trip when `threshold` counted calls in a row have failed.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConsecutiveFailures {
  readonly _tag: "ConsecutiveFailures"
  readonly threshold: number
}

/**
 * Trip when, over the last `window` of time, at least `minimumCalls` calls were counted and the
 * share of them that failed is at least `threshold` (between 0 and 1). The window is kept as
 * `buckets` slots (default 10) of `window / buckets` each, so an outcome stops counting between
 * `window - window / buckets` and `window` after it was recorded (exactly `window` after, for an
 * outcome at the start of a slot), and memory does not grow with traffic.
 *
 * @since 0.1.0
 * @category models
 */
export interface FailureRate {
  readonly _tag: "FailureRate"
  readonly threshold: number
  readonly window: Duration.Input
  readonly minimumCalls: number
  readonly buckets?: number
}

/**
 * When a closed circuit opens.
 *
 * @since 0.1.0
 * @category models
 */
export type Trip = ConsecutiveFailures | FailureRate

/**
 * Trips the circuit when `threshold` counted calls in a row have failed; a success in between
 * starts the count over. The simplest trip, and the default (with a threshold of 5).
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "@resilient-llm/core"
 *
 * const BreakerLive = CircuitBreaker.layer({ trip: CircuitBreaker.consecutiveFailures(3) })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const consecutiveFailures = (threshold: number): ConsecutiveFailures => ({
  _tag: "ConsecutiveFailures",
  threshold
})

/**
 * Trips the circuit when, over the last `window`, at least `minimumCalls` calls were counted and
 * at least `threshold` (a share between 0 and 1) of them failed; see `FailureRate`. Suits models
 * with steady traffic, where a few failures in a row are noise.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "@resilient-llm/core"
 *
 * // open when half the calls of the last minute failed, once there were at least 20
 * const trip = CircuitBreaker.failureRate({ threshold: 0.5, window: "1 minute", minimumCalls: 20 })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const failureRate = (options: {
  readonly threshold: number
  readonly window: Duration.Input
  readonly minimumCalls: number
  readonly buckets?: number
}): FailureRate => ({ _tag: "FailureRate", ...options })

/**
 * Options of `CircuitBreaker.make` and `CircuitBreaker.layer`; every one has a default.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** When to open. Default: 5 consecutive failures. */
  readonly trip?: Trip
  /**
   * How long the circuit stays open before it admits probes. A duration is the same every time;
   * a `Schedule` gives the break of the first opening, then of each reopening after a failed
   * probe (its delays: `Schedule.exponential("30 seconds")` doubles it), and starts over from its
   * first delay once the circuit closes. A schedule that ends keeps its last delay. Default: 30
   * seconds.
   */
  readonly breakDuration?: Duration.Input | Schedule.Schedule<unknown, number>
  /**
   * How many calls half-open admits at once as probes; the circuit closes when that many probes
   * have succeeded, and reopens at the first one that fails. A probe that ends neither way (a
   * caller error, an interruption) frees its slot for another call. Default: 1.
   */
  readonly halfOpenProbes?: number
  /**
   * How long a probe may run: once it has run this long it counts as failed, the circuit reopens
   * and the slot is freed. The call itself is not interrupted (bound it with a timeout inside
   * `protect`, as `Fallback.chain`'s per-attempt timeout does); its outcome, when it comes, no
   * longer counts. `Duration.infinity` waits forever. Default: 1 minute.
   */
  readonly maxProbeDuration?: Duration.Input
  /**
   * A call that runs longer than this counts as a failure from that moment, while it still runs
   * (1 ms past the threshold: a call that ends exactly at it is on time): a model that hangs trips
   * its circuit without waiting for the calls' timeouts, and a slow call that is then interrupted
   * (a hedge answered first, its caller gave up) has counted. Each call counts once: its outcome,
   * when it comes, adds nothing. The breaker keeps its calls in flight in order to see them age,
   * and one timer per key wakes when the oldest becomes slow. Off by default.
   */
  readonly slowCallThreshold?: Duration.Input
  /**
   * Which errors of the protected effect count as failures of the model; the others count as
   * neither success nor failure. Default: `defaultIsFailure`, which counts every error but the
   * request's faults (`BadRequestError`, `ContextLengthError`, `ContentFilterError`) and a nested
   * breaker's `CircuitOpenError`. A defect always counts as a failure, an interruption never does.
   */
  readonly isFailure?: (error: unknown) => boolean
}

/**
 * One key's circuit in a `snapshot`, as plain data for a status page.
 *
 * @since 0.1.0
 * @category models
 */
export interface CircuitStatus {
  readonly key: string
  readonly state: State
  /** When the circuit entered its state (or the key was first used), in epoch milliseconds. */
  readonly since: number
  /** Closed: counted calls that failed in a row since the last success. */
  readonly consecutiveFailures: number
  /** Closed, failure-rate trip: calls and failures in the window now; 0 otherwise. */
  readonly windowCalls: number
  readonly windowFailures: number
  /** Open: when it admits a probe, in epoch milliseconds. */
  readonly openUntil: number | undefined
  /** Open and half-open: the break of the last opening, in milliseconds. */
  readonly breakMs: number | undefined
  /** Half-open: probes running now, and probes of this half-open period that succeeded. */
  readonly probesRunning: number
  readonly probesSucceeded: number
}

/**
 * What a breaker does: guard calls by key (the model name), and tell and change the state of each
 * key's circuit. `CircuitBreaker.make` builds one; the functions of this module reach the one in
 * context.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * Runs the effect through the circuit of `key` (the model name), or fails with
   * `CircuitOpenError` without running it. Wrap each single attempt, retries included, so every
   * attempt counts.
   */
  readonly protect: (
    key: string
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | LlmError.CircuitOpenError, R>
  /** The circuit's state now; `closed` for a key never used. */
  readonly state: (key: string) => Effect.Effect<State>
  /** Every key used so far, sorted by key. */
  readonly snapshot: Effect.Effect<ReadonlyArray<CircuitStatus>>
  /**
   * Every transition of every key from the moment the stream is run, in the order they happened.
   * Each run has its own unbounded buffer: the breaker never waits for a subscriber and a slow
   * one loses nothing (transitions are rare: a key changes state a few times per break at most).
   * Nothing is kept while nobody subscribes. The stream ends when the breaker's scope closes.
   */
  readonly changes: Stream.Stream<Transition>
  /**
   * Subscribes now and returns the subscription: every transition from the moment this effect
   * completes is in it, in order, until the scope closes (read it with `PubSub.take` or
   * `Stream.fromSubscription`). Use it instead of `changes` when
   * no transition may be missed between starting a subscriber and sending traffic (a stream only
   * subscribes once it runs, which may be after a forked fiber's first calls).
   */
  readonly subscribe: Effect.Effect<PubSub.Subscription<Transition>, never, Scope.Scope>
  /** Closes the circuit and forgets its outcomes, those of calls still running included. */
  readonly reset: (key: string) => Effect.Effect<void>
  /** Opens the circuit until `reset`: every call is refused and nothing probes. */
  readonly isolate: (key: string) => Effect.Effect<void>
}

/**
 * The service tag of the breaker that `protect`, `state`, `snapshot`, `changes`, `reset` and
 * `isolate` use, and that `Fallback.chain` takes as its `breaker` option. One breaker holds a
 * circuit per key, created on first use. Provide it with `CircuitBreaker.layer`.
 *
 * @since 0.1.0
 * @category services
 */
export class CircuitBreaker extends Context.Service<CircuitBreaker, Service>()("@resilient-llm/core/CircuitBreaker") {}

/**
 * The options describe no valid breaker.
 *
 * @since 0.1.0
 * @category errors
 */
export class CircuitBreakerConfigError extends Data.TaggedError("CircuitBreakerConfigError")<{
  readonly reason: string
}> {
  override get message(): string {
    return `The circuit breaker is misconfigured: ${this.reason}`
  }
}

/**
 * The default `isFailure`: every error counts as a failure of the model except the `LlmError`s
 * that say it was not at fault.
 *
 * | error | counts |
 * | --- | --- |
 * | `RateLimitError`, `TimeoutError`, `ServerError`, `ConnectionError`, `ResponseDecodeError`, `AuthenticationError`, `ModelNotFoundError` | yes |
 * | `BadRequestError`, `ContextLengthError`, `ContentFilterError` | no: the request is at fault, and another model would refuse it too |
 * | `CircuitOpenError`, `ThrottledError`, `BulkheadFullError`, `BudgetExceededError` | no: the client refused the call itself (a nested breaker, a rate limit, a bulkhead, a budget), so nothing reached the model |
 * | `AnswerRejectedError` | only when its check asked to (`Answer.countingForBreaker`) |
 * | any other error: `Cause.TimeoutError` from `Effect.timeout`, your own error from `Effect.timeoutOrElse`, another client's error | yes |
 *
 * Whatever runs inside `protect` is taken to be the call to the model, so an error the breaker
 * cannot place counts against it: a hang cut by any timeout is a failure, as it should be. Keep
 * your own checks of the request outside `protect`, or pass an `isFailure` that knows their
 * errors (defects always count, interruptions never do).
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "@resilient-llm/core"
 *
 * class InvalidPrompt extends Error {}
 *
 * const BreakerLive = CircuitBreaker.layer({
 *   isFailure: (error) => !(error instanceof InvalidPrompt) && CircuitBreaker.defaultIsFailure(error)
 * })
 * ```
 *
 * @since 0.1.0
 * @category predicates
 */
export const defaultIsFailure: (error: unknown) => boolean = internal.defaultIsFailure

/**
 * Where a breaker's circuits live: `undefined` (the default) keeps each in this process's memory;
 * `Stores.layerRedis` sets a store in Redis, where every instance building a breaker under the same
 * prefix shares each key's circuit: one instance's failures open it for all, and half-open admits
 * `halfOpenProbes` probes across all instances. `make` reads it when it builds the breaker.
 *
 * @since 0.2.0
 * @category references
 */
export const CurrentStore: Context.Reference<SharedCircuits.SharedCircuits | undefined> = Context.Reference<
  SharedCircuits.SharedCircuits | undefined
>("@resilient-llm/core/CircuitBreaker/CurrentStore", { defaultValue: () => undefined })

/**
 * Builds a breaker. Its timers (the end of a break, a probe's deadline) run in the `Scope`, and
 * closing it ends `changes`. Fails with `CircuitBreakerConfigError` when a threshold, count or
 * duration is not positive, a rate is outside (0, 1], the window is shorter than one millisecond
 * per bucket, or the break schedule ends before its first delay.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: Options) => Effect.Effect<Service, CircuitBreakerConfigError, Scope.Scope> = internal.make

/**
 * A layer of a breaker built by `make` with `options`, its timers running for as long as the layer
 * lives. Fails with `CircuitBreakerConfigError` for options that describe no valid breaker.
 *
 * @example
 * ```ts
 * import { ChatCompletion, CircuitBreaker, Fallback } from "@resilient-llm/core"
 * import { Effect, Schedule } from "effect"
 *
 * const BreakerLive = CircuitBreaker.layer({
 *   trip: CircuitBreaker.consecutiveFailures(5),
 *   breakDuration: Schedule.exponential("30 seconds"), // 30 s, then 1 min, 2 min... while probes fail
 *   halfOpenProbes: 2
 * })
 *
 * const program = Effect.gen(function*() {
 *   const breaker = yield* CircuitBreaker.CircuitBreaker
 *   const complete = Fallback.chain(["gpt-4o", "claude-sonnet"], { breaker, timeout: "20 seconds" })
 *   return yield* complete(ChatCompletion.prompt("Hello"))
 * }).pipe(Effect.provide(BreakerLive)) // and a ChatClient layer
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<CircuitBreaker, CircuitBreakerConfigError> =>
  Layer.effect(CircuitBreaker, make(options))

/**
 * Runs the effect through the circuit of `key` of the `CircuitBreaker` in context.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const call = Effect.succeed("answer")
 * const a = call.pipe(CircuitBreaker.protect("gpt-4o"))
 * const b = CircuitBreaker.protect(call, "gpt-4o")
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const protect: {
  (
    key: string
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | LlmError.CircuitOpenError, R | CircuitBreaker>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    key: string
  ): Effect.Effect<A, E | LlmError.CircuitOpenError, R | CircuitBreaker>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, key: string) =>
    Effect.flatMap(CircuitBreaker, (breaker) => breaker.protect(key)(self))
)

/**
 * The state of `key`'s circuit now, in the `CircuitBreaker` in context: `closed` for a key never
 * used.
 *
 * @since 0.1.0
 * @category accessors
 */
export const state = (key: string): Effect.Effect<State, never, CircuitBreaker> =>
  Effect.flatMap(CircuitBreaker, (breaker) => breaker.state(key))

/**
 * Every circuit of the `CircuitBreaker` in context as plain data (state, counts, when it reopens),
 * sorted by key: what a status page or a health endpoint shows.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const unavailable = CircuitBreaker.snapshot.pipe(
 *   Effect.map((circuits) => circuits.filter((c) => c.state === "open" || c.state === "isolated").map((c) => c.key))
 * )
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const snapshot: Effect.Effect<ReadonlyArray<CircuitStatus>, never, CircuitBreaker> = Effect.flatMap(
  CircuitBreaker,
  (breaker) => breaker.snapshot
)

/**
 * Every transition of every circuit of the `CircuitBreaker` in context, from the moment the stream
 * runs; see `Service.changes`, and `subscribe` when no transition may be missed.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "@resilient-llm/core"
 * import { Effect, Stream } from "effect"
 *
 * const logTransitions = CircuitBreaker.changes.pipe(
 *   Stream.runForEach((t) => Effect.log(`${t.key}: ${t.from} → ${t.to} (${t.reason})`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const changes: Stream.Stream<Transition, never, CircuitBreaker> = Stream.unwrap(
  Effect.map(CircuitBreaker, (breaker) => breaker.changes)
)

/**
 * A subscription to the transitions of the `CircuitBreaker` in context, taken at once; see
 * `Service.subscribe`.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "@resilient-llm/core"
 * import { Effect, Stream } from "effect"
 *
 * const alerts = Effect.gen(function*() {
 *   const transitions = yield* CircuitBreaker.subscribe // nothing from here on is missed
 *   yield* Stream.fromSubscription(transitions).pipe(
 *     Stream.filter((t) => t.to === "open"),
 *     Stream.runForEach((t) => Effect.logWarning(`${t.key}: circuit opened (${t.reason})`)),
 *     Effect.forkScoped
 *   )
 * })
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const subscribe: Effect.Effect<PubSub.Subscription<Transition>, never, CircuitBreaker | Scope.Scope> = Effect
  .flatMap(CircuitBreaker, (breaker) => breaker.subscribe)

/**
 * Closes `key`'s circuit in the `CircuitBreaker` in context and forgets its outcomes: for an
 * operator who knows the model is back, or to end an `isolate`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const reset = (key: string): Effect.Effect<void, never, CircuitBreaker> =>
  Effect.flatMap(CircuitBreaker, (breaker) => breaker.reset(key))

/**
 * Opens `key`'s circuit in the `CircuitBreaker` in context until `reset`: every call is refused
 * with `CircuitOpenError` and nothing probes. For taking a model out of rotation by hand (a bad
 * deployment, a cost incident) while fallbacks carry on.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const maintenance = Effect.gen(function*() {
 *   yield* CircuitBreaker.isolate("gpt-4o") // calls skip gpt-4o from now on
 *   // ... later
 *   yield* CircuitBreaker.reset("gpt-4o") // and it is back, closed
 * })
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const isolate = (key: string): Effect.Effect<void, never, CircuitBreaker> =>
  Effect.flatMap(CircuitBreaker, (breaker) => breaker.isolate(key))
