/**
 * The data that crosses the wire: a chat request, the completion a provider returns, and the
 * chunks of a streamed completion, in OpenAI's wire names and typed after the OpenAI spec. The
 * schemas are the single source of truth for encoding requests and decoding responses.
 *
 * Every object keeps the fields its schema does not name (a provider's own extensions, such as
 * `reasoning_content`): they are decoded as they came and encoded as they are, so a response
 * decodes and re-encodes to the same JSON. Fields the spec defines are typed and checked where they
 * are present; decoding tolerates what providers differ in (an absent or `null` optional field,
 * no `usage`, no `object` or `created`, no `id`) and fails on what would break a caller: no
 * `choices`, or an empty list of them, and a token count that is not a non-negative integer.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"

// Every object, of a request or of a response, keeps the fields its schema does not name, so a
// provider's own extensions reach the provider, or the caller, untouched. Effect parses a struct
// with a rest on its generic path: a typical stream chunk decodes in about 3.3 µs, against 2 µs
// with the same fields closed. A hand-written open struct on the fast path saved a fifth of that,
// and lost Arbitrary and JSON Schema derivation.
const open = <const Fields extends Schema.Struct.Fields>(fields: Fields) =>
  Schema.StructWithRest(Schema.Struct(fields), [Schema.Record(Schema.String, Schema.Unknown)])

const withDefault = <S extends Schema.Top>(value: S["Encoded"]) => Schema.withDecodingDefault<S>(Effect.succeed(value))

// Optional fields of a response also accept `null`: providers (and proxies that serialize every
// optional field) send it for "not reported".
const optionalNullable = <S extends Schema.Top>(schema: S) => Schema.optional(Schema.NullOr(schema))

const JsonObject = Schema.Record(Schema.String, Schema.Unknown)

// ---------------------------------------------------------------------------------------------
// requests: content parts
// ---------------------------------------------------------------------------------------------

/**
 * A text content part. Extra fields (Anthropic-style `cache_control`) are sent as given.
 *
 * @since 0.2.0
 * @category schemas
 */
export class TextPart extends Schema.Opaque<TextPart>()(open({
  type: Schema.Literal("text"),
  text: Schema.String
})) {}

/**
 * An image content part: a URL or a `data:` URL, with an optional level of detail.
 *
 * @since 0.2.0
 * @category schemas
 */
export class ImagePart extends Schema.Opaque<ImagePart>()(open({
  type: Schema.Literal("image_url"),
  image_url: open({
    url: Schema.String,
    detail: Schema.optional(Schema.Literals(["auto", "low", "high"]))
  })
})) {}

/**
 * An audio content part: base64 audio in `wav` or `mp3`.
 *
 * @since 0.2.0
 * @category schemas
 */
export class AudioPart extends Schema.Opaque<AudioPart>()(open({
  type: Schema.Literal("input_audio"),
  input_audio: open({
    data: Schema.String,
    format: Schema.Literals(["wav", "mp3"])
  })
})) {}

/**
 * A file content part: an uploaded file's id, or the file's data with its name.
 *
 * @since 0.2.0
 * @category schemas
 */
export class FilePart extends Schema.Opaque<FilePart>()(open({
  type: Schema.Literal("file"),
  file: open({
    filename: Schema.optional(Schema.String),
    file_data: Schema.optional(Schema.String),
    file_id: Schema.optional(Schema.String)
  })
})) {}

/**
 * A refusal content part, in an assistant message sent back as history.
 *
 * @since 0.2.0
 * @category schemas
 */
export class RefusalPart extends Schema.Opaque<RefusalPart>()(open({
  type: Schema.Literal("refusal"),
  refusal: Schema.String
})) {}

/**
 * The content parts a user message may hold.
 *
 * @since 0.2.0
 * @category schemas
 */
export const UserContentPart = Schema.Union([TextPart, ImagePart, AudioPart, FilePart])

/**
 * @since 0.2.0
 * @category models
 */
