/**
 * The circuit breaker service: validates the options, keeps one `Ref` of the state machine per
 * key, applies events to it, and announces every transition (metrics, a log line, `changes`).
 *
 * Concurrency. An event is applied with one `Ref.modify`, which is atomic, so concurrent calls on
 * a key never see or build a half-made state. Most events change no state (a call admitted while
 * closed, an outcome counted) and go no further. An event that makes a transition is applied
 * again under one lock per breaker, and its transition is announced before the lock is released:
 * that way `changes`, the gauge and the log see transitions in the order they were made, and an
 * opening can step the break `Schedule` (an effect) before it commits. The lock is only ever
 * taken for transitions, which are rare, so the thousand fibers of a busy key do not queue on it.
 *
 * Time. Transitions that time makes (a break elapsing, a probe running too long) are applied by
 * whatever touches the key first: a call, `state`, `snapshot`, or the timer the breaker starts
 * for exactly that moment. The timers make `changes` and the gauge timely; the state never
 * depends on them running on time.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import * as CircuitBreaker from "../CircuitBreaker.js"
import * as LlmError from "../LlmError.js"
import * as Observability from "../Observability.js"
import * as Machine from "./circuitBreakerMachine.js"
import * as SharedStore from "./circuitBreakerStore.js"
import * as Window from "./circuitBreakerWindow.js"
import { count, duration, optionalDuration, optionalFunction, show } from "./options.js"

const DEFAULT_THRESHOLD = 5
const DEFAULT_BUCKETS = 10
const DEFAULT_BREAK = Duration.seconds(30)
const DEFAULT_MAX_PROBE = Duration.minutes(1)
// writes another instance beat in a row before an event gives up on the shared store
const MAX_CONFLICTS = 64

// Errors that say the model was not at fault: the request was (another model would refuse it
// too). The client's own refusals (a nested breaker, a rate limit, a bulkhead, a budget: nothing
// reached the model) are `LlmError.isRefusal`, and a rejected answer counts only when its check
// asks to.
const notTheModels: ReadonlySet<string> = new Set<LlmError.LlmError["_tag"]>([
  "BadRequestError",
  "ContextLengthError",
  "ContentFilterError",
  "CircuitOpenError"
])

/** @internal */
export const defaultIsFailure = (error: unknown): boolean =>
  !(LlmError.isLlmError(error) &&
    (notTheModels.has(error._tag) || LlmError.isRefusal(error) ||
      (error._tag === "AnswerRejectedError" && !error.countsForBreaker)))

const stateOf: Record<Machine.Phase, CircuitBreaker.State> = {
  Closed: "closed",
  Open: "open",
  HalfOpen: "half-open",
  Isolated: "isolated"
}

// the `resilient_llm_breaker_state` gauge: an isolated circuit refuses calls, as an open one does
const gaugeOf: Record<Machine.Phase, number> = { Closed: 0, HalfOpen: 1, Open: 2, Isolated: 2 }

interface Config {
  readonly settings: Machine.Settings
  /** Milliseconds, or the schedule of break delays. */
  readonly breakDuration: number | Schedule.Schedule<unknown, number>
  readonly slowCallMillis: number | undefined
  readonly isFailure: (error: unknown) => boolean
}

// A duration option in milliseconds, its default when absent.
const millisOf = (
  name: string,
  input: Duration.Input | undefined,
  fallback: Duration.Duration,
  infinite: boolean
): number | string => {
  const checked = duration(name, input ?? fallback, { infinite })
  return typeof checked === "string" ? checked : Duration.toMillis(checked)
}

const validateTrip = (trip: CircuitBreaker.Trip): Machine.Trip | string => {
  if (trip._tag === "ConsecutiveFailures") {
    const threshold = count("the consecutive failures threshold", trip.threshold)
    return typeof threshold === "string" ? threshold : { _tag: "ConsecutiveFailures", threshold }
  }
  if (!(typeof trip.threshold === "number" && trip.threshold > 0 && trip.threshold <= 1)) {
    return `the failure rate threshold must be in (0, 1], got ${show(trip.threshold)}`
  }
  const minimumCalls = count("minimumCalls", trip.minimumCalls)
  if (typeof minimumCalls === "string") return minimumCalls
  const buckets = count("buckets", trip.buckets ?? DEFAULT_BUCKETS)
  if (typeof buckets === "string") return buckets
  const window = duration("the failure rate window", trip.window)
  if (typeof window === "string") return window
  const windowMillis = Duration.toMillis(window)
  if (windowMillis / buckets < 1) {
    return `the failure rate window (${windowMillis} ms) must be at least 1 ms per bucket (${buckets} buckets)`
  }
  return {
    _tag: "FailureRate",
    threshold: trip.threshold,
    minimumCalls,
    bucketMillis: windowMillis / buckets,
    buckets
  }
}

