/**
 * The circuit breaker service: validates the options, keeps one cell with the state machine's
 * circuit per key, applies events to it, and announces every transition (metrics, a log line,
 * `changes`).
 *
 * Concurrency. An event is applied by synchronous code that reads the key's circuit, computes the
 * next one (the machine is pure) and writes it back without yielding: no other fiber can run in
 * between, so the change is atomic, as a `Ref.modify` is, without an effect per change (a call
 * makes two: its admission and its outcome). Most events change no state (a call admitted while
 * closed, an outcome counted) and go no further. An event that makes a transition is applied
 * again under one lock per breaker, and its transition is announced before the lock is released:
 * that way `changes`, the gauge and the log see transitions in the order they were made, and an
 * opening can step the break `Schedule` (an effect) before it commits. The lock is only ever
 * taken for transitions, which are rare, so the thousand fibers of a busy key do not queue on it.
 *
 * Shared circuits. With a shared store (`CircuitBreaker.CurrentStore`, set by `Stores.layerRedis`)
 * the same events are applied to the store's copy of the circuit by compare-and-set instead (see
 * circuitBreakerStore.ts), the cell following every copy read or written and serving as the view
 * the events go on with while the store is away. The store is chosen once, when the breaker is
 * made: in memory, a call takes the synchronous path above and never asks whether a store is set.
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

const noTickets: ReadonlyArray<Machine.Ticket> = []

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

/** One key's circuit, replaced as a whole on every change. */
class Cell {
  constructor(public circuit: Machine.Circuit) {}
  /**
   * With a slow-call threshold: the calls admitted and not yet settled or counted as slow, oldest
   * first (from `head`; the array is compacted as it empties).
   */
  inFlight: Array<InFlight> | undefined = undefined
  head = 0
  /** Whether a timer waits for the oldest call in flight to become slow. */
  timer = false
}

/** An admitted call, while slow calls count before they end. */
class InFlight {
  constructor(readonly ticket: Machine.Ticket) {}
  /** Settled, or already counted as a slow failure: its outcome is decided. */
  done = false
}

