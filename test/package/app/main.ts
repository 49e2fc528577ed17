/**
 * A user's program, run against the packed packages installed with npm outside the workspace:
 * a fallback chain over HTTP to a `FakeProvider` whose first model fails, with
 * `OpenAiCompatible` on undici, and the same chain on `TestChatClient`. It prints what it saw as
 * JSON and exits non-zero if anything is not as expected.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { ChatCompletion, CircuitBreaker, LlmError } from "@resilient-llm/core"
import * as Retry from "@resilient-llm/core/Retry"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { FakeProvider, TestChatClient } from "@resilient-llm/testing"
import { Effect, Layer } from "effect"
import { complete } from "./chain.js"

const overHttp = Effect.gen(function*() {
  const fake = yield* FakeProvider.make({
    seed: 1,
    models: {
      "model-a": { script: [FakeProvider.serverError(503)] },
      "model-b": { reply: "hello from b" }
    }
  })
  const served = yield* complete(ChatCompletion.prompt("Hello")).pipe(
    Effect.provide(OpenAiCompatible.layer({ baseUrl: fake.url }).pipe(Layer.provide(NodeHttpClient.layerUndici)))
  )
  const received = yield* fake.requests
  return {
    model: served.model,
    text: ChatCompletion.text(served.value),
    attempts: served.attempts.map((attempt) => [attempt.model, attempt.outcome]),
    requests: received.length
  }
}).pipe(Effect.scoped)

const inMemory = complete(ChatCompletion.prompt("Hello")).pipe(
  Effect.map((served) => ({ model: served.model, text: ChatCompletion.text(served.value) })),
  Effect.provide(TestChatClient.layer({
    "model-a": [TestChatClient.fail(new LlmError.ServerError({ model: "model-a", status: 503 }))],
    "model-b": [TestChatClient.reply("hello from the script")]
  }))
)

const breakerStarts = Effect.gen(function*() {
  const breaker = yield* CircuitBreaker.make({ trip: CircuitBreaker.consecutiveFailures(3) })
  return yield* breaker.state("model-a")
}).pipe(Effect.scoped)

const internalRefused = import(["@resilient-llm/core", "internal", "experimentStats"].join("/")).then(
  () => "imported",
  (error: unknown) => error instanceof Error && "code" in error ? String(error.code) : String(error)
)

const report = {
  overHttp: await Effect.runPromise(overHttp),
  inMemory: await Effect.runPromise(inMemory),
  breaker: await Effect.runPromise(breakerStarts),
  retryIsAFunction: typeof Retry.schedule === "function",
  internal: await internalRefused
}
console.log(JSON.stringify(report))

const expected = {
  overHttp: {
    model: "model-b",
    text: "hello from b",
    attempts: [["model-a", "failure"], ["model-b", "success"]],
    requests: 2
  },
  inMemory: { model: "model-b", text: "hello from the script" },
  breaker: "closed",
  retryIsAFunction: true,
  internal: "ERR_PACKAGE_PATH_NOT_EXPORTED"
}
if (JSON.stringify(report) !== JSON.stringify(expected)) {
  console.error(`expected ${JSON.stringify(expected)}`)
  process.exit(1)
}
