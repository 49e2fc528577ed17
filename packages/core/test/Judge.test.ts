import { assert, describe, it } from "@effect/vitest"
import { Judge, LlmError, Observability } from "@resilient-llm/core"
import { TestChatClient } from "@resilient-llm/testing"
import { Arbitrary, type Duration, Effect, Fiber, Layer, Metric, Result, Schema } from "effect"
import { TestClock } from "effect/testing"

/** A judge model's reply, or its failure, after `delay`, with 50 prompt tokens and 1 completion token. */
const judgeReply = (reply: string | LlmError.LlmError, delay: Duration.Input = 0): TestChatClient.Outcome =>
  typeof reply === "string"
    ? TestChatClient.reply(reply, { delay, usage: { prompt_tokens: 50, completion_tokens: 1 } })
    : TestChatClient.fail(reply, { delay })

/** The requests the judge models were sent, in order. */
const requests = Effect.map(TestChatClient.calls, (calls) => calls.map((call) => call.request))

const input: Judge.ScoreInput = { prompt: "What is 2 + 2?", response: "4" }

describe("Judge.parseScore", () => {
  it("reads a lone number, ignoring surrounding whitespace", () => {
    assert.deepStrictEqual(Judge.parseScore("8"), Result.succeed(8))
    assert.deepStrictEqual(Judge.parseScore(" 8.5\n"), Result.succeed(8.5))
    assert.deepStrictEqual(Judge.parseScore("\t10 "), Result.succeed(10))
    assert.deepStrictEqual(Judge.parseScore("1"), Result.succeed(1))
    assert.deepStrictEqual(Judge.parseScore("-0.5", { scale: { min: -1, max: 1 } }), Result.succeed(-0.5))
  })

  it("the rule at its edges: plain ASCII decimals, zeros anywhere, whitespace only around", () => {
    const accepted: ReadonlyArray<readonly [string, number]> = [
      ["08", 8],
      ["007", 7],
      ["8.50", 8.5],
      ["10.000", 10],
      ["1.0000000000000000001", 1],
      // String.prototype.trim: no-break space, byte order mark, line and paragraph separators
      ["\u00a08\u00a0", 8],
      ["\ufeff8", 8],
      ["8\u2028", 8]
    ]
    for (const [reply, value] of accepted) {
      assert.deepStrictEqual(Judge.parseScore(reply), Result.succeed(value), JSON.stringify(reply))
    }
    // "-0" is 0, without the sign
    const zero = Judge.parseScore("-0", { scale: { min: 0, max: 1 } })
    assert.isTrue(Result.isSuccess(zero) && Object.is(zero.success, 0))
    const rejected = [
      "8.",
      ".5",
      "+8",
      "- 8",
      "8 .5",
      "8. 5",
      "8,5",
      "1_0",
      "１０", // fullwidth digits
      "٨", // Arabic-Indic eight
      "8\u200b", // a zero-width space is not whitespace
      "0b1",
      "Infinity",
      "-Infinity",
      "1".padEnd(400, "0") // digits beyond a double: Infinity, on no scale
    ]
    for (const reply of rejected) {
      assert.isTrue(Result.isFailure(Judge.parseScore(reply, { scale: { min: 0, max: 1e308 } })), JSON.stringify(reply))
    }
  })

  it("rejects anything else, keeping the raw reply and the reason", () => {
    const cases: ReadonlyArray<readonly [string, Judge.JudgeErrorReason]> = [
      ["eight", "NotANumber"],
      ["11", "OutOfScale"],
      ["0", "OutOfScale"],
      ["8 because it is right", "NotANumber"],
      ["8 because", "NotANumber"],
      ["", "NotANumber"],
      ["   ", "NotANumber"],
      ["8/10", "NotANumber"],
      ["NaN", "NotANumber"],
      ["Infinity", "NotANumber"],
      ["1e1", "NotANumber"],
      ["0x8", "NotANumber"],
      ["+8", "NotANumber"],
      ["8.", "NotANumber"],
      [".5", "NotANumber"],
      ["8 9", "NotANumber"],
      ["Score: 8", "NotANumber"],
      ["**8**", "NotANumber"]
    ]
    for (const [reply, reason] of cases) {
      const result = Judge.parseScore(reply, { judge: "j" })
      assert.isTrue(Result.isFailure(result), `${JSON.stringify(reply)} should be rejected`)
      if (Result.isFailure(result)) {
        assert.strictEqual(result.failure.reason, reason, JSON.stringify(reply))
        assert.strictEqual(result.failure.reply, reply)
        assert.strictEqual(result.failure.judge, "j")
      }
    }
  })

  it("says what was wrong in its message", () => {
    const error = Result.getFailure(Judge.parseScore("11", { judge: "gpt-judge" }))
    assert.isTrue(error._tag === "Some")
    if (error._tag === "Some") {
      assert.strictEqual(error.value.message, "Judge gpt-judge replied \"11\", which is not on the scale 1 to 10")
    }
  })

  const intBetween = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))
  const scales = Arbitrary.all([Arbitrary.schema(intBetween(-1000, 1000)), Arbitrary.schema(intBetween(1, 1000))]).pipe(
    Arbitrary.map(([min, width]) => ({ min, max: min + width }))
  )
  const whitespace = Arbitrary.array(Arbitrary.schema(Schema.Literals([" ", "\n", "\t", "\r"])), { maxLength: 4 })
    .pipe(Arbitrary.map((chars) => chars.join("")))

  it.prop(
    "any number within the scale, with whitespace around it, parses to itself",
    {
      scale: scales,
      position: Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1 })),
      digits: intBetween(0, 6),
      before: whitespace,
      after: whitespace
    },
    ({ after, before, digits, position, scale }) => {
      const formatted = (scale.min + position * (scale.max - scale.min)).toFixed(digits)
      const expected = Number(formatted)
      if (expected < scale.min || expected > scale.max) return true
      const parsed = Judge.parseScore(`${before}${formatted}${after}`, { scale })
      return Result.isSuccess(parsed) && Object.is(parsed.success + 0, expected + 0)
    }
  )

  it.prop(
    "a number with anything more than whitespace around it is rejected",
    {
      score: Arbitrary.schema(intBetween(1, 10)).pipe(Arbitrary.map(String)),
      // at least one character that cannot belong to a plain decimal
      extra: Arbitrary.schema(Schema.String.check(Schema.isBetweenLength(1, 12))).pipe(
        Arbitrary.filter((s) => /[^\d.\s-]/.test(s))
      ),
      where: Schema.Literals(["before", "after", "after a space", "inside"])
    },
    ({ extra, score, where }) => {
      const reply = where === "before"
        ? `${extra}${score}`
        : where === "after"
        ? `${score}${extra}`
        : where === "after a space"
        ? `${score} ${extra}`
        : `${score.slice(0, 1)}${extra}${score.slice(1)}`
      return Result.isFailure(Judge.parseScore(reply))
    }
  )

  it.prop(
    "two numbers are not one",
    { a: intBetween(1, 10), b: intBetween(1, 10) },
    ({ a, b }) => Result.isFailure(Judge.parseScore(`${a} ${b}`)) && Result.isFailure(Judge.parseScore(`${a}\n${b}`))
  )
})

