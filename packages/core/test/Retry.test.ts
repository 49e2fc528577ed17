import { assert, describe, it } from "@effect/vitest"
import { LlmError, Retry } from "@resilient-llm/core"
import { Clock, Duration, Effect, Exit, Fiber, Option, Pull, Random, Ref, Schedule, Schema } from "effect"
import { TestClock } from "effect/testing"

const serverError = new LlmError.ServerError({ model: "m", status: 503 })
const rateLimited = (retryAfter: Duration.Input) =>
  new LlmError.RateLimitError({ model: "m", retryAfter: Option.some(Duration.fromInputUnsafe(retryAfter)) })

/**
 * An attempt that plays `outcomes` in order (the last repeats) and records the virtual time at
 * which each try started.
 */
const scripted = (outcomes: ReadonlyArray<LlmError.LlmError | "ok">) =>
  Effect.gen(function*() {
    const starts = yield* Ref.make<ReadonlyArray<number>>([])
    const attempt = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const n = yield* Ref.modify(starts, (all) => [all.length, [...all, now]])
      const outcome = outcomes[Math.min(n, outcomes.length - 1)]
      return outcome === "ok" ? yield* Effect.succeed("ok") : yield* Effect.fail(outcome)
    })
    return { attempt, starts: Ref.get(starts) }
  })

/**
 * The delays a schedule chooses for `inputs`, by stepping it without sleeping, until it is done.
 * Each step's delay is checked against the schedule's output, which is the same delay.
 */
const delaysOf = <E, X>(schedule: Schedule.Schedule<Duration.Duration, E, X>, inputs: ReadonlyArray<E>) =>
  Effect.gen(function*() {
    const step = yield* Schedule.toStep(schedule)
    let now = 0
    const delays: Array<number> = []
    for (const input of inputs) {
      const next = yield* Pull.matchEffect(step(now, input), {
        onSuccess: ([out, delay]) => Effect.succeed(Option.some([out, delay] as const)),
        onFailure: Effect.failCause,
        onDone: () => Effect.succeedNone
      })
      if (Option.isNone(next)) break
      const [out, delay] = next.value
      assert.strictEqual(Duration.toMillis(out), Duration.toMillis(delay))
      delays.push(Duration.toMillis(delay))
      now += Duration.toMillis(delay)
    }
    return delays
  })

const intBetween = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

describe("Retry.schedule", () => {
  it.effect("without jitter: 250 ms, then doubling, capped, for `retries` recurrences", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* delaysOf(Retry.schedule({ jitter: false }), [1, 2, 3, 4, 5]), [250, 500, 1000])
      assert.deepStrictEqual(
        yield* delaysOf(
          Retry.schedule({ base: "100 millis", factor: 3, maxDelay: "2 seconds", retries: 5, jitter: false }),
          [1, 2, 3, 4, 5, 6, 7]
        ),
        [100, 300, 900, 2000, 2000]
      )
      assert.deepStrictEqual(yield* delaysOf(Retry.schedule({ retries: 0 }), [1, 2]), [])
    }))

  it.effect.prop(
    "with jitter: each delay within [0.8, 1.2) of its base and under the cap, the same for the same seed",
    [Schema.Int, intBetween(1, 8)],
    ([seed, retries]) =>
      Effect.gen(function*() {
        const schedule = Retry.schedule({ retries, maxDelay: "5 seconds" })
        const inputs = Array.from({ length: retries + 1 }, (_, i) => i)
        const first = yield* delaysOf(schedule, inputs).pipe(Random.withSeed(seed))
        const again = yield* delaysOf(schedule, inputs).pipe(Random.withSeed(seed))
        assert.deepStrictEqual(first, again)
        assert.strictEqual(first.length, retries)
        first.forEach((delay, i) => {
          const base = 250 * 2 ** i
          assert.isTrue(delay >= Math.min(Math.floor(0.8 * base), 5000) && delay < 1.2 * base, `delay ${i}: ${delay}`)
          assert.isTrue(Number.isInteger(delay))
          assert.isAtMost(delay, 5000)
        })
      }),
    { arbitrary: { runs: 30 } }
  )

  it.effect("custom jitter bounds are honoured", () =>
    Effect.gen(function*() {
      const delays = yield* delaysOf(
        Retry.schedule({ base: "1 second", factor: 1, retries: 50, jitter: { min: 0.5, max: 0.6 } }),
        Array.from({ length: 51 }, (_, i) => i)
      ).pipe(Random.withSeed(7))
      assert.isTrue(delays.every((d) => d >= 500 && d < 600), delays.join(","))
      assert.isAbove(new Set(delays).size, 1)
    }))
})

