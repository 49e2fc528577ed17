import { assert, describe, it } from "@effect/vitest"
import type { ChatCompletion } from "@resilient-llm/core"
import { BestOfN, Judge, LlmError, Observability } from "@resilient-llm/core"
import { TestChatClient, TestLogs } from "@resilient-llm/testing"
import { Cause, Clock, Duration, Effect, Exit, Fiber, Layer, Metric, Option, Tracer } from "effect"
import { TestClock } from "effect/testing"

const messages: ReadonlyArray<ChatCompletion.ChatMessage> = [{ role: "user", content: "Name a prime." }]
const request: ChatCompletion.PromptRequest = { messages }

/** A judge that takes `delay` and scores by a table of answers. */
const tableJudge = (scores: Readonly<Record<string, number>>, delay: Duration.Input = "500 millis") =>
  Judge.layer(Judge.fromFunction(({ response }) => Effect.as(Effect.sleep(delay), scores[response] ?? 1)))

/** A reply after `delay`, with one output token per character, so each answer's tokens differ. */
const answer = (content: string, delay: Duration.Input) =>
  TestChatClient.reply(content, { delay, usage: { prompt_tokens: 10, completion_tokens: content.length } })

const threeCandidates = TestChatClient.layer({
  fast: [answer("two", "1 second")],
  medium: [answer("three", "2 seconds")],
  slow: [answer("five", "3 seconds")]
})

/** Moves the clock in 100 ms steps up to `millis`, returning the time at which the fiber was done. */
const runUntilDone = <A, E>(fiber: Fiber.Fiber<A, E>, millis: number) =>
  Effect.gen(function*() {
    for (let now = 0; now <= millis; now += 100) {
      if (now > 0) yield* TestClock.adjust("100 millis")
      if (fiber.pollUnsafe() !== undefined) return now
    }
    return undefined
  })

/** The NoCandidatesError a call fails with; any other outcome fails the test. */
const noCandidates = <R>(
  effect: Effect.Effect<BestOfN.Report, BestOfN.NoCandidatesError | BestOfN.BestOfNConfigError, R>
) =>
  Effect.flatMap(
    Effect.flip(effect),
    (error) => error._tag === "NoCandidatesError" ? Effect.succeed(error) : Effect.die(new Error(error.message))
  )

