import { assert, describe, it } from "@effect/vitest"
import { CircuitBreaker, LlmError, Observability } from "@resilient-llm/core"
import { TestLogs, TestSpans } from "@resilient-llm/testing"
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Metric, Option, PubSub, Schedule, Scope, Stream } from "effect"
import { adjust, eachStore } from "./support/Stores.js"

// --- helpers ---------------------------------------------------------------------------------------

const serverError = (model: string) => new LlmError.ServerError({ model, status: 503 })
const badRequest = (model: string) => new LlmError.BadRequestError({ model, status: 400, code: Option.none() })

/** Lets every fiber of the test (subscribers, timers, forked calls) run until it waits. */
const settle = adjust("0 millis")

/** Collects every transition `changes` emits from now on. */
const subscribe = (breaker: CircuitBreaker.Service) =>
  Effect.gen(function*() {
    const seen: Array<CircuitBreaker.Transition> = []
    yield* breaker.changes.pipe(
      Stream.runForEach((transition) => Effect.sync(() => seen.push(transition))),
      Effect.forkScoped
    )
    yield* settle
    return seen
  })

/** A transition as a compact tuple: from, to, at, reason, break in ms. */
const brief = (t: CircuitBreaker.Transition) =>
  [
    t.from,
    t.to,
    t.at,
    t.reason,
    t.breakDuration === undefined ? undefined : Duration.toMillis(t.breakDuration)
  ] as const

/** A model stub that counts how many times the breaker let it run. */
const stub = (key: string) => {
  const counts = { runs: 0 }
  return {
    counts,
    ok: Effect.sync(() => {
      counts.runs += 1
      return "ok"
    }),
    fail: Effect.suspend(() => {
      counts.runs += 1
      return Effect.fail(serverError(key))
    })
  }
}

/** A call that starts, counts itself and waits for the gate before succeeding. */
const gated = (counts: { runs: number }, gate: Deferred.Deferred<void>) =>
  Effect.sync(() => {
    counts.runs += 1
  }).pipe(Effect.andThen(Deferred.await(gate)), Effect.as("late"))

/** Runs a call that the breaker must refuse, and returns its `CircuitOpenError`. */
const refused = <A, E>(call: Effect.Effect<A, E | LlmError.CircuitOpenError>) =>
  Effect.flatMap(Effect.flip(call), (error) =>
    error instanceof LlmError.CircuitOpenError
      ? Effect.succeed(error)
      : Effect.die(new Error(`expected CircuitOpenError, got ${String(error)}`)))

/** A break schedule that waits `delays` in turn, then ends. */
const breaksOf = (...delays: ReadonlyArray<Duration.Input>): Schedule.Schedule<Duration.Duration> =>
  Schedule.fromStepWithMetadata(Effect.succeed((meta: Schedule.InputMetadata<unknown>) => {
    if (meta.attempt > delays.length) return Cause.done(Duration.zero)
    const delay = Duration.fromInputUnsafe(delays[meta.attempt - 1])
    return Effect.succeed<[Duration.Duration, Duration.Duration]>([delay, delay])
  }))

// --- configuration ---------------------------------------------------------------------------------

describe("CircuitBreaker.make", () => {
  const rejects = (options: CircuitBreaker.Options, mentions: string) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(CircuitBreaker.make(options))
      assert.strictEqual(error._tag, "CircuitBreakerConfigError")
      assert.include(error.reason, mentions)
      assert.include(error.message, "misconfigured")
    })

  it.effect("rejects options that describe no breaker, saying which", () =>
    Effect.gen(function*() {
      yield* rejects({ trip: CircuitBreaker.consecutiveFailures(0) }, "consecutive failures threshold")
      yield* rejects({ trip: CircuitBreaker.consecutiveFailures(2.5) }, "a whole number of at least 1, got 2.5")
      yield* rejects(
        { trip: CircuitBreaker.failureRate({ threshold: 0, window: "1 minute", minimumCalls: 5 }) },
        "(0, 1]"
      )
      yield* rejects(
        { trip: CircuitBreaker.failureRate({ threshold: 1.5, window: "1 minute", minimumCalls: 5 }) },
        "1.5"
      )
      yield* rejects(
        { trip: CircuitBreaker.failureRate({ threshold: 0.5, window: "1 minute", minimumCalls: 0 }) },
        "minimumCalls"
      )
      yield* rejects(
        { trip: CircuitBreaker.failureRate({ threshold: 0.5, window: 0, minimumCalls: 5 }) },
        "window must be a positive duration, got 0"
      )
      yield* rejects(
        { trip: CircuitBreaker.failureRate({ threshold: 0.5, window: "5 millis", minimumCalls: 5 }) },
        "at least 1 ms per bucket"
      )
      yield* rejects(
        { trip: CircuitBreaker.failureRate({ threshold: 0.5, window: "1 minute", minimumCalls: 5, buckets: 0 }) },
        "buckets"
      )
      yield* rejects({ halfOpenProbes: 0 }, "halfOpenProbes")
      yield* rejects({ breakDuration: 0 }, "breakDuration must be a positive duration, got 0")
      yield* rejects({ breakDuration: Duration.infinity }, "breakDuration must be a finite duration")
      yield* rejects({ maxProbeDuration: "0 seconds" }, "maxProbeDuration")
      yield* rejects({ slowCallThreshold: -5 }, "slowCallThreshold must be a positive duration, got -5")
      yield* rejects({ breakDuration: Schedule.recurs(0) }, "schedule ends before its first delay")
      // what a caller without the types could pass
      const untyped = <A>(json: string): A => JSON.parse(json)
      yield* rejects(untyped("{\"breakDuration\":\"soon\"}"), "breakDuration must be a positive duration, got soon")
      yield* rejects({ maxProbeDuration: Number.NaN }, "maxProbeDuration must be a positive duration, got NaN")
      yield* rejects(untyped("{\"isFailure\":\"all\"}"), "isFailure must be a function, got all")
    }))

  it.effect("accepts the defaults and an infinite maxProbeDuration", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make()
      assert.strictEqual(yield* breaker.state("never-used"), "closed")
      yield* CircuitBreaker.make({ maxProbeDuration: Duration.infinity })
    }))
})

// --- trip strategies -------------------------------------------------------------------------------

