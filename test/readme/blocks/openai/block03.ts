import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Deployments } from "@resilient-llm/core"
import { Providers } from "@resilient-llm/openai"
import { Config, Effect, Layer } from "effect"

const ProvidersLive = Layer.unwrap(Effect.gen(function*() {
  const azure = yield* Config.Redacted("AZURE_OPENAI_API_KEY")
  const openRouter = yield* Config.Redacted("OPENROUTER_API_KEY")
  return Providers.clients([
    // Azure's v1 API takes the deployment's name as the model, in the body
    { name: "azure", baseUrl: "https://my-resource.openai.azure.com/openai/v1", headers: { "api-key": azure } },
    { name: "openrouter", baseUrl: "https://openrouter.ai/api/v1", apiKey: openRouter }
  ])
})).pipe(Layer.provide(NodeHttpClient.layerUndici))

const RouterLive = Deployments.layer({
  models: {
    "gpt-4o": {
      deployments: [
        { provider: "azure", model: "gpt-4o-prod", rpm: 600 },
        { provider: "openrouter", model: "openai/gpt-4o", priority: 1 }
      ]
    }
  }
}).pipe(Layer.provide(Deployments.layerStoresMemory), Layer.provide(ProvidersLive))
