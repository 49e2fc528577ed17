import { ChatCompletion, Fallback } from "@resilient-llm/core"
import { Effect } from "effect"

const complete = Fallback.chain(["gpt-4o", "claude-sonnet", "llama-3.1-70b"], {
  timeout: "15 seconds", // per attempt: interrupted, then TimeoutError
  retry: { retries: 2, maxWait: "5 seconds" }, // per model: 250 ms, 500 ms, jittered
  deadline: "40 seconds" // the whole chain
})

const program = complete(ChatCompletion.prompt("Summarise this ticket: ...")).pipe(
  Effect.tap((served) => Effect.log(`served by ${served.model} after ${served.attempts.length} attempts`)),
  Effect.map((served) => ChatCompletion.text(served.value))
) // Effect<string, AllModelsFailed | FallbackConfigError, ChatClient>: provide a ChatClient layer