describe("Judge.llm", () => {
  it.effect("asks the judge model with the rubric, the scale and the answer, and reads its number", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        Effect.flatMap(Judge.llm({ model: "judge-1" }), (judge) => judge.score(input))
      )
      yield* TestClock.adjust("700 millis")
      const score = yield* Fiber.join(fiber)
      assert.strictEqual(score.value, 8)
      assert.strictEqual(score.latencyMs, 700)
      assert.strictEqual(score.judge, "judge-1")
      assert.strictEqual(score.reply, "8")
      assert.deepStrictEqual(score.usage, { prompt_tokens: 50, completion_tokens: 1 })
      const [request] = yield* requests
      assert.strictEqual(request.model, "judge-1")
      assert.strictEqual(request.temperature, 0)
      const [system, user] = request.messages
      assert.strictEqual(system.role, "system")
      assert.include(String(system.content), "Accuracy")
      assert.include(String(system.content), "Completeness")
      assert.include(String(system.content), "Clarity")
      assert.include(String(system.content), "from 1 (worst) to 10 (best)")
      assert.include(String(system.content), "single number")
      assert.strictEqual(user.role, "user")
      assert.include(String(user.content), "What is 2 + 2?")
      assert.include(String(user.content), "<response>\n4\n</response>")
    }).pipe(Effect.provide(TestChatClient.layer({ "judge-1": [judgeReply("8", "700 millis")] }))))

  it.effect("uses a custom rubric, scale and request fields", () =>
    Effect.gen(function*() {
      const judge = yield* Judge.llm({
        model: "judge-1",
        rubric: "Is the answer polite?",
        scale: { min: 0, max: 1 },
        temperature: 0.2,
        request: { max_tokens: 4, seed: 7 }
      })
      const score = yield* judge.score(input)
      assert.strictEqual(score.value, 0.75)
      const [request] = yield* requests
      assert.strictEqual(request.temperature, 0.2)
      assert.strictEqual(request.max_tokens, 4)
      assert.strictEqual(request.seed, 7)
      assert.include(String(request.messages[0].content), "Is the answer polite?")
      assert.include(String(request.messages[0].content), "from 0 (worst) to 1 (best)")
      assert.notInclude(String(request.messages[0].content), "Accuracy")
      // @ts-expect-error the judge's temperature is its own option, not a request field
      Judge.llm({ model: "judge-1", request: { temperature: 1 } })
      // @ts-expect-error request fields keep their types
      Judge.llm({ model: "judge-1", request: { max_tokens: "4" } })
    }).pipe(Effect.provide(TestChatClient.layer({ "judge-1": [judgeReply("0.75")] }))))

  it.effect("a reply that is not a number on the scale is a JudgeError with the raw reply", () =>
    Effect.gen(function*() {
      for (
        const [reply, reason] of [
          ["eight", "NotANumber"],
          ["11", "OutOfScale"],
          ["8 because it is right", "NotANumber"],
          ["", "NotANumber"],
          ["8/10", "NotANumber"]
        ] as const
      ) {
        const error = yield* Effect.flip(
          Effect.flatMap(Judge.llm({ model: "judge-1" }), (judge) => judge.score(input)).pipe(
            Effect.provide(TestChatClient.layer({ "judge-1": [judgeReply(reply)] }))
          )
        )
        assert.strictEqual(error._tag, "JudgeError")
        assert.strictEqual(error.reason, reason)
        assert.strictEqual(error.reply, reply)
        assert.strictEqual(error.judge, "judge-1")
      }
    }))

  it.effect("a failure of the judge model is a JudgeError with the LlmError as cause", () =>
    Effect.gen(function*() {
      const outage = new LlmError.ServerError({ model: "judge-1", status: 503 })
      const error = yield* Effect.flip(
        Effect.flatMap(Judge.llm({ model: "judge-1" }), (judge) => judge.score(input)).pipe(
          Effect.provide(TestChatClient.layer({ "judge-1": [judgeReply(outage)] }))
        )
      )
      assert.strictEqual(error.reason, "ModelFailed")
      assert.instanceOf(error.cause, LlmError.ServerError)
      assert.strictEqual(error.cause?._tag === "ServerError" && error.cause.status, 503)
      assert.include(error.message, "HTTP 503")
    }))

  it.effect("each judge call is an Observability attempt of the judge model", () =>
    Effect.gen(function*() {
      const judge = yield* Judge.llm({ model: "judge-observed" }).pipe(
        Effect.provide(TestChatClient.layer({
          "judge-observed": (_, request) => judgeReply(request.messages.length === 2 ? "6" : "x")
        }))
      )
      yield* judge.score(input)
      yield* judge.score(input)
      const [stats] = yield* Observability.snapshot({ labels: { test: "judge-observability" } })
      assert.strictEqual(stats.model, "judge-observed")
      assert.strictEqual(stats.successes, 2)
    }).pipe(
      Observability.withMetricLabels({ test: "judge-observability" }),
      Effect.provideService(Metric.MetricRegistry, new Map())
    ))

  it.effect("refuses a scale that is not a range with a typed error, before any call", () =>
    Effect.gen(function*() {
      for (
        const scale of [{ min: 10, max: 1 }, { min: 1, max: 1 }, { min: Number.NaN, max: 10 }, {
          min: 0,
          max: Infinity
        }]
      ) {
        const error = yield* Effect.flip(Judge.llm({ model: "j", scale }))
        assert.strictEqual(error.reason, "InvalidOptions")
        assert.include(error.message, "Judge j is misconfigured: the scale")
      }
      const fromLayer = yield* Effect.flip(
        Judge.score(input).pipe(
          Effect.provide(Judge.layerLlm({ model: "j", scale: { min: 5, max: 5 } }))
        )
      )
      assert.strictEqual(fromLayer.reason, "InvalidOptions")
      assert.deepStrictEqual(yield* requests, [])
    }).pipe(Effect.provide(TestChatClient.layer({ j: [judgeReply("5")] }))))
})

