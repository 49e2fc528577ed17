import { Providers } from "@resilient-llm/openai"
import { Config, Effect, Layer } from "effect"

const ChatLive = Layer.unwrap(Effect.gen(function*() {
  const openAi = yield* Config.Redacted("OPENAI_API_KEY")
  const anthropic = yield* Config.Redacted("ANTHROPIC_API_KEY")
  return Providers.layer([
    { name: "openai", baseUrl: "https://api.openai.com/v1", apiKey: openAi, models: ["gpt-*", "o3*"] },
    { name: "anthropic", baseUrl: "https://api.anthropic.com/v1", apiKey: anthropic, models: ["claude-*"] },
    { name: "local", baseUrl: "http://localhost:11434/v1", models: ["llama3.1:8b", "qwen2.5:*"] }
  ])
}))
