import { NodeHttpClient } from "@effect/platform-node"
import { ChatClient, ChatCompletion } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { Effect, Layer } from "effect"

// OPENAI_BASE_URL (default https://api.openai.com/v1) and OPENAI_API_KEY, the key read as Redacted
const ChatLive = OpenAiCompatible.layerConfig().pipe(Layer.provide(NodeHttpClient.layerUndici))

const program = ChatClient.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello!" }] }).pipe(
  Effect.map(ChatCompletion.text),
  Effect.provide(ChatLive)
)