describe("Judge.fromFunction", () => {
  it.effect("scores with a plain function", () =>
    Effect.gen(function*() {
      const judge = Judge.fromFunction(({ response }) => response.length, { name: "length" })
      const score = yield* judge.score({ prompt: "p", response: "abc" })
      assert.strictEqual(score.value, 3)
      assert.strictEqual(score.judge, "length")
      assert.strictEqual(score.latencyMs, 0)
    }))

  it.effect("scores with an Effect, timing it by Clock", () =>
    Effect.gen(function*() {
      const judge = Judge.fromFunction(() => Effect.as(Effect.sleep("500 millis"), 7))
      const fiber = yield* Effect.forkChild(judge.score(input))
      yield* TestClock.adjust("499 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const score = yield* Fiber.join(fiber)
      assert.strictEqual(score.value, 7)
      assert.strictEqual(score.latencyMs, 500)
      assert.strictEqual(score.judge, "function")
    }))

  it.effect("a result that is not a finite number, or is off the scale, is a JudgeError", () =>
    Effect.gen(function*() {
      const nan = yield* Effect.flip(Judge.fromFunction(() => NaN).score(input))
      assert.strictEqual(nan.reason, "NotANumber")
      assert.strictEqual(nan.reply, "NaN")
      const off = yield* Effect.flip(Judge.fromFunction(() => 12, { scale: Judge.defaultScale }).score(input))
      assert.strictEqual(off.reason, "OutOfScale")
      const own = new Judge.JudgeError({ reason: "NotANumber", judge: "mine", reply: "?" })
      const failed = yield* Effect.flip(Judge.fromFunction(() => Effect.fail(own)).score(input))
      assert.strictEqual(failed, own)
      const infinite = yield* Effect.flip(Judge.fromFunction(() => Infinity).score(input))
      assert.strictEqual(infinite.reason, "NotANumber")
    }))

  it.effect("a scale that is not a range fails every score, without calling the function", () =>
    Effect.gen(function*() {
      let called = 0
      const judge = Judge.fromFunction(() => ++called, { name: "h", scale: { min: Number.NaN, max: 10 } })
      const error = yield* Effect.flip(judge.score(input))
      assert.strictEqual(error.reason, "InvalidOptions")
      assert.strictEqual(error.judge, "h")
      assert.include(error.message, "the scale NaN to 10")
      assert.strictEqual(called, 0)
    }))
})

describe("Judge.average", () => {
  const fixed = (value: number, delay: Duration.Input, name: string) =>
    Judge.fromFunction(() => Effect.as(Effect.sleep(delay), value), { name })
  const broken = (name: string) =>
    Judge.fromFunction(() => Effect.fail(new Judge.JudgeError({ reason: "NotANumber", judge: name, reply: "eight" })), {
      name
    })

  it.effect("asks every judge at once and takes the mean", () =>
    Effect.gen(function*() {
      const panel = Judge.average([fixed(6, "1 second", "a"), fixed(9, "2 seconds", "b")])
      const fiber = yield* Effect.forkChild(panel.score(input))
      yield* TestClock.adjust("2 seconds")
      const score = yield* Fiber.join(fiber)
      assert.strictEqual(score.value, 7.5)
      assert.strictEqual(score.latencyMs, 2000)
      assert.strictEqual(score.judge, "average")
      assert.deepStrictEqual(score.judges?.map((s) => s.judge), ["a", "b"])
      assert.deepStrictEqual(score.failures, [])
    }))

  it.effect("leaves a failing judge out of the mean and reports it", () =>
    Effect.gen(function*() {
      const score = yield* Judge.average([fixed(4, "0 millis", "a"), broken("b"), fixed(8, "0 millis", "c")]).score(
        input
      )
      assert.strictEqual(score.value, 6)
      assert.deepStrictEqual(score.failures?.map((e) => e.judge), ["b"])
    }))

  it.effect("fails when fewer than minJudges scored, with every failure", () =>
    Effect.gen(function*() {
      const allFailed = yield* Effect.flip(Judge.average([broken("a"), broken("b")]).score(input))
      assert.strictEqual(allFailed.reason, "TooFewJudges")
      assert.deepStrictEqual(allFailed.failures?.map((e) => e.judge), ["a", "b"])
      const short = yield* Effect.flip(
        Judge.average([fixed(9, "0 millis", "a"), broken("b")], { minJudges: 2, name: "panel" }).score(input)
      )
      assert.strictEqual(short.reason, "TooFewJudges")
      assert.strictEqual(short.judge, "panel")
      assert.strictEqual(short.required, 2)
      assert.include(short.message, "eight")
    }))

  it.effect("a panel with no judge, or a minJudges that is no whole number, never makes up a score", () =>
    Effect.gen(function*() {
      const empty = yield* Effect.flip(Judge.average([]).score(input))
      assert.strictEqual(empty.reason, "TooFewJudges")
      let asked = 0
      const counting = Judge.fromFunction(() => {
        asked += 1
        return 5
      })
      for (const minJudges of [Number.NaN, 0, -1, 1.5, Infinity]) {
        const error = yield* Effect.flip(Judge.average([counting], { minJudges }).score(input))
        assert.strictEqual(error.reason, "InvalidOptions", String(minJudges))
        assert.include(error.message, `minJudges must be a whole number of at least 1, got ${minJudges}`)
      }
      assert.strictEqual(asked, 0)
    }))

  it.effect("averages LLM judges over ChatClient", () =>
    Effect.gen(function*() {
      const panel = yield* Effect.all([Judge.llm({ model: "judge-a" }), Judge.llm({ model: "judge-b" })]).pipe(
        Effect.map((judges) => Judge.average(judges)),
        Effect.provide(TestChatClient.layer({ "judge-a": [judgeReply("7")], "judge-b": [judgeReply("nine")] }))
      )
      const score = yield* panel.score(input)
      assert.strictEqual(score.value, 7)
      assert.deepStrictEqual(score.failures?.map((e) => [e.judge, e.reply]), [["judge-b", "nine"]])
    }))
})

describe("Judge layers", () => {
  it.effect("layer and layerLlm provide the Judge service", () =>
    Effect.gen(function*() {
      const fromLayer = yield* Judge.score(input).pipe(Effect.provide(Judge.layer(Judge.fromFunction(() => 3))))
      assert.strictEqual(fromLayer.value, 3)
      const fromLlm = yield* Judge.score(input).pipe(
        Effect.provide(
          Judge.layerLlm({ model: "judge-1" }).pipe(
            Layer.provide(TestChatClient.layer({ "judge-1": [judgeReply("9")] }))
          )
        )
      )
      assert.strictEqual(fromLlm.value, 9)
      assert.strictEqual(fromLlm.judge, "judge-1")
    }))
})
