import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { ChatClient, ChatCompletion } from "@resilient-llm/core"
import { OpenAiCompatible, Providers } from "@resilient-llm/openai"
import { Config, Effect, Layer, Redacted } from "effect"

// one endpoint; the client's own bounds are optional (defaults: 10 minutes, 5 minutes, 256)
const Groq = OpenAiCompatible.layer({
  baseUrl: "https://api.groq.com/openai/v1",
  apiKey: Redacted.make(process.env.GROQ_API_KEY ?? ""),
  timeout: "2 minutes",
  idleTimeout: "30 seconds",
  maxConnections: 64
})

// from the environment: OPENAI_BASE_URL (default https://api.openai.com/v1) and OPENAI_API_KEY,
// read through Effect's Config, the key as Redacted
const FromEnv = OpenAiCompatible.layerConfig()

// several providers, routed by model name: first provider with a matching pattern wins
const Routed = Layer.unwrap(Effect.gen(function*() {
  const openAiKey = yield* Config.Redacted("OPENAI_API_KEY")
  const anthropicKey = yield* Config.Redacted("ANTHROPIC_API_KEY")
  return Providers.layer([
    { name: "openai", baseUrl: "https://api.openai.com/v1", apiKey: openAiKey, models: ["gpt-*", "o3*"] },
    { name: "anthropic", baseUrl: "https://api.anthropic.com/v1", apiKey: anthropicKey, models: ["claude-*"] },
    { name: "local", baseUrl: "http://localhost:11434/v1", models: ["llama3.1:8b", "qwen2.5:*"] }
  ])
}))

const program = ChatClient.create({ model: "claude-sonnet-4", messages: [{ role: "user", content: "Hello!" }] }).pipe(
  Effect.map(ChatCompletion.text),
  Effect.provide(Routed.pipe(Layer.provide(NodeHttpClient.layerUndici)))
)
