import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, CircuitBreaker, Fallback, LlmError } from "@resilient-llm/core"
import { TestChatClient, TestSpans } from "@resilient-llm/testing"
import { Cause, Clock, Duration, Effect, Exit, Fiber, Metric, Option } from "effect"
import { TestClock } from "effect/testing"

const request = ChatCompletion.prompt("Name a prime.")

const serverError = (model: string) => new LlmError.ServerError({ model, status: 503 })

/** An attempt as a row: model, retry, outcome (or the error's tag), start, duration, hedge. */
const rows = (attempts: ReadonlyArray<Fallback.Attempt>) =>
  attempts.map((a) => [
    a.model,
    a.retry,
    a.outcome === "failure" ? a.error._tag : a.outcome,
    a.startedAt,
    a.durationMs,
    a.hedge
  ])

/** A call to the scripted client as a row: model, start, end, how it ended. */
const calls = (recorded: ReadonlyArray<TestChatClient.Call>) =>
  recorded.map((c) => [c.model, c.startedAt, c.endedAt, c.result])

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.findErrorOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

describe("hedging", () => {
  it.effect("starts the next model when the first has not answered after the delay, serves the first answer and cancels the other", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        Fallback.chain(["slow", "backup"], { timeout: "30 seconds", hedge: { delay: "1 second" } })(request)
      )
      yield* TestClock.adjust("999 millis")
      assert.deepStrictEqual(calls(yield* TestChatClient.calls), [["slow", 0, undefined, "pending"]])
      yield* TestClock.adjust("1 millis") // t = 1,000: the hedge starts, the first still runs
      assert.deepStrictEqual(calls(yield* TestChatClient.calls), [
        ["slow", 0, undefined, "pending"],
        ["backup", 1000, undefined, "pending"]
      ])
      yield* TestClock.adjust("299 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis") // t = 1,300: the hedge answers
      const served = yield* Fiber.join(fiber)
      assert.strictEqual(served.model, "backup")
      assert.strictEqual(ChatCompletion.text(served.value), "two")
      assert.deepStrictEqual(rows(served.attempts), [
        ["slow", 0, "cancelled", 0, 1300, false],
        ["backup", 0, "success", 1000, 300, true]
      ])
      assert.deepStrictEqual(calls(yield* TestChatClient.calls), [
        ["slow", 0, 1300, "interrupted"],
        ["backup", 1000, 1300, "success"]
      ])
    }).pipe(Effect.provide(TestChatClient.layer({
      slow: [TestChatClient.hang],
      backup: [TestChatClient.reply("two", { delay: "300 millis" })]
    }))))

  it.effect("a model that answers within its delay is never hedged", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Fallback.chain(["a", "b"], { hedge: { delay: "1 second" } })(request))
      yield* TestClock.adjust("1000 millis")
      const served = yield* Fiber.join(fiber)
      assert.deepStrictEqual(rows(served.attempts), [["a", 0, "success", 0, 1000, false]])
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(yield* TestChatClient.callsTo("b"), [])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.reply("one", { delay: "1000 millis" })],
      b: [TestChatClient.reply("never asked")]
    }))))

  it.effect("when the first model answers after the hedge started, the hedge is cancelled; the serving attempt is last", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Fallback.chain(["a", "b"], { hedge: { delay: "1 second" } })(request))
      yield* TestClock.adjust("1200 millis")
      const served = yield* Fiber.join(fiber)
      assert.strictEqual(served.model, "a")
      assert.deepStrictEqual(rows(served.attempts), [
        ["b", 0, "cancelled", 1000, 200, true],
        ["a", 0, "success", 0, 1200, false]
      ])
      assert.deepStrictEqual(calls(yield* TestChatClient.calls), [
        ["a", 0, 1200, "success"],
        ["b", 1000, 1200, "interrupted"]
      ])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.reply("one", { delay: "1200 millis" })],
      b: [TestChatClient.reply("two", { delay: "500 millis" })]
    }))))

  it.effect("a failure before the delay falls back at once, as without hedging (not a hedge)", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Fallback.chain(["a", "b"], { hedge: { delay: "1 second" } })(request))
      yield* TestClock.adjust("400 millis")
      const served = yield* Fiber.join(fiber)
      assert.deepStrictEqual(rows(served.attempts), [
        ["a", 0, "ServerError", 0, 100, false],
        ["b", 0, "success", 100, 300, false]
      ])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.fail(serverError("a"), { delay: "100 millis" })],
      b: [TestChatClient.reply("two", { delay: "300 millis" })]
    }))))

  it.effect("a hedge that fails starts the next model at once while the first still runs, up to maxHedges", () =>
    Effect.gen(function*() {
      const script = {
        a: [TestChatClient.hang],
        b: [TestChatClient.fail(serverError("b"), { delay: "100 millis" })],
        c: [TestChatClient.reply("three", { delay: "200 millis" })]
      }
      // two hedges allowed: c starts when b fails, at 1,100 ms, and answers at 1,300 ms
      const two = yield* Effect.forkChild(
        Fallback.chain(["a", "b", "c"], { timeout: "5 seconds", hedge: { delay: "1 second", maxHedges: 2 } })(
          request
        ).pipe(Effect.provide(TestChatClient.layer(script)))
      )
      yield* TestClock.adjust("1300 millis")
      assert.deepStrictEqual(rows((yield* Fiber.join(two)).attempts), [
        ["a", 0, "cancelled", 0, 1300, false],
        ["b", 0, "ServerError", 1000, 100, true],
        ["c", 0, "success", 1100, 200, true]
      ])
      // one hedge (the default): c waits for a, whose timeout ends it at 5 s
      const one = yield* Effect.forkChild(
        Fallback.chain(["a", "b", "c"], { timeout: "5 seconds", hedge: { delay: "1 second" } })(request).pipe(
          Effect.provide(TestChatClient.layer(script))
        )
      )
      yield* TestClock.adjust("5200 millis")
      assert.deepStrictEqual(rows((yield* Fiber.join(one)).attempts), [
        ["a", 0, "TimeoutError", 1300, 5000, false],
        ["b", 0, "ServerError", 2300, 100, true],
        ["c", 0, "success", 6300, 200, false]
      ])
    }))

  it.effect("the delay is a percentile of the model's recent successes, and the initial delay until there are enough", () =>
    Effect.gen(function*() {
      const hedge = Fallback.hedge({ delay: { percentile: 90, initial: "5 seconds", samples: 10, minSamples: 10 } })
      const complete = Fallback.chain(["a", "b"], { hedge })
      // ten answers from a: 100, 200, ..., 1,000 ms; the 90th percentile (nearest rank) is 900 ms
      // (until the tenth, the delay is the initial 5 s, which none of them reaches)
      for (let i = 0; i < 10; i++) {
        const fiber = yield* Effect.forkChild(complete(request))
        yield* TestClock.adjust(Duration.millis((i + 1) * 100))
        assert.strictEqual((yield* Fiber.join(fiber)).model, "a")
      }
      assert.deepStrictEqual(yield* TestChatClient.callsTo("b"), [])
      const start = yield* Clock.currentTimeMillis
      const hedged = yield* Effect.forkChild(complete(request)) // a hangs now
      yield* TestClock.adjust("899 millis")
      assert.deepStrictEqual(yield* TestChatClient.callsTo("b"), [])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual((yield* TestChatClient.callsTo("b")).map((c) => c.startedAt - start), [900])
      yield* TestClock.adjust("50 millis")
      const served = yield* Fiber.join(hedged)
      assert.strictEqual(served.model, "b")
      assert.deepStrictEqual(rows(served.attempts).map((row) => row.slice(2)), [
        ["cancelled", start, 950, false],
        ["success", start + 900, 50, true]
      ])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: (index) =>
        index < 10 ? TestChatClient.reply("one", { delay: Duration.millis((index + 1) * 100) }) : TestChatClient.hang,
      b: [TestChatClient.reply("two", { delay: "50 millis" })]
    }))))

  it.effect("maxInFlight caps the hedges running at once across calls: past it, a call waits as without hedging", () =>
    Effect.gen(function*() {
      const complete = Fallback.chain(["a", "b"], {
        timeout: "3 seconds",
        hedge: { delay: "1 second", maxInFlight: 1 }
      })
      const first = yield* Effect.forkChild(complete(request))
      const second = yield* Effect.forkChild(complete(request))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual((yield* TestChatClient.callsTo("b")).map((c) => c.startedAt), [1000])
      yield* TestClock.adjust("500 millis")
      assert.deepStrictEqual(rows((yield* Fiber.join(first)).attempts), [
        ["a", 0, "cancelled", 0, 1500, false],
        ["b", 0, "success", 1000, 500, true]
      ])
      yield* TestClock.adjust("2 seconds") // the second waits for a's timeout, then falls back
      assert.deepStrictEqual(rows((yield* Fiber.join(second)).attempts), [
        ["a", 0, "TimeoutError", 0, 3000, false],
        ["b", 0, "success", 3000, 500, false]
      ])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.hang],
      b: [TestChatClient.reply("two", { delay: "500 millis" })]
    }))))

  it.effect("an error that must not fall back ends the chain and cancels the model still running", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        Effect.exit(Fallback.chain(["a", "b", "c"], { hedge: { delay: "1 second" } })(request))
      )
      yield* TestClock.adjust("1100 millis")
      const error = failureOf(yield* Fiber.join(fiber))
      assert.strictEqual(error._tag, "AllModelsFailed")
      if (error._tag !== "AllModelsFailed") return
      assert.strictEqual(error.reason, "NotFallbackable")
      assert.deepStrictEqual(error.untried, ["c"])
      assert.deepStrictEqual(calls(yield* TestChatClient.calls), [
        ["a", 0, 1100, "interrupted"],
        ["b", 1000, 1100, "failure"]
      ])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.hang],
      b: [TestChatClient.fail(new LlmError.BadRequestError({ model: "b", status: 400, code: Option.none() }), {
        delay: "100 millis"
      })],
      c: [TestChatClient.reply("never asked")]
    }))))

  it.effect("interrupting the chain interrupts every model running and starts no hedge", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Fallback.chain(["a", "b", "c"], { hedge: { delay: "1 second" } })(request))
      yield* TestClock.adjust("1500 millis")
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(calls(yield* TestChatClient.calls), [
        ["a", 0, 1500, "interrupted"],
        ["b", 1000, 1500, "interrupted"]
      ])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.hang],
      b: [TestChatClient.hang],
      c: [TestChatClient.hang]
    }))))

  it.effect("a hedged attempt is refused at once by an open circuit, and the next model starts in its place", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ trip: CircuitBreaker.consecutiveFailures(1) })
      yield* Effect.flip(breaker.protect("b")(Effect.fail(serverError("b"))))
      const fiber = yield* Effect.forkChild(
        Fallback.chain(["a", "b", "c"], { breaker, hedge: { delay: "1 second", maxHedges: 2 } })(request)
      )
      yield* TestClock.adjust("1100 millis")
      const served = yield* Fiber.join(fiber)
      assert.strictEqual(served.model, "c")
      assert.deepStrictEqual(rows(served.attempts), [
        ["a", 0, "cancelled", 0, 1100, false],
        ["b", 0, "CircuitOpenError", 1000, 0, true],
        ["c", 0, "success", 1000, 100, true]
      ])
      assert.deepStrictEqual(yield* TestChatClient.callsTo("b"), [])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.hang],
      b: [TestChatClient.reply("never asked")],
      c: [TestChatClient.reply("three", { delay: "100 millis" })]
    }))))

  it.effect("with slowCallThreshold, the breaker counts a hung model whose attempts the hedge cancels", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(2),
        slowCallThreshold: "1500 millis"
      })
      const complete = Fallback.chain(["hung", "backup"], { breaker, hedge: { delay: "1 second" } })
      // two calls 100 ms apart: each is hedged at 1 s and served at 2 s; the hung model's attempts
      // are slow at 1,501 ms and 1,601 ms, before they are cancelled, and open its circuit
      const first = yield* Effect.forkChild(complete(request))
      yield* TestClock.adjust("100 millis")
      const second = yield* Effect.forkChild(complete(request))
      yield* TestClock.adjust("2000 millis")
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      assert.strictEqual(yield* breaker.state("hung"), "open")
      const third = yield* complete(request).pipe(Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const served = yield* Fiber.join(third)
      assert.deepStrictEqual(
        served.attempts.map((a) => [a.model, a.outcome === "failure" ? a.error._tag : a.outcome]),
        [
          ["hung", "CircuitOpenError"],
          ["backup", "success"]
        ]
      )
      assert.strictEqual((yield* TestChatClient.callsTo("hung")).length, 2)
    }).pipe(Effect.provide(TestChatClient.layer({
      hung: [TestChatClient.hang],
      backup: [TestChatClient.reply("two", { delay: "1 second" })]
    }))))

  it.effect("bad hedging options are a FallbackConfigError naming the option, for chain, stream and Fallback.hedge", () =>
    Effect.gen(function*() {
      // options from a config file: the types never saw them
      const untyped = <A>(json: string): A => JSON.parse(json)
      const reasonOf = (options: Fallback.Options) =>
        Effect.map(
          Effect.flip(Fallback.chain(["a"], options)(request)),
          (error) => error._tag === "FallbackConfigError" ? error.reason : `not a config error: ${error._tag}`
        )
      assert.strictEqual(
        yield* reasonOf(untyped("{\"hedge\":{\"delay\":\"soon\"}}")),
        "hedge.delay must be a duration of at least 0, got soon"
      )
      assert.strictEqual(
        yield* reasonOf({ hedge: { delay: { percentile: 0, initial: "1 second" } } }),
        "hedge.delay.percentile must be above 0, got 0"
      )
      assert.strictEqual(
        yield* reasonOf({ hedge: { delay: { percentile: 101, initial: "1 second" } } }),
        "hedge.delay.percentile must be a finite number between 0 and 100, got 101"
      )
      assert.strictEqual(
        yield* reasonOf({ hedge: { delay: "1 second", maxHedges: 0 } }),
        "hedge.maxHedges must be a whole number of at least 1, got 0"
      )
      assert.strictEqual(
        yield* reasonOf({ hedge: Fallback.hedge({ delay: "1 second", maxInFlight: 1.5 }) }),
        "hedge.maxInFlight must be a whole number of at least 1, got 1.5"
      )
      assert.deepStrictEqual(yield* TestChatClient.calls, [])
    }).pipe(Effect.provide(TestChatClient.layer({ a: [TestChatClient.reply("never asked")] }))))
})

