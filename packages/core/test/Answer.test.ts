import { assert, describe, it } from "@effect/vitest"
import type { LlmError } from "@resilient-llm/core"
import { Answer, ChatCompletion, CircuitBreaker, Fallback } from "@resilient-llm/core"
import { TestChatClient } from "@resilient-llm/testing"
import { Effect, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"

const completion = (content: string | null, finishReason = "stop") =>
  ChatCompletion.make({ model: "m", content, finishReason })

const verdict = (check: Answer.Check, c: ChatCompletion.ChatCompletion) =>
  Effect.map(
    Effect.result(check.run(c)),
    (r) => r._tag === "Success" ? "accepted" : `${r.failure.reason}: ${r.failure.detail}`
  )

const describe_ = (error: LlmError.LlmError) =>
  error._tag === "AnswerRejectedError" ? `${error._tag} ${error.reason}` : error._tag

const Invoice = Schema.Struct({ total: Schema.Number, currency: Schema.String })

describe("Answer checks", () => {
  it.effect("nonEmpty: text or a tool call; not blanks, not a refusal", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* verdict(Answer.nonEmpty, completion("7")), "accepted")
      assert.strictEqual(yield* verdict(Answer.nonEmpty, completion(" \n ")), "empty: no text and no tool call")
      assert.strictEqual(yield* verdict(Answer.nonEmpty, completion(null)), "empty: no text and no tool call")
      const tool: ChatCompletion.ChatCompletion = {
        id: "x",
        model: "m",
        choices: [{
          index: 0,
          finish_reason: "tool_calls",
          message: {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }]
          }
        }]
      }
      assert.strictEqual(yield* verdict(Answer.nonEmpty, tool), "accepted")
      const refused: ChatCompletion.ChatCompletion = {
        ...tool,
        choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: null, refusal: "No." } }]
      }
      assert.strictEqual(yield* verdict(Answer.nonEmpty, refused), "empty: the model refused: No.")
    }))

  it.effect("notTruncated: an answer cut at its token limit is rejected", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        yield* verdict(Answer.notTruncated, completion("The answer is", "length")),
        "truncated: finish_reason \"length\""
      )
      assert.strictEqual(
        yield* verdict(Answer.notTruncated, completion("x", "max_tokens")),
        "truncated: finish_reason \"max_tokens\""
      )
      assert.strictEqual(yield* verdict(Answer.notTruncated, completion("x")), "accepted")
    }))

  it.effect("json: structured output must be JSON matching the schema", () =>
    Effect.gen(function*() {
      const check = Answer.json(Invoice)
      assert.strictEqual(yield* verdict(check, completion("{\"total\": 12.5, \"currency\": \"EUR\"}")), "accepted")
      assert.match(yield* verdict(check, completion("{\"total\": \"12\"}")), /^invalid: /)
      assert.match(yield* verdict(check, completion("Sure! Here is the JSON")), /^invalid: /)
      // a long message is cut
      const long = yield* verdict(check, completion(`{"total": 1, "currency": ${"9".repeat(5000)}`))
      assert.isAtMost(long.length, 540)
    }))

  it.effect("predicate, effect and all: the caller's own checks, the first rejection wins", () =>
    Effect.gen(function*() {
      const short = Answer.predicate((c) => ChatCompletion.text(c).length <= 5, "longer than 5 characters")
      const prime = Answer.effect(
        (c) => Effect.succeed([2, 3, 5, 7].includes(Number(ChatCompletion.text(c)))),
        "not a small prime"
      )
      const failing = Answer.effect(() => Effect.fail(new Error("judge unreachable")), "judged")
      const both = Answer.all([short, prime])
      assert.strictEqual(yield* verdict(both, completion("7")), "accepted")
      assert.strictEqual(yield* verdict(both, completion("123456")), "rejected: longer than 5 characters")
      assert.strictEqual(yield* verdict(both, completion("8")), "rejected: not a small prime")
      assert.strictEqual(
        yield* verdict(failing, completion("8")),
        "rejected: judged: the check failed: judge unreachable"
      )
      assert.isFalse(both.countsForBreaker)
      assert.isTrue(Answer.all([short, Answer.countingForBreaker(prime)]).countsForBreaker)
    }))
})

describe("Fallback.chain with accept", () => {
  const request = ChatCompletion.prompt("Extract the invoice", { max_tokens: 100 })

  it.effect("a rejected answer fails its model: retried, then passed to the next model, with its reason", () =>
    Effect.gen(function*() {
      const chain = Fallback.chain(["mini", "large"], {
        accept: Answer.all([Answer.nonEmpty, Answer.notTruncated, Answer.json(Invoice)]),
        retry: { retries: 1, jitter: false }
      })
      const fiber = yield* Effect.forkChild(chain(request))
      yield* TestClock.adjust("10 seconds")
      const served = yield* Fiber.join(fiber)
      assert.strictEqual(served.model, "large")
      assert.deepStrictEqual(
        served.attempts.map((a) => [a.model, a.retry, a.outcome === "failure" ? describe_(a.error) : a.outcome]),
        [["mini", 0, "AnswerRejectedError truncated"], ["mini", 1, "AnswerRejectedError empty"], [
          "large",
          0,
          "success"
        ]]
      )
      const failed = served.attempts[0]
      assert.include(failed.error?.message ?? "", "Model mini gave an answer cut off by its token limit")
    }).pipe(Effect.provide(
      TestChatClient.layer({
        mini: [
          TestChatClient.reply("{\"total\": 12", { delay: "1 second", finishReason: "length" }),
          TestChatClient.reply("", { delay: "1 second" })
        ],
        large: [TestChatClient.reply("{\"total\": 12.5, \"currency\": \"EUR\"}", { delay: "1 second" })]
      }).pipe((layer) => layer)
    )))

  it.effect("a breaker counts rejections only when the check asks for it", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ trip: CircuitBreaker.consecutiveFailures(2) })
      const lenient = Fallback.chain(["empty"], { accept: Answer.nonEmpty, breaker })
      for (let i = 0; i < 3; i++) yield* Effect.flip(lenient(request))
      assert.strictEqual(yield* breaker.state("empty"), "closed")
      const strict = Fallback.chain(["empty"], { accept: Answer.countingForBreaker(Answer.nonEmpty), breaker })
      for (let i = 0; i < 2; i++) yield* Effect.flip(strict(request))
      assert.strictEqual(yield* breaker.state("empty"), "open")
      const refused = yield* Effect.flip(strict(request).pipe(Effect.catchTag("FallbackConfigError", Effect.die)))
      assert.strictEqual(refused.attempts[0].error._tag, "CircuitOpenError")
    }).pipe(Effect.provide(TestChatClient.layer({ empty: [TestChatClient.reply("  ")] }))))
})
