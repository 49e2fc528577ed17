/**
 * The circuit breaker's state machine, as pure functions of one key's circuit, an event and the
 * time. Each event first brings the circuit up to date (a break that has elapsed makes it
 * half-open; a probe that has run too long reopens it), then applies itself, and returns the next
 * circuit, the transitions it went through and its result. Because nothing here has effects, the
 * service can apply an event inside `Ref.modify` and the tests can check the machine directly.
 *
 * Opening needs the next break duration, which comes from a `Schedule`, an effect. An event that
 * would open the circuit without being given one returns `NeedsBreak` and changes nothing; the
 * service computes the break for the circuit's next opening and applies the event again.
 *
 * Every transition increments the circuit's `epoch`. A call carries the epoch it was admitted in,
 * and its outcome counts only while the circuit is still in that epoch: a success from before the
 * circuit opened cannot close it, a probe that already timed out cannot decide anything.
 *
 * @internal
 */
import type * as CircuitBreaker from "../CircuitBreaker.js"
import * as Window from "./circuitBreakerWindow.js"

/** @internal */
export type Trip =
  | { readonly _tag: "ConsecutiveFailures"; readonly threshold: number }
  | {
    readonly _tag: "FailureRate"
    readonly threshold: number
    readonly minimumCalls: number
    readonly bucketMillis: number
    readonly buckets: number
  }

/** @internal */
export interface Settings {
  readonly trip: Trip
  readonly halfOpenProbes: number
  /** `Infinity` when probes may run forever. */
  readonly maxProbeMillis: number
}

/** @internal */
export interface Probe {
  readonly id: number
  readonly startedAt: number
}

/** @internal */
export interface Closed {
  readonly _tag: "Closed"
  readonly epoch: number
  readonly since: number
  readonly consecutiveFailures: number
  /** Only for the failure-rate trip, and only once an outcome was recorded. */
  readonly window: Window.Window | undefined
}

/** @internal */
export interface Open {
  readonly _tag: "Open"
  readonly epoch: number
  readonly since: number
  readonly until: number
  readonly breakMillis: number
  /** How many times the circuit has opened since it was last closed, this time included. */
  readonly openings: number
}

/** @internal */
export interface HalfOpen {
  readonly _tag: "HalfOpen"
  readonly epoch: number
  readonly since: number
  /** Probes running now. */
  readonly probes: ReadonlyArray<Probe>
  /** Probes of this half-open period that succeeded. */
  readonly successes: number
  readonly nextProbe: number
  readonly breakMillis: number
  readonly openings: number
}

/** @internal */
export interface Isolated {
  readonly _tag: "Isolated"
  readonly epoch: number
  readonly since: number
}

/** @internal */
export type Circuit = Closed | Open | HalfOpen | Isolated

/** @internal */
export type Phase = Circuit["_tag"]

/** @internal */
export type Reason = CircuitBreaker.Reason

/** @internal */
export interface Change {
  readonly from: Phase
  readonly to: Phase
  readonly reason: Reason
  /** The break the circuit opened for, on a change to `Open`. */
  readonly breakMillis: number | undefined
}

/** @internal */
export interface Step<A> {
  readonly circuit: Circuit
  readonly changes: ReadonlyArray<Change>
  readonly result: A
}

/** The next break duration, and how many openings it is the break of. @internal */
export interface NextBreak {
  readonly millis: number
  readonly openings: number
}

/** @internal */
export const NeedsBreak: unique symbol = Symbol.for("@resilient-llm/core/CircuitBreaker/NeedsBreak")

/** @internal */
export type NeedsBreak = typeof NeedsBreak

/** @internal */
export type Event<A> = (circuit: Circuit, now: number, next: NextBreak | undefined) => Step<A> | NeedsBreak

/** How a call ended, for the breaker. @internal */
export type Outcome = "success" | "failure" | "neutral"

/** What a call was admitted with. @internal */
export interface Ticket {
  readonly epoch: number
  /** The probe's id when the call is a half-open probe. */
  readonly probe: number | undefined
  readonly startedAt: number
}

/** @internal */
export type Admission =
  | { readonly _tag: "Admitted"; readonly ticket: Ticket }
  | {
    readonly _tag: "Refused"
    readonly phase: "Open" | "HalfOpen" | "Isolated"
    /** Until a probe may be admitted; `Infinity` while isolated. */
    readonly retryAfterMillis: number
  }

/** @internal */
export const closed = (epoch: number, since: number): Closed => ({
  _tag: "Closed",
  epoch,
  since,
  consecutiveFailures: 0,
  window: undefined
})