export type UserContentPart = TextPart | ImagePart | AudioPart | FilePart

/**
 * The content parts an assistant message sent back as history may hold.
 *
 * @since 0.2.0
 * @category schemas
 */
export const AssistantContentPart = Schema.Union([TextPart, RefusalPart])

/**
 * @since 0.2.0
 * @category models
 */
export type AssistantContentPart = TextPart | RefusalPart

const TextContent = Schema.Union([Schema.String, Schema.Array(TextPart)])

// ---------------------------------------------------------------------------------------------
// tool calls (in responses, and in assistant messages sent back as history)
// ---------------------------------------------------------------------------------------------

/**
 * A call of a function tool requested by the model; `arguments` is the JSON text the model wrote.
 * `type` defaults to `"function"` for providers that leave it out.
 *
 * @since 0.1.0
 * @category schemas
 */
export class FunctionToolCall extends Schema.Opaque<FunctionToolCall>()(open({
  id: Schema.String,
  type: Schema.Literal("function").pipe(withDefault("function")),
  function: open({ name: Schema.String, arguments: Schema.String })
})) {}

/**
 * A call of a custom (free-form input) tool requested by the model.
 *
 * @since 0.1.0
 * @category schemas
 */
export class CustomToolCall extends Schema.Opaque<CustomToolCall>()(open({
  id: Schema.String,
  type: Schema.Literal("custom"),
  custom: open({ name: Schema.String, input: Schema.String })
})) {}

/**
 * A tool call requested by the model: a function call (the common case) or a custom tool call;
 * `type` tells them apart.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToolCall = Schema.Union([FunctionToolCall, CustomToolCall])

/**
 * @since 0.1.0
 * @category models
 */
export type ToolCall = FunctionToolCall | CustomToolCall

/**
 * The deprecated single function call of older models (`function_call`), superseded by
 * `tool_calls`.
 *
 * @since 0.2.0
 * @category schemas
 */
export class FunctionCall extends Schema.Opaque<FunctionCall>()(open({
  name: Schema.String,
  arguments: Schema.String
})) {}

// ---------------------------------------------------------------------------------------------
// requests: messages
// ---------------------------------------------------------------------------------------------

/**
 * Instructions from the application (newer models' `system`).
 *
 * @since 0.2.0
 * @category schemas
 */
export class DeveloperMessage extends Schema.Opaque<DeveloperMessage>()(open({
  role: Schema.Literal("developer"),
  content: TextContent,
  name: Schema.optional(Schema.String)
})) {}

/**
 * Instructions from the application.
 *
 * @since 0.2.0
 * @category schemas
 */
export class SystemMessage extends Schema.Opaque<SystemMessage>()(open({
  role: Schema.Literal("system"),
  content: TextContent,
  name: Schema.optional(Schema.String)
})) {}

/**
 * A message from the user: text, or content parts (text, images, audio, files).
 *
 * @since 0.2.0
 * @category schemas
 */
export class UserMessage extends Schema.Opaque<UserMessage>()(open({
  role: Schema.Literal("user"),
  content: Schema.Union([Schema.String, Schema.Array(UserContentPart)]),
  name: Schema.optional(Schema.String)
})) {}

/**
 * An earlier reply of the model, sent back as history. A completion's `AssistantMessage` is one:
 * `[...messages, completion.choices[0].message]` continues a conversation.
 *
 * @since 0.2.0
 * @category schemas
 */
export class AssistantRequestMessage extends Schema.Opaque<AssistantRequestMessage>()(open({
  role: Schema.Literal("assistant"),
  content: Schema.optional(Schema.NullOr(Schema.Union([Schema.String, Schema.Array(AssistantContentPart)]))),
  refusal: Schema.optional(Schema.NullOr(Schema.String)),
  name: Schema.optional(Schema.String),
  audio: Schema.optional(Schema.NullOr(open({ id: Schema.String }))),
  tool_calls: Schema.optional(Schema.NullOr(Schema.Array(ToolCall))),
  function_call: Schema.optional(Schema.NullOr(FunctionCall))
})) {}