eachStore("consecutive failures", (it) => {
  it.effect("opens, refuses, half-opens and closes at exact virtual times", () =>
    Effect.gen(function*() {
      const key = "consecutive-timeline"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(3),
        breakDuration: "10 seconds"
      })
      const seen = yield* subscribe(breaker)
      const model = stub(key)
      const protect = breaker.protect(key)

      yield* Effect.flip(protect(model.fail))
      yield* Effect.flip(protect(model.fail))
      assert.strictEqual(yield* protect(model.ok), "ok") // a success starts the count again
      yield* adjust("1 second")
      yield* Effect.flip(protect(model.fail))
      yield* Effect.flip(protect(model.fail))
      assert.strictEqual(yield* breaker.state(key), "closed")
      const third = yield* Effect.flip(protect(model.fail))
      assert.strictEqual(third._tag, "ServerError") // the call that trips keeps its own error
      assert.strictEqual(yield* breaker.state(key), "open")
      assert.strictEqual(model.counts.runs, 6)

      yield* adjust("9999 millis") // t = 10,999: one millisecond of the break left
      const refusal = yield* refused(protect(model.ok))
      assert.strictEqual(refusal.model, key)
      assert.strictEqual(Duration.toMillis(refusal.retryAfter), 1)
      assert.strictEqual(model.counts.runs, 6) // refused without running
      assert.strictEqual(yield* breaker.state(key), "open")

      yield* adjust("1 millis") // t = 11,000: the break has elapsed
      assert.strictEqual(yield* breaker.state(key), "half-open")
      yield* adjust("500 millis")
      assert.strictEqual(yield* protect(model.ok), "ok")
      assert.strictEqual(yield* breaker.state(key), "closed")
      assert.strictEqual(model.counts.runs, 7)

      yield* settle
      assert.deepStrictEqual(seen.map(brief), [
        ["closed", "open", 1_000, "consecutive-failures", 10_000],
        ["open", "half-open", 11_000, "break-elapsed", undefined],
        ["half-open", "closed", 11_500, "probes-succeeded", undefined]
      ])
      assert.isTrue(seen.every((t) => t.key === key))
    }))

  it.effect("reopens when the probe fails, for another break", () =>
    Effect.gen(function*() {
      const key = "consecutive-reopen"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(1),
        breakDuration: "5 seconds"
      })
      const seen = yield* subscribe(breaker)
      const model = stub(key)
      yield* Effect.flip(breaker.protect(key)(model.fail))
      yield* adjust("5 seconds")
      const probeError = yield* Effect.flip(breaker.protect(key)(model.fail))
      assert.strictEqual(probeError._tag, "ServerError")
      assert.strictEqual(yield* breaker.state(key), "open")
      const refusal = yield* refused(breaker.protect(key)(model.ok))
      assert.strictEqual(Duration.toMillis(refusal.retryAfter), 5_000)
      yield* settle
      assert.deepStrictEqual(seen.map(brief), [
        ["closed", "open", 0, "consecutive-failures", 5_000],
        ["open", "half-open", 5_000, "break-elapsed", undefined],
        ["half-open", "open", 5_000, "probe-failed", 5_000]
      ])
    }))
})

eachStore("failure rate", (it) => {
  const rate = CircuitBreaker.failureRate({ threshold: 0.5, window: "10 seconds", minimumCalls: 4 })

  it.effect("needs the minimum number of calls, then opens at the threshold", () =>
    Effect.gen(function*() {
      const key = "rate-threshold"
      const breaker = yield* CircuitBreaker.make({ trip: rate, breakDuration: "30 seconds" })
      const seen = yield* subscribe(breaker)
      const model = stub(key)
      const protect = breaker.protect(key)
      yield* Effect.flip(protect(model.fail))
      yield* Effect.flip(protect(model.fail))
      yield* Effect.flip(protect(model.fail)) // 3 of 3 failed, but fewer than 4 calls
      assert.strictEqual(yield* breaker.state(key), "closed")
      yield* adjust("2 seconds")
      yield* protect(model.ok)
      yield* protect(model.ok)
      yield* protect(model.ok)
      yield* protect(model.ok) // 3 of 7 failed
      yield* adjust("1 second")
      const [status] = yield* breaker.snapshot
      assert.strictEqual(status.windowCalls, 7)
      assert.strictEqual(status.windowFailures, 3)
      yield* Effect.flip(protect(model.fail)) // 4 of 8: 50%
      assert.strictEqual(yield* breaker.state(key), "open")
      yield* settle
      assert.deepStrictEqual(seen.map(brief), [["closed", "open", 3_000, "failure-rate", 30_000]])
    }))

  it.effect("forgets outcomes once they leave the window", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ trip: rate, breakDuration: "30 seconds" })
      const seen = yield* subscribe(breaker)
      // both keys fail three times at t = 0; the window is 10 slots of 1 second
      for (const key of ["rate-remembers", "rate-forgets"]) {
        for (let i = 0; i < 3; i++) yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      }
      yield* adjust("9999 millis")
      const before = yield* breaker.snapshot
      assert.deepStrictEqual(before.map((s) => [s.key, s.windowCalls, s.windowFailures]), [
        ["rate-forgets", 3, 3],
        ["rate-remembers", 3, 3]
      ])
      // t = 9,999: the three failures still count, so a fourth makes 4 of 4
      yield* Effect.flip(breaker.protect("rate-remembers")(Effect.fail(serverError("rate-remembers"))))
      assert.strictEqual(yield* breaker.state("rate-remembers"), "open")
      yield* adjust("1 millis")
      // t = 10,000: they have left the window, so a fourth failure is 1 of 1
      const after = yield* breaker.snapshot
      assert.deepStrictEqual(after.map((s) => [s.key, s.windowCalls, s.windowFailures]), [
        ["rate-forgets", 0, 0],
        ["rate-remembers", 0, 0]
      ])
      yield* Effect.flip(breaker.protect("rate-forgets")(Effect.fail(serverError("rate-forgets"))))
      assert.strictEqual(yield* breaker.state("rate-forgets"), "closed")
      const [forgets] = yield* breaker.snapshot
      assert.strictEqual(forgets.windowCalls, 1)
      yield* settle
      assert.deepStrictEqual(seen.map((t) => [t.key, ...brief(t)]), [
        ["rate-remembers", "closed", "open", 9_999, "failure-rate", 30_000]
      ])
    }))

  it.effect("forgets slot by slot as time passes", () =>
    Effect.gen(function*() {
      const key = "rate-slots"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.failureRate({ threshold: 0.9, window: "4 seconds", minimumCalls: 100, buckets: 4 })
      })
      const counts: Array<number> = []
      for (let second = 0; second < 6; second++) {
        yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
        counts.push((yield* breaker.snapshot)[0].windowCalls)
        yield* adjust("1 second")
      }
      // one failure a second, a window of four 1-second slots: the count stops growing at 4
      assert.deepStrictEqual(counts, [1, 2, 3, 4, 4, 4])
      // t = 6 s: the failures of seconds 3, 4 and 5 are left; then one slot leaves per second
      const later: Array<number> = []
      for (let second = 6; second < 10; second++) {
        later.push((yield* breaker.snapshot)[0].windowCalls)
        yield* adjust("1 second")
      }
      assert.deepStrictEqual(later, [3, 2, 1, 0])
    }))
})