describe("hedging's telemetry", () => {
  it.effect("counts each hedge by model and how it ended, and marks the hedge's attempt span", () =>
    Effect.gen(function*() {
      const spans = yield* TestSpans.make
      const complete = Fallback.chain(["a", "b"], { hedge: { delay: "1 second" } })
      const served = yield* Effect.forkChild(complete(request).pipe(Effect.withTracer(spans.tracer)))
      yield* TestClock.adjust("1300 millis") // b, a hedge, answers first
      yield* Fiber.join(served)
      const cancelled = yield* Effect.forkChild(complete(request))
      yield* TestClock.adjust("1200 millis") // a answers before its hedge
      yield* Fiber.join(cancelled)
      const hedges = (yield* Metric.snapshot).filter((m) => m.id === "resilient_llm_hedges_total")
      assert.deepStrictEqual(
        hedges.map((
          m
        ) => [m.attributes?.["model"], m.attributes?.["outcome"], m.type === "Counter" ? m.state.count : -1])
          .sort(),
        [["b", "cancelled", 1], ["b", "served", 1]]
      )
      const attemptSpans = spans.spans.filter((span) => span.name === "resilient-llm.fallback.attempt")
      assert.deepStrictEqual(
        attemptSpans.map((
          span
        ) => [span.attributes.get("llm.model"), span.attributes.get("llm.hedge"), span.attributes.get("llm.outcome")]),
        [["b", true, "success"], ["a", undefined, "interrupted"]]
      )
    }).pipe(
      Effect.provideService(Metric.MetricRegistry, new Map()),
      Effect.provide(TestChatClient.layer({
        a: (index) => index === 0 ? TestChatClient.hang : TestChatClient.reply("one", { delay: "1200 millis" }),
        b: [TestChatClient.reply("two", { delay: "300 millis" })]
      }))
    ))
})

