import { assert, describe, it } from "@effect/vitest"
import { ChatClient, ChatCompletion, CircuitBreaker, Fallback, LlmError } from "@resilient-llm/core"
import { TestChatClient, TestLogs } from "@resilient-llm/testing"
import {
  Arbitrary,
  Cause,
  Duration,
  Effect,
  Equal,
  Exit,
  Fiber,
  Layer,
  Option,
  Ref,
  Schema,
  Stream,
  Tracer
} from "effect"
import { TestClock } from "effect/testing"

const request = ChatCompletion.prompt("Name a prime.")

/** A tracer of our own: spans as Effect's default tracer keeps them, but installed, as a backend would be. */
const installedTracer = Tracer.make({ span: (options) => new Tracer.NativeSpan(options) })

const serverError = (model: string) => new LlmError.ServerError({ model, status: 503 })
const summary = (attempts: ReadonlyArray<Fallback.Attempt>) =>
  attempts.map((a) => [a.model, a.retry, a.outcome === "failure" ? a.error._tag : a.outcome, a.startedAt, a.durationMs])
const callSummary = (calls: ReadonlyArray<TestChatClient.Call>) =>
  calls.map((c) => [c.model, c.startedAt, c.endedAt, c.result])

/** Data errors compare by `Equal` (a deep comparison would also see Effect's cached hash). */
const assertSameError = (actual: unknown, expected: unknown) =>
  assert.isTrue(Equal.equals(actual, expected), `${String(actual)} is not ${String(expected)}`)

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const failure = Cause.findErrorOption(exit.cause)
  if (Option.isNone(failure)) throw new Error(`expected a failure, got ${Cause.pretty(exit.cause)}`)
  return failure.value
}

/** The failure of a chain that ran: its `AllModelsFailed`. */
const allFailed = <A, E>(
  exit: Exit.Exit<A, Fallback.AllModelsFailed<E> | Fallback.FallbackConfigError>
): Fallback.AllModelsFailed<E> => {
  const error = failureOf(exit)
  if (error._tag !== "AllModelsFailed") throw new Error(`expected AllModelsFailed, got ${error.message}`)
  return error
}

/** A breaker stub: refuses the models in `open`, lets the rest through and records how each ended. */
const stubBreaker = (open: ReadonlyArray<string>) =>
  Effect.map(Ref.make<ReadonlyArray<readonly [string, string]>>([]), (seen) => {
    const breaker: Fallback.Breaker = {
      protect: (key) => (self) =>
        open.includes(key)
          ? Effect.andThen(
            Ref.update(seen, (all) => [...all, [key, "refused"] as const]),
            Effect.fail(new LlmError.CircuitOpenError({ model: key, retryAfter: Duration.seconds(30) }))
          )
          : Effect.onExit(self, (exit) =>
            Ref.update(seen, (all) => [
              ...all,
              [
                key,
                Exit.isSuccess(exit)
                  ? "success"
                  : Option.match(Cause.findErrorOption(exit.cause), {
                    onNone: () => "interrupted",
                    onSome: (error) =>
                      typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "error"
                  })
              ] as const
            ]))
    }
    return { breaker, seen: Ref.get(seen) }
  })