// --- half-open -------------------------------------------------------------------------------------

/** A breaker whose `key` is half-open: one failure at t = 0 trips it, for `breakDuration` (1 second). */
const halfOpen = (
  key: string,
  options: CircuitBreaker.Options & { readonly breakDuration?: Duration.Input } = {}
) =>
  Effect.gen(function*() {
    const breakDuration = options.breakDuration ?? "1 second"
    const breaker = yield* CircuitBreaker.make({
      trip: CircuitBreaker.consecutiveFailures(1),
      ...options,
      breakDuration
    })
    const seen = yield* subscribe(breaker)
    yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
    yield* adjust(breakDuration)
    assert.strictEqual(yield* breaker.state(key), "half-open")
    return { breaker, seen }
  })

eachStore("half-open", (it) => {
  for (const probes of [1, 3]) {
    it.effect(`lets exactly ${probes} of 1,000 concurrent calls reach the model`, () =>
      Effect.gen(function*() {
        const key = `half-open-1000-${probes}`
        const { breaker } = yield* halfOpen(key, { halfOpenProbes: probes })
        const counts = { runs: 0 }
        const gate = yield* Deferred.make<void>()
        const calls = yield* Effect.forEach(
          Array.from({ length: 1_000 }, (_, i) => i),
          () => Effect.exit(breaker.protect(key)(gated(counts, gate))),
          { concurrency: "unbounded" }
        ).pipe(Effect.forkChild)
        yield* settle
        assert.strictEqual(counts.runs, probes)
        const [status] = yield* breaker.snapshot
        assert.strictEqual(status.probesRunning, probes)
        yield* Deferred.succeed(gate, undefined)
        const exits = yield* Fiber.join(calls)
        const served = exits.filter(Exit.isSuccess)
        const refusals = exits.flatMap((exit) =>
          Exit.isFailure(exit) ? Option.toArray(Cause.findErrorOption(exit.cause)) : []
        )
        assert.strictEqual(served.length, probes)
        assert.strictEqual(refusals.length, 1_000 - probes)
        assert.isTrue(refusals.every((error) => error instanceof LlmError.CircuitOpenError))
        // refused while every slot was taken: at most until the probes' deadline (1 minute by default)
        const refusal = refusals[0]
        assert.isTrue(refusal instanceof LlmError.CircuitOpenError && Duration.toMillis(refusal.retryAfter) === 60_000)
        assert.strictEqual(yield* breaker.state(key), "closed")
      }))
  }

  it.effect("closes only when every probe needed has succeeded, and reopens at the first failure", () =>
    Effect.gen(function*() {
      const key = "half-open-all-probes"
      const { breaker, seen } = yield* halfOpen(key, { halfOpenProbes: 2 })
      yield* breaker.protect(key)(Effect.succeed(1))
      const [status] = yield* breaker.snapshot
      assert.deepStrictEqual([status.state, status.probesRunning, status.probesSucceeded], ["half-open", 0, 1])
      yield* breaker.protect(key)(Effect.succeed(2))
      assert.strictEqual(yield* breaker.state(key), "closed")

      yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      yield* adjust("1 second")
      yield* breaker.protect(key)(Effect.succeed(1))
      yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      assert.strictEqual(yield* breaker.state(key), "open")
      yield* settle
      assert.deepStrictEqual(seen.map((t) => [t.to, t.at, t.reason]), [
        ["open", 0, "consecutive-failures"],
        ["half-open", 1_000, "break-elapsed"],
        ["closed", 1_000, "probes-succeeded"],
        ["open", 1_000, "consecutive-failures"],
        ["half-open", 2_000, "break-elapsed"],
        ["open", 2_000, "probe-failed"]
      ])
    }))

  it.effect("a caller error or an interruption frees the probe slot without closing", () =>
    Effect.gen(function*() {
      const key = "half-open-neutral"
      const { breaker, seen } = yield* halfOpen(key)
      const error = yield* Effect.flip(breaker.protect(key)(Effect.fail(badRequest(key))))
      assert.strictEqual(error._tag, "BadRequestError") // the caller's error reaches the caller unchanged
      assert.strictEqual(yield* breaker.state(key), "half-open")

      const counts = { runs: 0 }
      const gate = yield* Deferred.make<void>()
      const probe = yield* Effect.forkChild(breaker.protect(key)(gated(counts, gate)))
      yield* settle
      assert.strictEqual(counts.runs, 1)
      yield* refused(breaker.protect(key)(Effect.succeed(0))) // the one slot is taken
      yield* Fiber.interrupt(probe)
      assert.strictEqual(yield* breaker.state(key), "half-open")

      // a nested breaker's refusal says nothing about this model either
      const nested = new LlmError.CircuitOpenError({ model: "inner", retryAfter: Duration.seconds(1) })
      yield* Effect.flip(breaker.protect(key)(Effect.fail(nested)))
      assert.strictEqual(yield* breaker.state(key), "half-open")

      assert.strictEqual(yield* breaker.protect(key)(Effect.succeed("back")), "back")
      assert.strictEqual(yield* breaker.state(key), "closed")
      yield* settle
      assert.deepStrictEqual(seen.map((t) => t.to), ["open", "half-open", "closed"])
    }))

  it.effect("a probe that hangs reopens the circuit after maxProbeDuration and frees its slot", () =>
    Effect.gen(function*() {
      const key = "half-open-hang"
      const { breaker, seen } = yield* halfOpen(key, { breakDuration: "10 seconds", maxProbeDuration: "5 seconds" })
      const counts = { runs: 0 }
      const gate = yield* Deferred.make<void>()
      const hanging = yield* Effect.forkChild(breaker.protect(key)(gated(counts, gate)))
      yield* adjust("4999 millis")
      const refusal = yield* refused(breaker.protect(key)(Effect.succeed(0)))
      assert.strictEqual(Duration.toMillis(refusal.retryAfter), 1) // the probe's deadline
      yield* adjust("1 millis") // t = 15 s: the probe has run 5 seconds
      assert.strictEqual(yield* breaker.state(key), "open")
      assert.isUndefined(hanging.pollUnsafe()) // the call itself is left running

      // it finally succeeds: its caller gets the value, but it no longer counts
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(hanging), "late")
      assert.strictEqual(yield* breaker.state(key), "open")
      const [status] = yield* breaker.snapshot
      assert.strictEqual(status.openUntil, 25_000)

      yield* adjust("10 seconds") // t = 25 s: a new probe gets the slot
      assert.strictEqual(yield* breaker.protect(key)(Effect.succeed("probe")), "probe")
      assert.strictEqual(yield* breaker.state(key), "closed")
      yield* settle
      assert.deepStrictEqual(seen.map(brief), [
        ["closed", "open", 0, "consecutive-failures", 10_000],
        ["open", "half-open", 10_000, "break-elapsed", undefined],
        ["half-open", "open", 15_000, "probe-timed-out", 10_000],
        ["open", "half-open", 25_000, "break-elapsed", undefined],
        ["half-open", "closed", 25_000, "probes-succeeded", undefined]
      ])
    }))
})

