/**
 * The data that crosses the wire: a chat request, the completion a provider returns, and the
 * chunks of a streamed completion, in OpenAI's wire names. The schemas are the single source of
 * truth for encoding requests and decoding responses; decoding tolerates what providers differ in
 * (no `usage`, `content: null`, extra fields, no `object` or `created`) and fails on what would
 * break a caller (a completion without `choices`).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

// The index signature that keeps the fields a schema does not name, so a provider's own
// extensions reach it untouched.
const Extra = [Schema.Record(Schema.String, Schema.Unknown)] as const

const withDefault = <S extends Schema.Top>(value: S["Encoded"]) => Schema.withDecodingDefault<S>(Effect.succeed(value))

/**
 * A message of a request. `content` is a string or an array of content parts (text, images),
 * passed to the provider as given; fields this schema does not name pass through untouched.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatMessage = Schema.StructWithRest(
  Schema.Struct({
    role: Schema.String,
    content: Schema.optional(Schema.NullOr(Schema.Union([Schema.String, Schema.Array(Schema.Unknown)]))),
    name: Schema.optional(Schema.String),
    tool_call_id: Schema.optional(Schema.String),
    tool_calls: Schema.optional(Schema.Array(Schema.Unknown))
  }),
  Extra
)

/**
 * A message of a request, as decoded by the `ChatMessage` schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChatMessage extends Schema.Schema.Type<typeof ChatMessage> {}

const requestOptionFields = {
  // `null` where the OpenAI spec allows it ("use the default"): passed on as it is.
  max_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
  temperature: Schema.optional(Schema.NullOr(Schema.Number)),
  top_p: Schema.optional(Schema.NullOr(Schema.Number)),
  stop: Schema.optional(Schema.NullOr(Schema.Union([Schema.String, Schema.Array(Schema.String)]))),
  tools: Schema.optional(Schema.Array(Schema.Unknown)),
  tool_choice: Schema.optional(Schema.Unknown),
  response_format: Schema.optional(Schema.Unknown),
  seed: Schema.optional(Schema.NullOr(Schema.Number)),
  user: Schema.optional(Schema.String),
  stream_options: Schema.optional(
    Schema.NullOr(Schema.StructWithRest(Schema.Struct({ include_usage: Schema.optional(Schema.Boolean) }), Extra))
  )
}

/**
 * The optional fields of a request, everything but `model` and `messages`, in OpenAI's wire
 * names. Fields this schema does not name (a provider's own extensions) are kept and sent as they
 * are. What `ChatCompletion.prompt` takes besides the prompt text.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RequestOptions = Schema.StructWithRest(Schema.Struct(requestOptionFields), Extra)

/**
 * The optional fields of a request, as decoded by the `RequestOptions` schema.
 *
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
export const PromptRequest = Schema.StructWithRest(
  Schema.Struct({ messages: Schema.Array(ChatMessage), ...requestOptionFields }),
  Extra
)

/**
 * A request without its model, as decoded by the `PromptRequest` schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface PromptRequest extends Schema.Schema.Type<typeof PromptRequest> {}

/**
 * A chat completion request in OpenAI's wire names. Unknown fields (a provider's own extensions)
 * are kept and sent as they are.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatRequest = Schema.StructWithRest(
  Schema.Struct({ model: Schema.String, ...PromptRequest.schema.fields }),
  Extra
)

/**
 * A chat completion request, as decoded by the `ChatRequest` schema.
 *
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

/**
 * A call of a function tool requested by the model; `arguments` is the JSON text the model wrote.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FunctionToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.String.pipe(withDefault("function")),
  function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
})

/**
 * A call of a custom (free-form input) tool requested by the model.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CustomToolCall = Schema.Struct({
  id: Schema.String,
  type: Schema.Literal("custom"),
  custom: Schema.Struct({ name: Schema.String, input: Schema.String })
})

/**
 * A tool call requested by the model: a function call (the common case; `type` defaults to
 * `"function"` for providers that leave it out) or a custom tool call.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToolCall = Schema.Union([FunctionToolCall, CustomToolCall])

/**
 * A function tool call, as decoded by the `FunctionToolCall` schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface FunctionToolCall extends Schema.Schema.Type<typeof FunctionToolCall> {}

/**
 * A custom tool call, as decoded by the `CustomToolCall` schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface CustomToolCall extends Schema.Schema.Type<typeof CustomToolCall> {}

/**
 * A tool call requested by the model: a function call or a custom tool call.
 *
 * @since 0.1.0
 * @category models
 */