/**
 * The result of a tool call, answering the call with id `tool_call_id`.
 *
 * @since 0.2.0
 * @category schemas
 */
export class ToolMessage extends Schema.Opaque<ToolMessage>()(open({
  role: Schema.Literal("tool"),
  content: TextContent,
  tool_call_id: Schema.String
})) {}

/**
 * The result of a deprecated `function_call`.
 *
 * @since 0.2.0
 * @category schemas
 */
export class FunctionMessage extends Schema.Opaque<FunctionMessage>()(open({
  role: Schema.Literal("function"),
  content: Schema.NullOr(Schema.String),
  name: Schema.String
})) {}

/**
 * A message of a request, told apart by `role`: `developer`, `system`, `user`, `assistant`,
 * `tool`, or the deprecated `function`. Each has the fields the OpenAI spec gives it; fields a
 * schema does not name pass through untouched.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatMessage = Schema.Union([
  DeveloperMessage,
  SystemMessage,
  UserMessage,
  AssistantRequestMessage,
  ToolMessage,
  FunctionMessage
])

/**
 * @since 0.1.0
 * @category models
 */
export type ChatMessage =
  | DeveloperMessage
  | SystemMessage
  | UserMessage
  | AssistantRequestMessage
  | ToolMessage
  | FunctionMessage

// ---------------------------------------------------------------------------------------------
// requests: tools, tool choice, response format
// ---------------------------------------------------------------------------------------------

/**
 * A function the model may call. `parameters` is a JSON Schema object; with `strict: true` the
 * model follows it exactly.
 *
 * @since 0.2.0
 * @category schemas
 */
export class FunctionTool extends Schema.Opaque<FunctionTool>()(open({
  type: Schema.Literal("function"),
  function: open({
    name: Schema.String,
    description: Schema.optional(Schema.String),
    parameters: Schema.optional(JsonObject),
    strict: Schema.optional(Schema.NullOr(Schema.Boolean))
  })
})) {}

/**
 * A custom tool: the model calls it with free-form text, unconstrained or following a grammar.
 *
 * @since 0.2.0
 * @category schemas
 */
export class CustomTool extends Schema.Opaque<CustomTool>()(open({
  type: Schema.Literal("custom"),
  custom: open({
    name: Schema.String,
    description: Schema.optional(Schema.String),
    format: Schema.optional(Schema.Union([
      open({ type: Schema.Literal("text") }),
      open({
        type: Schema.Literal("grammar"),
        grammar: open({ definition: Schema.String, syntax: Schema.Literals(["lark", "regex"]) })
      })
    ]))
  })
})) {}

/**
 * A tool the model may call: a function or a custom tool.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Tool = Schema.Union([FunctionTool, CustomTool])

/**
 * @since 0.2.0
 * @category models
 */
export type Tool = FunctionTool | CustomTool

/**
 * Which tool the model calls: a mode (`"none"`, `"auto"`, `"required"`), one named function or
 * custom tool, or a subset of the tools (`allowed_tools`).
 *
 * @since 0.2.0
 * @category schemas
 */
export const ToolChoice = Schema.Union([
  Schema.Literals(["none", "auto", "required"]),
  open({ type: Schema.Literal("function"), function: open({ name: Schema.String }) }),
  open({ type: Schema.Literal("custom"), custom: open({ name: Schema.String }) }),
  open({
    type: Schema.Literal("allowed_tools"),
    allowed_tools: open({ mode: Schema.Literals(["auto", "required"]), tools: Schema.Array(JsonObject) })
  })
])

/**
 * @since 0.2.0
 * @category models
 */
export type ToolChoice = typeof ToolChoice.Type