/** What one run of `protect` was admitted with, once it was: what its outcome needs. */
class Admitted {
  ticket: Machine.Ticket | undefined = undefined
  /** Its place among the calls in flight, with a slow-call threshold. */
  entry: InFlight | undefined = undefined
  /** The timer that fails a probe after `maxProbeDuration`. */
  deadline: Fiber.Fiber<void> | undefined = undefined
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
    // chosen once: the memory path below never looks at it again
    const shared = yield* CircuitBreaker.CurrentStore
    const lock = yield* Semaphore.make(1)
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<CircuitBreaker.Transition>(), PubSub.shutdown)
    // created on a key's first use and never dropped: one small cell per model name
    const circuits = new Map<string, Cell>()

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

    const cellFor = (key: string, now: number): Cell => {
      const existing = circuits.get(key)
      if (existing !== undefined) return existing
      const created = new Cell(Machine.closed(0, now))
      circuits.set(key, created)
      return created
    }

    const wake = (key: string, afterMillis: number): Effect.Effect<Fiber.Fiber<void>> =>
      Effect.sleep(Duration.millis(afterMillis)).pipe(
        Effect.andThen(Effect.suspend(() => {
          const cell = circuits.get(key)
          return cell === undefined ? Effect.void : Effect.asVoid(apply(key, cell, Machine.advance(settings)))
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

    // Slow calls in flight. A call that has run longer than `slowCallThreshold` counts as a failure
    // from that moment, before it ends: every event on the key first counts the calls in flight
    // that have become slow (oldest first; only the oldest needs checking while none has), and its
    // commit marks them, so each counts once and its own outcome, when it comes, counts no more.
    const slowAt = (cell: Cell, now: number): ReadonlyArray<Machine.Ticket> => {
      const queue = cell.inFlight
      if (queue === undefined || slowCallMillis === undefined) return noTickets
      let slow: Array<Machine.Ticket> | undefined
      for (let i = cell.head; i < queue.length; i++) {
        const entry = queue[i]
        if (entry.done) continue
        if (now - entry.ticket.startedAt <= slowCallMillis) break
        ;(slow ??= []).push(entry.ticket)
      }
      return slow ?? noTickets
    }

    const markSlow = (cell: Cell, now: number): void => {
      const queue = cell.inFlight
      if (queue === undefined || slowCallMillis === undefined) return
      while (cell.head < queue.length) {
        const entry = queue[cell.head]
        if (!entry.done && now - entry.ticket.startedAt <= slowCallMillis) break
        entry.done = true
        cell.head++
      }
      if (cell.head === queue.length) {
        queue.length = 0
        cell.head = 0
      } else if (cell.head > 1024 && cell.head * 2 > queue.length) {
        queue.splice(0, cell.head)
        cell.head = 0
      }
    }

    const tracked = <A>(cell: Cell, event: Machine.Event<A>): Machine.Event<A> =>
      slowCallMillis === undefined ? event : (circuit, now, next) => {
        const slow = slowAt(cell, now)
        return slow.length === 0
          ? event(circuit, now, next)
          : Machine.andThen(
            Machine.countSlow(settings, slow)(circuit, now, next),
            (counted) => event(counted, now, next)
          )
      }

    // Applies an event under the lock, announcing its transitions before releasing it. An event
    // that needs the next break gets it from the schedule and is applied again; only transitions
    // change the schedule's state, and they all hold the lock, so that break is still the next.
    const applyLocked = <A>(key: string, cell: Cell, untracked: Machine.Event<A>): Effect.Effect<A> => {
      const event = tracked(cell, untracked)
      const attempt = (now: number, next: Machine.NextBreak | undefined): Effect.Effect<A> =>
        Effect.suspend(() => {
          const circuit = cell.circuit
          const step = event(circuit, now, next)
          if (step === Machine.NeedsBreak) {
            return Effect.flatMap(nextBreak(circuit, now), (found) => attempt(now, found))
          }
          cell.circuit = step.circuit
          markSlow(cell, now)
          return Effect.as(announce(key, step.changes, now), step.result)
        })
      return Effect.uninterruptible(
        lock.withPermits(1)(Effect.clockWith((clock) => attempt(clock.currentTimeMillisUnsafe(), undefined)))
      )
    }

    // The fast path: the event is applied to the cell at once when it makes no transition, and
    // under the lock otherwise. A cell is changed only by synchronous code that reads and writes it
    // without yielding, which is what makes the change atomic: no other fiber runs in between.
    const applyAt = <A>(key: string, cell: Cell, event: Machine.Event<A>, now: number): Effect.Effect<A> => {
      const step = tracked(cell, event)(cell.circuit, now, undefined)
      if (step === Machine.NeedsBreak || step.changes.length > 0) return applyLocked(key, cell, event)
      cell.circuit = step.circuit
      markSlow(cell, now)
      return Effect.succeed(step.result)
    }

    const applyLocal = <A>(key: string, cell: Cell, event: Machine.Event<A>): Effect.Effect<A> =>
      Effect.clockWith((clock) => applyAt(key, cell, event, clock.currentTimeMillisUnsafe()))

    // Circuits in a shared store (Redis): the same events, slow calls in flight here included,
    // applied to the store's copy by compare-and-set. `cached` starts from the copy this instance
    // last read or wrote instead of reading it again (a write is checked against the store anyway).
    const seen = new Map<string, SharedStore.Versioned>()
    const applyShared =
      (store: SharedStore.SharedCircuits) =>
      <A>(key: string, cell: Cell, untracked: Machine.Event<A>, cached?: boolean): Effect.Effect<A> => {
        const event = tracked(cell, untracked)
        const attempt = (
          next: Machine.NextBreak | undefined,
          known: SharedStore.Versioned | undefined,
          conflicts: number
        ): Effect.Effect<A> =>
          Effect.flatMap(known === undefined ? store.read(key) : Effect.succeed(known), (copy) => {
            if (copy === SharedStore.Unavailable) return applyLocal(key, cell, untracked)
            return Effect.clockWith((clock) => {
              const now = clock.currentTimeMillisUnsafe()
              const circuit = copy.circuit ?? Machine.closed(0, now)
              const step = event(circuit, now, next)
              if (step === Machine.NeedsBreak) {
                return Effect.flatMap(nextBreak(circuit, now), (found) => attempt(found, copy, conflicts))
              }
              if (step.circuit === circuit) {
                seen.set(key, copy)
                cell.circuit = circuit
                markSlow(cell, now)
                return Effect.succeed(step.result)
              }
              return Effect.flatMap(store.compareAndSet(key, copy.version, step.circuit), (written) => {
                if (written === SharedStore.Unavailable) return applyLocal(key, cell, untracked)
                if ("found" in written) {
                  // another instance wrote first: the event applies to what it wrote
                  return conflicts < MAX_CONFLICTS
                    ? attempt(undefined, written.found, conflicts + 1)
                    : Effect.andThen(
                      Effect.logWarning("circuit kept changing in the shared store; this event applies locally").pipe(
                        Effect.annotateLogs({ "llm.model": key })
                      ),
                      applyLocal(key, cell, untracked)
                    )
                }
                seen.set(key, { circuit: step.circuit, version: written.written })
                cell.circuit = step.circuit
                markSlow(cell, now)
                return Effect.as(announce(key, step.changes, now), step.result)
              })
            })
          })
        return attempt(undefined, cached === true ? seen.get(key) : undefined, 0)
      }

    const apply: <A>(key: string, cell: Cell, event: Machine.Event<A>, cached?: boolean) => Effect.Effect<A> =
      shared === undefined ? applyLocal : applyShared(shared)

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
    const slowCallMillis = config.slowCallMillis
    const countsSuccessAsNothing = settings.trip._tag === "ConsecutiveFailures"

    // An admitted call's outcome: `undefined` when it changes nothing, or it makes no transition
    // and is applied here; otherwise the effect that applies it under the lock.
    const settle = (
      key: string,
      cell: Cell,
      ticket: Machine.Ticket,
      exit: Exit.Exit<unknown, unknown>,
      now: number
    ): Effect.Effect<void> | undefined => {
      const outcome = classify(config, exit, now - ticket.startedAt)
      const circuit = cell.circuit
      if (
        outcome === "success" && countsSuccessAsNothing && circuit._tag === "Closed" &&
        circuit.epoch === ticket.epoch && circuit.consecutiveFailures === 0 && slowCallMillis === undefined
      ) return undefined
      const event = Machine.complete(settings, ticket, outcome)
      const step = tracked(cell, event)(circuit, now, undefined)
      if (step === Machine.NeedsBreak || step.changes.length > 0) return Effect.asVoid(applyLocked(key, cell, event))
      cell.circuit = step.circuit
      markSlow(cell, now)
      return undefined
    }

    // Admission and outcome are decided synchronously in the calling fiber, with its `Clock`.
    //
    // The common case, a closed circuit, admits without changing anything (as `Machine.admit`
    // decides it), and a success that finds no failure to forget changes nothing either: neither
    // builds an event, and neither reads the clock unless a slow call or a failure needs the time.
    // Its finalizer is put in place right after the admission; a fiber interrupted between the two
    // never ran the call, and the finalizer would have counted that interruption as nothing.
    //
    // Any other admission (open, half-open, a transition) changes the circuit, so its finalizer is
    // in place before it is made: an admitted call is always settled, a probe's slot always freed.
    const protectLocal = (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
      Effect.withFiber((fiber): Effect.Effect<A, E | LlmError.CircuitOpenError, R> => {
        const cell = circuits.get(key) ?? cellFor(key, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
        const circuit = cell.circuit
        if (circuit._tag === "Closed" && slowCallMillis === undefined) {
          const epoch = circuit.epoch
          // the finalizer runs in this fiber, with the same `Clock`
          return Effect.onExitPrimitive(self, (exit) => settleClosed(key, cell, epoch, fiber, exit), true)
        }
        const clock = fiber.getRef(Clock.Clock)
        const admitted = new Admitted()
        return Effect.onExitPrimitive(
          Effect.withFiber((): Effect.Effect<A, E | LlmError.CircuitOpenError, R> => {
            const now = clock.currentTimeMillisUnsafe()
            const step = admit(cell.circuit, now, undefined)
            if (step !== Machine.NeedsBreak && step.changes.length === 0) {
              cell.circuit = step.circuit
              return run(key, cell, admitted, step.result, self)
            }
            return Effect.flatMap(
              applyLocked(key, cell, admit),
              (admission) => run(key, cell, admitted, admission, self)
            )
          }),
          (exit) => {
            const { deadline, entry, ticket } = admitted
            if (ticket === undefined) return undefined
            const outcome = () => {
              const now = clock.currentTimeMillisUnsafe()
              if (entry === undefined) return settle(key, cell, ticket, exit, now)
              // counted as a slow failure already: only the calls behind it may be due
              if (entry.done) return settleCounted(key, cell, now)
              entry.done = true
              return settle(key, cell, ticket, exit, now)
            }
            if (deadline === undefined) return outcome()
            return Effect.andThen(Fiber.interrupt(deadline), Effect.suspend(() => outcome() ?? Effect.void))
          }
        )
      })

    // The outcome of a call admitted by a closed circuit in `epoch`, without a slow-call threshold.
    const settleClosed = (
      key: string,
      cell: Cell,
      epoch: number,
      fiber: Fiber.Fiber<unknown, unknown>,
      exit: Exit.Exit<unknown, unknown>
    ): Effect.Effect<void> | undefined => {
      const circuit = cell.circuit
      if (
        countsSuccessAsNothing && Exit.isSuccess(exit) && circuit._tag === "Closed" && circuit.epoch === epoch &&
        circuit.consecutiveFailures === 0
      ) return undefined
      const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
      return settle(key, cell, { epoch, probe: undefined, startedAt: now }, exit, now)
    }

    // Puts an admitted call in the key's queue of calls in flight, and makes sure a timer waits for
    // the oldest of them to become slow (so the circuit's transitions and `changes` are timely
    // even when no other call touches the key).
    const watch = <A, E, R>(
      key: string,
      cell: Cell,
      admitted: Admitted,
      ticket: Machine.Ticket,
      self: Effect.Effect<A, E, R>
    ): Effect.Effect<A, E, R> => {
      const entry = new InFlight(ticket)
      admitted.entry = entry
      ;(cell.inFlight ??= []).push(entry)
      if (cell.timer) return self
      cell.timer = true
      return Effect.andThen(Effect.uninterruptible(slowTimer(key, cell, ticket.startedAt)), self)
    }

    const slowTimer = (key: string, cell: Cell, from: number): Effect.Effect<unknown> =>
      Effect.clockWith((clock) => {
        const threshold = slowCallMillis ?? 0
        const wait = Math.max(0, from + threshold + 1 - clock.currentTimeMillisUnsafe())
        return Effect.sleep(Duration.millis(wait)).pipe(
          Effect.andThen(Effect.suspend(() => {
            cell.timer = false
            return apply(key, cell, Machine.advance(settings))
          })),
          Effect.andThen(Effect.suspend(() => {
            const queue = cell.inFlight
            if (cell.timer || queue === undefined) return Effect.void
            for (let i = cell.head; i < queue.length; i++) {
              if (queue[i].done) continue
              cell.timer = true
              return slowTimer(key, cell, queue[i].ticket.startedAt)
            }
            return Effect.void
          })),
          Effect.interruptible,
          Effect.forkIn(scope)
        )
      })

    // A call ended that had already counted as slow: nothing of its own to count.
    const settleCounted = (key: string, cell: Cell, now: number): Effect.Effect<void> | undefined => {
      const step = tracked(cell, Machine.current(settings))(cell.circuit, now, undefined)
      if (step === Machine.NeedsBreak || step.changes.length > 0) {
        return Effect.asVoid(applyLocked(key, cell, Machine.current(settings)))
      }
      cell.circuit = step.circuit
      markSlow(cell, now)
      return undefined
    }

    const run = <A, E, R>(
      key: string,
      cell: Cell,
      admitted: Admitted,
      admission: Machine.Admission,
      self: Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | LlmError.CircuitOpenError, R> => {
      if (admission._tag === "Refused") return refuse(key, admission)
      admitted.ticket = admission.ticket
      const watched = slowCallMillis === undefined ? self : watch(key, cell, admitted, admission.ticket, self)
      if (admission.ticket.probe === undefined) return watched
      // Marks the spans the probe opens (its attempt span), not the caller's current one.
      const probe = Effect.annotateSpans(watched, "llm.breaker.probe", true)
      if (!Number.isFinite(settings.maxProbeMillis)) return probe
      return Effect.flatMap(Effect.uninterruptible(wake(key, settings.maxProbeMillis)), (fiber) => {
        admitted.deadline = fiber
        return probe
      })
    }

    // With a shared store, every admission and outcome goes through it: the admission reads the
    // store's copy, and the outcome starts from the copy the call was admitted on.
    const protectShared = (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.clockWith((clock) => {
          const cell = circuits.get(key) ?? cellFor(key, clock.currentTimeMillisUnsafe())
          const admitted = new Admitted()
          return Effect.flatMap(
            apply(key, cell, admit),
            (admission): Effect.Effect<A, E | LlmError.CircuitOpenError, R> =>
              Effect.onExit(run(key, cell, admitted, admission, restore(self)), (exit) => {
                const { deadline, ticket } = admitted
                // a refused call was never admitted: it has no outcome to count
                if (ticket === undefined) return Effect.void
                const settled = Effect.suspend(() =>
                  settleShared(key, cell, admitted, ticket, exit, clock.currentTimeMillisUnsafe())
                )
                return deadline === undefined ? settled : Effect.andThen(Fiber.interrupt(deadline), settled)
              })
          )
        })
      )

    // The outcome of a call admitted through the shared store, counted there.
    const settleShared = (
      key: string,
      cell: Cell,
      admitted: Admitted,
      ticket: Machine.Ticket,
      exit: Exit.Exit<unknown, unknown>,
      now: number
    ): Effect.Effect<unknown> => {
      const entry = admitted.entry
      if (entry !== undefined) {
        // counted as a slow failure already: only the calls behind it may be due
        if (entry.done) {
          return slowAt(cell, now).length === 0 ? Effect.void : apply(key, cell, Machine.current(settings), true)
        }
        entry.done = true
      }
      const outcome = classify(config, exit, now - ticket.startedAt)
      return apply(key, cell, Machine.complete(settings, ticket, outcome), true)
    }

    const protect = shared === undefined ? protectLocal : protectShared

    // A key not used here may still have a circuit in the shared store.
    const state = (key: string): Effect.Effect<CircuitBreaker.State> =>
      Effect.clockWith((clock) => {
        const cell = circuits.get(key)
        if (cell === undefined && shared === undefined) return Effect.succeed<CircuitBreaker.State>("closed")
        return Effect.map(
          apply(key, cell ?? cellFor(key, clock.currentTimeMillisUnsafe()), Machine.current(settings)),
          (circuit) => stateOf[circuit._tag]
        )
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
          Effect.clockWith((clock) => {
            const now = clock.currentTimeMillisUnsafe()
            const cell = cellFor(key, now)
            return Effect.map(
              shared === undefined
                ? applyAt(key, cell, Machine.current(settings), now)
                : apply(key, cell, Machine.current(settings)),
              (circuit) => statusOf(key, circuit, clock.currentTimeMillisUnsafe())
            )
          })
      )
    )

    const reset = (key: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        const cell = circuits.get(key)
        return cell === undefined ? Effect.void : apply(key, cell, Machine.reset(settings))
      })

    const isolate = (key: string): Effect.Effect<void> =>
      Effect.clockWith((clock) => {
        const now = clock.currentTimeMillisUnsafe()
        const cell = cellFor(key, now)
        return shared === undefined
          ? applyAt(key, cell, Machine.isolate(settings), now)
          : apply(key, cell, Machine.isolate(settings))
      })

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