export type ToolCall = FunctionToolCall | CustomToolCall

/**
 * Token usage. Some providers leave out `total_tokens`; it is then the sum of the other two.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Usage = Schema.Struct({
  prompt_tokens: Schema.Number,
  completion_tokens: Schema.Number,
  total_tokens: Schema.optional(Schema.Number)
})

/**
 * Token usage, as decoded by the `Usage` schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface Usage extends Schema.Schema.Type<typeof Usage> {}

/**
 * The message of a choice. A reply with only tool calls, or a refusal, has `content: null`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AssistantMessage = Schema.Struct({
  role: Schema.String.pipe(withDefault("assistant")),
  content: Schema.NullOr(Schema.String).pipe(withDefault(null)),
  tool_calls: Schema.optional(Schema.Array(ToolCall)),
  refusal: Schema.optional(Schema.NullOr(Schema.String))
})

/**
 * The message of a choice, as decoded by the `AssistantMessage` schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface AssistantMessage extends Schema.Schema.Type<typeof AssistantMessage> {}

/**
 * One answer of a completion: its index, the assistant's message and why generation stopped
 * (`finish_reason`: `"stop"`, `"length"`, `"tool_calls"`, `"content_filter"`, or `null` when the
 * provider leaves it out).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Choice = Schema.Struct({
  index: Schema.Number.pipe(withDefault(0)),
  message: AssistantMessage,
  finish_reason: Schema.NullOr(Schema.String).pipe(withDefault(null))
})

/**
 * One answer of a completion, as decoded by the `Choice` schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface Choice extends Schema.Schema.Type<typeof Choice> {}

/**
 * A completion. At least one choice is required: a body without `choices` is a decode failure,
 * never an empty success.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatCompletion = Schema.Struct({
  id: Schema.String.pipe(withDefault("")),
  model: Schema.String,
  choices: Schema.NonEmptyArray(Choice),
  usage: Schema.optional(Schema.NullOr(Usage))
})

/**
 * A completion, as decoded by the `ChatCompletion` schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChatCompletion extends Schema.Schema.Type<typeof ChatCompletion> {}

/**
 * The partial tool call of a streamed delta; only `index` is always present.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ToolCallDelta = Schema.Struct({
  index: Schema.Number,
  id: Schema.optional(Schema.String),
  type: Schema.optional(Schema.String),
  function: Schema.optional(Schema.Struct({
    name: Schema.optional(Schema.String),
    arguments: Schema.optional(Schema.String)
  }))
})

/**
 * One choice of a streamed chunk: the part of the message it adds (`delta`) and, in its last
 * chunk, why generation stopped.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChunkChoice = Schema.Struct({
  index: Schema.Number.pipe(withDefault(0)),
  delta: Schema.Struct({
    role: Schema.optional(Schema.String),
    content: Schema.optional(Schema.NullOr(Schema.String)),
    tool_calls: Schema.optional(Schema.Array(ToolCallDelta)),
    refusal: Schema.optional(Schema.NullOr(Schema.String))
  }),
  finish_reason: Schema.NullOr(Schema.String).pipe(withDefault(null))
})

/**
 * One streamed delta. The last chunk of a stream requested with `include_usage` has no choices
 * and carries `usage`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ChatCompletionChunk = Schema.Struct({
  id: Schema.String.pipe(withDefault("")),
  model: Schema.String.pipe(withDefault("")),
  choices: Schema.Array(ChunkChoice),
  usage: Schema.optional(Schema.NullOr(Usage))
})

/**
 * One streamed delta, as decoded by the `ChatCompletionChunk` schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChatCompletionChunk extends Schema.Schema.Type<typeof ChatCompletionChunk> {}

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

/**
 * Decodes an unknown value (a parsed JSON body) as a completion.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeCompletion = Schema.decodeUnknownEffect(ChatCompletion)

/**
 * Decodes an unknown value (a parsed SSE `data:` payload) as a chunk.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeChunk = Schema.decodeUnknownEffect(ChatCompletionChunk)

/**
 * Encodes a request for the wire, keeping the fields this schema does not name.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeRequest = Schema.encodeEffect(ChatRequest)