/**
 * The format of the reply: text (the default), any JSON object, or JSON following a schema.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ResponseFormat = Schema.Union([
  open({ type: Schema.Literal("text") }),
  open({ type: Schema.Literal("json_object") }),
  open({
    type: Schema.Literal("json_schema"),
    json_schema: open({
      name: Schema.String,
      description: Schema.optional(Schema.String),
      schema: Schema.optional(JsonObject),
      strict: Schema.optional(Schema.NullOr(Schema.Boolean))
    })
  })
])

/**
 * @since 0.2.0
 * @category models
 */
export type ResponseFormat = typeof ResponseFormat.Type

// ---------------------------------------------------------------------------------------------
// requests
// ---------------------------------------------------------------------------------------------

const requestOptionFields = {
  // `null` where the OpenAI spec allows it ("use the default"): passed on as it is.
  max_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  max_completion_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  temperature: Schema.optional(Schema.NullOr(Schema.Number)),
  top_p: Schema.optional(Schema.NullOr(Schema.Number)),
  n: Schema.optional(Schema.NullOr(Schema.Number)),
  stop: Schema.optional(Schema.NullOr(Schema.Union([Schema.String, Schema.Array(Schema.String)]))),
  frequency_penalty: Schema.optional(Schema.NullOr(Schema.Number)),
  presence_penalty: Schema.optional(Schema.NullOr(Schema.Number)),
  logprobs: Schema.optional(Schema.NullOr(Schema.Boolean)),
  top_logprobs: Schema.optional(Schema.NullOr(Schema.Number)),
  tools: Schema.optional(Schema.Array(Tool)),
  tool_choice: Schema.optional(ToolChoice),
  parallel_tool_calls: Schema.optional(Schema.Boolean),
  response_format: Schema.optional(ResponseFormat),
  seed: Schema.optional(Schema.NullOr(Schema.Number)),
  user: Schema.optional(Schema.String),
  stream_options: Schema.optional(
    Schema.NullOr(open({
      include_usage: Schema.optional(Schema.Boolean),
      include_obfuscation: Schema.optional(Schema.Boolean)
    }))
  )
}

/**
 * The optional fields of a request, everything but `model` and `messages`, in OpenAI's wire
 * names. Fields this schema does not name (a provider's own extensions, or spec fields such as
 * `reasoning_effort` whose values differ between providers) are kept and sent as they are. What
 * `ChatCompletion.prompt` takes besides the prompt text.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RequestOptions = open(requestOptionFields)

/**
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions extends Schema.Schema.Type<typeof RequestOptions> {}

/**
 * A request before a pattern has chosen its model: what `Fallback.chain`, `Experiment` and
 * `BestOfN` take. Every field of `ChatRequest` but `model`, with the same types; unknown fields
 * pass through to the provider untouched.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PromptRequest = open({ messages: Schema.Array(ChatMessage), ...requestOptionFields })

/**
 * @since 0.1.0
 * @category models
 */
export interface PromptRequest extends Schema.Schema.Type<typeof PromptRequest> {}

/**
 * A chat completion request in OpenAI's wire names, typed after the OpenAI spec: a message's
 * `role` and content parts, `tools`, `tool_choice` and `response_format` are checked, so a typo
 * is a compile error rather than a provider's 400. Unknown fields (a provider's own extensions)
 * are kept and sent as they are, at every level.
 *
 * @example
 * ```ts
 * import type { ChatCompletion } from "@resilient-llm/core"
 *
 * const request: ChatCompletion.ChatRequest = {
 *   model: "gpt-4o",
 *   messages: [
 *     { role: "system", content: "Answer with the city only." },
 *     { role: "user", content: [{ type: "text", text: "Where is the Eiffel Tower?" }] }
 *   ],
 *   response_format: { type: "json_object" },
 *   // a provider's own field, sent as it is
 *   reasoning_effort: "low"
 * }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatRequest = open({ model: Schema.String, messages: Schema.Array(ChatMessage), ...requestOptionFields })

/**
 * @since 0.1.0
 * @category models
 */
