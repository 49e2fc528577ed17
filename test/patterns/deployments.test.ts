import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { Budget, ChatCompletion, Deployments, Fallback } from "@resilient-llm/core"
import { Providers } from "@resilient-llm/openai"
import { FakeProvider } from "@resilient-llm/testing"
import { Effect, Layer, Redacted } from "effect"
import * as Fake from "../support/Fake.js"

const azureKey = "azure-key-5f0c9a7e2b41d8"
const openAiKey = "sk-openai-77d1e04ac9b3"

/** Two providers over real HTTP, each a FakeProvider demanding its own key. */
const twoProviders = (azure: FakeProvider.Config["models"], openai: FakeProvider.Config["models"]) =>
  Effect.gen(function*() {
    const east = yield* Fake.start({ models: azure, apiKey: azureKey })
    const west = yield* Fake.start({ models: openai, apiKey: openAiKey })
    const providers = Providers.clients([
      { name: "azure", baseUrl: east.url, apiKey: Redacted.make(azureKey) },
      { name: "openai", baseUrl: west.url, apiKey: Redacted.make(openAiKey) }
    ]).pipe(Layer.provide(NodeHttpClient.layerUndici))
    return { east, west, providers }
  })

const config: Deployments.Config = {
  models: {
    "gpt-4o": {
      strategy: "weighted",
      deployments: [
        { name: "east", provider: "azure", model: "gpt4o-prod", rpm: 2, price: { input: 2.5, output: 10 } },
        { name: "west", provider: "openai", model: "gpt-4o", priority: 1, price: { input: 5, output: 15 } }
      ]
    }
  },
  budget: { limitUsd: 0.0001, period: "1 day", keys: { "team-a": 1 } }
}

describe("Deployments over HTTP", () => {
  it.live("each deployment's provider gets its own model name and key; a full limit spills over; a budget refuses", () =>
    Effect.gen(function*() {
      const { east, providers, west } = yield* twoProviders(
        { "gpt4o-prod": { usage: { prompt_tokens: 10, completion_tokens: 5 } } },
        { "gpt-4o": { usage: { prompt_tokens: 10, completion_tokens: 5 } } }
      )
      const router = Deployments.layer(config).pipe(
        Layer.provide(Layer.mergeAll(providers, Deployments.layerStoresMemory))
      )
      const chain = Fallback.chain(["gpt-4o"])
      const served = yield* Effect.forEach(
        [0, 1, 2],
        () => chain(ChatCompletion.prompt("Say hello")).pipe(Budget.withKey("team-a"))
      ).pipe(Effect.provide(router))

      assert.deepStrictEqual(served.map((s) => s.deployment), ["east", "east", "west"])
      assert.deepStrictEqual(
        served[2].attempts.map((a) => [a.deployment, a.outcome === "failure" ? a.error._tag : a.outcome]),
        [["east", "ThrottledError"], ["west", "success"]]
      )
      // 10 × 2.5 + 5 × 10 per million for east; 10 × 5 + 5 × 15 for west
      assert.deepStrictEqual(served.map((s) => s.attempts.at(-1)?.costUsd), [0.000075, 0.000075, 0.000125])

      const eastSeen = yield* east.requests
      const westSeen = yield* west.requests
      assert.deepStrictEqual(eastSeen.map((r) => [r.model, r.authorization]), [
        ["gpt4o-prod", `Bearer ${azureKey}`],
        ["gpt4o-prod", `Bearer ${azureKey}`]
      ])
      assert.deepStrictEqual(westSeen.map((r) => [r.model, r.authorization]), [["gpt-4o", `Bearer ${openAiKey}`]])

      // the layer above was built per effect: a router of its own has the budget state of its own
      const shared = yield* Layer.build(router)
      const withBudget = chain(ChatCompletion.prompt("Say hello")).pipe(
        Budget.withKey("team-b"),
        Effect.provide(shared)
      )
      yield* withBudget // 0.000075 of 0.0001
      yield* withBudget // 0.00015: the limit is crossed by this call
      const refused = yield* Effect.flip(withBudget.pipe(Effect.catchTag("FallbackConfigError", Effect.die)))
      assert.strictEqual(refused.stoppedBy?._tag, "BudgetExceededError")
      assert.strictEqual((yield* west.requests).length + (yield* east.requests).length, 5)
    }).pipe(Effect.scoped))

  it.live("a provider's 429 with retry-after cools its deployment down: the next calls go to the other", () =>
    Effect.gen(function*() {
      const { east, providers, west } = yield* twoProviders(
        { "gpt4o-prod": { script: [FakeProvider.rateLimited({ retryAfter: { seconds: 60 } })] } },
        { "gpt-4o": {} }
      )
      const router = yield* Layer.build(
        Deployments.layer({
          models: {
            "gpt-4o": {
              deployments: [
                { name: "east", provider: "azure", model: "gpt4o-prod", rpm: 100 },
                { name: "west", provider: "openai", model: "gpt-4o", priority: 1 }
              ]
            }
          }
        }).pipe(Layer.provide(Layer.mergeAll(providers, Deployments.layerStoresMemory)))
      )
      const chain = Fallback.chain(["gpt-4o"])
      const first = yield* chain(ChatCompletion.prompt("Say hello")).pipe(Effect.provide(router))
      assert.deepStrictEqual(first.attempts.map((a) => [a.deployment, a.error?._tag]), [
        ["east", "RateLimitError"],
        ["west", undefined]
      ])
      const second = yield* chain(ChatCompletion.prompt("Say hello")).pipe(Effect.provide(router))
      assert.deepStrictEqual(second.attempts.map((a) => [a.deployment, a.error?._tag]), [
        ["east", "ThrottledError"],
        ["west", undefined]
      ])
      assert.strictEqual((yield* east.requests).length, 1)
      assert.strictEqual((yield* west.requests).length, 2)
      const status = yield* Effect.flatMap(Deployments.Deployments, (d) => d.snapshot).pipe(Effect.provide(router))
      assert.strictEqual(status[0].limits.factor, 0.5)
      assert.isAbove(status[0].limits.cooldownMs, 50_000)
    }).pipe(Effect.scoped))
})
