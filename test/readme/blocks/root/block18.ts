import { ChatCompletion, Experiment } from "@resilient-llm/core"
import { Effect, Stream } from "effect"

const streamed = (experiment: Experiment.Experiment) =>
  Effect.gen(function*() {
    const served = yield* experiment.stream(ChatCompletion.prompt("Where is my order?"), {
      key: "user-42", // the variant complete would pick for this key
      timeout: "5 seconds", // each try's wait for the first chunk
      retry: { retries: 2 } // before the first chunk only
    })
    yield* Effect.log(`streaming from ${served.model} (variant ${served.variant})`)
    yield* Stream.runForEach(served.stream, (chunk) => Effect.log(ChatCompletion.chunkText(chunk)))
  }).pipe(Effect.scoped) // recorded when the stream ends, read inside this scope