export interface ChatRequest extends Schema.Schema.Type<typeof ChatRequest> {}

/**
 * The request for one model: `request` with `model` set (replacing any `model` field it carries
 * among its extra fields). How every pattern turns the prompt it was given into the request it
 * sends.
 *
 * @example
 * ```ts
 * import { ChatCompletion } from "@resilient-llm/core"
 *
 * const request = ChatCompletion.withModel(ChatCompletion.prompt("Hello", { max_tokens: 64 }), "gpt-4o")
 * // { messages: [{ role: "user", content: "Hello" }], max_tokens: 64, model: "gpt-4o" }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const withModel = (request: PromptRequest, model: string): ChatRequest => ({ ...request, model })

// ---------------------------------------------------------------------------------------------
// responses
// ---------------------------------------------------------------------------------------------

/**
 * A token count: a non-negative safe integer. `1e400` (which `JSON.parse` reads as `Infinity`),
 * `-1` and `1.5` are refused.
 *
 * @since 0.2.0
 * @category schemas
 */
export const TokenCount = Schema.Natural

const optionalCount = optionalNullable(TokenCount)

/**
 * The breakdown of `prompt_tokens`. `cached_tokens` were read from the provider's prompt cache
 * (usually billed at a discount); absent or `null` when the provider did not report them.
 *
 * @since 0.2.0
 * @category schemas
 */
export class PromptTokensDetails extends Schema.Opaque<PromptTokensDetails>()(open({
  cached_tokens: optionalCount,
  cache_write_tokens: optionalCount,
  audio_tokens: optionalCount,
  text_tokens: optionalCount,
  image_tokens: optionalCount
})) {}

/**
 * The breakdown of `completion_tokens`. `reasoning_tokens` were spent on the model's hidden
 * reasoning: billed as output and already counted in `completion_tokens`. Absent or `null` when
 * the provider did not report them.
 *
 * @since 0.2.0
 * @category schemas
 */
export class CompletionTokensDetails extends Schema.Opaque<CompletionTokensDetails>()(open({
  reasoning_tokens: optionalCount,
  audio_tokens: optionalCount,
  text_tokens: optionalCount,
  accepted_prediction_tokens: optionalCount,
  rejected_prediction_tokens: optionalCount
})) {}

/**
 * Token usage. Every count is a non-negative integer (anything else fails decoding). Some
 * providers leave out `total_tokens`; it is then the sum of the other two. The details, when
 * reported, break the counts down: cached prompt tokens, reasoning tokens.
 *
 * @example
 * ```ts
 * import type { ChatCompletion } from "@resilient-llm/core"
 *
 * // prompt tokens read from the provider's cache, 0 when it did not say
 * const cached = (usage: ChatCompletion.Usage): number => usage.prompt_tokens_details?.cached_tokens ?? 0
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export class Usage extends Schema.Opaque<Usage>()(open({
  prompt_tokens: TokenCount,
  completion_tokens: TokenCount,
  total_tokens: optionalCount,
  prompt_tokens_details: optionalNullable(PromptTokensDetails),
  completion_tokens_details: optionalNullable(CompletionTokensDetails)
})) {}

/**
 * One of the most likely tokens at a position, with its log probability.
 *
 * @since 0.2.0
 * @category schemas
 */
export class TopLogprob extends Schema.Opaque<TopLogprob>()(open({
  token: Schema.String,
  logprob: Schema.Number,
  bytes: optionalNullable(Schema.Array(Schema.Int))
})) {}

/**
 * A token of the reply with its log probability, its UTF-8 bytes, and the most likely tokens at
 * its position (as many as the request's `top_logprobs`).
 *
 * @since 0.2.0
 * @category schemas
 */
export class TokenLogprob extends Schema.Opaque<TokenLogprob>()(open({
  token: Schema.String,
  logprob: Schema.Number,
  bytes: optionalNullable(Schema.Array(Schema.Int)),
  top_logprobs: optionalNullable(Schema.Array(TopLogprob))
})) {}

