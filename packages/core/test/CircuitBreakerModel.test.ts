import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker, LlmError } from "@resilient-llm/core"
import {
  Arbitrary,
  Cause,
  Clock,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Option,
  Schedule,
  Schema,
  Stream
} from "effect"
import { TestClock } from "effect/testing"

// A reference model of the breaker's state machine, written for this test alone: plain mutable
// fields, outcomes kept as a list of (time, failed) rather than a ring of slots, and time-driven
// transitions replayed in order up to "now". The property drives the real breaker and the model
// with the same random commands (calls started alone or in bursts, calls finished in any order,
// interrupted or left hanging, the clock moved, reset, isolate) and checks that they agree on
// every admission, every refusal's retryAfter, every state and every transition with its time.

type Phase = "closed" | "open" | "half-open" | "isolated"
type Outcome = "success" | "failure" | "bad-request" | "interrupt"

interface Config {
  readonly trip:
    | { readonly _tag: "ConsecutiveFailures"; readonly threshold: number }
    | {
      readonly _tag: "FailureRate"
      readonly threshold: number
      readonly buckets: number
      readonly bucketMs: number
      readonly minimumCalls: number
    }
  readonly breaks: ReadonlyArray<number>
  readonly halfOpenProbes: number
  readonly maxProbeMs: number
}

type Command =
  | { readonly _tag: "Call"; readonly outcome: Outcome }
  | { readonly _tag: "Start"; readonly count: number; readonly outcome: Outcome }
  | { readonly _tag: "Finish"; readonly pick: number }
  | { readonly _tag: "Advance"; readonly ms: number }
  | { readonly _tag: "Reset" }
  | { readonly _tag: "Isolate" }

type Row = readonly [from: Phase, to: Phase, at: number, reason: string, breakMs: number | undefined]

class Model {
  phase: Phase = "closed"
  epoch = 0
  consecutive = 0
  outcomes: Array<{ readonly at: number; readonly failed: boolean }> = []
  until = 0
  opens = 0
  probes = new Map<number, number>()
  successes = 0
  readonly calls = new Map<number, { readonly epoch: number }>()
  readonly transitions: Array<Row> = []

  constructor(readonly config: Config) {}

  private move(to: Phase, at: number, reason: string, breakMs?: number) {
    this.transitions.push([this.phase, to, at, reason, breakMs])
    this.phase = to
    this.epoch += 1
    this.probes = new Map()
    this.successes = 0
  }

  private open(at: number, reason: string) {
    const breakMs = this.config.breaks[Math.min(this.opens, this.config.breaks.length - 1)]
    this.opens += 1
    this.until = at + breakMs
    this.move("open", at, reason, breakMs)
  }

  private close(at: number, reason: string) {
    this.move("closed", at, reason)
    this.consecutive = 0
    this.outcomes = []
    this.opens = 0
  }

  deadline(): number {
    return Math.min(...Array.from(this.probes.values(), (startedAt) => startedAt + this.config.maxProbeMs))
  }

  advanceTo(now: number) {
    for (;;) {
      if (this.phase === "open" && this.until <= now) {
        this.move("half-open", this.until, "break-elapsed")
      } else if (this.phase === "half-open" && this.probes.size > 0 && this.deadline() <= now) {
        this.open(this.deadline(), "probe-timed-out")
      } else {
        return
      }
    }
  }

  /** How many of `count` simultaneous calls are admitted, or the refusal's retryAfter. */
  admissions(count: number, now: number): { readonly admitted: number; readonly retryAfter: number | undefined } {
    this.advanceTo(now)
    switch (this.phase) {
      case "closed":
        return { admitted: count, retryAfter: undefined }
      case "open":
        return { admitted: 0, retryAfter: this.until - now }
      case "isolated":
        return { admitted: 0, retryAfter: Infinity }
      case "half-open": {
        const admitted = Math.min(count, this.config.halfOpenProbes - this.probes.size - this.successes)
        // the refused ones are refused after the admitted ones took their slots
        const deadline = Math.min(this.deadline(), now + this.config.maxProbeMs)
        return { admitted, retryAfter: admitted < count ? deadline - now : undefined }
      }
    }
  }