// Most events change nothing; their steps share one empty list of changes.
const noChanges: ReadonlyArray<Change> = []

const stay = <A>(circuit: Circuit, result: A): Step<A> => ({ circuit, changes: noChanges, result })

const move = <A>(circuit: Circuit, change: Change, result: A): Step<A> => ({ circuit, changes: [change], result })

/** Applies `f` to the circuit and result of a step, keeping the changes of both. @internal */
export const andThen = <A, B>(
  first: Step<A> | NeedsBreak,
  f: (circuit: Circuit, result: A) => Step<B> | NeedsBreak
): Step<B> | NeedsBreak => {
  if (first === NeedsBreak) return NeedsBreak
  const second = f(first.circuit, first.result)
  if (second === NeedsBreak) return NeedsBreak
  return first.changes.length === 0 ? second : {
    circuit: second.circuit,
    changes: [...first.changes, ...second.changes],
    result: second.result
  }
}

const open = <A>(
  from: Closed | HalfOpen,
  now: number,
  reason: Reason,
  next: NextBreak | undefined,
  result: A
): Step<A> | NeedsBreak =>
  next === undefined ? NeedsBreak : move(
    {
      _tag: "Open",
      epoch: from.epoch + 1,
      since: now,
      until: now + next.millis,
      breakMillis: next.millis,
      openings: next.openings
    },
    { from: from._tag, to: "Open", reason, breakMillis: next.millis },
    result
  )

const close = <A>(from: Circuit, now: number, reason: Reason, result: A): Step<A> =>
  move(closed(from.epoch + 1, now), { from: from._tag, to: "Closed", reason, breakMillis: undefined }, result)

/** The earliest time a running probe counts as failed, `Infinity` when none is running. @internal */
export const probeDeadline = (settings: Settings, circuit: HalfOpen): number => {
  let deadline = Infinity
  for (const probe of circuit.probes) deadline = Math.min(deadline, probe.startedAt + settings.maxProbeMillis)
  return deadline
}

/**
 * Brings the circuit up to date with the time: an elapsed break makes it half-open, a probe that
 * has run for `maxProbeMillis` or longer reopens it.
 *
 * @internal
 */
export const advance = (settings: Settings): Event<void> => (circuit, now, next) => {
  if (circuit._tag === "Open" && now >= circuit.until) {
    return move(
      {
        _tag: "HalfOpen",
        epoch: circuit.epoch + 1,
        since: now,
        probes: [],
        successes: 0,
        nextProbe: 0,
        breakMillis: circuit.breakMillis,
        openings: circuit.openings
      },
      { from: "Open", to: "HalfOpen", reason: "break-elapsed", breakMillis: undefined },
      undefined
    )
  }
  if (circuit._tag === "HalfOpen" && now >= probeDeadline(settings, circuit)) {
    return open(circuit, now, "probe-timed-out", next, undefined)
  }
  return stay(circuit, undefined)
}

/**
 * Admits a call or refuses it. Closed admits every call; half-open admits a call as a probe while
 * the probes running and the probes that succeeded are fewer than `halfOpenProbes`.
 *
 * @internal
 */
export const admit = (settings: Settings): Event<Admission> => (circuit, now, next) =>
  // `advance` leaves a closed circuit as it is: the common case needs no step of its own
  circuit._tag === "Closed"
    ? stay(circuit, { _tag: "Admitted", ticket: { epoch: circuit.epoch, probe: undefined, startedAt: now } })
    : andThen(advance(settings)(circuit, now, next), (current): Step<Admission> => {
      switch (current._tag) {
        case "Closed":
          return stay(current, { _tag: "Admitted", ticket: { epoch: current.epoch, probe: undefined, startedAt: now } })
        case "Open":
          return stay(current, { _tag: "Refused", phase: "Open", retryAfterMillis: current.until - now })
        case "Isolated":
          return stay(current, { _tag: "Refused", phase: "Isolated", retryAfterMillis: Infinity })
        case "HalfOpen": {
          if (current.probes.length + current.successes < settings.halfOpenProbes) {
            const probe: Probe = { id: current.nextProbe, startedAt: now }
            return stay(
              { ...current, probes: [...current.probes, probe], nextProbe: current.nextProbe + 1 },
              { _tag: "Admitted", ticket: { epoch: current.epoch, probe: probe.id, startedAt: now } }
            )
          }
          return stay(current, {
            _tag: "Refused",
            phase: "HalfOpen",
            retryAfterMillis: Math.max(0, probeDeadline(settings, current) - now)
          })
        }
      }
    })

