import { FakeProvider } from "@resilient-llm/testing"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const fake = yield* FakeProvider.make({
    seed: 42, // the same seed replays the same outcomes per model
    models: {
      "gpt-4o": {
        latency: { min: "20 millis", max: "80 millis" },
        faults: [
          { rate: 0.1, fault: FakeProvider.serverError(503) },
          { rate: 0.05, fault: FakeProvider.rateLimited({ retryAfter: { seconds: 2 } }) }
        ]
      },
      "claude-sonnet": { script: [FakeProvider.hang(), FakeProvider.truncatedStream({ afterChunks: 3 })] }
    }
  })
  // fake.url is "http://127.0.0.1:<port>/v1": give it to any OpenAI-compatible client

  yield* fake.setModel("gpt-4o", { script: () => FakeProvider.serverError(503) }) // an outage starts
  yield* fake.setModel("gpt-4o", {}) // and ends

  const received = yield* fake.requests // model, body, Authorization header, status and outcome of each
}).pipe(Effect.scoped) // the server stops and closes every connection