// --- pitfalls --------------------------------------------------------------------------------------

eachStore("outcomes from an earlier period", (it) => {
  it.effect("a success that started before the circuit opened neither closes it nor cuts its break", () =>
    Effect.gen(function*() {
      const key = "late-success"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(2),
        breakDuration: "10 seconds"
      })
      const seen = yield* subscribe(breaker)
      const counts = { runs: 0 }
      const duringOpen = yield* Deferred.make<void>()
      const duringHalfOpen = yield* Deferred.make<void>()
      const slow = yield* Effect.forkChild(breaker.protect(key)(gated(counts, duringOpen)))
      const slower = yield* Effect.forkChild(breaker.protect(key)(gated(counts, duringHalfOpen)))
      const slowFailure = yield* Effect.forkChild(
        breaker.protect(key)(Effect.andThen(Effect.sleep("12 seconds"), Effect.fail(serverError(key))))
      )
      yield* settle
      assert.strictEqual(counts.runs, 2)
      yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      assert.strictEqual(yield* breaker.state(key), "open")

      yield* adjust("4 seconds")
      yield* Deferred.succeed(duringOpen, undefined)
      assert.strictEqual(yield* Fiber.join(slow), "late")
      assert.strictEqual(yield* breaker.state(key), "open")
      const refusal = yield* refused(breaker.protect(key)(Effect.succeed(0)))
      assert.strictEqual(Duration.toMillis(refusal.retryAfter), 6_000) // the break is not cut short

      yield* adjust("6 seconds") // t = 10 s: half-open
      yield* Deferred.succeed(duringHalfOpen, undefined)
      assert.strictEqual(yield* Fiber.join(slower), "late")
      assert.strictEqual(yield* breaker.state(key), "half-open") // not closed by an old success
      yield* adjust("2 seconds") // an old failure does not reopen it either
      yield* Effect.flip(Fiber.join(slowFailure))
      assert.strictEqual(yield* breaker.state(key), "half-open")
      const [status] = yield* breaker.snapshot
      assert.strictEqual(status.probesRunning, 0) // and the probe slot is still free
      yield* settle
      assert.deepStrictEqual(seen.map((t) => [t.to, t.at]), [["open", 0], ["half-open", 10_000]])
    }))
})

eachStore("every attempt counts", (it) => {
  it.effect("a retry around protect makes each attempt a failure; a retry inside it makes one", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ trip: CircuitBreaker.consecutiveFailures(3) })
      const outside = stub("retry-outside")
      const error = yield* outside.fail.pipe(breaker.protect("retry-outside"), Effect.retry({ times: 2 }), Effect.flip)
      assert.strictEqual(error._tag, "ServerError")
      assert.strictEqual(outside.counts.runs, 3)
      assert.strictEqual(yield* breaker.state("retry-outside"), "open")
      // the next retry loop is refused at its first attempt, and a refusal is not retryable
      const next = yield* outside.fail.pipe(
        breaker.protect("retry-outside"),
        Effect.retry({ times: 2, while: LlmError.isRetryable }),
        Effect.flip
      )
      assert.strictEqual(next._tag, "CircuitOpenError")
      assert.strictEqual(outside.counts.runs, 3)

      const inside = stub("retry-inside")
      yield* inside.fail.pipe(Effect.retry({ times: 2 }), breaker.protect("retry-inside"), Effect.flip)
      assert.strictEqual(inside.counts.runs, 3)
      assert.strictEqual(yield* breaker.state("retry-inside"), "closed")
      assert.strictEqual((yield* breaker.snapshot).find((s) => s.key === "retry-inside")?.consecutiveFailures, 1)
    }))
})

