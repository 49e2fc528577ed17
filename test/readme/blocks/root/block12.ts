import { Budget, ChatCompletion, Deployments, Fallback } from "@resilient-llm/core"
import { Providers } from "@resilient-llm/openai"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Config, Effect, Layer } from "effect"

// the providers: one endpoint and one key each; a key goes only to its own endpoint
const ProvidersLive = Layer.unwrap(Effect.gen(function*() {
  const azureKey = yield* Config.Redacted("AZURE_OPENAI_API_KEY")
  const openAiKey = yield* Config.Redacted("OPENAI_API_KEY")
  const openRouterKey = yield* Config.Redacted("OPENROUTER_API_KEY")
  return Providers.clients([
    // Azure's v1 API takes the deployment's name as the model
    { name: "azure", baseUrl: "https://my-resource.openai.azure.com/openai/v1", headers: { "api-key": azureKey } },
    { name: "openai", baseUrl: "https://api.openai.com/v1", apiKey: openAiKey },
    { name: "openrouter", baseUrl: "https://openrouter.ai/api/v1", apiKey: openRouterKey }
  ])
})).pipe(Layer.provide(NodeHttpClient.layerUndici))

// the router: plain data, checked when the layer is built
const RouterLive = Deployments.layer({
  models: {
    "gpt-4o": {
      strategy: "least-busy",
      maxWait: "2 seconds", // how long a call may wait for a rate limit to have room
      deployments: [
        {
          name: "azure-east",
          provider: "azure",
          model: "gpt-4o-prod", // the Azure deployment's name
          rpm: 600,
          tpm: 150_000,
          maxConcurrent: 32,
          price: { input: 2.5, cachedInput: 1.25, output: 10 } // US dollars per million tokens
        },
        {
          name: "openai",
          provider: "openai",
          model: "gpt-4o",
          priority: 1, // only when azure-east failed or has no room
          price: { input: 2.5, cachedInput: 1.25, output: 10 }
        }
      ]
    },
    "claude-sonnet": {
      deployments: [{ provider: "openrouter", model: "anthropic/claude-sonnet-4", price: { input: 3, output: 15 } }]
    }
  },
  budget: { limitUsd: 20, period: "1 day", keys: { "team-research": 200 } }
}).pipe(Layer.provide(Deployments.layerStoresMemory), Layer.provide(ProvidersLive))

// the patterns name logical models; a call is charged to the key set with Budget.withKey
const answer = (teamId: string, question: string) =>
  Fallback.chain(["gpt-4o", "claude-sonnet"])(ChatCompletion.prompt(question)).pipe(
    Budget.withKey(teamId),
    Effect.tap((served) =>
      Effect.log(`${served.model} via ${served.deployment}, $${served.attempts.at(-1)?.costUsd ?? 0}`)
    )
  )
// Effect<Served<ChatCompletion>, AllModelsFailed, ChatClient>: provide RouterLive