  admit(id: number, now: number) {
    if (this.phase === "half-open") this.probes.set(id, now)
    this.calls.set(id, { epoch: this.epoch })
  }

  finish(id: number, outcome: Outcome, now: number) {
    this.advanceTo(now)
    const call = this.calls.get(id)
    this.calls.delete(id)
    if (call === undefined || call.epoch !== this.epoch) return
    const neutral = outcome === "bad-request" || outcome === "interrupt"
    if (this.phase === "closed") {
      if (neutral) return
      const failed = outcome === "failure"
      this.consecutive = failed ? this.consecutive + 1 : 0
      this.outcomes.push({ at: now, failed })
      if (failed && this.tripped(now)) {
        this.open(now, this.config.trip._tag === "ConsecutiveFailures" ? "consecutive-failures" : "failure-rate")
      }
    } else if (this.phase === "half-open") {
      this.probes.delete(id)
      if (neutral) return
      if (outcome === "failure") return this.open(now, "probe-failed")
      this.successes += 1
      if (this.successes >= this.config.halfOpenProbes) this.close(now, "probes-succeeded")
    }
  }

  /** The outcomes still in the window: those whose slot is one of the last `buckets`, now's included. */
  window(now: number): { readonly calls: number; readonly failures: number } {
    const trip = this.config.trip
    if (trip._tag === "ConsecutiveFailures" || this.phase !== "closed") return { calls: 0, failures: 0 }
    const slot = (t: number) => Math.floor(t / trip.bucketMs)
    const inWindow = this.outcomes.filter((o) => slot(o.at) > slot(now) - trip.buckets)
    return { calls: inWindow.length, failures: inWindow.filter((o) => o.failed).length }
  }

  private tripped(now: number): boolean {
    const trip = this.config.trip
    if (trip._tag === "ConsecutiveFailures") return this.consecutive >= trip.threshold
    const { calls, failures } = this.window(now)
    return calls >= trip.minimumCalls && failures / calls >= trip.threshold
  }

  reset(now: number) {
    this.advanceTo(now)
    if (this.phase === "closed") {
      this.epoch += 1
      this.consecutive = 0
      this.outcomes = []
    } else {
      this.close(now, "reset")
    }
  }

  isolate(now: number) {
    this.advanceTo(now)
    if (this.phase !== "isolated") this.move("isolated", now, "isolated")
  }
}

const intBetween = (minimum: number, maximum: number): Arbitrary.Arbitrary<number> =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

/**
 * One of `choices`, each as likely as its weight. The draw is a union member, which is picked
 * uniformly (a bounded integer is not: it favours its bounds).
 */
const weighted = <A>(
  choices: ReadonlyArray<readonly [weight: number, arbitrary: Arbitrary.Arbitrary<A>]>
): Arbitrary.Arbitrary<A> => {
  const total = choices.reduce((sum, [weight]) => sum + weight, 0)
  const draws = Arbitrary.schema(Schema.Literals(Array.from({ length: total }, (_, i) => i)))
  return Arbitrary.flatMap(draws, (drawn) => {
    let upTo = 0
    for (const [weight, arbitrary] of choices) {
      upTo += weight
      if (drawn < upTo) return arbitrary
    }
    return choices[choices.length - 1][1]
  })
}

/** One of `values`; a value listed twice is twice as likely. */
const oneOf = <A>(values: ReadonlyArray<A>): Arbitrary.Arbitrary<A> =>
  weighted(values.map((value) => [1, Arbitrary.Constant(value)] as const))

const hundreds = (minimum: number, maximum: number) => intBetween(minimum, maximum).pipe(Arbitrary.map((n) => n * 100))

const configArbitrary: Arbitrary.Arbitrary<Config> = Arbitrary.all({
  trip: weighted<Config["trip"]>([
    [1, Arbitrary.all({ _tag: Arbitrary.Constant("ConsecutiveFailures"), threshold: intBetween(1, 4) })],
    [
      1,
      Arbitrary.all({
        _tag: Arbitrary.Constant("FailureRate"),
        threshold: oneOf([0.25, 0.5, 0.75, 1]),
        buckets: intBetween(1, 4),
        bucketMs: oneOf([100, 250, 1_000]),
        minimumCalls: intBetween(1, 5)
      })
    ]
  ]),
  breaks: Arbitrary.array(hundreds(1, 15), { minLength: 1, maxLength: 3 }),
  halfOpenProbes: oneOf([1, 1, 2, 3]),
  maxProbeMs: hundreds(1, 20)
})

