import { FakeProvider } from "@resilient-llm/testing"
import { Effect } from "effect"
import OpenAI from "openai"

const program = Effect.gen(function*() {
  const fake = yield* FakeProvider.make({
    seed: 42,
    apiKey: "sk-test",
    models: {
      "gpt-4o": {
        latency: { min: "20 millis", max: "80 millis" },
        faults: [
          { rate: 0.1, fault: FakeProvider.serverError(503) },
          { rate: 0.05, fault: FakeProvider.rateLimited({ retryAfter: { seconds: 2 } }) }
        ]
      },
      "claude-sonnet": {
        reply: (request) => `You said: ${String(request.messages.at(-1)?.content)}`,
        chunkDelay: "10 millis",
        script: [FakeProvider.hang(), FakeProvider.truncatedStream({ afterChunks: 3 })]
      }
    }
  })

  const openai = new OpenAI({ baseURL: fake.url, apiKey: "sk-test" }) // fake.url = http://127.0.0.1:<port>/v1
  yield* Effect.promise(() => openai.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }))

  const [received] = yield* fake.requests // model, body, Authorization header, status, outcome...
}).pipe(Effect.scoped) // the server stops here, closing every connection