/**
 * The log probabilities of a choice's tokens (requested with `logprobs: true`), for its content
 * and its refusal.
 *
 * @since 0.2.0
 * @category schemas
 */
export class ChoiceLogprobs extends Schema.Opaque<ChoiceLogprobs>()(open({
  content: optionalNullable(Schema.Array(TokenLogprob)),
  refusal: optionalNullable(Schema.Array(TokenLogprob))
})) {}

/**
 * A URL the reply cites (web search), with the span of the content that cites it.
 *
 * @since 0.2.0
 * @category schemas
 */
export class UrlCitation extends Schema.Opaque<UrlCitation>()(open({
  type: Schema.Literal("url_citation"),
  url_citation: open({
    url: Schema.String,
    title: Schema.optional(Schema.String),
    start_index: Schema.optional(Schema.Int),
    end_index: Schema.optional(Schema.Int)
  })
})) {}

/**
 * An annotation of another kind than the spec's URL citation (a provider's own, such as a parsed
 * file), kept as it came.
 *
 * @since 0.2.0
 * @category schemas
 */
export class OtherAnnotation extends Schema.Opaque<OtherAnnotation>()(open({
  type: Schema.String.check(
    Schema.makeFilter((type) => type !== "url_citation", { expected: "a type other than url_citation" })
  )
})) {}

/**
 * An annotation of a reply: a URL citation, or another kind kept as it came. A malformed URL
 * citation fails decoding; it is never kept as another kind. Tell them apart with
 * `isUrlCitation`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Annotation = Schema.Union([UrlCitation, OtherAnnotation])

/**
 * @since 0.2.0
 * @category models
 */
export type Annotation = UrlCitation | OtherAnnotation

/**
 * Whether an annotation is a URL citation.
 *
 * @example
 * ```ts
 * import { ChatCompletion } from "@resilient-llm/core"
 *
 * const sources = (completion: ChatCompletion.ChatCompletion): ReadonlyArray<string> =>
 *   (completion.choices[0].message.annotations ?? [])
 *     .filter(ChatCompletion.isUrlCitation)
 *     .map((annotation) => annotation.url_citation.url)
 * ```
 *
 * @since 0.2.0
 * @category guards
 */
export const isUrlCitation = (annotation: Annotation): annotation is UrlCitation => annotation.type === "url_citation"

/**
 * The audio of a reply (requested with `modalities: ["text", "audio"]`): base64 `data`, its
 * `transcript`, and the `id` that refers to it in a later turn until `expires_at` (Unix seconds).
 *
 * @since 0.2.0
 * @category schemas
 */
export class ReplyAudio extends Schema.Opaque<ReplyAudio>()(open({
  id: Schema.String,
  expires_at: Schema.Finite,
  data: Schema.String,
  transcript: Schema.String
})) {}

/**
 * The message of a choice. A reply with only tool calls, or a refusal, has `content: null`.
 * Besides the spec's fields, a provider's own are kept as they came: reasoning models' text is
 * `reasoning_content` (DeepSeek, vLLM, Qwen) or `reasoning` (OpenRouter, Groq); read either with
 * `ChatCompletion.reasoning`.
 *
 * @since 0.1.0
 * @category schemas
 */
export class AssistantMessage extends Schema.Opaque<AssistantMessage>()(open({
  role: Schema.Literal("assistant").pipe(withDefault("assistant")),
  content: Schema.NullOr(Schema.String).pipe(withDefault(null)),
  refusal: optionalNullable(Schema.String),
  tool_calls: optionalNullable(Schema.Array(ToolCall)),
  annotations: optionalNullable(Schema.Array(Annotation)),
  audio: optionalNullable(ReplyAudio),
  function_call: optionalNullable(FunctionCall)
})) {}

/**
 * One choice of a completion: its message, why generation stopped (`"stop"`, `"length"`,
 * `"tool_calls"`, `"content_filter"`, or a provider's own reason), and the tokens' log
 * probabilities when requested.
 *
 * @since 0.1.0
 * @category schemas
 */