describe("Retry.withRetry", () => {
  it.effect("retries at 250 ms, 750 ms and 1750 ms of virtual time, then fails with the last error", () =>
    Effect.gen(function*() {
      const { attempt, starts } = yield* scripted([serverError])
      const fiber = yield* Effect.forkChild(attempt.pipe(Retry.withRetry({ jitter: false })))
      yield* TestClock.adjust("1749 millis")
      assert.deepStrictEqual(yield* starts, [0, 250, 750])
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* starts, [0, 250, 750, 1750])
      const exit = yield* Fiber.await(fiber)
      assert.deepStrictEqual(exit, Exit.fail(serverError))
    }))

  it.effect("with a seeded jitter, the attempts start at the times the seed gives, each inside its bounds", () =>
    Effect.gen(function*() {
      // a fresh generator per run: a seeded `Random` keeps its state
      const run = () =>
        Effect.gen(function*() {
          const { attempt, starts } = yield* scripted([serverError])
          const fiber = yield* Effect.forkChild(attempt.pipe(Retry.withRetry()))
          yield* TestClock.adjust("10 seconds")
          yield* Fiber.await(fiber)
          const times = yield* starts
          return times.slice(1).map((t, i) => t - times[i])
        }).pipe(Random.withSeed("seed-42"))
      const gaps = yield* run()
      assert.strictEqual(gaps.length, 3)
      assert.deepStrictEqual(yield* run(), gaps, "the same seed gives the same delays")
      gaps.forEach((gap, i) => {
        const base = 250 * 2 ** i
        assert.isTrue(gap >= 0.8 * base && gap < 1.2 * base, `gap ${i}: ${gap}`)
      })
      assert.isTrue(gaps.some((gap, i) => gap !== 250 * 2 ** i), "the jitter moved at least one delay")
    }))

  it.effect("waits a RateLimitError's 7 s retryAfter exactly, never sooner", () =>
    Effect.gen(function*() {
      const { attempt, starts } = yield* scripted([rateLimited("7 seconds"), "ok"])
      const fiber = yield* Effect.forkChild(attempt.pipe(Retry.withRetry()))
      yield* TestClock.adjust("6999 millis")
      assert.deepStrictEqual(yield* starts, [0])
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(fiber), "ok")
      assert.deepStrictEqual(yield* starts, [0, 7000])
    }))

  it.effect("a retryAfter shorter than the backoff waits the backoff", () =>
    Effect.gen(function*() {
      const { attempt, starts } = yield* scripted([rateLimited("100 millis"), "ok"])
      const fiber = yield* Effect.forkChild(attempt.pipe(Retry.withRetry({ jitter: false })))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(yield* starts, [0, 250])
    }))

  it.effect("gives up at once when retryAfter exceeds maxWait", () =>
    Effect.gen(function*() {
      const error = rateLimited("30 seconds")
      const { attempt, starts } = yield* scripted([error, "ok"])
      const fiber = yield* Effect.forkChild(attempt.pipe(Retry.withRetry({ maxWait: "10 seconds" })))
      yield* TestClock.adjust("0 millis")
      assert.deepStrictEqual(yield* Fiber.await(fiber), Exit.fail(error))
      assert.deepStrictEqual(yield* starts, [0])
    }))

  it.effect("does not retry what is not retryable; `while` overrides the default", () =>
    Effect.gen(function*() {
      const auth = new LlmError.AuthenticationError({ model: "m", status: 401 })
      const first = yield* scripted([auth, "ok"])
      assert.deepStrictEqual(yield* Effect.exit(Retry.withRetry(first.attempt, { jitter: false })), Exit.fail(auth))
      assert.deepStrictEqual(yield* first.starts, [0])

      const second = yield* scripted([auth, "ok"])
      const fiber = yield* Effect.forkChild(
        second.attempt.pipe(
          Retry.withRetry({ jitter: false, while: (e: LlmError.LlmError) => e._tag === "AuthenticationError" })
        )
      )
      yield* TestClock.adjust("250 millis")
      assert.strictEqual(yield* Fiber.join(fiber), "ok")
      assert.deepStrictEqual(yield* second.starts, [0, 250])

      const third = yield* scripted([serverError, "ok"])
      const notServerErrors = third.attempt.pipe(
        Retry.withRetry({ while: (e: LlmError.LlmError) => e._tag !== "ServerError" })
      )
      assert.deepStrictEqual(yield* Effect.exit(notServerErrors), Exit.fail(serverError))
    }))

  it.effect("a delay longer than maxDelay is capped, but a retryAfter is not", () =>
    Effect.gen(function*() {
      const { attempt, starts } = yield* scripted([serverError, rateLimited("3 seconds"), serverError, "ok"])
      const fiber = yield* Effect.forkChild(
        attempt.pipe(Retry.withRetry({ base: "2 seconds", maxDelay: "1 second", jitter: false }))
      )
      yield* TestClock.adjust("1 minute")
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(yield* starts, [0, 1000, 4000, 5000])
    }))
})