const outcomeArbitrary = oneOf<Outcome>(["success", "success", "failure", "failure", "bad-request", "interrupt"])

const commandArbitrary: Arbitrary.Arbitrary<Command> = weighted<Command>([
  [24, Arbitrary.all({ _tag: Arbitrary.Constant("Call"), outcome: outcomeArbitrary })],
  [
    12,
    Arbitrary.all({
      _tag: Arbitrary.Constant("Start"),
      count: weighted([[1, Arbitrary.Constant(1)], [1, intBetween(2, 6)]]),
      outcome: outcomeArbitrary
    })
  ],
  [16, Arbitrary.all({ _tag: Arbitrary.Constant("Finish"), pick: intBetween(0, 2 ** 31 - 1) })],
  [
    16,
    Arbitrary.all({
      _tag: Arbitrary.Constant("Advance"),
      // multiples of 100 land on break ends and probe deadlines exactly
      ms: weighted([[1, intBetween(1, 2_000)], [1, hundreds(1, 20)]])
    })
  ],
  [5, Arbitrary.Constant({ _tag: "Reset" })],
  [1, Arbitrary.Constant({ _tag: "Isolate" })]
])

/** A break schedule that waits `delays` in turn, then ends (the breaker keeps the last one). */
const breaksOf = (delays: ReadonlyArray<number>): Schedule.Schedule<Duration.Duration> =>
  Schedule.fromStepWithMetadata(Effect.succeed((meta: Schedule.InputMetadata<unknown>) => {
    if (meta.attempt > delays.length) return Cause.done(Duration.zero)
    const delay = Duration.millis(delays[meta.attempt - 1])
    return Effect.succeed<[Duration.Duration, Duration.Duration]>([delay, delay])
  }))

interface Call {
  readonly id: number
  readonly outcome: Outcome
  readonly gate: Deferred.Deferred<void>
  readonly fiber: Fiber.Fiber<
    string,
    LlmError.ServerError | LlmError.BadRequestError | LlmError.CircuitOpenError
  >
}

const key = "model-checked"

