import { assert, it } from "@effect/vitest"
import { ChatCompletion, Fallback, LlmError } from "@resilient-llm/core"
import { TestChatClient, TestLogs } from "@resilient-llm/testing"
import { Effect } from "effect"

it.effect("logs the model that served", () =>
  Effect.gen(function*() {
    const logs = TestLogs.make()
    yield* Fallback.chain(["a", "b"])(ChatCompletion.prompt("hi")).pipe(Effect.provide(logs.layer))
    const served = logs.lines[logs.lines.length - 1]
    assert.deepStrictEqual([served.level, served.message], ["INFO", "served by b after 2 attempts"])
    assert.strictEqual(served.annotations["llm.model"], "b")
  }).pipe(Effect.provide(TestChatClient.layer({
    a: [TestChatClient.fail(new LlmError.ServerError({ model: "a", status: 503 }))],
    b: [TestChatClient.reply("ok")]
  }))))
