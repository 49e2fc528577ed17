import { ChatCompletion, Fallback } from "@resilient-llm/core"
import { Effect, Stream } from "effect"

const story = Effect.gen(function*() {
  const served = yield* Fallback.stream(["gpt-4o", "claude-sonnet"], {
    timeout: "10 seconds", // to the first chunk
    hedge: { delay: { percentile: 95, initial: "1 second" } } // p95 of gpt-4o's time to a first chunk
  })(ChatCompletion.prompt("Tell me a story"))
  // served.model sent the first chunk; served.attempts says whether it was a hedge
  yield* Stream.runForEach(served.value, (chunk) => Effect.log(ChatCompletion.chunkText(chunk)))
}).pipe(Effect.scoped)