describe("hedging a stream", () => {
  it.effect("races the first chunk: the first model to send one serves, the other's connection is closed", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        Fallback.stream(["slow", "fast"], { hedge: { delay: "1 second" } })(request)
      )
      yield* TestClock.adjust("1299 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const served = yield* Fiber.join(fiber)
      assert.strictEqual(served.model, "fast")
      assert.deepStrictEqual(rows(served.attempts), [
        ["slow", 0, "cancelled", 0, 1300, false],
        ["fast", 0, "success", 1000, 300, true]
      ])
      assert.deepStrictEqual(calls(yield* TestChatClient.callsTo("slow")), [["slow", 0, 1300, "interrupted"]])
      const text = yield* Effect.forkChild(TestChatClient.collectText(served.value))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(text), "one two")
    }).pipe(Effect.provide(TestChatClient.layer({
      slow: [TestChatClient.reply("never seen", { delay: "10 minutes" })],
      fast: [TestChatClient.reply("one two", { delay: "300 millis", chunkDelay: "100 millis" })]
    }))))

  it.effect("the first model's first chunk after the hedge started: it serves, and the hedge's connection is closed", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Fallback.stream(["a", "b"], { hedge: { delay: "1 second" } })(request))
      yield* TestClock.adjust("999 millis")
      assert.deepStrictEqual(yield* TestChatClient.callsTo("b"), [])
      yield* TestClock.adjust("1 millis") // t = 1,000: b starts alongside a
      assert.deepStrictEqual(calls(yield* TestChatClient.callsTo("b")), [["b", 1000, undefined, "pending"]])
      yield* TestClock.adjust("199 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis") // t = 1,200: a's first chunk
      const served = yield* Fiber.join(fiber)
      assert.strictEqual(served.model, "a")
      assert.deepStrictEqual(rows(served.attempts), [
        ["b", 0, "cancelled", 1000, 200, true],
        ["a", 0, "success", 0, 1200, false]
      ])
      assert.deepStrictEqual(calls(yield* TestChatClient.callsTo("b")), [["b", 1000, 1200, "interrupted"]])
      const text = yield* Effect.forkChild(TestChatClient.collectText(served.value))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(text), "one two")
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.reply("one two", { delay: "1200 millis", chunkDelay: "100 millis" })],
      b: [TestChatClient.reply("never seen", { delay: "500 millis" })]
    }))))

  it.effect("a percentile delay learns a stream's time to its first chunk, not how long the stream lasts", () =>
    Effect.gen(function*() {
      const hedge = Fallback.hedge({ delay: { percentile: 50, initial: "10 seconds", samples: 2, minSamples: 2 } })
      const stream = Fallback.stream(["a", "b"], { hedge })
      // two streams from a: the first chunk at 200 ms, the last about 2 s later
      for (let i = 0; i < 2; i++) {
        const read = Effect.scoped(
          Effect.flatMap(stream(request), (served) => TestChatClient.collectText(served.value))
        )
        const fiber = yield* Effect.forkChild(read)
        yield* TestClock.adjust("5 seconds")
        assert.strictEqual(yield* Fiber.join(fiber), "one two three")
      }
      const start = yield* Clock.currentTimeMillis
      const fiber = yield* Effect.forkChild(stream(request)) // a hangs now
      yield* TestClock.adjust("199 millis")
      assert.deepStrictEqual(yield* TestChatClient.callsTo("b"), [])
      yield* TestClock.adjust("1 millis") // the median time to a first chunk: b starts
      assert.deepStrictEqual((yield* TestChatClient.callsTo("b")).map((c) => c.startedAt - start), [200])
      yield* TestClock.adjust("50 millis")
      const served = yield* Fiber.join(fiber)
      assert.deepStrictEqual(rows(served.attempts).map((row) => row.slice(2)), [
        ["cancelled", start, 250, false],
        ["success", start + 200, 50, true]
      ])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: (index) =>
        index < 2
          ? TestChatClient.reply("one two three", { delay: "200 millis", chunkDelay: "1 second" })
          : TestChatClient.hang,
      b: [TestChatClient.reply("two", { delay: "50 millis" })]
    }))))
})