eachStore("the breaker contract of Fallback.chain", (it) => {
  // the structural type `Fallback.chain` takes as its `breaker` option
  interface Breaker {
    readonly protect: (
      key: string
    ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | LlmError.CircuitOpenError, R>
  }

  it.effect("retry(protect(timeout(attempt))): a hanging attempt times out, counts, and trips the circuit", () =>
    Effect.gen(function*() {
      const key = "contract"
      const breaker: Breaker = yield* CircuitBreaker.make({ trip: CircuitBreaker.consecutiveFailures(3) })
      const counts = { runs: 0 }
      const hang = Effect.suspend(() => {
        counts.runs += 1
        return Effect.never
      })
      const attempt = hang.pipe(
        Effect.timeoutOrElse({
          duration: "2 seconds",
          orElse: () => Effect.fail(new LlmError.TimeoutError({ model: key, timeout: Duration.seconds(2) }))
        }),
        breaker.protect(key),
        Effect.retry({ times: 5, while: LlmError.isRetryable })
      )
      const call = yield* Effect.forkChild(Effect.flip(attempt))
      yield* adjust("6 seconds")
      const error = yield* Fiber.join(call)
      // three timeouts trip the circuit; the fourth attempt is refused, and a refusal is not retried
      assert.strictEqual(error._tag, "CircuitOpenError")
      assert.strictEqual(counts.runs, 3)
      const next = yield* Effect.flip(attempt)
      assert.strictEqual(next._tag, "CircuitOpenError") // refused at once, without waiting 2 s
      assert.strictEqual(counts.runs, 3)
    }))
})

eachStore("isFailure", (it) => {
  it.effect("by default counts model failures and defects, not the request's faults or nested refusals", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ trip: CircuitBreaker.consecutiveFailures(2) })
      const neutral: ReadonlyArray<unknown> = [
        badRequest("m"),
        new LlmError.ContextLengthError({ model: "m" }),
        new LlmError.ContentFilterError({ model: "m" }),
        new LlmError.CircuitOpenError({ model: "inner", retryAfter: Duration.seconds(1) })
      ]
      for (const error of neutral) {
        assert.isFalse(CircuitBreaker.defaultIsFailure(error), String(error))
        for (let i = 0; i < 5; i++) yield* Effect.flip(breaker.protect("neutral")(Effect.fail(error)))
      }
      assert.strictEqual(yield* breaker.state("neutral"), "closed")
      for (const error of [new LlmError.TimeoutError({ model: "m", timeout: Duration.seconds(1) }), serverError("m")]) {
        assert.isTrue(CircuitBreaker.defaultIsFailure(error))
      }
      yield* Effect.exit(breaker.protect("defect")(Effect.die(new Error("boom"))))
      yield* Effect.exit(breaker.protect("defect")(Effect.die(new Error("boom"))))
      assert.strictEqual(yield* breaker.state("defect"), "open")
    }))

  it.effect("three over-long prompts or refused contents leave a healthy model's circuit closed", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ trip: CircuitBreaker.consecutiveFailures(3) })
      for (let i = 0; i < 3; i++) {
        yield* Effect.flip(
          breaker.protect("healthy")(Effect.fail(new LlmError.ContextLengthError({ model: "healthy" })))
        )
        yield* Effect.flip(
          breaker.protect("healthy")(Effect.fail(new LlmError.ContentFilterError({ model: "healthy" })))
        )
      }
      assert.strictEqual(yield* breaker.state("healthy"), "closed")
      assert.strictEqual((yield* breaker.snapshot)[0].consecutiveFailures, 0)
    }))

  it.effect("a timeout inside protect is a failure of the model: five hangs under Effect.timeout open the circuit", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make() // the default trip: 5 consecutive failures
      const hang = Effect.never.pipe(Effect.timeout("30 seconds"), breaker.protect("hangs"))
      for (let i = 0; i < 5; i++) {
        const call = yield* Effect.forkChild(Effect.flip(hang))
        yield* adjust("30 seconds")
        const error = yield* Fiber.join(call)
        assert.isTrue(Cause.isTimeoutError(error))
      }
      assert.strictEqual(yield* breaker.state("hangs"), "open")
      const refusal = yield* Effect.flip(hang)
      assert.strictEqual(refusal._tag, "CircuitOpenError") // at once, without waiting 30 s
    }))

  it.effect("so is a timeoutOrElse that fails with an error of the caller's own, and any other error", () =>
    Effect.gen(function*() {
      class Hung extends Error {}
      const breaker = yield* CircuitBreaker.make({ trip: CircuitBreaker.consecutiveFailures(2) })
      const hang = Effect.never.pipe(
        Effect.timeoutOrElse({ duration: "1 second", orElse: () => Effect.fail(new Hung()) }),
        breaker.protect("own-timeout")
      )
      for (let i = 0; i < 2; i++) {
        const call = yield* Effect.forkChild(Effect.flip(hang))
        yield* adjust("1 second")
        assert.instanceOf(yield* Fiber.join(call), Hung)
      }
      assert.strictEqual(yield* breaker.state("own-timeout"), "open")
      for (const error of [new Cause.TimeoutError(), new Hung(), "a string", { _tag: "EmbeddingError" }]) {
        assert.isTrue(CircuitBreaker.defaultIsFailure(error), String(error))
      }
    }))

  it.effect("does not count the client's own refusals; counts a rejected answer only when asked to", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ trip: CircuitBreaker.consecutiveFailures(2) })
      const rejected = (countsForBreaker: boolean) =>
        new LlmError.AnswerRejectedError({ model: "m", reason: "empty", detail: "", countsForBreaker })
      const neutral: ReadonlyArray<LlmError.LlmError> = [
        new LlmError.ThrottledError({ model: "m", deployment: "d", limit: "tpm", retryAfter: Duration.seconds(1) }),
        new LlmError.BulkheadFullError({ model: "m", deployment: "d", maxConcurrent: 1, maxQueued: 0 }),
        new LlmError.BudgetExceededError({ model: "m", key: "k", spentUsd: 2, limitUsd: 1, resetsAt: 0 }),
        rejected(false)
      ]
      for (const error of neutral) {
        for (let i = 0; i < 3; i++) yield* Effect.flip(breaker.protect("refusals")(Effect.fail(error)))
      }
      assert.strictEqual(yield* breaker.state("refusals"), "closed")
      yield* Effect.flip(breaker.protect("answers")(Effect.fail(rejected(true))))
      yield* Effect.flip(breaker.protect("answers")(Effect.fail(rejected(true))))
      assert.strictEqual(yield* breaker.state("answers"), "open")
    }))

  it.effect("takes a predicate of its own", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(2),
        isFailure: (error) => error instanceof LlmError.BadRequestError
      })
      yield* Effect.flip(breaker.protect("own")(Effect.fail(serverError("own"))))
      yield* Effect.flip(breaker.protect("own")(Effect.fail(serverError("own"))))
      assert.strictEqual(yield* breaker.state("own"), "closed")
      yield* Effect.flip(breaker.protect("own")(Effect.fail(badRequest("own"))))
      yield* Effect.flip(breaker.protect("own")(Effect.fail(badRequest("own"))))
      assert.strictEqual(yield* breaker.state("own"), "open")
    }))
})