describe("Retry.withTimeout", () => {
  it.effect("fails with TimeoutError at exactly its time and interrupts the attempt", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make(false)
      const attempt = Effect.never.pipe(Effect.onInterrupt(() => Ref.set(interrupted, true)))
      const fiber = yield* Effect.forkChild(attempt.pipe(Retry.withTimeout({ model: "m", timeout: "3 seconds" })))
      yield* TestClock.adjust("2999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      assert.isFalse(yield* Ref.get(interrupted))
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(fiber)
      assert.deepStrictEqual(exit, Exit.fail(new LlmError.TimeoutError({ model: "m", timeout: Duration.seconds(3) })))
      assert.isTrue(yield* Ref.get(interrupted), "the attempt was interrupted before the timeout was reported")
    }))

  it.effect("an attempt that answers in time is untouched", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        Retry.withTimeout(Effect.as(Effect.sleep("2 seconds"), 42), { model: "m", timeout: "3 seconds" })
      )
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), 42)
    }))

  it.effect("an attempt that answers exactly at its timeout is served, not cut", () =>
    Effect.gen(function*() {
      // Under Effect 4's TestClock, sleeps ending at the same instant wake in the order they were
      // registered, and the attempt's starts before the timer's (Effect 3 woke the timer first)
      const fiber = yield* Effect.forkChild(
        Retry.withTimeout(Effect.as(Effect.sleep("3 seconds"), 42), { model: "m", timeout: "3 seconds" })
      )
      yield* TestClock.adjust("3 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), 42)
    }))

  it.effect("inside withRetry, each attempt gets the whole timeout, and timeouts are retried", () =>
    Effect.gen(function*() {
      const starts = yield* Ref.make<ReadonlyArray<number>>([])
      const attempt = Effect.andThen(
        Effect.flatMap(Clock.currentTimeMillis, (now) => Ref.update(starts, (all) => [...all, now])),
        Effect.never
      )
      const fiber = yield* Effect.forkChild(
        attempt.pipe(
          Retry.withTimeout({ model: "m", timeout: "1 second" }),
          Retry.withRetry({ retries: 2, jitter: false })
        )
      )
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(yield* Ref.get(starts), [0, 1250, 2750])
      const exit = yield* Fiber.await(fiber)
      assert.deepStrictEqual(exit, Exit.fail(new LlmError.TimeoutError({ model: "m", timeout: Duration.seconds(1) })))
    }))
})