const validate = (options: CircuitBreaker.Options): Config | string => {
  const trip = validateTrip(options.trip ?? CircuitBreaker.consecutiveFailures(DEFAULT_THRESHOLD))
  if (typeof trip === "string") return trip
  const halfOpenProbes = count("halfOpenProbes", options.halfOpenProbes ?? 1)
  if (typeof halfOpenProbes === "string") return halfOpenProbes
  const maxProbeMillis = millisOf("maxProbeDuration", options.maxProbeDuration, DEFAULT_MAX_PROBE, true)
  if (typeof maxProbeMillis === "string") return maxProbeMillis
  const breakDuration = Schedule.isSchedule(options.breakDuration)
    ? options.breakDuration
    : millisOf("breakDuration", options.breakDuration, DEFAULT_BREAK, false)
  if (typeof breakDuration === "string") return breakDuration
  const slowCall = optionalDuration("slowCallThreshold", options.slowCallThreshold)
  if (typeof slowCall === "string") return slowCall
  const notAFunction = optionalFunction("isFailure", options.isFailure)
  if (notAFunction !== undefined) return notAFunction
  return {
    settings: { trip, halfOpenProbes, maxProbeMillis },
    breakDuration,
    slowCallMillis: slowCall === undefined ? undefined : Duration.toMillis(slowCall),
    isFailure: options.isFailure ?? defaultIsFailure
  }
}

/** How an admitted call ended, for the breaker. */
const classify = (config: Config, exit: Exit.Exit<unknown, unknown>, durationMillis: number): Machine.Outcome => {
  if (Exit.isSuccess(exit)) {
    return config.slowCallMillis !== undefined && durationMillis > config.slowCallMillis ? "failure" : "success"
  }
  const failure = Cause.findErrorOption(exit.cause)
  if (Option.isSome(failure)) return config.isFailure(failure.value) ? "failure" : "neutral"
  return Cause.hasInterruptsOnly(exit.cause) ? "neutral" : "failure"
}

const logTransition = (transition: CircuitBreaker.Transition): Effect.Effect<void> => {
  const annotations: Record<string, unknown> = {
    "llm.model": transition.key,
    "llm.pattern": "breaker",
    "breaker.from": transition.from,
    "breaker.to": transition.to,
    "breaker.reason": transition.reason
  }
  if (transition.breakDuration !== undefined) {
    annotations["breaker.break_ms"] = Duration.toMillis(transition.breakDuration)
  }
  const log = transition.to === "open"
    ? Effect.logWarning("circuit opened")
    : transition.to === "isolated"
    ? Effect.logWarning("circuit isolated")
    : transition.to === "closed"
    ? Effect.logInfo("circuit closed")
    : Effect.logInfo("circuit half-open")
  return Effect.annotateLogs(log, annotations)
}