eachStore("slowCallThreshold", (it) => {
  it.effect("counts a success slower than the threshold as a failure", () =>
    Effect.gen(function*() {
      const key = "slow"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(2),
        slowCallThreshold: "2 seconds"
      })
      const call = (ms: number) =>
        Effect.forkChild(breaker.protect(key)(Effect.as(Effect.sleep(Duration.millis(ms)), ms)))
      const onTime = yield* call(2_000)
      yield* adjust("2 seconds")
      assert.strictEqual(yield* Fiber.join(onTime), 2_000)
      const slow = yield* call(2_001)
      yield* adjust("2001 millis")
      assert.strictEqual(yield* Fiber.join(slow), 2_001) // the caller still gets its answer
      assert.strictEqual((yield* breaker.snapshot)[0].consecutiveFailures, 1)
      const slower = yield* call(3_000)
      yield* adjust("3 seconds")
      yield* Fiber.join(slower)
      assert.strictEqual(yield* breaker.state(key), "open")
    }))

  it.effect("counts a call still in flight as a failure the moment it has run longer than the threshold", () =>
    Effect.gen(function*() {
      const key = "hung"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(2),
        slowCallThreshold: "2 seconds"
      })
      const seen = yield* subscribe(breaker)
      const { counts, ok } = stub(key)
      const hung = breaker.protect(key)(Effect.never)
      const first = yield* Effect.forkChild(hung) // t = 0
      yield* adjust("100 millis")
      const second = yield* Effect.forkChild(hung) // t = 100
      yield* adjust("1900 millis") // t = 2000: the first has run exactly the threshold
      assert.strictEqual((yield* breaker.snapshot)[0].consecutiveFailures, 0)
      yield* adjust("1 millis") // t = 2001: longer than the threshold
      assert.strictEqual((yield* breaker.snapshot)[0].consecutiveFailures, 1)
      assert.strictEqual(yield* breaker.state(key), "closed")
      yield* adjust("100 millis") // t = 2101: the second is slow too, nobody calls
      yield* settle
      assert.deepStrictEqual(seen.map(brief), [["closed", "open", 2101, "consecutive-failures", 30_000]])
      const refusal = yield* refused(breaker.protect(key)(ok))
      assert.strictEqual(Duration.toMillis(refusal.retryAfter), 30_000)
      assert.strictEqual(counts.runs, 0)
      // both calls are still running; their interruption decides nothing more
      yield* Fiber.interrupt(first)
      yield* Fiber.interrupt(second)
      assert.strictEqual(yield* breaker.state(key), "open")
      assert.strictEqual(seen.length, 1)
    }))

  it.effect("a slow call counts once, whether it then succeeds, fails or is interrupted", () =>
    Effect.gen(function*() {
      const key = "once"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(5),
        slowCallThreshold: "1 second"
      })
      const failures = Effect.map(breaker.snapshot, (all) => all[0].consecutiveFailures)
      const late = (ms: number, outcome: Effect.Effect<string, LlmError.ServerError>) =>
        Effect.forkChild(breaker.protect(key)(Effect.andThen(Effect.sleep(Duration.millis(ms)), outcome)))
      const succeeds = yield* late(1_500, Effect.succeed("late"))
      yield* adjust("1001 millis")
      assert.strictEqual(yield* failures, 1)
      yield* adjust("499 millis")
      assert.strictEqual(yield* Fiber.join(succeeds), "late")
      assert.strictEqual(yield* failures, 1) // its success is not counted, nor its slowness again
      const fails = yield* late(1_500, Effect.fail(serverError(key)))
      yield* adjust("1500 millis")
      yield* Fiber.await(fails)
      assert.strictEqual(yield* failures, 2) // slow at 1,001 ms; the failure at 1,500 ms adds nothing
      const interrupted = yield* late(60_000, Effect.succeed("never"))
      yield* adjust("1001 millis")
      yield* Fiber.interrupt(interrupted)
      assert.strictEqual(yield* failures, 3) // an interruption would count for nothing; its slowness did
      const quick = yield* late(60_000, Effect.succeed("never"))
      yield* adjust("1000 millis")
      yield* Fiber.interrupt(quick) // interrupted while still within the threshold
      assert.strictEqual(yield* failures, 3)
      yield* breaker.protect(key)(Effect.void)
      assert.strictEqual(yield* failures, 0)
    }))

  it.effect("a probe that runs past the threshold fails at that moment and reopens the circuit", () =>
    Effect.gen(function*() {
      const key = "slow-probe"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(1),
        breakDuration: "10 seconds",
        slowCallThreshold: "2 seconds",
        maxProbeDuration: "1 minute"
      })
      const seen = yield* subscribe(breaker)
      yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key)))) // t = 0: open for 10 s
      yield* adjust("10 seconds")
      const probe = yield* Effect.forkChild(breaker.protect(key)(Effect.never)) // t = 10 s: the probe
      yield* adjust("2001 millis")
      yield* settle
      assert.deepStrictEqual(seen.map(brief), [
        ["closed", "open", 0, "consecutive-failures", 10_000],
        ["open", "half-open", 10_000, "break-elapsed", undefined],
        ["half-open", "open", 12_001, "probe-failed", 10_000]
      ])
      yield* Fiber.interrupt(probe)
      assert.strictEqual(yield* breaker.state(key), "open")
    }))
})

// --- break durations -------------------------------------------------------------------------------

eachStore("breakDuration", (it) => {
  it.effect("grows by its schedule while probes fail, and starts over once the circuit closes", () =>
    Effect.gen(function*() {
      const key = "growing"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(1),
        // 10 s, 20 s, 40 s, then capped at 40 s
        breakDuration: Schedule.min([Schedule.exponential("10 seconds"), Schedule.spaced("40 seconds")])
      })
      const seen = yield* subscribe(breaker)
      const fail = Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      yield* fail // t = 0: open for 10 s
      for (const wait of [10, 20, 40, 40]) {
        yield* adjust(Duration.seconds(wait))
        yield* fail // the probe fails: reopen for the next break
      }
      yield* adjust("40 seconds") // t = 150 s
      yield* breaker.protect(key)(Effect.void)
      yield* fail // closed, then tripped again: back to the first break
      yield* settle
      assert.deepStrictEqual(seen.filter((t) => t.to === "open").map((t) => [t.at, brief(t)[4]]), [
        [0, 10_000],
        [10_000, 20_000],
        [30_000, 40_000],
        [70_000, 40_000],
        [110_000, 40_000],
        [150_000, 10_000]
      ])
    }))

  it.effect("keeps the last delay of a schedule that ends", () =>
    Effect.gen(function*() {
      const key = "ending"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(1),
        breakDuration: breaksOf("1 second", "3 seconds")
      })
      const seen = yield* subscribe(breaker)
      const fail = Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      yield* fail
      for (const wait of [1, 3, 3]) {
        yield* adjust(Duration.seconds(wait))
        yield* fail
      }
      yield* settle
      assert.deepStrictEqual(seen.filter((t) => t.to === "open").map((t) => brief(t)[4]), [1_000, 3_000, 3_000, 3_000])
    }))
})

// --- reset and isolate -----------------------------------------------------------------------------