describe("Fallback.chain", () => {
  it.effect("tries models in order and serves the first success, with every attempt recorded", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Fallback.chain(["a", "b", "c", "d"])(request))
      yield* TestClock.adjust("1 second")
      const served = yield* Fiber.join(fiber)
      assert.strictEqual(served.model, "c")
      assert.strictEqual(ChatCompletion.text(served.value), "three")
      assert.deepStrictEqual(summary(served.attempts), [
        ["a", 0, "ServerError", 0, 100],
        ["b", 0, "ModelNotFoundError", 100, 0],
        ["c", 0, "success", 100, 300]
      ])
      assert.deepStrictEqual(callSummary(yield* TestChatClient.calls), [
        ["a", 0, 100, "failure"],
        ["b", 100, 100, "failure"],
        ["c", 100, 400, "success"]
      ])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.fail(serverError("a"), { delay: "100 millis" })],
      b: [TestChatClient.fail(new LlmError.ModelNotFoundError({ model: "b" }))],
      c: [TestChatClient.reply("three", { delay: "300 millis" })],
      d: [TestChatClient.reply("never asked")]
    }))))

  it.effect("a BadRequestError stops the chain and is reported as the error that stopped it", () =>
    Effect.gen(function*() {
      const badRequest = new LlmError.BadRequestError({ model: "b", status: 400, code: Option.some("invalid_value") })
      const error = allFailed(yield* Effect.exit(Fallback.chain(["a", "b", "c"])(request)))
      assert.strictEqual(error._tag, "AllModelsFailed")
      assert.strictEqual(error.reason, "NotFallbackable")
      assert.isTrue(error.stoppedEarly)
      assertSameError(error.stoppedBy, badRequest)
      assert.deepStrictEqual(error.untried, ["c"])
      assert.strictEqual(error.errors.length, 2)
      assertSameError(error.errors[0], serverError("a"))
      assertSameError(error.errors[1], badRequest)
      assert.strictEqual(
        error.message,
        "Fallback chain stopped on an error that must not fall back, after 2 attempts: " +
          "a: Model a failed with HTTP 503; " +
          "b: Model b rejected the request with HTTP 400 (invalid_value); not tried: c"
      )
      assert.deepStrictEqual(yield* TestChatClient.callsTo("c"), [])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.fail(serverError("a"))],
      b: [
        TestChatClient.fail(
          new LlmError.BadRequestError({ model: "b", status: 400, code: Option.some("invalid_value") })
        )
      ],
      c: [TestChatClient.reply("never asked")]
    }))))

  it.effect("when every model fails, AllModelsFailed holds every attempt in order and a message naming each", () =>
    Effect.gen(function*() {
      const error = allFailed(yield* Effect.exit(Fallback.chain(["a", "b"])(request)))
      assert.strictEqual(error.reason, "Exhausted")
      assert.isFalse(error.stoppedEarly)
      assert.isUndefined(error.stoppedBy)
      assert.deepStrictEqual(error.models, ["a", "b"])
      assert.deepStrictEqual(summary(error.attempts), [["a", 0, "ServerError", 0, 0], [
        "b",
        0,
        "AuthenticationError",
        0,
        0
      ]])
      assert.strictEqual(
        error.message,
        "All 2 models of the fallback chain failed, after 2 attempts: " +
          "a: Model a failed with HTTP 503; b: Model b refused the credentials (HTTP 401)"
      )
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.fail(serverError("a"))],
      b: [TestChatClient.fail(new LlmError.AuthenticationError({ model: "b", status: 401 }))]
    }))))

  it.effect("no models is a typed failure, not a crash", () =>
    Effect.gen(function*() {
      const error = allFailed(yield* Effect.exit(Fallback.chain([])(request)))
      assert.strictEqual(error.reason, "NoModels")
      assert.deepStrictEqual(error.attempts, [])
      assert.strictEqual(error.message, "Fallback chain has no models to try")
      assert.deepStrictEqual(yield* TestChatClient.calls, [])
    }).pipe(Effect.provide(TestChatClient.layer({}))))

  it.effect("the per-attempt timeout fires at exactly its time, interrupts the attempt, and the chain moves on", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Fallback.chain(["slow", "fast"], { timeout: "2 seconds" })(request))
      yield* TestClock.adjust("1999 millis")
      assert.deepStrictEqual(callSummary(yield* TestChatClient.calls), [["slow", 0, undefined, "pending"]])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(callSummary(yield* TestChatClient.calls), [
        ["slow", 0, 2000, "interrupted"],
        ["fast", 2000, undefined, "pending"]
      ])
      yield* TestClock.adjust("500 millis")
      const served = yield* Fiber.join(fiber)
      assert.strictEqual(served.model, "fast")
      assert.deepStrictEqual(summary(served.attempts), [["slow", 0, "TimeoutError", 0, 2000], [
        "fast",
        0,
        "success",
        2000,
        500
      ]])
      assertSameError(
        served.attempts[0].error,
        new LlmError.TimeoutError({ model: "slow", timeout: Duration.seconds(2) })
      )
    }).pipe(Effect.provide(TestChatClient.layer({
      slow: [TestChatClient.hang],
      fast: [TestChatClient.reply("two", { delay: "500 millis" })]
    }))))

  it.effect("retries each model by the schedule, every try an attempt with its retry number", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        Fallback.chain(["a", "b"], { retry: { retries: 2, jitter: false } })(request)
      )
      yield* TestClock.adjust("10 seconds")
      const served = yield* Fiber.join(fiber)
      assert.strictEqual(served.model, "b")
      assert.deepStrictEqual(summary(served.attempts), [
        ["a", 0, "ServerError", 0, 0],
        ["a", 1, "ServerError", 250, 0],
        ["a", 2, "ServerError", 750, 0],
        ["b", 0, "ServerError", 750, 0],
        ["b", 1, "success", 1000, 0]
      ])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.fail(serverError("a"))],
      b: [TestChatClient.fail(serverError("b")), TestChatClient.reply("two")]
    }))))

  it.effect("a retryAfter above maxWait moves on to the next model at once", () =>
    Effect.gen(function*() {
      const limited = new LlmError.RateLimitError({ model: "a", retryAfter: Option.some(Duration.minutes(1)) })
      const fiber = yield* Effect.forkChild(
        Fallback.chain(["a", "b"], { retry: { maxWait: "10 seconds" } })(request)
      )
      yield* TestClock.adjust("0 millis")
      const served = yield* Fiber.join(fiber)
      assert.strictEqual(served.model, "b")
      assert.deepStrictEqual(served.attempts.map((a) => [a.model, a.startedAt, a.outcome]), [
        ["a", 0, "failure"],
        ["b", 0, "success"]
      ])
      assertSameError(served.attempts[0].error, limited)
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [
        TestChatClient.fail(new LlmError.RateLimitError({ model: "a", retryAfter: Option.some(Duration.minutes(1)) }))
      ],
      b: [TestChatClient.reply("two")]
    }))))

  describe("deadline", () => {
    it.effect("the last attempt gets only what is left, and no attempt starts after the deadline", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(
          Fallback.chain(["a", "b", "c", "d"], { timeout: "4 seconds", deadline: "10 seconds" })(request)
        )
        yield* TestClock.adjust("9999 millis")
        assert.isUndefined(fiber.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        const error = allFailed(yield* Fiber.await(fiber))
        assert.strictEqual(error.reason, "DeadlineReached")
        assert.deepStrictEqual(error.untried, ["d"])
        assert.deepStrictEqual(error.attempts.map((a) => [a.model, a.startedAt, a.durationMs, a.error.message]), [
          ["a", 0, 4000, "Model a did not answer within 4s"],
          ["b", 4000, 4000, "Model b did not answer within 4s"],
          ["c", 8000, 2000, "Model c did not answer within 2s"]
        ])
        assertSameError(
          error.attempts[2].error,
          new LlmError.TimeoutError({ model: "c", timeout: Duration.seconds(2) })
        )
        assert.match(error.message, /^Fallback chain reached its deadline of 10s after 3 attempts: .*not tried: d$/)
        yield* TestClock.adjust("1 minute")
        assert.deepStrictEqual(callSummary(yield* TestChatClient.calls), [
          ["a", 0, 4000, "interrupted"],
          ["b", 4000, 8000, "interrupted"],
          ["c", 8000, 10000, "interrupted"]
        ])
      }).pipe(Effect.provide(TestChatClient.layer({
        a: [TestChatClient.hang],
        b: [TestChatClient.hang],
        c: [TestChatClient.hang],
        d: [TestChatClient.reply("too late")]
      }))))

    it.effect("the README's timeline: timeout, retry and deadline together", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(
          Fallback.chain(["a", "b", "c"], {
            timeout: "4 seconds",
            retry: { retries: 1, jitter: false },
            deadline: "10 seconds"
          })(request)
        )
        yield* TestClock.adjust("10 seconds")
        const error = allFailed(yield* Fiber.await(fiber))
        assert.deepStrictEqual(
          error.attempts.map((a) => [a.model, a.retry, a.startedAt, a.durationMs, a.error.message]),
          [
            ["a", 0, 0, 4000, "Model a did not answer within 4s"],
            ["a", 1, 4250, 4000, "Model a did not answer within 4s"],
            ["b", 0, 8250, 1750, "Model b did not answer within 1s 750ms"]
          ]
        )
        assert.strictEqual(error.reason, "DeadlineReached")
        assert.deepStrictEqual(error.untried, ["c"])
      }).pipe(Effect.provide(TestChatClient.layer({
        a: [TestChatClient.hang],
        b: [TestChatClient.hang],
        c: [TestChatClient.reply("too late")]
      }))))

    it.effect("a retry whose delay would end past the deadline is skipped, and the next model gets the rest", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(
          Fallback.chain(["a", "b"], { deadline: "1 second", retry: { jitter: false } })(request)
        )
        yield* TestClock.adjust("1 second")
        const error = allFailed(yield* Fiber.await(fiber))
        assert.strictEqual(error.reason, "DeadlineReached")
        assert.deepStrictEqual(error.attempts.map((a) => [a.model, a.retry, a.startedAt, a.durationMs, a.error._tag]), [
          ["a", 0, 0, 900, "ServerError"],
          ["b", 0, 900, 100, "TimeoutError"]
        ])
        assertSameError(
          error.attempts[1].error,
          new LlmError.TimeoutError({ model: "b", timeout: Duration.millis(100) })
        )
      }).pipe(Effect.provide(TestChatClient.layer({
        a: [TestChatClient.fail(serverError("a"), { delay: "900 millis" })],
        b: [TestChatClient.hang]
      }))))
  })

  describe("breaker", () => {
    it.effect("an open circuit skips its model at once, recorded as CircuitOpenError; every retry passes the breaker", () =>
      Effect.gen(function*() {
        const { breaker, seen } = yield* stubBreaker(["a"])
        const fiber = yield* Effect.forkChild(
          Fallback.chain(["a", "b"], { breaker, retry: { retries: 3, jitter: false } })(request)
        )
        yield* TestClock.adjust("10 seconds")
        const served = yield* Fiber.join(fiber)
        assert.strictEqual(served.model, "b")
        assert.deepStrictEqual(summary(served.attempts), [
          ["a", 0, "CircuitOpenError", 0, 0],
          ["b", 0, "ServerError", 0, 0],
          ["b", 1, "ServerError", 250, 0],
          ["b", 2, "success", 750, 0]
        ])
        assert.deepStrictEqual(yield* seen, [
          ["a", "refused"],
          ["b", "ServerError"],
          ["b", "ServerError"],
          ["b", "success"]
        ])
        assert.deepStrictEqual(yield* TestChatClient.callsTo("a"), [], "nothing was sent to the open model")
      }).pipe(Effect.provide(TestChatClient.layer({
        a: [TestChatClient.reply("never asked")],
        b: [TestChatClient.fail(serverError("b")), TestChatClient.fail(serverError("b")), TestChatClient.reply("ok")]
      }))))

    it.effect("a timeout reaches the breaker as a failure", () =>
      Effect.gen(function*() {
        const { breaker, seen } = yield* stubBreaker([])
        const fiber = yield* Effect.forkChild(Fallback.chain(["a", "b"], { breaker, timeout: "1 second" })(request))
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)
        assert.deepStrictEqual(yield* seen, [["a", "TimeoutError"], ["b", "success"]])
      }).pipe(Effect.provide(TestChatClient.layer({
        a: [TestChatClient.hang],
        b: [TestChatClient.reply("ok")]
      }))))
  })

  it.effect("interrupting the chain interrupts the attempt in flight, and no attempt starts after it", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        Fallback.chain(["a", "b", "c"], { timeout: "5 seconds", retry: { jitter: false } })(request)
      )
      yield* TestClock.adjust("6 seconds")
      assert.deepStrictEqual(callSummary(yield* TestChatClient.calls), [
        ["a", 0, 5000, "interrupted"],
        ["a", 5250, undefined, "pending"]
      ])
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("10 minutes")
      assert.deepStrictEqual(callSummary(yield* TestChatClient.calls), [
        ["a", 0, 5000, "interrupted"],
        ["a", 5250, 6000, "interrupted"]
      ])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.hang],
      b: [TestChatClient.reply("never asked")],
      c: [TestChatClient.reply("never asked")]
    }))))

  it.effect("each try is an attempt span with its model and retry number, inside the fallback span", () =>
    Effect.gen(function*() {
      const seen: Array<readonly [string, unknown, unknown, string | undefined]> = []
      let parentSpan: Tracer.Span | undefined
      let calls = 0
      const spying = Layer.succeed(ChatClient.ChatClient, {
        create: (req) =>
          Effect.flatMap(Effect.orDie(Effect.currentSpan), (span) => {
            const parent = Option.getOrUndefined(span.parent)
            if (parent?._tag === "Span") parentSpan = parent
            seen.push([
              span.name,
              span.attributes.get("llm.model"),
              span.attributes.get("llm.retry"),
              parent?._tag === "Span" ? parent.name : undefined
            ])
            return calls++ === 0
              ? Effect.fail(serverError(req.model))
              : Effect.succeed(ChatCompletion.make({ model: req.model, content: "ok" }))
          }),
        stream: () => Stream.die(new Error("not scripted"))
      })
      const served = yield* Fallback.chain(["a"], { retry: { jitter: false } })(request).pipe(
        Effect.provide(spying),
        Effect.withTracer(installedTracer),
        Effect.forkChild,
        Effect.tap(() => TestClock.adjust("250 millis")),
        Effect.flatMap(Fiber.join)
      )
      assert.strictEqual(served.attempts.length, 2)
      assert.deepStrictEqual(seen, [
        ["resilient-llm.fallback.attempt", "a", 0, "resilient-llm.fallback"],
        ["resilient-llm.fallback.attempt", "a", 1, "resilient-llm.fallback"]
      ])
      assert.strictEqual(parentSpan?.attributes.get("llm.served_model"), "a")
      assert.strictEqual(parentSpan?.attributes.get("llm.models"), "a")
    }))

  it.effect("without a tracer installed (Effect's default one, which exports nothing), no span is made", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const spying = Layer.succeed(ChatClient.ChatClient, {
        create: (req) =>
          Effect.map(Effect.currentSpan, (span) => {
            seen.push(span.name)
            return ChatCompletion.make({ model: req.model, content: "ok" })
          }).pipe(Effect.orElseSucceed(() => ChatCompletion.make({ model: req.model, content: "no span" }))),
        stream: () => Stream.die(new Error("not scripted"))
      })
      const bare = yield* Fallback.chain(["a"])(request).pipe(Effect.provide(spying))
      assert.strictEqual(ChatCompletion.text(bare.value), "no span")
      yield* Fallback.chain(["a"])(request).pipe(Effect.withSpan("caller"), Effect.provide(spying))
      assert.deepStrictEqual(seen, ["caller"])
      yield* Fallback.chain(["a"])(request).pipe(Effect.provide(spying), Effect.withTracer(installedTracer))
      assert.deepStrictEqual(seen, ["caller", "resilient-llm.fallback.attempt"])
    }))

  it.effect("logs the served model and the number of attempts; a failed chain logs one line too", () =>
    Effect.gen(function*() {
      const { layer, lines } = TestLogs.make()
      yield* Fallback.chain(["a", "b"])(request).pipe(Effect.provide(layer))
      const served = lines.filter((line) => line.annotations["llm.attempts"] !== undefined)
      assert.deepStrictEqual(served.map((line) => [line.level, line.message, line.annotations["llm.model"]]), [
        ["INFO", "served by b after 2 attempts", "b"]
      ])
      assert.strictEqual(served[0].annotations["llm.pattern"], "fallback")
      // one line per attempt from Observability, then the served line
      assert.deepStrictEqual(lines.map((line) => line.message), [
        "attempt failed",
        "attempt succeeded",
        "served by b after 2 attempts"
      ])

      const failed = TestLogs.make()
      yield* Effect.exit(Fallback.chain(["a"])(request).pipe(Effect.provide(failed.layer)))
      assert.deepStrictEqual(failed.lines.map((line) => [line.level, line.message]), [
        ["WARN", "attempt failed"],
        ["WARN", "All 1 model of the fallback chain failed, after 1 attempt: a: Model a failed with HTTP 503"]
      ])
      assert.strictEqual(failed.lines[1].annotations["llm.reason"], "Exhausted")
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.fail(serverError("a"))],
      b: [TestChatClient.reply("ok")]
    }))))
})