export class Choice extends Schema.Opaque<Choice>()(open({
  index: Schema.Int.pipe(withDefault(0)),
  message: AssistantMessage,
  finish_reason: Schema.NullOr(Schema.String).pipe(withDefault(null)),
  logprobs: optionalNullable(ChoiceLogprobs)
})) {}

/**
 * A completion. At least one choice is required: a body without `choices`, or with an empty
 * list, is a decode failure, never an empty success. `created` is in Unix seconds;
 * `service_tier` says which tier served the request (it may differ from the one asked for).
 *
 * @since 0.1.0
 * @category schemas
 */
export class ChatCompletion extends Schema.Opaque<ChatCompletion>()(open({
  id: Schema.String.pipe(withDefault("")),
  object: optionalNullable(Schema.String),
  created: optionalNullable(Schema.Finite),
  model: Schema.String,
  choices: Schema.NonEmptyArray(Choice),
  usage: optionalNullable(Usage),
  system_fingerprint: optionalNullable(Schema.String),
  service_tier: optionalNullable(Schema.String)
})) {}

// ---------------------------------------------------------------------------------------------
// stream chunks
// ---------------------------------------------------------------------------------------------

/**
 * The partial tool call of a streamed delta; only `index` is always present.
 *
 * @since 0.1.0
 * @category schemas
 */
export class ToolCallDelta extends Schema.Opaque<ToolCallDelta>()(open({
  index: Schema.Int,
  id: optionalNullable(Schema.String),
  type: optionalNullable(Schema.String),
  function: optionalNullable(open({
    name: optionalNullable(Schema.String),
    arguments: optionalNullable(Schema.String)
  }))
})) {}

/**
 * What a chunk adds to a choice's message. A provider's own fields (`reasoning_content`) are kept
 * as they came.
 *
 * @since 0.2.0
 * @category schemas
 */
export class ChunkDelta extends Schema.Opaque<ChunkDelta>()(open({
  role: optionalNullable(Schema.Literals(["developer", "system", "user", "assistant", "tool"])),
  content: optionalNullable(Schema.String),
  refusal: optionalNullable(Schema.String),
  tool_calls: optionalNullable(Schema.Array(ToolCallDelta)),
  function_call: optionalNullable(open({
    name: optionalNullable(Schema.String),
    arguments: optionalNullable(Schema.String)
  }))
})) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export class ChunkChoice extends Schema.Opaque<ChunkChoice>()(open({
  index: Schema.Int.pipe(withDefault(0)),
  delta: ChunkDelta,
  finish_reason: Schema.NullOr(Schema.String).pipe(withDefault(null)),
  logprobs: optionalNullable(ChoiceLogprobs)
})) {}

/**
 * One streamed delta. The last chunk of a stream requested with `include_usage` has no choices
 * and carries `usage`.
 *
 * @since 0.1.0
 * @category schemas
 */
export class ChatCompletionChunk extends Schema.Opaque<ChatCompletionChunk>()(open({
  id: Schema.String.pipe(withDefault("")),
  object: optionalNullable(Schema.String),
  created: optionalNullable(Schema.Finite),
  model: Schema.String.pipe(withDefault("")),
  choices: Schema.Array(ChunkChoice),
  usage: optionalNullable(Usage),
  system_fingerprint: optionalNullable(Schema.String),
  service_tier: optionalNullable(Schema.String)
})) {}

// ---------------------------------------------------------------------------------------------
// accessors and constructors
// ---------------------------------------------------------------------------------------------

/**
 * The first choice's content, `""` when it is null (a tool call or a refusal).
 *
 * @since 0.1.0
 * @category accessors
 */
export const text = (completion: ChatCompletion): string => completion.choices[0].message.content ?? ""

/**
 * The content of a chunk's first choice, `""` when it has none.
 *
 * @since 0.1.0
 * @category accessors
 */
