import { assert, it } from "@effect/vitest"
import { ChatClient, ChatCompletion, LlmError } from "@resilient-llm/core"
import { TestChatClient } from "@resilient-llm/testing"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"

it.effect("falls over after a slow failure", () =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(ChatClient.create({ model: "gpt-4o", ...ChatCompletion.prompt("hi") }))
    yield* TestClock.adjust("2 seconds")
    const error = yield* Effect.flip(Fiber.join(fiber))
    assert.strictEqual(error._tag, "ServerError")
    const calls = yield* TestChatClient.callsTo("gpt-4o")
    assert.strictEqual(calls[0].result, "failure")
  }).pipe(Effect.provide(TestChatClient.layer({
    "gpt-4o": [TestChatClient.fail(new LlmError.ServerError({ model: "gpt-4o", status: 503 }), { delay: "2 seconds" })]
  }))))