describe("CircuitBreaker against a reference model", () => {
  it.effect.prop(
    "agrees on admissions, refusals, states and transitions; never runs while open; never over-admits probes",
    [configArbitrary, Arbitrary.array(commandArbitrary, { minLength: 30, maxLength: 60 })],
    ([config, commands]) =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          trip: config.trip._tag === "ConsecutiveFailures"
            ? CircuitBreaker.consecutiveFailures(config.trip.threshold)
            : CircuitBreaker.failureRate({
              threshold: config.trip.threshold,
              window: Duration.millis(config.trip.bucketMs * config.trip.buckets),
              buckets: config.trip.buckets,
              minimumCalls: config.trip.minimumCalls
            }),
          breakDuration: config.breaks.length === 1
            ? Duration.millis(config.breaks[0])
            : breaksOf(config.breaks),
          halfOpenProbes: config.halfOpenProbes,
          maxProbeDuration: Duration.millis(config.maxProbeMs)
        })
        const seen: Array<CircuitBreaker.Transition> = []
        yield* breaker.changes.pipe(Stream.runForEach((t) => Effect.sync(() => seen.push(t))), Effect.forkScoped)
        yield* TestClock.adjust("0 millis")

        const model = new Model(config)
        let pending: Array<Call> = []
        let nextId = 0
        // every time a protected effect starts: the breaker's state then, which must let it run
        const violations: Array<string> = []

        // starts `count` calls at once and checks which the breaker admits against the model
        const start = (count: number, outcome: Outcome) =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            const expected = model.admissions(count, now)
            const phaseAtStart = model.phase
            const burst = yield* Effect.forEach(Array.from({ length: count }), () =>
              Effect.gen(function*() {
                const id = nextId++
                const gate = yield* Deferred.make<void>()
                const started = yield* Deferred.make<void>()
                const body = Effect.gen(function*() {
                  // the breaker let this effect run: it must be closed, or half-open with a slot
                  const state = yield* breaker.state(key)
                  if (state !== "closed" && state !== "half-open") violations.push(`ran while ${state}`)
                  if (phaseAtStart !== "closed" && phaseAtStart !== "half-open") {
                    violations.push(`ran while the model is ${phaseAtStart}`)
                  }
                  yield* Deferred.succeed(started, undefined)
                  yield* Deferred.await(gate)
                  if (outcome === "failure") {
                    return yield* Effect.fail(new LlmError.ServerError({ model: key, status: 500 }))
                  }
                  if (outcome === "bad-request") {
                    return yield* Effect.fail(
                      new LlmError.BadRequestError({ model: key, status: 400, code: Option.none() })
                    )
                  }
                  return "ok"
                })
                const fiber = yield* Effect.forkChild(breaker.protect(key)(body))
                return { id, gate, started, fiber, outcome }
              }))
            const admitted: Array<Call> = []
            for (const call of burst) {
              yield* Effect.race(Deferred.await(call.started), Effect.asVoid(Fiber.await(call.fiber)))
              const exit = call.fiber.pollUnsafe()
              if (exit !== undefined) {
                const error = Exit.isFailure(exit)
                  ? Option.getOrUndefined(Cause.findErrorOption(exit.cause))
                  : undefined
                assert.instanceOf(error, LlmError.CircuitOpenError)
                if (error instanceof LlmError.CircuitOpenError) {
                  assert.strictEqual(Duration.toMillis(error.retryAfter), expected.retryAfter)
                }
              } else {
                model.admit(call.id, now)
                admitted.push(call)
              }
            }
            assert.strictEqual(admitted.length, expected.admitted, `admitted at ${now}`)
            return admitted
          })

        const finish = (call: Call) =>
          Effect.gen(function*() {
            if (call.outcome === "interrupt") {
              yield* Fiber.interrupt(call.fiber)
            } else {
              yield* Deferred.succeed(call.gate, undefined)
              yield* Fiber.await(call.fiber)
            }
            model.finish(call.id, call.outcome, yield* Clock.currentTimeMillis)
          })

        for (const command of commands) {
          const now = yield* Clock.currentTimeMillis
          switch (command._tag) {
            case "Call": {
              for (const call of yield* start(1, command.outcome)) yield* finish(call)
              break
            }
            case "Start": {
              pending.push(...(yield* start(command.count, command.outcome)))
              break
            }
            case "Finish": {
              if (pending.length === 0) break
              const call = pending[command.pick % pending.length]
              pending = pending.filter((c) => c !== call)
              yield* finish(call)
              break
            }
            case "Advance": {
              yield* TestClock.adjust(Duration.millis(command.ms))
              model.advanceTo(now + command.ms)
              break
            }
            case "Reset": {
              yield* breaker.reset(key)
              model.reset(now)
              break
            }
            case "Isolate": {
              yield* breaker.isolate(key)
              model.isolate(now)
              break
            }
          }
          const after = yield* Clock.currentTimeMillis
          model.advanceTo(after)
          assert.strictEqual(yield* breaker.state(key), model.phase, `state at ${after} after ${command._tag}`)
          for (const status of yield* breaker.snapshot) {
            // half-open never has more probes running or succeeded than it admits
            assert.isAtMost(status.probesRunning + status.probesSucceeded, config.halfOpenProbes)
            assert.strictEqual(status.probesRunning, model.phase === "half-open" ? model.probes.size : 0)
            const window = model.window(after)
            assert.deepStrictEqual(
              [status.consecutiveFailures, status.windowCalls, status.windowFailures],
              [model.phase === "closed" ? model.consecutive : 0, window.calls, window.failures]
            )
          }
          assert.deepStrictEqual(violations, [])
        }
        yield* TestClock.adjust("0 millis")
        assert.deepStrictEqual(
          seen.map((t): Row => [
            t.from,
            t.to,
            t.at,
            t.reason,
            t.breakDuration === undefined ? undefined : Duration.toMillis(t.breakDuration)
          ]),
          model.transitions
        )
      }).pipe(Effect.scoped),
    // `size` lets the command lists grow to their maximum length, as fast-check's did
    { arbitrary: { runs: 60, size: 60 } }
  )
})
