import { OpenAiCompatible } from "@resilient-llm/openai"
import { FakeProvider } from "@resilient-llm/testing"
import { Effect } from "effect"
import { FetchHttpClient } from "effect/http"

const inVirtualTime = Effect.gen(function*() {
  const fake = yield* FakeProvider.make({ models: { "gpt-test": { latency: "2 seconds" } } })
  return yield* OpenAiCompatible.make({ baseUrl: fake.url }).pipe(
    Effect.provide(FetchHttpClient.layer),
    Effect.provideService(FetchHttpClient.Fetch, fake.fetch)
  )
})