describe("Fallback options", () => {
  // what a caller without the types could pass: a config file, an environment variable
  const untyped = <A>(json: string): A => JSON.parse(json)

  it.effect("options that describe no chain are a FallbackConfigError, and nothing is called", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Fallback.StreamOptions, string]> = [
        [untyped("{\"timeout\":\"soon\"}"), "timeout must be a positive duration, got soon"],
        [{ timeout: 0 }, "timeout must be a positive duration, got 0"],
        [{ timeout: Number.NaN }, "timeout must be a positive duration, got NaN"],
        [{ deadline: -1000 }, "deadline must be a positive duration, got -1000"],
        [{ deadline: "-5 seconds" }, "deadline must be a positive duration, got -5 seconds"],
        [untyped("{\"deadline\":{}}"), "deadline must be a positive duration, got {}"],
        [untyped("{\"retry\":{\"retries\":1.5}}"), "retry.retries must be a whole number of at least 0, got 1.5"],
        [{ retry: { base: -1 } }, "retry.base must be a duration of at least 0, got -1"],
        [{ retry: { factor: Number.NaN } }, "retry.factor must be a finite number of at least 1, got NaN"],
        [{ retry: { jitter: { min: 1.2, max: 0.8 } } }, "retry.jitter.max must be a finite number of at least 1.2"],
        [untyped("{\"retry\":\"often\"}"), "retry must be an object of Retry options, got often"],
        [untyped("{\"shouldFallback\":true}"), "shouldFallback must be a function, got true"],
        [untyped("{\"breaker\":{}}"), "breaker must have a protect function, got {}"],
        // a value String() cannot print (found by the property below)
        [
          untyped("{\"breaker\":[{\"toString\":\"\"}]}"),
          "breaker must have a protect function, got [{\"toString\":\"\"}]"
        ]
      ]
      for (const [options, reason] of cases) {
        const error = failureOf(yield* Effect.exit(Fallback.chain(["a", "b"], options)(request)))
        assert.strictEqual(error._tag, "FallbackConfigError", JSON.stringify(options))
        assert.include(error.message, `The fallback chain is misconfigured: ${reason}`)
        const streamed = failureOf(yield* Effect.exit(Effect.scoped(Fallback.stream(["a"], options)(request))))
        assert.strictEqual(streamed._tag, "FallbackConfigError")
      }
      const idle = failureOf(
        yield* Effect.exit(Effect.scoped(Fallback.stream(["a"], untyped("{\"idleTimeout\":\"never\"}"))(request)))
      )
      assert.include(idle.message, "idleTimeout must be a positive duration, got never")
      const unnamed = failureOf(yield* Effect.exit(Fallback.chain(untyped("[\"a\", \"\"]"))(request)))
      assert.include(unnamed.message, "model 2 of 2 has no name")
      const generic = failureOf(
        yield* Effect.exit(Fallback.firstSuccess(["a"], () => Effect.succeed(1), { deadline: -1 }))
      )
      assert.strictEqual(generic._tag, "FallbackConfigError")
      assert.deepStrictEqual(yield* TestChatClient.calls, [])
    }).pipe(Effect.provide(TestChatClient.layer({ a: [TestChatClient.reply("never asked")] }))))

  it.effect.prop(
    "whatever JSON an option holds, a call serves or fails with FallbackConfigError: it never dies",
    [
      Schema.Literals(["timeout", "deadline", "idleTimeout", "retry", "shouldFallback", "breaker"]),
      Schema.Json,
      Schema.Literals(["base", "factor", "maxDelay", "retries", "jitter", "maxWait", "while"])
    ],
    ([name, value, retryField]) =>
      Effect.gen(function*() {
        const options: Fallback.StreamOptions = untyped(
          JSON.stringify(name === "retry" ? { retry: { [retryField]: value } } : { [name]: value })
        )
        const fiber = yield* Effect.forkChild(Effect.exit(Fallback.chain(["a"], options)(request)))
        yield* TestClock.adjust("1 minute")
        const exit = yield* Fiber.join(fiber)
        if (Exit.isSuccess(exit)) return assert.strictEqual(exit.value.model, "a")
        const error = failureOf(exit)
        assert.strictEqual(error._tag, "FallbackConfigError", Cause.pretty(exit.cause))
      }).pipe(Effect.provide(TestChatClient.layer({ a: [TestChatClient.reply("fine")] }))),
    { arbitrary: { runs: 200 } }
  )

  it.effect("an option that cannot even become text is a FallbackConfigError that quotes it as JSON", () =>
    Effect.gen(function*() {
      // found by the property above: `String([{ toString: {} }])` throws
      const options: Fallback.StreamOptions = untyped(JSON.stringify({ retry: { maxDelay: [[{ toString: {} }], 1] } }))
      const error = yield* Effect.flip(Fallback.chain(["a"], options)(request))
      assert.strictEqual(error._tag, "FallbackConfigError")
      assert.include(error.message, "got [[{\"toString\":{}}],1]")
    }).pipe(Effect.provide(TestChatClient.layer({ a: [TestChatClient.reply("fine")] }))))

  it.effect("the edges that are fine: infinite limits, zero retries, a zero base, exact jitter", () =>
    Effect.gen(function*() {
      const served = yield* Fallback.chain(["a"], {
        timeout: Duration.infinity,
        deadline: "Infinity",
        retry: { retries: 0, base: 0, jitter: { min: 1, max: 1 }, maxWait: Duration.infinity }
      })(request)
      assert.strictEqual(served.model, "a")
    }).pipe(Effect.provide(TestChatClient.layer({ a: [TestChatClient.reply("fine")] }))))
})