describe("Retry options", () => {
  const untyped = <A>(json: string): A => JSON.parse(json)

  it.effect("options that describe no policy are a RetryConfigError, never a defect", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Retry.Options<unknown>, string]> = [
        [untyped("{\"base\":\"soon\"}"), "base must be a duration of at least 0, got soon"],
        [{ base: -250 }, "base must be a duration of at least 0, got -250"],
        [{ maxDelay: Number.NaN }, "maxDelay must be a duration of at least 0, got NaN"],
        [{ retries: -1 }, "retries must be a whole number of at least 0, got -1"],
        [{ retries: Number.POSITIVE_INFINITY }, "retries must be a whole number of at least 0, got Infinity"],
        [{ factor: 0.5 }, "factor must be a finite number of at least 1, got 0.5"],
        [{ jitter: { min: -1 } }, "jitter.min must be a finite number of at least 0, got -1"],
        [{ jitter: { min: 1.5, max: 1.2 } }, "jitter.max must be a finite number of at least 1.5, got 1.2"],
        [untyped("{\"jitter\":\"yes\"}"), "jitter must be true, false or { min, max }, got yes"],
        [{ maxWait: "-1 seconds" }, "maxWait must be a duration of at least 0, got -1 seconds"],
        [untyped("{\"while\":1}"), "while must be a function, got 1"]
      ]
      for (const [options, reason] of cases) {
        const { attempt, starts } = yield* scripted([serverError])
        const viaWithRetry = yield* Effect.flip(Retry.withRetry(attempt, options))
        assert.strictEqual(viaWithRetry._tag, "RetryConfigError", JSON.stringify(options))
        assert.include(viaWithRetry.message, `The retry policy is misconfigured: ${reason}`)
        assert.deepStrictEqual(yield* starts, [], "withRetry checks before running the effect")
        // a schedule is asked for its first step when the effect first fails: it fails then, instead of retrying
        const viaPolicy = yield* Effect.flip(Effect.retry(attempt, Retry.policy(options)))
        assert.strictEqual(viaPolicy._tag, "RetryConfigError")
        assert.deepStrictEqual(yield* starts, [0], "one run, never retried")
        if (options.while === undefined && options.maxWait === undefined) {
          // the backoff alone has neither `while` nor `maxWait`
          const viaSchedule = yield* Effect.flip(Effect.retry(attempt, Retry.schedule(options)))
          assert.strictEqual(viaSchedule._tag, "RetryConfigError")
          assert.deepStrictEqual(yield* starts, [0, 0])
        }
      }
      const notAnObject = yield* Effect.flip(Retry.withRetry(Effect.void, untyped("\"often\"")))
      assert.include(notAnObject.message, "options must be an object, got often")
    }))

  it.effect("withTimeout refuses a limit that is not a positive duration, and a model without a name", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Retry.TimeoutOptions, string]> = [
        [untyped("{\"model\":\"m\",\"timeout\":\"soon\"}"), "timeout must be a positive duration, got soon"],
        [{ model: "m", timeout: -5 }, "timeout must be a positive duration, got -5"],
        [{ model: "", timeout: "1 second" }, "model must be a model name, got "]
      ]
      for (const [options, reason] of cases) {
        const { attempt, starts } = yield* scripted(["ok"])
        const error = yield* Effect.flip(Retry.withTimeout(attempt, options))
        assert.strictEqual(error._tag, "RetryConfigError")
        assert.include(error.message, reason)
        assert.deepStrictEqual(yield* starts, [])
      }
    }))
})