describe("BestOfN.complete", () => {
  it.effect("scores each candidate as it arrives: 1 s, 2 s, 3 s and a 0.5 s judge take 3.5 s", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(BestOfN.complete(request, { models: ["fast", "medium", "slow"] }))
      yield* TestClock.adjust("3400 millis")
      assert.isUndefined(fiber.pollUnsafe(), "not done at 3.4 s")
      yield* TestClock.adjust("100 millis")
      assert.isDefined(fiber.pollUnsafe(), "done at 3.5 s")
      const report = yield* Fiber.join(fiber)
      assert.strictEqual(report.best.model, "slow")
      assert.strictEqual(report.best.text, "five")
      assert.strictEqual(report.best.score, 9)
      assert.deepStrictEqual(
        report.candidates.map((c) => [c.model, c.status, c.score, c.latencyMs, c.judgeLatencyMs]),
        [
          ["fast", "scored", 6, 1000, 500],
          ["medium", "scored", 7, 2000, 500],
          ["slow", "scored", 9, 3000, 500]
        ]
      )
      assert.deepStrictEqual(report.candidates.map((c) => c.tokens), [
        { input: 10, output: 3 },
        { input: 10, output: 5 },
        { input: 10, output: 4 }
      ])
      assert.deepStrictEqual(report.ranking.map((c) => c.model), ["slow", "medium", "fast"])
    }).pipe(Effect.provide(threeCandidates), Effect.provide(tableJudge({ two: 6, three: 7, five: 9 }))))

  it.effect("the same call stepped 100 ms at a time is done at exactly 3.5 s, not 4.5 s or 6 s", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(BestOfN.complete(request, { models: ["fast", "medium", "slow"] }))
      const doneAt = yield* runUntilDone(fiber, 7000)
      assert.strictEqual(doneAt, 3500)
    }).pipe(Effect.provide(threeCandidates), Effect.provide(tableJudge({}))))

  it.effect("candidateTimeout 2 s: the 3 s candidate times out and is interrupted, the 2 s one counts, the call ends at 2.5 s", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        BestOfN.complete(request, { models: ["fast", "medium", "slow"], candidateTimeout: "2 seconds" })
      )
      const doneAt = yield* runUntilDone(fiber, 7000)
      assert.strictEqual(doneAt, 2500)
      const report = yield* Fiber.join(fiber)
      const slow = report.candidates[2]
      assert.strictEqual(slow.status, "failed")
      assert.strictEqual(slow.latencyMs, 2000)
      assert.isTrue(slow.error instanceof LlmError.TimeoutError)
      assert.strictEqual(slow.error?._tag === "TimeoutError" && Duration.toMillis(slow.error.timeout), 2000)
      assert.strictEqual(report.best.model, "medium")
      const [slowCall] = yield* TestChatClient.callsTo("slow")
      assert.strictEqual(slowCall.result, "interrupted")
    }).pipe(Effect.provide(threeCandidates), Effect.provide(tableJudge({ two: 6, three: 7, five: 9 }))))

  it.effect("candidateTimeout is what was set: an answer exactly at it counts, one 1 ms later is a TimeoutError", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        BestOfN.complete(request, { models: ["onTime", "late"], candidateTimeout: "2 seconds" })
      )
      yield* TestClock.adjust("2 seconds")
      const calls = yield* TestChatClient.calls
      // the late call is cut at exactly 2 s, not a millisecond later
      assert.deepStrictEqual(calls.map((c) => [c.model, c.endedAt, c.result]), [
        ["onTime", 2000, "success"],
        ["late", 2000, "interrupted"]
      ])
      yield* TestClock.adjust("1 second")
      const report = yield* Fiber.join(fiber)
      assert.deepStrictEqual(report.candidates.map((c) => [c.model, c.status, c.latencyMs]), [
        ["onTime", "scored", 2000],
        ["late", "failed", 2000]
      ])
      const late = report.candidates[1]
      assert.strictEqual(late.error?._tag === "TimeoutError" && Duration.toMillis(late.error.timeout), 2000)
    }).pipe(
      Effect.provide(TestChatClient.layer({
        onTime: [answer("two", "2 seconds")],
        late: [answer("three", "2001 millis")]
      })),
      Effect.provide(tableJudge({}))
    ))

  it.effect("with Judge.llm, replies that are not a number on the scale make judge-failed candidates", () =>
    Effect.gen(function*() {
      const replies: Readonly<Record<string, string>> = {
        "answer-a": "eight",
        "answer-b": "11",
        "answer-c": "8 because it is prime",
        "answer-d": "",
        "answer-e": "8",
        "answer-f": " 8.5\n"
      }
      const models = ["a", "b", "c", "d", "e", "f"]
      const script: TestChatClient.Script = {
        ...Object.fromEntries(models.map((m) => [m, [TestChatClient.reply(`answer-${m}`, { delay: "1 second" })]])),
        judge: (_, judgeRequest) => {
          const shown = String(judgeRequest.messages[1]?.content ?? "")
          const answer = Object.keys(replies).find((key) => shown.includes(`\n${key}\n`))
          return TestChatClient.reply(answer === undefined ? "1" : replies[answer], { delay: "500 millis" })
        }
      }
      const fiber = yield* Effect.forkChild(
        BestOfN.complete(request, { models }).pipe(
          Effect.provide(Judge.layerLlm({ model: "judge" })),
          Effect.provide(TestChatClient.layer(script))
        )
      )
      yield* TestClock.adjust("1500 millis")
      const report = yield* Fiber.join(fiber)
      assert.deepStrictEqual(report.candidates.map((c) => c.status), [
        "judge-failed",
        "judge-failed",
        "judge-failed",
        "judge-failed",
        "scored",
        "scored"
      ])
      assert.deepStrictEqual(
        report.candidates.map((c) => c.status === "judge-failed" ? [c.error.reason, c.error.reply] : [c.score]),
        [["NotANumber", "eight"], ["OutOfScale", "11"], ["NotANumber", "8 because it is prime"], ["NotANumber", ""], [
          8
        ], [8.5]]
      )
      const judged = report.candidates[0]
      assert.strictEqual(judged.text, "answer-a")
      assert.strictEqual(judged.judgeLatencyMs, 500)
      assert.strictEqual(report.best.model, "f")
      assert.strictEqual(report.best.judgement.reply, " 8.5\n")
      assert.strictEqual(report.best.judgement.judge, "judge")
    }))

  it.effect("the judge reads the prompt and each answer", () =>
    Effect.gen(function*() {
      const seen: Array<Judge.ScoreInput> = []
      const judge = Judge.layer(Judge.fromFunction((input) => {
        seen.push(input)
        return 5
      }))
      yield* BestOfN.complete(request, { models: ["fast"] }).pipe(Effect.provide(judge), Effect.forkChild)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(seen, [{ prompt: "Name a prime.", response: "two" }])
      yield* BestOfN.complete(request, { models: ["fast"], judgePrompt: "custom" }).pipe(
        Effect.provide(judge),
        Effect.forkChild
      )
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(seen[1], { prompt: "custom", response: "two" })
      const calls = yield* TestChatClient.callsTo("fast")
      assert.deepStrictEqual(calls[0].request, { messages, model: "fast" })
    }).pipe(Effect.provide(threeCandidates)))

  it.effect("ties go to the model listed first; failures stay in the report", () =>
    Effect.gen(function*() {
      const logs = TestLogs.make()
      const report = yield* BestOfN.complete(request, { models: ["broken", "first", "second"] }).pipe(
        Effect.provide(logs.layer)
      )
      assert.strictEqual(report.best.model, "first")
      const served = logs.lines.filter((line) => String(line.message).startsWith("served"))
      assert.deepStrictEqual(served.map((line) => [line.level, line.message, line.annotations["llm.model"]]), [
        ["INFO", "served by first with score 8, best of 2 scored of 3", "first"]
      ])
      assert.deepStrictEqual(report.ranking.map((c) => c.model), ["first", "second"])
      const broken = report.candidates[0]
      assert.strictEqual(broken.status, "failed")
      assert.strictEqual(broken.error?._tag, "ServerError")
      assert.isUndefined(broken.text)
      const reversed = yield* BestOfN.complete(request, { models: ["second", "first"] })
      assert.strictEqual(reversed.best.model, "second")
    }).pipe(
      Effect.provide(TestChatClient.layer({
        broken: [TestChatClient.fail(new LlmError.ServerError({ model: "broken", status: 500 }))],
        first: [TestChatClient.reply("seven")],
        second: [TestChatClient.reply("eleven")]
      })),
      Effect.provide(tableJudge({ seven: 8, eleven: 8 }, 0))
    ))

  it.effect("the same model may run twice as two candidates", () =>
    Effect.gen(function*() {
      const report = yield* BestOfN.complete(request, { models: ["m", "m"] })
      assert.deepStrictEqual(report.candidates.map((c) => [c.index, c.text]), [[0, "low"], [1, "high"]])
      assert.strictEqual(report.best.index, 1)
    }).pipe(
      Effect.provide(TestChatClient.layer({ m: [TestChatClient.reply("low"), TestChatClient.reply("high")] })),
      Effect.provide(tableJudge({ low: 2, high: 9 }, 0))
    ))

  it.effect("NoCandidatesError holds every failure when nothing could be scored", () =>
    Effect.gen(function*() {
      const error = yield* noCandidates(BestOfN.complete(request, { models: ["down", "limited", "unjudgeable"] }))
      assert.deepStrictEqual(error.candidates.map((c) => [c.model, c.status, c.error?._tag]), [
        ["down", "failed", "ServerError"],
        ["limited", "failed", "RateLimitError"],
        ["unjudgeable", "judge-failed", "JudgeError"]
      ])
      assert.strictEqual(error.failures.length, 3)
      assert.include(error.message, "scored 0 of 3")
      assert.include(error.message, "HTTP 503")
      const none = yield* noCandidates(BestOfN.complete(request, { models: [] }))
      assert.strictEqual(none.candidates.length, 0)
    }).pipe(
      Effect.provide(TestChatClient.layer({
        down: [TestChatClient.fail(new LlmError.ServerError({ model: "down", status: 503 }))],
        limited: [TestChatClient.fail(new LlmError.RateLimitError({ model: "limited", retryAfter: Option.none() }))],
        unjudgeable: [TestChatClient.reply("?")]
      })),
      Effect.provide(Judge.layer(Judge.fromFunction(({ response }) => response === "?" ? NaN : 5)))
    ))

  it.effect("NoCandidatesError when fewer than minCandidates were scored", () =>
    Effect.gen(function*() {
      const error = yield* noCandidates(BestOfN.complete(request, { models: ["ok", "down"], minCandidates: 2 }))
      assert.strictEqual(error.required, 2)
      assert.deepStrictEqual(error.candidates.map((c) => c.status), ["scored", "failed"])
      const report = yield* BestOfN.complete(request, { models: ["ok", "down"], minCandidates: 1 })
      assert.strictEqual(report.best.model, "ok")
    }).pipe(
      Effect.provide(TestChatClient.layer({
        ok: [TestChatClient.reply("fine")],
        down: [TestChatClient.fail(new LlmError.ConnectionError({ model: "down", detail: "refused" }))]
      })),
      Effect.provide(tableJudge({ fine: 6 }, 0))
    ))

  it.effect("judgeTimeout 2 s: a judge hanging on the 1 s candidate is interrupted and fails it at exactly 3 s; the others are scored as usual", () =>
    Effect.gen(function*() {
      const interruptedAt: Array<number> = []
      const judge = Judge.layer(Judge.fromFunction(({ response }) =>
        response === "two"
          ? Effect.never.pipe(
            Effect.onInterrupt(() => Effect.map(Clock.currentTimeMillis, (now) => interruptedAt.push(now)))
          )
          : Effect.as(Effect.sleep("500 millis"), 7), { name: "table" }))
      const fiber = yield* Effect.forkChild(
        BestOfN.complete(request, { models: ["fast", "medium"], judgeTimeout: "2 seconds" }).pipe(Effect.provide(judge))
      )
      yield* TestClock.adjust("2999 millis")
      assert.isUndefined(fiber.pollUnsafe(), "still judging the fast candidate at 2.999 s")
      assert.deepStrictEqual(interruptedAt, [])
      yield* TestClock.adjust("1 millis")
      assert.isDefined(fiber.pollUnsafe(), "done at 3 s")
      assert.deepStrictEqual(interruptedAt, [3000])
      const report = yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        report.candidates.map((c) => [c.model, c.status, c.text, c.score, c.latencyMs, c.judgeLatencyMs]),
        [
          ["fast", "judge-failed", "two", undefined, 1000, 2000],
          ["medium", "scored", "three", 7, 2000, 500]
        ]
      )
      const timedOut = report.candidates[0].error
      assert.isTrue(timedOut instanceof Judge.JudgeError)
      if (timedOut instanceof Judge.JudgeError) {
        assert.strictEqual(timedOut.reason, "TimedOut")
        assert.strictEqual(timedOut.judge, "table")
        assert.strictEqual(timedOut.timeout && Duration.toMillis(timedOut.timeout), 2000)
        assert.strictEqual(timedOut.message, "Judge table did not score within 2s")
      }
      assert.strictEqual(report.best.model, "medium")
      assert.deepStrictEqual(report.ranking.map((c) => c.model), ["medium"])
    }).pipe(Effect.provide(threeCandidates)))

  it.effect("judgeTimeout is inclusive: a judgement done exactly at it counts, one a millisecond later is cut at it", () =>
    Effect.gen(function*() {
      const judge = Judge.layer(
        Judge.fromFunction(({ response }) =>
          response === "two" ? Effect.as(Effect.sleep("2 seconds"), 6) : Effect.as(Effect.sleep("2001 millis"), 7)
        )
      )
      const fiber = yield* Effect.forkChild(
        BestOfN.complete(request, { models: ["fast", "medium"], judgeTimeout: "2 seconds" }).pipe(Effect.provide(judge))
      )
      const doneAt = yield* runUntilDone(fiber, 10_000)
      assert.strictEqual(doneAt, 4000)
      const report = yield* Fiber.join(fiber)
      assert.deepStrictEqual(report.candidates.map((c) => [c.model, c.status, c.score, c.judgeLatencyMs]), [
        ["fast", "scored", 6, 2000],
        ["medium", "judge-failed", undefined, 2000]
      ])
      assert.strictEqual(
        report.candidates[1].status === "judge-failed" && report.candidates[1].error.reason,
        "TimedOut"
      )
    }).pipe(Effect.provide(threeCandidates)))

  it.effect("judgeTimeout aborts an LLM judge's call; with no other candidate the call fails at the deadline", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        noCandidates(
          BestOfN.complete(request, { models: ["fast"], judgeTimeout: "2 seconds" }).pipe(
            Effect.provide(Layer.orDie(Judge.layerLlm({ model: "judge" })))
          )
        )
      )
      yield* TestClock.adjust("2999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(fiber)
      assert.deepStrictEqual(error.candidates.map((c) => [c.model, c.status, c.judgeLatencyMs]), [
        ["fast", "judge-failed", 2000]
      ])
      const [timedOut] = error.failures
      assert.strictEqual(timedOut._tag === "JudgeError" && timedOut.reason, "TimedOut")
      assert.include(error.message, "fast: Judge judge did not score within 2s")
      const judgeCalls = yield* TestChatClient.callsTo("judge")
      assert.deepStrictEqual(judgeCalls.map((c) => [c.startedAt, c.endedAt, c.result]), [[1000, 3000, "interrupted"]])
    }).pipe(Effect.provide(TestChatClient.layer({
      fast: [answer("two", "1 second")],
      judge: [TestChatClient.hang]
    }))))

  it.effect("early stop: a good enough answer interrupts the candidates still running", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        BestOfN.complete(request, { models: ["slow", "fast", "stuck"], earlyStop: { targetScore: 8 } })
      )
      const doneAt = yield* runUntilDone(fiber, 5000)
      assert.strictEqual(doneAt, 1500)
      const report = yield* Fiber.join(fiber)
      assert.strictEqual(report.best.model, "fast")
      assert.deepStrictEqual(report.candidates.map((c) => [c.model, c.status]), [
        ["slow", "cancelled"],
        ["fast", "scored"],
        ["stuck", "cancelled"]
      ])
      assert.deepStrictEqual((yield* TestChatClient.calls).map((c) => [c.model, c.result]), [
        ["slow", "interrupted"],
        ["fast", "success"],
        ["stuck", "interrupted"]
      ])
    }).pipe(
      Effect.provide(TestChatClient.layer({
        slow: [TestChatClient.reply("five", { delay: "3 seconds" })],
        fast: [TestChatClient.reply("two", { delay: "1 second" })],
        stuck: [TestChatClient.hang]
      })),
      Effect.provide(tableJudge({ two: 9, five: 10 }))
    ))

  it.effect("early stop waits for minCandidates and interrupts a judge still scoring", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        BestOfN.complete(request, {
          models: ["fast", "medium", "slow", "stuck"],
          minCandidates: 2,
          earlyStop: { targetScore: 8 }
        })
      )
      // fast scores 9 at 1.5 s, but it is the only one scored; medium scores 3 at 2.5 s: two scored,
      // one of them at least 8, so slow (still generating) and stuck are interrupted then.
      const doneAt = yield* runUntilDone(fiber, 5000)
      assert.strictEqual(doneAt, 2500)
      const report = yield* Fiber.join(fiber)
      assert.deepStrictEqual(report.candidates.map((c) => c.status), ["scored", "scored", "cancelled", "cancelled"])
      assert.deepStrictEqual(report.ranking.map((c) => c.model), ["fast", "medium"])
    }).pipe(
      Effect.provide(TestChatClient.layer({
        fast: [TestChatClient.reply("two", { delay: "1 second" })],
        medium: [TestChatClient.reply("three", { delay: "2 seconds" })],
        slow: [TestChatClient.reply("five", { delay: "3 seconds" })],
        stuck: [TestChatClient.hang]
      })),
      Effect.provide(tableJudge({ two: 9, three: 3, five: 10 }))
    ))

  it.effect("early stop keeps the answer of a candidate interrupted while being judged", () =>
    Effect.gen(function*() {
      const judge = Judge.layer(Judge.fromFunction(({ response }) =>
        response === "quick" ? Effect.as(Effect.sleep("100 millis"), 9) : Effect.as(Effect.sleep("10 seconds"), 10)
      ))
      const fiber = yield* Effect.forkChild(
        BestOfN.complete(request, { models: ["thorough", "quick"], earlyStop: { targetScore: 9 } }).pipe(
          Effect.provide(judge)
        )
      )
      const doneAt = yield* runUntilDone(fiber, 20_000)
      assert.strictEqual(doneAt, 1100)
      const report = yield* Fiber.join(fiber)
      const thorough = report.candidates[0]
      assert.strictEqual(thorough.status, "cancelled")
      assert.strictEqual(thorough.text, "careful")
      assert.strictEqual(thorough.latencyMs, 500)
      assert.isUndefined(thorough.score)
    }).pipe(
      Effect.provide(TestChatClient.layer({
        thorough: [TestChatClient.reply("careful", { delay: "500 millis" })],
        quick: [TestChatClient.reply("quick", { delay: "1 second" })]
      }))
    ))

  it.effect("without a target reached, early stop changes nothing", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        BestOfN.complete(request, { models: ["fast", "medium", "slow"], earlyStop: { targetScore: 10 } })
      )
      const doneAt = yield* runUntilDone(fiber, 5000)
      assert.strictEqual(doneAt, 3500)
      const report = yield* Fiber.join(fiber)
      assert.isTrue(report.candidates.every((c) => c.status === "scored"))
    }).pipe(Effect.provide(threeCandidates), Effect.provide(tableJudge({ two: 6, three: 7, five: 9 }))))

  it.effect("concurrency bounds the candidate calls in flight; judging takes no slot", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        BestOfN.complete(request, { models: ["fast", "medium", "slow"], concurrency: 1 })
      )
      // generation in sequence: 1 s + 2 s + 3 s, then the last judge call
      const doneAt = yield* runUntilDone(fiber, 10_000)
      assert.strictEqual(doneAt, 6500)
      const report = yield* Fiber.join(fiber)
      assert.deepStrictEqual(report.candidates.map((c) => c.latencyMs), [1000, 2000, 3000])
      const calls = yield* TestChatClient.calls
      assert.deepStrictEqual(calls.map((c) => c.startedAt), [0, 1000, 3000])
    }).pipe(Effect.provide(threeCandidates), Effect.provide(tableJudge({}))))

  it.effect("a defect in a judge ends the call instead of leaving it waiting", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        BestOfN.complete(request, { models: ["fast", "stuck"], earlyStop: { targetScore: 5 } }).pipe(
          Effect.provide(Judge.layer(Judge.fromFunction(() => Effect.die(new Error("judge bug")))))
        ).pipe(Effect.forkChild, Effect.tap(() => TestClock.adjust("1 second")), Effect.flatMap(Fiber.join))
      )
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      const [stuck] = yield* TestChatClient.callsTo("stuck")
      assert.strictEqual(stuck.result, "interrupted")
    }).pipe(Effect.provide(TestChatClient.layer({
      fast: [TestChatClient.reply("two", { delay: "1 second" })],
      stuck: [TestChatClient.hang]
    }))))

  it.effect("options that describe no call are a BestOfNConfigError, and nothing is called", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Partial<BestOfN.Options>, string]> = [
        [{ models: ["fast", ""] }, "model 2 of 2 has no name"],
        [{ models: [" "] }, "model 1 of 1 has no name"],
        [{ minCandidates: Number.NaN }, "minCandidates must be a whole number of at least 1, got NaN"],
        [{ minCandidates: 0 }, "minCandidates"],
        [{ minCandidates: 1.5 }, "minCandidates"],
        [{ concurrency: 0 }, "concurrency must be a whole number of at least 1 or \"unbounded\", got 0"],
        [{ concurrency: Number.NaN }, "concurrency"],
        [{ concurrency: 2.5 }, "concurrency"],
        [{ candidateTimeout: -1 }, "candidateTimeout must be a positive duration, got -1"],
        [{ candidateTimeout: Number.NaN }, "candidateTimeout"],
        [{ candidateTimeout: 0 }, "candidateTimeout"],
        [{ candidateTimeout: "-5 seconds" }, "candidateTimeout"],
        [{ earlyStop: { targetScore: Number.NaN } }, "earlyStop.targetScore must be a finite number, got NaN"],
        [{ judgeTimeout: -1 }, "judgeTimeout must be a positive duration, got -1"],
        [{ judgeTimeout: 0 }, "judgeTimeout"],
        [{ judgeTimeout: Number.NaN }, "judgeTimeout"],
        [{ judgeTimeout: "-5 seconds" }, "judgeTimeout"]
      ]
      for (const [options, reason] of cases) {
        const error = yield* Effect.flip(BestOfN.complete(request, { models: ["fast"], ...options }))
        assert.strictEqual(error._tag, "BestOfNConfigError", JSON.stringify(options))
        assert.include(error.message, `Best-of-n is misconfigured: ${reason}`)
      }
      // what a caller without the types could pass
      const untyped: { candidateTimeout: Duration.Input } = JSON.parse("{\"candidateTimeout\":\"soon\"}")
      const unreadable = yield* Effect.flip(BestOfN.complete(request, { models: ["fast"], ...untyped }))
      assert.include(unreadable.message, "candidateTimeout must be a positive duration, got soon")
      assert.deepStrictEqual(yield* TestChatClient.calls, [])
      // the edges that are fine
      const fiber = yield* Effect.forkChild(BestOfN.complete(request, {
        models: ["fast"],
        concurrency: "unbounded",
        minCandidates: 1,
        candidateTimeout: 1e308,
        judgeTimeout: 1e308,
        earlyStop: { targetScore: -1e9 }
      }))
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* Fiber.join(fiber)).best.model, "fast")
    }).pipe(Effect.provide(threeCandidates), Effect.provide(tableJudge({}))))

  it.effect("averaging judges: a panel scores every candidate", () =>
    Effect.gen(function*() {
      const panel = Judge.average([
        Judge.fromFunction(({ response }) => response.length, { name: "length" }),
        Judge.fromFunction(({ response }) => response === "three" ? 10 : 1, { name: "likes-three" })
      ])
      const report = yield* BestOfN.complete(request, { models: ["fast", "medium"] }).pipe(
        Effect.provide(Judge.layer(panel)),
        Effect.forkChild
      )
      yield* TestClock.adjust("2 seconds")
      const result = yield* Fiber.join(report)
      assert.deepStrictEqual(result.candidates.map((c) => c.score), [2, 7.5])
      assert.strictEqual(result.best.model, "medium")
      assert.deepStrictEqual(result.best.judgement.judges?.map((s) => [s.judge, s.value]), [
        ["length", 5],
        ["likes-three", 10]
      ])
    }).pipe(Effect.provide(threeCandidates)))

  it.effect("runs inside the best-of-n pattern span, where the judge is called", () =>
    Effect.gen(function*() {
      const spans: Array<string> = []
      const judge = Judge.fromFunction(() =>
        Effect.map(Effect.orDie(Effect.currentSpan), (span) => {
          spans.push(span.name)
          return 5
        })
      )
      yield* BestOfN.complete(request, { models: ["fast"] }).pipe(
        Effect.provide(Judge.layer(judge)),
        // an installed tracer: without one the patterns make no spans
        Effect.withTracer(Tracer.make({ span: (options) => new Tracer.NativeSpan(options) })),
        Effect.forkChild
      )
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(spans, ["resilient-llm.best-of-n"])
    }).pipe(Effect.provide(threeCandidates)))

  it.effect("reports each candidate attempt under the best-of-n pattern", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(BestOfN.complete(request, { models: ["fast", "medium"] }))
      yield* TestClock.adjust("3 seconds")
      yield* Fiber.join(fiber)
      const stats = yield* Observability.snapshot({ labels: { test: "best-of-n-observability" } })
      assert.deepStrictEqual(stats.map((s) => [s.model, s.successes]), [["fast", 1], ["medium", 1]])
    }).pipe(
      Effect.provide(threeCandidates),
      Effect.provide(tableJudge({})),
      Observability.withMetricLabels({ test: "best-of-n-observability" }),
      Effect.provideService(Metric.MetricRegistry, new Map())
    ))
})