describe("Fallback.firstSuccess", () => {
  class Unavailable {
    readonly _tag = "Unavailable"
    constructor(readonly region: string) {}
  }

  it.effect("is generic in the attempt's value and error, with its own shouldFallback", () =>
    Effect.gen(function*() {
      const regions: Record<string, Effect.Effect<number, Unavailable>> = {
        "eu": Effect.fail(new Unavailable("eu")),
        "us": Effect.succeed(42),
        "ap": Effect.succeed(7)
      }
      const served = yield* Fallback.firstSuccess(["eu", "us", "ap"], (region) => regions[region], {
        shouldFallback: (error) => error._tag === "Unavailable"
      })
      assert.strictEqual(served.value, 42)
      assert.strictEqual(served.model, "us")
      assert.deepStrictEqual(served.attempts.map((a) => [a.model, a.outcome]), [["eu", "failure"], ["us", "success"]])
      assert.instanceOf(served.attempts[0].error, Unavailable)

      const stopped = allFailed(
        yield* Effect.exit(Fallback.firstSuccess(["eu", "us"], (region) => regions[region], {
          shouldFallback: () => false
        }))
      )
      assert.strictEqual(stopped.reason, "NotFallbackable")
      assert.instanceOf(stopped.stoppedBy, Unavailable)
      assert.strictEqual(
        stopped.message,
        "Fallback chain stopped on an error that must not fall back, after 1 attempt: eu: Unavailable; not tried: us"
      )
    }))

  // Random outcome scripts: per model, a list of tries that fail (retryably or not) or succeed.
  const tryArb = Arbitrary.schema(Schema.Literals(["ok", "retryable", "final"]))
  it.effect.prop(
    "serves the first model whose script succeeds within its retries, after trying the others in order",
    [
      Arbitrary.array(Arbitrary.array(tryArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 }),
      Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 3 }))
    ],
    ([scripts, retries]) =>
      Effect.gen(function*() {
        const models = scripts.map((_, i) => `m${i}`)
        const counts = new Map<string, number>()
        const attempt = (model: string) =>
          Effect.suspend(() => {
            const n = counts.get(model) ?? 0
            counts.set(model, n + 1)
            const script = scripts[Number(model.slice(1))]
            const outcome = script[Math.min(n, script.length - 1)]
            return outcome === "ok"
              ? Effect.succeed(model)
              : Effect.fail(
                outcome === "retryable"
                  ? serverError(model)
                  : new LlmError.ModelNotFoundError({ model })
              )
          })
        const fiber = yield* Effect.forkChild(
          Effect.exit(Fallback.firstSuccess(models, attempt, { retry: { retries, jitter: false } }))
        )
        yield* TestClock.adjust("1 hour")
        const exit = yield* Fiber.join(fiber)

        // the expected tries: each model's script read until success, a non-retryable failure, or
        // the retries run out
        const expected: Array<[string, number, string]> = []
        let winner: string | undefined
        for (const [i, script] of scripts.entries()) {
          for (let n = 0; n <= retries; n++) {
            const outcome = script[Math.min(n, script.length - 1)]
            expected.push([`m${i}`, n, outcome])
            if (outcome !== "retryable") break
          }
          if (expected[expected.length - 1][2] === "ok") {
            winner = `m${i}`
            break
          }
        }
        const attempts = Exit.isSuccess(exit) ? exit.value.attempts : allFailed(exit).attempts
        assert.deepStrictEqual(
          attempts.map((a) => [
            a.model,
            a.retry,
            a.outcome !== "failure" ? "ok" : a.error._tag === "ServerError" ? "retryable" : "final"
          ]),
          expected
        )
        if (winner === undefined) {
          assert.isTrue(Exit.isFailure(exit))
          assert.strictEqual(failureOf(exit).reason, "Exhausted")
        } else {
          assert.isTrue(Exit.isSuccess(exit) && exit.value.model === winner && exit.value.value === winner)
        }
        const starts = attempts.map((a) => a.startedAt)
        assert.deepStrictEqual(starts, [...starts].sort((x, y) => x - y), "attempts are in time order")
      }),
    { arbitrary: { runs: 50 } }
  )
})

