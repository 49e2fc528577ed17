import { LlmError } from "@resilient-llm/core"
import { TestChatClient } from "@resilient-llm/testing"

const layer = TestChatClient.layer({
  "gpt-4o": [TestChatClient.fail(new LlmError.ServerError({ model: "gpt-4o", status: 503 }), { delay: "2 seconds" })],
  "claude-sonnet": [TestChatClient.reply("hello", { delay: "200 millis" })]
})
// then in an it.effect test: fork, TestClock.adjust, join; TestChatClient.callsTo("gpt-4o")
