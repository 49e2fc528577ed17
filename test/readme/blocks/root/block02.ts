import { ChatClient, ChatCompletion } from "@resilient-llm/core"
import { Effect, Option } from "effect"

const program = Effect.gen(function*() {
  const completion = yield* ChatClient.create({
    model: "o4-mini",
    messages: [
      { role: "developer", content: "Cite your sources." },
      { role: "user", content: [{ type: "text", text: "Who built the Eiffel Tower?" }] }
    ],
    max_completion_tokens: 2048,
    response_format: { type: "json_object" },
    // not typed here (values differ between providers): sent as given
    reasoning_effort: "low"
  })
  const usage = completion.usage
  const cached = usage?.prompt_tokens_details?.cached_tokens ?? 0 // absent or null: not reported
  const reasoningTokens = usage?.completion_tokens_details?.reasoning_tokens ?? 0
  const thoughts = Option.getOrElse(ChatCompletion.reasoning(completion), () => "")
  const sources = (completion.choices[0].message.annotations ?? [])
    .filter(ChatCompletion.isUrlCitation)
    .map((citation) => citation.url_citation.url)
  const groq: unknown = completion.x_groq // a provider's own field, as it came
  return { cached, reasoningTokens, thoughts, sources, groq }
})