/** @internal */
export const make = (
  options: CircuitBreaker.Options = {}
): Effect.Effect<CircuitBreaker.Service, CircuitBreaker.CircuitBreakerConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const config = validate(options)
    if (typeof config === "string") return yield* new CircuitBreaker.CircuitBreakerConfigError({ reason: config })
    const settings = config.settings
    const breakDuration = config.breakDuration

    // The break of opening number `openings` (from 1) since the circuit last closed: the schedule
    // is stepped from its start that many times, its input the opening's number, against a clock
    // that moves by each delay, so a schedule that measures elapsed time sees the time spent open.
    // A Schedule's state lives in its step function, so a circuit keeps only its count of openings
    // (a number, not a closure per key) and a break is the same however often it is computed.
    // Undefined when the schedule ends before that opening.
    const scheduledBreak = (
      schedule: Schedule.Schedule<unknown, number>,
      openings: number,
      now: number
    ): Effect.Effect<number | undefined> =>
      Effect.flatMap(Schedule.toStep(schedule), (step) => {
        const loop = (opening: number, at: number, last: number | undefined): Effect.Effect<number | undefined> =>
          opening > openings ? Effect.succeed(last) : Effect.flatMap(
            Effect.exit(step(at, opening)),
            (exit) => {
              if (Exit.isFailure(exit)) return Effect.succeed(last)
              const millis = Math.max(0, Duration.toMillis(exit.value[1]))
              return loop(opening + 1, at + millis, millis)
            }
          )
        return loop(1, now, undefined)
      })

    // the schedule's first delay, computed once now: a schedule that ends at once is a configuration
    // error here rather than a surprise at the first opening
    if (typeof breakDuration !== "number") {
      const first = yield* scheduledBreak(breakDuration, 1, yield* Clock.currentTimeMillis)
      if (first === undefined) {
        return yield* new CircuitBreaker.CircuitBreakerConfigError({
          reason: "the breakDuration schedule ends before its first delay"
        })
      }
    }

    const scope = yield* Effect.scope
    const lock = yield* Semaphore.make(1)
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<CircuitBreaker.Transition>(), PubSub.shutdown)
    // created on a key's first use and never dropped: one small `Ref` per model name
    const circuits = new Map<string, Ref.Ref<Machine.Circuit>>()

    const nextBreak = (circuit: Machine.Circuit, now: number): Effect.Effect<Machine.NextBreak> => {
      const previous = Machine.breakState(circuit)
      const openings = (previous?.openings ?? 0) + 1
      if (typeof breakDuration === "number") return Effect.succeed({ millis: breakDuration, openings })
      // a schedule that has ended keeps its last delay
      return Effect.map(
        scheduledBreak(breakDuration, openings, now),
        (millis) => ({ millis: millis ?? previous?.lastMillis ?? 0, openings })
      )
    }

    const circuitFor = (key: string): Effect.Effect<Ref.Ref<Machine.Circuit>> =>
      Effect.suspend(() => {
        const existing = circuits.get(key)
        if (existing !== undefined) return Effect.succeed(existing)
        return Effect.map(Clock.currentTimeMillis, (now) => {
          const created = circuits.get(key) ?? Ref.makeUnsafe<Machine.Circuit>(Machine.closed(0, now))
          circuits.set(key, created)
          return created
        })
      })

    const wake = (key: string, afterMillis: number): Effect.Effect<Fiber.Fiber<void>> =>
      Effect.sleep(Duration.millis(afterMillis)).pipe(
        Effect.andThen(Effect.suspend(() => {
          const ref = circuits.get(key)
          return ref === undefined ? Effect.void : Effect.asVoid(apply(key, ref, Machine.advance(settings)))
        })),
        // forked from finalizers and from the lock's uninterruptible section: the timer itself
        // must stay interruptible, so a probe that ends and the breaker's scope can stop it
        Effect.interruptible,
        Effect.forkIn(scope)
      )

    const announce = (key: string, changes: ReadonlyArray<Machine.Change>, at: number): Effect.Effect<void> =>
      Effect.forEach(changes, (change) => {
        const transition: CircuitBreaker.Transition = {
          key,
          from: stateOf[change.from],
          to: stateOf[change.to],
          at,
          reason: change.reason,
          ...(change.breakMillis === undefined ? {} : { breakDuration: Duration.millis(change.breakMillis) })
        }
        return Effect.all([
          Metric.update(Metric.withAttributes(Observability.breakerState, { model: key }), gaugeOf[change.to]),
          Metric.update(
            Metric.withAttributes(Observability.breakerTransitions, {
              model: key,
              from: transition.from,
              to: transition.to
            }),
            1
          ),
          logTransition(transition),
          // after the breaker's scope closed, publishing would interrupt the caller: skip it
          Effect.suspend(() => PubSub.isShutdownUnsafe(pubsub) ? Effect.void : PubSub.publish(pubsub, transition)),
          change.breakMillis === undefined ? Effect.void : wake(key, change.breakMillis)
        ], { discard: true })
      }, { discard: true })

    // Applies an event under the lock, announcing its transitions before releasing it. An event
    // that needs the next break gets it from the schedule and is applied again; only transitions
    // change the schedule's state, and they all hold the lock, so that break is still the next.
    const applyLocked = <A>(key: string, ref: Ref.Ref<Machine.Circuit>, event: Machine.Event<A>): Effect.Effect<A> => {
      type Attempt =
        | { readonly _tag: "Applied"; readonly step: Machine.Step<A> }
        | { readonly _tag: "NeedsBreak"; readonly circuit: Machine.Circuit }
      const attempt = (now: number, next: Machine.NextBreak | undefined): Effect.Effect<A> =>
        Effect.flatMap(
          Ref.modify(ref, (circuit): readonly [Attempt, Machine.Circuit] => {
            const step = event(circuit, now, next)
            return step === Machine.NeedsBreak
              ? [{ _tag: "NeedsBreak", circuit }, circuit]
              : [{ _tag: "Applied", step }, step.circuit]
          }),
          (outcome) =>
            outcome._tag === "Applied"
              ? Effect.as(announce(key, outcome.step.changes, now), outcome.step.result)
              : Effect.flatMap(nextBreak(outcome.circuit, now), (found) => attempt(now, found))
        )
      return Effect.uninterruptible(
        lock.withPermits(1)(Effect.flatMap(Clock.currentTimeMillis, (now) => attempt(now, undefined)))
      )
    }

    // The fast path: one `Ref.modify`, committed only when the event makes no transition. The time is
    // read from the calling fiber's `Clock` without an effect of its own: this runs twice per call.
    const applyLocal = <A>(key: string, ref: Ref.Ref<Machine.Circuit>, event: Machine.Event<A>): Effect.Effect<A> =>
      Effect.clockWith((clock) => {
        const now = clock.currentTimeMillisUnsafe()
        return Effect.flatMap(
          Ref.modify(ref, (circuit): readonly [Machine.Step<A> | undefined, Machine.Circuit] => {
            const step = event(circuit, now, undefined)
            return step === Machine.NeedsBreak || step.changes.length > 0 ? [undefined, circuit] : [step, step.circuit]
          }),
          (step) => step === undefined ? applyLocked(key, ref, event) : Effect.succeed(step.result)
        )
      })

    // Circuits in a shared store (Redis): the same events, applied to the store's copy by
    // compare-and-set (see circuitBreakerStore.ts); the local `Ref` follows every copy read or
    // written, and is the view the events go on with while the store is away.
    const seen = new Map<string, SharedStore.Versioned>()
    const applyShared =
      (shared: SharedStore.SharedCircuits) =>
      <A>(key: string, ref: Ref.Ref<Machine.Circuit>, event: Machine.Event<A>, cached?: boolean): Effect.Effect<A> => {
        const attempt = (
          next: Machine.NextBreak | undefined,
          known: SharedStore.Versioned | undefined,
          conflicts: number
        ): Effect.Effect<A> =>
          Effect.flatMap(known === undefined ? shared.read(key) : Effect.succeed(known), (copy) => {
            if (copy === SharedStore.Unavailable) return applyLocal(key, ref, event)
            return Effect.clockWith((clock) => {
              const now = clock.currentTimeMillisUnsafe()
              const circuit = copy.circuit ?? Machine.closed(0, now)
              const step = event(circuit, now, next)
              if (step === Machine.NeedsBreak) {
                return Effect.flatMap(nextBreak(circuit, now), (found) => attempt(found, copy, conflicts))
              }
              if (step.circuit === circuit) {
                seen.set(key, copy)
                return Effect.as(Ref.set(ref, circuit), step.result)
              }
              return Effect.flatMap(shared.compareAndSet(key, copy.version, step.circuit), (written) => {
                if (written === SharedStore.Unavailable) return applyLocal(key, ref, event)
                if ("found" in written) {
                  // another instance wrote first: the event applies to what it wrote
                  return conflicts < MAX_CONFLICTS
                    ? attempt(undefined, written.found, conflicts + 1)
                    : Effect.andThen(
                      Effect.logWarning("circuit kept changing in the shared store; this event applies locally").pipe(
                        Effect.annotateLogs({ "llm.model": key })
                      ),
                      applyLocal(key, ref, event)
                    )
                }
                seen.set(key, { circuit: step.circuit, version: written.written })
                return Effect.andThen(
                  Ref.set(ref, step.circuit),
                  Effect.as(announce(key, step.changes, now), step.result)
                )
              })
            })
          })
        return attempt(undefined, cached === true ? seen.get(key) : undefined, 0)
      }

    // the store is chosen once: the memory path is the function it always was
    const shared = yield* CircuitBreaker.CurrentStore
    const apply: <A>(
      key: string,
      ref: Ref.Ref<Machine.Circuit>,
      event: Machine.Event<A>,
      cached?: boolean
    ) => Effect.Effect<A> = shared === undefined ? applyLocal : applyShared(shared)

    const refuse = (
      key: string,
      refusal: Extract<Machine.Admission, { readonly _tag: "Refused" }>
    ): Effect.Effect<never, LlmError.CircuitOpenError> => {
      const attributes: Record<string, unknown> = {
        "llm.model": key,
        "llm.breaker.refused": true,
        "llm.breaker.state": stateOf[refusal.phase]
      }
      if (Number.isFinite(refusal.retryAfterMillis)) attributes["llm.breaker.retry_after_ms"] = refusal.retryAfterMillis
      // A span of its own: the caller's current span may be a whole fallback chain, whose other
      // models must not be labelled with this one.
      return Effect.fail(
        new LlmError.CircuitOpenError({ model: key, retryAfter: Duration.millis(refusal.retryAfterMillis) })
      ).pipe(Effect.withSpan("resilient-llm.breaker.refused", { attributes }, { captureStackTrace: false }))
    }

    const admit = Machine.admit(settings)

    const protect = (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(circuitFor(key), (ref) =>
          Effect.flatMap(
            apply(key, ref, admit),
            (admission): Effect.Effect<A, E | LlmError.CircuitOpenError, R> => {
              if (admission._tag === "Refused") return refuse(key, admission)
              const ticket = admission.ticket
              const settle = (exit: Exit.Exit<A, E>) =>
                Effect.clockWith((clock) =>
                  apply(
                    key,
                    ref,
                    Machine.complete(
                      settings,
                      ticket,
                      classify(config, exit, clock.currentTimeMillisUnsafe() - ticket.startedAt)
                    ),
                    // the copy the call was admitted on: a write is checked against the store anyway
                    true
                  )
                )
              if (ticket.probe === undefined) return Effect.onExit(restore(self), settle)
              // Marks the spans the probe opens (its attempt span), not the caller's current one.
              const probe = Effect.annotateSpans(restore(self), "llm.breaker.probe", true)
              if (!Number.isFinite(settings.maxProbeMillis)) return Effect.onExit(probe, settle)
              return Effect.flatMap(
                wake(key, settings.maxProbeMillis),
                (deadline) => Effect.onExit(probe, (exit) => Effect.andThen(Fiber.interrupt(deadline), settle(exit)))
              )
            }
          ))
      )

    const state = (key: string): Effect.Effect<CircuitBreaker.State> =>
      Effect.suspend(() => {
        const ref = circuits.get(key)
        return ref === undefined && shared === undefined
          ? Effect.succeed<CircuitBreaker.State>("closed")
          : ref === undefined
          ? Effect.flatMap(circuitFor(key), (created) =>
            Effect.map(apply(key, created, Machine.current(settings)), (circuit) => stateOf[circuit._tag]))
          : Effect.map(apply(key, ref, Machine.current(settings)), (circuit) =>
            stateOf[circuit._tag])
      })

    const statusOf = (key: string, circuit: Machine.Circuit, now: number): CircuitBreaker.CircuitStatus => {
      const trip = settings.trip
      const window = circuit._tag === "Closed" && trip._tag === "FailureRate"
        ? Window.totals(circuit.window, Window.bucketIndex(now, trip.bucketMillis), trip.buckets)
        : { calls: 0, failures: 0 }
      return {
        key,
        state: stateOf[circuit._tag],
        since: circuit.since,
        consecutiveFailures: circuit._tag === "Closed" ? circuit.consecutiveFailures : 0,
        windowCalls: window.calls,
        windowFailures: window.failures,
        openUntil: circuit._tag === "Open" ? circuit.until : undefined,
        breakMs: circuit._tag === "Open" || circuit._tag === "HalfOpen" ? circuit.breakMillis : undefined,
        probesRunning: circuit._tag === "HalfOpen" ? circuit.probes.length : 0,
        probesSucceeded: circuit._tag === "HalfOpen" ? circuit.successes : 0
      }
    }

    const snapshot: Effect.Effect<ReadonlyArray<CircuitBreaker.CircuitStatus>> = Effect.suspend(() =>
      Effect.forEach(
        Array.from(circuits.keys()).sort(),
        (key) =>
          Effect.flatMap(circuitFor(key), (ref) =>
            Effect.zipWith(
              apply(key, ref, Machine.current(settings)),
              Clock.currentTimeMillis,
              (circuit, now) => statusOf(key, circuit, now)
            ))
      )
    )

    const reset = (key: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        const ref = circuits.get(key)
        return ref === undefined ? Effect.void : apply(key, ref, Machine.reset(settings))
      })

    const isolate = (key: string): Effect.Effect<void> =>
      Effect.flatMap(circuitFor(key), (ref) => apply(key, ref, Machine.isolate(settings)))

    const service: CircuitBreaker.Service = {
      protect,
      state,
      snapshot,
      changes: Stream.fromPubSub(pubsub),
      subscribe: PubSub.subscribe(pubsub),
      reset,
      isolate
    }
    return service
  })
