import { assert, describe, it } from "@effect/vitest"
import { ChatClient, ChatCompletion, LlmError } from "@resilient-llm/core"
import { TestChatClient } from "@resilient-llm/testing"
import { Cause, Effect, Exit, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"

const request = (model: string): ChatCompletion.ChatRequest => ({ model, messages: [{ role: "user", content: "hi" }] })

describe("TestChatClient", () => {
  it.effect("a 10-minute scripted latency completes when TestClock moves, in no real time", () =>
    Effect.gen(function*() {
      const realStart = performance.now()
      const fiber = yield* Effect.forkChild(ChatClient.create(request("slow")))
      yield* TestClock.adjust("9 minutes")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 minute")
      const completion = yield* Fiber.join(fiber)
      assert.strictEqual(ChatCompletion.text(completion), "eventually")
      assert.isBelow(performance.now() - realStart, 1_000)
      const [call] = yield* TestChatClient.calls
      assert.strictEqual(call.result, "success")
      assert.strictEqual(call.endedAt! - call.startedAt, 600_000)
    }).pipe(
      Effect.provide(TestChatClient.layer({ slow: [TestChatClient.reply("eventually", { delay: "10 minutes" })] }))
    ))

  it.effect("plays outcomes in order and repeats the last one", () =>
    Effect.gen(function*() {
      const first = yield* Effect.exit(ChatClient.create(request("m")))
      const second = yield* ChatClient.create(request("m"))
      const third = yield* ChatClient.create(request("m"))
      assert.deepStrictEqual(first, Exit.fail(new LlmError.ServerError({ model: "m", status: 503 })))
      assert.strictEqual(ChatCompletion.text(second), "ok")
      assert.strictEqual(ChatCompletion.text(third), "ok")
      const calls = yield* TestChatClient.callsTo("m")
      assert.deepStrictEqual(calls.map((c) => c.result), ["failure", "success", "success"])
    }).pipe(Effect.provide(TestChatClient.layer({
      m: [TestChatClient.fail(new LlmError.ServerError({ model: "m", status: 503 })), TestChatClient.reply("ok")]
    }))))

  it.effect("an unknown model fails with ModelNotFoundError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(ChatClient.create(request("nope")))
      assert.strictEqual(error._tag, "ModelNotFoundError")
      assert.strictEqual(error.model, "nope")
    }).pipe(Effect.provide(TestChatClient.layer({}))))

  it.effect("records an interrupted hang", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(ChatClient.create(request("h")))
      yield* TestClock.adjust("1 hour")
      yield* Fiber.interrupt(fiber)
      const [call] = yield* TestChatClient.calls
      assert.strictEqual(call.result, "interrupted")
    }).pipe(Effect.provide(TestChatClient.layer({ h: [TestChatClient.hang] }))))

  it.effect("a call cut short by a timeout is recorded as interrupted, when the timeout fires", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(ChatClient.create(request("slow")).pipe(Effect.timeout("1 second")))
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.isTrue(Cause.isTimeoutError(error))
      // the timeout interrupts the call and waits for it to stop, so the record is settled already
      const [call] = yield* TestChatClient.calls
      assert.deepStrictEqual([call.result, call.startedAt, call.endedAt], ["interrupted", 0, 1_000])
    }).pipe(Effect.provide(TestChatClient.layer({ slow: [TestChatClient.reply("late", { delay: "1 minute" })] }))))

  it.effect("a stream its consumer stops reading is recorded as a success, not as an interruption", () =>
    Effect.gen(function*() {
      const text = yield* TestChatClient.collectText(ChatClient.stream(request("s")).pipe(Stream.take(1)))
      assert.strictEqual(text, "one ")
      const [call] = yield* TestChatClient.calls
      assert.strictEqual(call.result, "success")
    }).pipe(Effect.provide(TestChatClient.layer({ s: [TestChatClient.reply("one two three")] }))))

  it.effect("streams word by word and can fail midway", () =>
    Effect.gen(function*() {
      const text = yield* TestChatClient.collectText(ChatClient.stream(request("s")))
      assert.strictEqual(text, "one two three")
      const error = yield* Effect.flip(TestChatClient.collectText(ChatClient.stream(request("s"))))
      assert.strictEqual(error._tag, "ConnectionError")
      const calls = yield* TestChatClient.calls
      assert.deepStrictEqual(calls.map((c) => c.result), ["success", "failure"])
    }).pipe(Effect.provide(TestChatClient.layer({
      s: [
        TestChatClient.reply("one two three"),
        TestChatClient.reply("one two three", {
          failAfterChunks: { chunks: 1, error: new LlmError.ConnectionError({ model: "s", detail: "reset" }) }
        })
      ]
    }))))

  it.effect("a function script gets the call's index among the calls to its model, and the request", () =>
    Effect.gen(function*() {
      const texts = yield* Effect.forEach(
        ["a", "b", "a", "a", "b"],
        (model) => Effect.map(ChatClient.create(request(model)), ChatCompletion.text)
      )
      assert.deepStrictEqual(texts, ["a0:hi", "b0:hi", "a1:hi", "a2:hi", "b1:hi"])
      const calls = yield* TestChatClient.calls
      assert.deepStrictEqual(calls.map((c) => c.model), ["a", "b", "a", "a", "b"])
    }).pipe(Effect.provide(TestChatClient.layer({
      a: (index, req) => TestChatClient.reply(`a${index}:${String(req.messages[0]?.content)}`),
      b: (index, req) => TestChatClient.reply(`b${index}:${String(req.messages[0]?.content)}`)
    }))))

  it.effect("a defect is recorded as a failure without an error, not as an interruption", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(ChatClient.create(request("buggy")))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      const [call] = yield* TestChatClient.calls
      assert.strictEqual(call.result, "failure")
      assert.isUndefined(call.error)
    }).pipe(Effect.provide(TestChatClient.layer({
      buggy: () => {
        throw new Error("a bug in the script")
      }
    }))))
})