const tripReason = (settings: Settings, circuit: Closed, now: number): Reason | undefined => {
  const trip = settings.trip
  if (trip._tag === "ConsecutiveFailures") {
    return circuit.consecutiveFailures >= trip.threshold ? "consecutive-failures" : undefined
  }
  const { calls, failures } = Window.totals(
    circuit.window,
    Window.bucketIndex(now, trip.bucketMillis),
    trip.buckets
  )
  return calls >= trip.minimumCalls && failures / calls >= trip.threshold ? "failure-rate" : undefined
}

/**
 * Counts the outcome of an admitted call, if the circuit is still in the epoch the call was
 * admitted in. The result says whether it counted.
 *
 * @internal
 */
export const complete = (settings: Settings, ticket: Ticket, outcome: Outcome): Event<boolean> =>
(
  circuit,
  now,
  next
) =>
  andThen(advance(settings)(circuit, now, next), (current): Step<boolean> | NeedsBreak => {
    if (current.epoch !== ticket.epoch) return stay(current, false)
    if (current._tag === "Closed") {
      if (outcome === "neutral") return stay(current, true)
      const failed = outcome === "failure"
      const trip = settings.trip
      // a success that finds nothing to reset keeps the very same circuit (no new state to store)
      if (!failed && trip._tag === "ConsecutiveFailures" && current.consecutiveFailures === 0) {
        return stay(current, true)
      }
      const counted: Closed = {
        ...current,
        consecutiveFailures: failed ? current.consecutiveFailures + 1 : 0,
        window: trip._tag === "FailureRate"
          ? Window.record(current.window, Window.bucketIndex(now, trip.bucketMillis), trip.buckets, failed)
          : undefined
      }
      const reason = failed ? tripReason(settings, counted, now) : undefined
      return reason === undefined ? stay(counted, true) : open(counted, now, reason, next, true)
    }
    if (current._tag === "HalfOpen") {
      const probes = current.probes.filter((probe) => probe.id !== ticket.probe)
      if (probes.length === current.probes.length) return stay(current, false)
      switch (outcome) {
        case "neutral":
          return stay({ ...current, probes }, true)
        case "failure":
          return open(current, now, "probe-failed", next, true)
        case "success": {
          const successes = current.successes + 1
          return successes >= settings.halfOpenProbes
            ? close(current, now, "probes-succeeded", true)
            : stay({ ...current, probes, successes }, true)
        }
      }
    }
    return stay(current, false)
  })

/**
 * Closes the circuit and forgets every outcome so far, those of calls still running included.
 *
 * @internal
 */
export const reset = (settings: Settings): Event<void> => (circuit, now, next) =>
  andThen(
    advance(settings)(circuit, now, next),
    (current) =>
      current._tag === "Closed"
        ? stay(closed(current.epoch + 1, current.since), undefined)
        : close(current, now, "reset", undefined)
  )

/**
 * Opens the circuit until `reset`, whatever its state.
 *
 * @internal
 */
export const isolate = (settings: Settings): Event<void> => (circuit, now, next) =>
  andThen(
    advance(settings)(circuit, now, next),
    (current) =>
      current._tag === "Isolated" ? stay(current, undefined) : move(
        { _tag: "Isolated", epoch: current.epoch + 1, since: now },
        { from: current._tag, to: "Isolated", reason: "isolated", breakMillis: undefined },
        undefined
      )
  )

/** The openings since the circuit last closed, and the last break taken. @internal */
export const breakState = (circuit: Circuit): { readonly openings: number; readonly lastMillis: number } | undefined =>
  circuit._tag === "Open" || circuit._tag === "HalfOpen"
    ? { openings: circuit.openings, lastMillis: circuit.breakMillis }
    : undefined

/** The circuit as of now, brought up to date. @internal */
export const current = (settings: Settings): Event<Circuit> => (circuit, now, next) =>
  andThen(advance(settings)(circuit, now, next), (updated) => stay(updated, updated))

/**
 * Counts each call as a failure, as it would if it had ended so: the calls in flight that have run
 * past the slow-call threshold, in the order they were admitted. Each counts only in its own period
 * (epoch), as any outcome does.
 *
 * @internal
 */
export const countSlow = (settings: Settings, tickets: ReadonlyArray<Ticket>): Event<void> => (circuit, now, next) => {
  let step: Step<void> | NeedsBreak = stay(circuit, undefined)
  for (const ticket of tickets) {
    step = andThen(step, (current) => {
      const counted = complete(settings, ticket, "failure")(current, now, next)
      return counted === NeedsBreak ? NeedsBreak : { ...counted, result: undefined }
    })
  }
  return step
}
