import { ChatCompletion, CircuitBreaker, Fallback, LlmError } from "@resilient-llm/core"
import { TestChatClient } from "@resilient-llm/testing"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const breaker = yield* CircuitBreaker.make({ trip: CircuitBreaker.consecutiveFailures(5) })
  const complete = Fallback.chain(["gpt-4o", "claude-sonnet"], {
    timeout: "15 seconds", // per attempt
    retry: { retries: 2 }, // per model, for retryable errors only
    breaker // a model whose circuit is open is skipped without a call
  })
  const served = yield* complete(ChatCompletion.prompt("Summarise this ticket: ..."))
  // served.model: who answered; served.attempts: every attempt before, with its outcome
  return `${served.model}: ${ChatCompletion.text(served.value)}`
}).pipe(
  Effect.scoped,
  Effect.provide(TestChatClient.layer({
    "gpt-4o": [TestChatClient.fail(new LlmError.ModelNotFoundError({ model: "gpt-4o" }))],
    "claude-sonnet": [TestChatClient.reply("The customer wants a refund.")]
  }))
)