eachStore("reset and isolate", (it) => {
  it.effect("isolate refuses every call until reset, and nothing probes meanwhile", () =>
    Effect.gen(function*() {
      const key = "isolated"
      const breaker = yield* CircuitBreaker.make({ breakDuration: "1 second" })
      const seen = yield* subscribe(breaker)
      const model = stub(key)
      yield* breaker.isolate(key)
      yield* breaker.isolate(key) // already isolated: nothing happens
      const refusal = yield* refused(breaker.protect(key)(model.ok))
      assert.isFalse(Duration.isFinite(refusal.retryAfter))
      yield* adjust("1 hour")
      yield* refused(breaker.protect(key)(model.ok))
      assert.strictEqual(yield* breaker.state(key), "isolated")
      assert.strictEqual(model.counts.runs, 0)
      yield* breaker.reset(key)
      assert.strictEqual(yield* breaker.protect(key)(model.ok), "ok")
      yield* settle
      assert.deepStrictEqual(seen.map(brief), [
        ["closed", "isolated", 0, "isolated", undefined],
        ["isolated", "closed", 3_600_000, "reset", undefined]
      ])
    }))

  it.effect("reset closes an open circuit and forgets outcomes, those of running calls included", () =>
    Effect.gen(function*() {
      const key = "reset"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(2),
        breakDuration: "1 minute"
      })
      const seen = yield* subscribe(breaker)
      const running = yield* Effect.forkChild(
        breaker.protect(key)(Effect.andThen(Effect.sleep("1 second"), Effect.fail(serverError(key))))
      )
      yield* settle
      yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      assert.strictEqual(yield* breaker.state(key), "open")
      yield* breaker.reset(key)
      assert.strictEqual(yield* breaker.state(key), "closed")
      yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      yield* adjust("1 second")
      yield* Effect.flip(Fiber.join(running)) // started before the reset: does not count
      assert.strictEqual(yield* breaker.state(key), "closed")
      assert.strictEqual((yield* breaker.snapshot)[0].consecutiveFailures, 1)
      yield* breaker.reset("never-used") // nothing to reset
      assert.deepStrictEqual((yield* breaker.snapshot).map((s) => s.key), [key])
      yield* settle
      assert.deepStrictEqual(seen.map((t) => [t.from, t.to, t.reason]), [
        ["closed", "open", "consecutive-failures"],
        ["open", "closed", "reset"]
      ])
    }))
})

// --- observability ---------------------------------------------------------------------------------

eachStore("observability", (it) => {
  const gauge = (key: string) =>
    Effect.map(Metric.value(Metric.withAttributes(Observability.breakerState, { model: key })), (state) => state.value)
  const transitions = (key: string, from: string, to: string) =>
    Effect.map(
      Metric.value(Metric.withAttributes(Observability.breakerTransitions, { model: key, from, to })),
      (state) => state.count
    )

  it.effect("updates the state gauge and the transition counter on every transition", () =>
    Effect.gen(function*() {
      const key = "metrics-breaker-test"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(1),
        breakDuration: "1 second"
      })
      const fail = Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      const gauges: Array<number> = []
      yield* fail
      gauges.push(yield* gauge(key))
      yield* adjust("1 second")
      gauges.push(yield* gauge(key))
      yield* fail
      gauges.push(yield* gauge(key))
      yield* adjust("1 second")
      yield* breaker.protect(key)(Effect.void)
      gauges.push(yield* gauge(key))
      yield* breaker.isolate(key)
      gauges.push(yield* gauge(key))
      // open, half-open, open again, closed (half-open in between), isolated
      assert.deepStrictEqual(gauges, [2, 1, 2, 0, 2])
      assert.strictEqual(yield* transitions(key, "closed", "open"), 1)
      assert.strictEqual(yield* transitions(key, "open", "half-open"), 2)
      assert.strictEqual(yield* transitions(key, "half-open", "open"), 1)
      assert.strictEqual(yield* transitions(key, "half-open", "closed"), 1)
      assert.strictEqual(yield* transitions(key, "closed", "isolated"), 1)
      assert.strictEqual(yield* transitions(key, "open", "closed"), 0)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("logs each transition annotated with the model: a warning on open, info on close", () => {
    const { layer, lines } = TestLogs.make()
    return Effect.gen(function*() {
      const key = "logs-breaker-test"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(1),
        breakDuration: "1 second"
      })
      yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      yield* adjust("1 second")
      yield* breaker.protect(key)(Effect.void)
      assert.deepStrictEqual(lines.map((line) => [line.level, line.message]), [
        ["WARN", "circuit opened"],
        ["INFO", "circuit half-open"],
        ["INFO", "circuit closed"]
      ])
      assert.deepStrictEqual(lines[0].annotations, {
        "llm.model": key,
        "llm.pattern": "breaker",
        "breaker.from": "closed",
        "breaker.to": "open",
        "breaker.reason": "consecutive-failures",
        "breaker.break_ms": 1_000
      })
      assert.isTrue(lines.every((line) => line.annotations["llm.model"] === key))
    }).pipe(Effect.provide(layer))
  })

  it.effect("a refused call is a span of its own under the caller's, which it leaves alone; a probe marks the spans it opens", () =>
    Effect.gen(function*() {
      const key = "span-breaker-test"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(1),
        breakDuration: "1 second"
      })
      const { spans: ended, tracer: recording } = yield* TestSpans.make
      yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      yield* adjust("400 millis")
      const caller = yield* Effect.gen(function*() {
        yield* Effect.flip(breaker.protect(key)(Effect.void))
        return Object.fromEntries((yield* Effect.currentSpan).attributes)
      }).pipe(Effect.withSpan("caller"), Effect.withTracer(recording))
      assert.deepStrictEqual(caller, {}, "the caller's span is not labelled with the refused model")
      const refused = ended.find((span) => span.name === "resilient-llm.breaker.refused")
      assert.isDefined(refused)
      const llmAttributes = Array.from(refused!.attributes).filter(([name]) => name.startsWith("llm."))
      assert.deepStrictEqual(Object.fromEntries(llmAttributes), {
        "llm.model": key,
        "llm.breaker.refused": true,
        "llm.breaker.state": "open",
        "llm.breaker.retry_after_ms": 600
      })
      const parent = Option.getOrUndefined(refused!.parent)
      assert.strictEqual(parent?._tag === "Span" ? parent.name : undefined, "caller")

      // after the break the next call is a probe: the span it opens is marked, the caller's is not
      yield* adjust("600 millis")
      const probeCaller = yield* breaker.protect(key)(
        Effect.map(Effect.currentSpan, (span) => Object.fromEntries(span.attributes)).pipe(Effect.withSpan("attempt"))
      ).pipe(
        Effect.zip(Effect.map(Effect.currentSpan, (span) => Object.fromEntries(span.attributes))),
        Effect.withSpan("caller"),
        Effect.withTracer(recording)
      )
      assert.deepStrictEqual(probeCaller, [{ "llm.breaker.probe": true }, {}])
    }))
})

