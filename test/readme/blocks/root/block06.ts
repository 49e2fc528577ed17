import { ChatCompletion, CircuitBreaker, Fallback } from "@resilient-llm/core"
import { Effect, Stream } from "effect"

const story = Effect.gen(function*() {
  const breaker = yield* CircuitBreaker.CircuitBreaker
  const served = yield* Fallback.stream(["gpt-4o", "claude-sonnet"], {
    timeout: "5 seconds", // to the first chunk
    idleTimeout: "20 seconds", // between two chunks: a stream gone quiet fails with TimeoutError
    deadline: "2 minutes", // the whole call, streaming included
    breaker
  })(ChatCompletion.prompt("Tell me a story"))
  yield* Stream.runForEach(served.value, (chunk) => Effect.log(ChatCompletion.chunkText(chunk)))
}).pipe(Effect.scoped)