export const chunkText = (chunk: ChatCompletionChunk): string => chunk.choices[0]?.delta.content ?? ""

const reasoningOf = (message: { readonly [key: string]: unknown }): Option.Option<string> =>
  typeof message.reasoning_content === "string"
    ? Option.some(message.reasoning_content)
    : typeof message.reasoning === "string"
    ? Option.some(message.reasoning)
    : Option.none()

/**
 * The first choice's reasoning text, when a reasoning model sent it: the `reasoning_content`
 * field (DeepSeek, vLLM, Qwen) or `reasoning` (OpenRouter, Groq). Neither is in the OpenAI spec;
 * both are kept on the message as they came.
 *
 * @since 0.2.0
 * @category accessors
 */
export const reasoning = (completion: ChatCompletion): Option.Option<string> =>
  reasoningOf(completion.choices[0].message)

/**
 * The reasoning text a chunk's first choice adds, `""` when it adds none.
 *
 * @since 0.2.0
 * @category accessors
 */
export const chunkReasoning = (chunk: ChatCompletionChunk): string => {
  const delta = chunk.choices[0]?.delta
  return delta === undefined ? "" : Option.getOrElse(reasoningOf(delta), () => "")
}

/**
 * Whether a value is a token count: a non-negative safe integer. Decoding refuses any other
 * count; a usage built by hand may still carry one (`Infinity`, `-1`, `NaN`), so code that adds
 * counts up (metrics, summaries, budgets) checks them with this first.
 *
 * @since 0.2.0
 * @category guards
 */
export const isTokenCount = (value: unknown): value is number =>
  Predicate.isNumber(value) && Number.isSafeInteger(value) && value >= 0

/**
 * Prompt and completion tokens of a completion, when the provider reported them.
 *
 * @since 0.1.0
 * @category accessors
 */
export const tokens = (
  completion: { readonly usage?: Usage | null | undefined }
): Option.Option<{ readonly input: number; readonly output: number }> =>
  completion.usage ?
    Option.some({ input: completion.usage.prompt_tokens, output: completion.usage.completion_tokens }) :
    Option.none()

/**
 * Builds a completion with one assistant message, for test layers and fakes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly model: string
  readonly content: string | null
  readonly id?: string
  readonly finishReason?: string
  readonly usage?: Usage
}): ChatCompletion => ({
  id: options.id ?? "chatcmpl-local",
  model: options.model,
  choices: [{
    index: 0,
    message: { role: "assistant", content: options.content },
    finish_reason: options.finishReason ?? "stop"
  }],
  ...(options.usage ? { usage: options.usage } : {})
})

/**
 * A request with one user message, and the other fields of `options`.
 *
 * @example
 * ```ts
 * import { ChatCompletion } from "@resilient-llm/core"
 *
 * const request = ChatCompletion.prompt("Name a prime.", { temperature: 0, max_tokens: 16 })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const prompt = (content: string, options?: RequestOptions): PromptRequest => ({
  ...options,
  messages: [{ role: "user", content }]
})

// ---------------------------------------------------------------------------------------------
// codecs
// ---------------------------------------------------------------------------------------------

/**
 * Decodes an unknown value (a parsed JSON body) as a completion, keeping every field it carries.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeCompletion = Schema.decodeUnknownEffect(ChatCompletion)

/**
 * Decodes an unknown value (a parsed SSE `data:` payload) as a chunk, keeping every field it
 * carries.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeChunk = Schema.decodeUnknownEffect(ChatCompletionChunk)

/**
 * Encodes a completion as JSON-ready data: the fields it was decoded from, the ones a provider
 * added included.
 *
 * @since 0.2.0
 * @category encoding
 */
export const encodeCompletion = Schema.encodeEffect(ChatCompletion)

/**
 * Encodes a request for the wire, keeping the fields this schema does not name.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeRequest = Schema.encodeEffect(ChatRequest)