// --- changes and snapshot --------------------------------------------------------------------------

eachStore("changes", (it) => {
  it.effect("a slow subscriber neither blocks the breaker nor loses or reorders transitions", () =>
    Effect.gen(function*() {
      const key = "slow-subscriber"
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(1),
        breakDuration: "1 second"
      })
      const gate = yield* Deferred.make<void>()
      const slow: Array<CircuitBreaker.Transition> = []
      yield* breaker.changes.pipe(
        Stream.runForEach((t) => Effect.andThen(Deferred.await(gate), Effect.sync(() => slow.push(t)))),
        Effect.forkScoped
      )
      const fast = yield* subscribe(breaker)
      // three full cycles while the slow subscriber has not taken even the first transition
      for (let cycle = 0; cycle < 3; cycle++) {
        yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
        yield* adjust("1 second")
        yield* breaker.protect(key)(Effect.void)
      }
      assert.strictEqual(yield* breaker.state(key), "closed")
      assert.strictEqual(slow.length, 0)
      yield* Deferred.succeed(gate, undefined)
      yield* settle
      const expected = [0, 1, 2].flatMap((cycle): Array<ReturnType<typeof brief>> => [
        ["closed", "open", cycle * 1_000, "consecutive-failures", 1_000],
        ["open", "half-open", (cycle + 1) * 1_000, "break-elapsed", undefined],
        ["half-open", "closed", (cycle + 1) * 1_000, "probes-succeeded", undefined]
      ])
      assert.deepStrictEqual(slow.map(brief), expected)
      assert.deepStrictEqual(fast.map(brief), expected)
    }))

  it.effect("subscribe takes the subscription at once: a transition right after it is not missed", () =>
    Effect.gen(function*() {
      const key = "subscribe-now"
      const breaker = yield* CircuitBreaker.make({ trip: CircuitBreaker.consecutiveFailures(1) })
      const transitions = yield* breaker.subscribe
      // no yield, no settle: the very next call trips the circuit
      yield* Effect.flip(breaker.protect(key)(Effect.fail(serverError(key))))
      yield* breaker.reset(key)
      const first = yield* PubSub.take(transitions)
      const second = yield* PubSub.take(transitions)
      assert.deepStrictEqual([first, second].map((t) => [t.key, t.from, t.to]), [
        [key, "closed", "open"],
        [key, "open", "closed"]
      ])
      assert.strictEqual(yield* PubSub.remaining(transitions), 0)
      // and through the service in context
      const viaTag = yield* CircuitBreaker.subscribe.pipe(Effect.provideService(CircuitBreaker.CircuitBreaker, breaker))
      yield* breaker.isolate(key)
      assert.strictEqual((yield* PubSub.take(viaTag)).to, "isolated")
    }))

  it.effect("ends when the breaker's scope closes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const breaker = yield* CircuitBreaker.make().pipe(Scope.provide(scope))
      const collected = yield* Effect.forkChild(Stream.runCollect(breaker.changes))
      yield* settle
      yield* breaker.isolate("scoped")
      yield* Scope.close(scope, Exit.void)
      const all = yield* Fiber.join(collected)
      assert.deepStrictEqual(Array.from(all).map((t) => [t.key, t.to]), [["scoped", "isolated"]])
      // a breaker used after its scope closed still decides; it only has no one to tell
      yield* breaker.isolate("after-close")
      yield* refused(breaker.protect("after-close")(Effect.void))
    }))

  it.effect("is reachable through the CircuitBreaker service in context", () =>
    Effect.gen(function*() {
      const key = "accessors"
      const seen: Array<CircuitBreaker.Transition> = []
      yield* CircuitBreaker.changes.pipe(
        Stream.runForEach((t) => Effect.sync(() => seen.push(t))),
        Effect.forkScoped
      )
      yield* settle
      const fail = Effect.fail(serverError(key))
      yield* Effect.flip(fail.pipe(CircuitBreaker.protect(key)))
      yield* Effect.flip(CircuitBreaker.protect(fail, key))
      assert.strictEqual(yield* CircuitBreaker.state(key), "open")
      yield* CircuitBreaker.isolate(key)
      yield* CircuitBreaker.reset(key)
      const [status] = yield* CircuitBreaker.snapshot
      assert.strictEqual(status.state, "closed")
      yield* settle
      assert.deepStrictEqual(seen.map((t) => t.to), ["open", "isolated", "closed"])
    }).pipe(Effect.provide(CircuitBreaker.layer({ trip: CircuitBreaker.consecutiveFailures(2) }))))
})

eachStore("snapshot", (it) => {
  it.effect("reports every key used, sorted, as plain data", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(2),
        breakDuration: "10 seconds",
        halfOpenProbes: 2
      })
      yield* adjust("1 second")
      yield* Effect.flip(breaker.protect("b-open")(Effect.fail(serverError("b-open"))))
      yield* Effect.flip(breaker.protect("b-open")(Effect.fail(serverError("b-open"))))
      yield* Effect.flip(breaker.protect("a-closed")(Effect.fail(serverError("a-closed"))))
      yield* breaker.isolate("c-isolated")
      yield* adjust("3 seconds")
      const statuses = yield* breaker.snapshot
      assert.deepStrictEqual(statuses, [
        {
          key: "a-closed",
          state: "closed",
          since: 1_000,
          consecutiveFailures: 1,
          windowCalls: 0,
          windowFailures: 0,
          openUntil: undefined,
          breakMs: undefined,
          probesRunning: 0,
          probesSucceeded: 0
        },
        {
          key: "b-open",
          state: "open",
          since: 1_000,
          consecutiveFailures: 0,
          windowCalls: 0,
          windowFailures: 0,
          openUntil: 11_000,
          breakMs: 10_000,
          probesRunning: 0,
          probesSucceeded: 0
        },
        {
          key: "c-isolated",
          state: "isolated",
          since: 1_000,
          consecutiveFailures: 0,
          windowCalls: 0,
          windowFailures: 0,
          openUntil: undefined,
          breakMs: undefined,
          probesRunning: 0,
          probesSucceeded: 0
        }
      ])
      // JSON-ready for a status page
      assert.strictEqual(JSON.parse(JSON.stringify(statuses))[1].openUntil, 11_000)
    }))
})