describe("Fallback.stream", () => {
  it.effect("a failure before the first chunk falls back; the served stream starts with its first chunk", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Fallback.stream(["a", "b"])(request))
      yield* TestClock.adjust("300 millis")
      const served = yield* Fiber.join(fiber)
      assert.strictEqual(served.model, "b")
      assert.deepStrictEqual(summary(served.attempts), [["a", 0, "ServerError", 0, 100], ["b", 0, "success", 100, 200]])
      const text = yield* Effect.forkChild(TestChatClient.collectText(served.value))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(text), "two three five")
      assert.deepStrictEqual(callSummary(yield* TestChatClient.calls), [
        ["a", 0, 100, "failure"],
        ["b", 100, 800, "success"]
      ])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.fail(serverError("a"), { delay: "100 millis" })],
      b: [TestChatClient.reply("two three five", { delay: "200 millis", chunkDelay: "250 millis" })]
    }))))

  it.effect("a stream that ends without a single chunk is no answer: it falls back, recorded as ResponseDecodeError", () =>
    Effect.gen(function*() {
      const served = yield* Fallback.stream(["a", "b"])(request)
      assert.strictEqual(served.model, "b")
      const [first] = served.attempts
      assert.strictEqual(first.error?._tag, "ResponseDecodeError")
      assert.include(first.error?.message ?? "", "the stream ended before its first chunk")
      assert.strictEqual(yield* TestChatClient.collectText(served.value), "here")
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.reply("")],
      b: [TestChatClient.reply("here")]
    }))))

  it.effect("a failure after the first chunk goes to the caller as it is, without falling back", () =>
    Effect.gen(function*() {
      const served = yield* Fallback.stream(["a", "b"])(request)
      assert.strictEqual(served.model, "a")
      const exit = yield* Effect.exit(TestChatClient.collectText(served.value))
      assertSameError(failureOf(exit), serverError("a"))
      assert.deepStrictEqual(yield* TestChatClient.callsTo("b"), [])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.reply("one two three", { failAfterChunks: { chunks: 2, error: serverError("a") } })],
      b: [TestChatClient.reply("never asked")]
    }))))

  it.effect("the time-to-first-chunk timeout interrupts the silent stream and falls back", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Fallback.stream(["a", "b"], { timeout: "1 second" })(request))
      yield* TestClock.adjust("999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const served = yield* Fiber.join(fiber)
      assert.strictEqual(served.model, "b")
      assertSameError(
        served.attempts[0].error,
        new LlmError.TimeoutError({ model: "a", timeout: Duration.seconds(1) })
      )
      assert.deepStrictEqual(callSummary(yield* TestChatClient.callsTo("a")), [["a", 0, 1000, "interrupted"]])
      // the timeout bounds only the first chunk: a slow stream after it is not cut
      const text = yield* Effect.forkChild(TestChatClient.collectText(served.value))
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* Fiber.join(text), "slow but steady")
    }).pipe(Effect.provide(TestChatClient.layer({
      a: [TestChatClient.reply("too late", { delay: "5 seconds" })],
      b: [TestChatClient.reply("slow but steady", { chunkDelay: "3 seconds" })]
    }))))

  describe("the breaker sees the whole stream", () => {
    it.effect("a model whose streams all break after the first chunk opens its circuit", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ trip: CircuitBreaker.consecutiveFailures(3) })
        const complete = Fallback.stream(["a", "b"], { breaker })
        for (let i = 0; i < 3; i++) {
          const served = yield* complete(request)
          assert.strictEqual(served.model, "a")
          assert.deepStrictEqual(summary(served.attempts), [["a", 0, "success", 0, 0]])
          assertSameError(failureOf(yield* Effect.exit(TestChatClient.collectText(served.value))), serverError("a"))
        }
        assert.strictEqual(yield* breaker.state("a"), "open")
        const served = yield* complete(request)
        assert.strictEqual(served.model, "b")
        assert.deepStrictEqual(served.attempts.map((a) => [a.model, a.outcome, a.error?._tag]), [
          ["a", "failure", "CircuitOpenError"],
          ["b", "success", undefined]
        ])
        assert.strictEqual((yield* TestChatClient.callsTo("a")).length, 3)
      }).pipe(
        Effect.scoped,
        Effect.provide(TestChatClient.layer({
          a: [TestChatClient.reply("one two", { failAfterChunks: { chunks: 1, error: serverError("a") } })],
          b: [TestChatClient.reply("fine")]
        }))
      ))

    it.effect("the outcome is reported when the stream ends: read to the end, stopped by its reader, or failed", () =>
      Effect.gen(function*() {
        const { breaker, seen } = yield* stubBreaker([])
        const complete = Fallback.stream(["a"], { breaker })
        const whole = yield* complete(request)
        assert.deepStrictEqual(yield* seen, [], "nothing is reported at the first chunk")
        assert.strictEqual(yield* TestChatClient.collectText(whole.value), "one two three")
        assert.deepStrictEqual(yield* seen, [["a", "success"]])
        const stopped = yield* complete(request)
        yield* Stream.runDrain(Stream.take(stopped.value, 1))
        assert.deepStrictEqual((yield* seen).slice(1), [["a", "success"]])
        const broken = yield* complete(request)
        yield* Effect.exit(Stream.runDrain(broken.value))
        assert.deepStrictEqual((yield* seen).slice(2), [["a", "ServerError"]])
      }).pipe(
        Effect.scoped,
        Effect.provide(TestChatClient.layer({
          a: [
            TestChatClient.reply("one two three"),
            TestChatClient.reply("one two three"),
            TestChatClient.reply("one two", { failAfterChunks: { chunks: 1, error: serverError("a") } })
          ]
        }))
      ))

    it.effect("a stream never read is neutral: its outcome is an interruption when the caller's scope closes", () =>
      Effect.gen(function*() {
        const { breaker, seen } = yield* stubBreaker([])
        yield* Effect.scoped(Fallback.stream(["a"], { breaker })(request))
        assert.deepStrictEqual(yield* seen, [["a", "interrupted"]])
        // and its connection was closed with the scope
        assert.deepStrictEqual(callSummary(yield* TestChatClient.calls).map(([model, , endedAt]) => [model, endedAt]), [
          ["a", 0]
        ])
      }).pipe(
        Effect.provide(TestChatClient.layer({ a: [TestChatClient.reply("one two", { chunkDelay: "1 second" })] }))
      ))
  })

  describe("deadline and idleTimeout", () => {
    it.effect("the deadline bounds the stream's whole life: a stream gone quiet fails with TimeoutError at it", () =>
      Effect.gen(function*() {
        const served = yield* Fallback.stream(["a", "b"], { deadline: "10 seconds" })(request)
        assert.strictEqual(served.model, "a")
        const text = yield* Effect.forkChild(Effect.exit(TestChatClient.collectText(served.value)))
        yield* TestClock.adjust("9999 millis")
        assert.isUndefined(text.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        assertSameError(
          failureOf(yield* Fiber.join(text)),
          new LlmError.TimeoutError({ model: "a", timeout: Duration.seconds(10) })
        )
        // the model's connection is closed at the deadline
        assert.deepStrictEqual(callSummary(yield* TestChatClient.calls), [["a", 0, 10_000, "interrupted"]])
      }).pipe(
        Effect.scoped,
        Effect.provide(TestChatClient.layer({ a: [TestChatClient.reply("one two", { chunkDelay: "1 hour" })] }))
      ))

    it.effect("a stream nobody reads is closed at the deadline, and reading it then fails at once", () =>
      Effect.gen(function*() {
        const { breaker, seen } = yield* stubBreaker([])
        const served = yield* Fallback.stream(["a"], { deadline: "10 seconds", breaker })(request)
        yield* TestClock.adjust("10 seconds")
        assert.deepStrictEqual(callSummary(yield* TestChatClient.calls), [["a", 0, 10_000, "interrupted"]])
        assert.deepStrictEqual(yield* seen, [["a", "TimeoutError"]])
        assertSameError(
          failureOf(yield* Effect.exit(TestChatClient.collectText(served.value))),
          new LlmError.TimeoutError({ model: "a", timeout: Duration.seconds(10) })
        )
      }).pipe(
        Effect.scoped,
        Effect.provide(TestChatClient.layer({ a: [TestChatClient.reply("one two", { chunkDelay: "1 second" })] }))
      ))

    it.effect("idleTimeout bounds every wait for a chunk: a quiet first chunk falls back, a quiet stream fails", () =>
      Effect.gen(function*() {
        const { breaker, seen } = yield* stubBreaker([])
        const complete = Fallback.stream(["a", "b"], { idleTimeout: "2 seconds", breaker })
        const fiber = yield* Effect.forkChild(complete(request))
        yield* TestClock.adjust("2 seconds")
        const served = yield* Fiber.join(fiber)
        assert.strictEqual(served.model, "b")
        assertSameError(
          served.attempts[0].error,
          new LlmError.TimeoutError({ model: "a", timeout: Duration.seconds(2) })
        )
        // chunks 1.5 s apart: each gap is within the limit, though the whole stream takes 3 s
        const whole = yield* Effect.forkChild(TestChatClient.collectText(served.value))
        yield* TestClock.adjust("3 seconds")
        assert.strictEqual(yield* Fiber.join(whole), "one two three")
        // chunks 3 s apart: the first gap is cut at 2 s (after a, still too slow, timed out again)
        const second = yield* Effect.forkChild(complete(request))
        yield* TestClock.adjust("2 seconds")
        const quiet = yield* Fiber.join(second)
        assert.strictEqual(quiet.model, "b")
        const text = yield* Effect.forkChild(Effect.exit(TestChatClient.collectText(quiet.value)))
        yield* TestClock.adjust("1999 millis")
        assert.isUndefined(text.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        assertSameError(
          failureOf(yield* Fiber.join(text)),
          new LlmError.TimeoutError({ model: "b", timeout: Duration.seconds(2) })
        )
        assert.deepStrictEqual(yield* seen, [
          ["a", "TimeoutError"],
          ["b", "success"],
          ["a", "TimeoutError"],
          ["b", "TimeoutError"]
        ])
        assert.deepStrictEqual(callSummary(yield* TestChatClient.calls), [
          ["a", 0, 2000, "interrupted"],
          ["b", 2000, 5000, "success"],
          ["a", 5000, 7000, "interrupted"],
          ["b", 7000, 9000, "interrupted"]
        ])
      }).pipe(
        Effect.scoped,
        Effect.provide(TestChatClient.layer({
          a: [TestChatClient.reply("too late", { delay: "5 seconds" })],
          b: [
            TestChatClient.reply("one two three", { chunkDelay: "1500 millis" }),
            TestChatClient.reply("one two", { chunkDelay: "3 seconds" })
          ]
        }))
      ))
  })

  it.effect("every model failing before its first chunk is AllModelsFailed", () =>
    Effect.gen(function*() {
      const error = allFailed(yield* Effect.exit(Fallback.stream(["a", "b"])(request)))
      assert.strictEqual(error.reason, "Exhausted")
      assert.deepStrictEqual(error.errors.map((e) => e._tag), ["ServerError", "ModelNotFoundError"])
    }).pipe(Effect.provide(TestChatClient.layer({ a: [TestChatClient.fail(serverError("a"))] }))))
})
