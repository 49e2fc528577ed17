/**
 * What the fake puts on the wire: completions, SSE chunks and OpenAI error bodies, shaped as
 * OpenAI's own (see the `CreateChatCompletionResponse`, `CreateChatCompletionStreamResponse` and
 * `Error` schemas of the OpenAPI spec).
 *
 * @internal
 */
import type * as ChatCompletion from "@resilient-llm/core/ChatCompletion"

/** @internal */
export interface ErrorFields {
  readonly status: number
  readonly message: string
  readonly type: string
  readonly param: string | null
  readonly code: string | null
}

/** @internal */
export const errorBody = (fields: ErrorFields): string =>
  JSON.stringify({
    error: { message: fields.message, type: fields.type, param: fields.param, code: fields.code }
  })

const serverErrorMessages: Readonly<Record<number, readonly [message: string, type: string]>> = {
  500: ["The server had an error while processing your request. Sorry about that!", "server_error"],
  502: ["Bad gateway.", "server_error"],
  503: ["The server is overloaded or not ready yet.", "server_error"],
  504: ["Gateway timeout.", "server_error"],
  529: ["Overloaded.", "overloaded_error"]
}

/** @internal */
export const serverError = (status: number, message: string | undefined): ErrorFields => {
  const [preset, type] = serverErrorMessages[status] ?? ["The server had an error.", "server_error"]
  return { status, message: message ?? preset, type, param: null, code: null }
}

/** @internal */
export const rateLimited = (model: string): ErrorFields => ({
  status: 429,
  message: `Rate limit reached for ${model} on requests per min (RPM). Please try again later.`,
  type: "requests",
  param: null,
  code: "rate_limit_exceeded"
})

/** @internal */
export const authentication = (status: 401 | 403): ErrorFields =>
  status === 401
    ? {
      status,
      message: "Incorrect API key provided.",
      type: "invalid_request_error",
      param: null,
      code: "invalid_api_key"
    }
    : {
      status,
      message: "You are not allowed to make this request.",
      type: "request_forbidden",
      param: null,
      code: "forbidden"
    }

/** @internal */
export const missingApiKey: ErrorFields = {
  status: 401,
  message: "You didn't provide an API key. Send it in an Authorization header as Bearer auth.",
  type: "invalid_request_error",
  param: null,
  code: null
}

/** @internal */
export const contextLengthExceeded = (tokens: number): ErrorFields => ({
  status: 400,
  message: `This model's maximum context length is 8192 tokens. However, your messages resulted in ${
    Math.max(8193, tokens)
  } tokens. Please reduce the length of the messages.`,
  type: "invalid_request_error",
  param: "messages",
  code: "context_length_exceeded"
})

/** @internal */
export const contentFilter: ErrorFields = {
  status: 400,
  message: "The response was filtered due to the prompt triggering the content management policy. " +
    "Please modify your prompt and retry.",
  type: "invalid_request_error",
  param: "prompt",
  code: "content_filter"
}

/** @internal */
export const modelNotFound = (model: string): ErrorFields => ({
  status: 404,
  message: `The model \`${model}\` does not exist or you do not have access to it.`,
  type: "invalid_request_error",
  param: null,
  code: "model_not_found"
})

/** @internal */
export const invalidJson: ErrorFields = {
  status: 400,
  message: "We could not parse the JSON body of your request.",
  type: "invalid_request_error",
  param: null,
  code: null
}

/** @internal */
export const invalidRequest = (message: string): ErrorFields => ({
  status: 400,
  message,
  type: "invalid_request_error",
  param: null,
  code: null
})

/** @internal */
export const invalidUrl = (method: string, url: string): ErrorFields => ({
  status: 404,
  message: `Invalid URL (${method} ${url})`,
  type: "invalid_request_error",
  param: null,
  code: null
})

/** @internal */
export const fakeFailure = (detail: string): ErrorFields => ({
  status: 500,
  message: `FakeProvider: ${detail}`,
  type: "fake_provider_error",
  param: null,
  code: null
})

// ---------------------------------------------------------------------------------------------
// completions
// ---------------------------------------------------------------------------------------------

/** @internal */
export interface Answer {
  readonly id: string
  readonly created: number
  readonly model: string
  /** `null` for a refusal. */
  readonly content: string | null
  readonly finishReason: string
  readonly usage: ChatCompletion.Usage | undefined
}

const fullUsage = (usage: ChatCompletion.Usage) => ({
  prompt_tokens: usage.prompt_tokens,
  completion_tokens: usage.completion_tokens,
  total_tokens: usage.total_tokens ?? usage.prompt_tokens + usage.completion_tokens
})

/** @internal */
export const completion = (answer: Answer): Record<string, unknown> => ({
  id: answer.id,
  object: "chat.completion",
  created: answer.created,
  model: answer.model,
  system_fingerprint: "fp_fake",
  choices: [{
    index: 0,
    message: {
      role: "assistant",
      content: answer.content,
      refusal: answer.content === null ? "I can't help with that." : null,
      annotations: []
    },
    logprobs: null,
    finish_reason: answer.finishReason
  }],
  ...(answer.usage === undefined ? {} : { usage: fullUsage(answer.usage) })
})

/**
 * A completion without `choices`: valid JSON that breaks a caller.
 *
 * @internal
 */
export const wrongShape = (answer: Answer): Record<string, unknown> => ({
  id: answer.id,
  object: "chat.completion",
  created: answer.created,
  model: answer.model
})

/**
 * Not JSON: the completion with a broken tail.
 *
 * @internal
 */
export const malformed = (json: string): string => `${json.slice(0, -1)},,}`

// ---------------------------------------------------------------------------------------------
// streams
// ---------------------------------------------------------------------------------------------

/**
 * Splits a reply into the pieces streamed one per chunk.
 *
 * @internal
 */
export const pieces = (content: string, chunkSize: "word" | number): ReadonlyArray<string> => {
  if (chunkSize === "word") return content.split(/(?<=\s)/).filter((piece) => piece.length > 0)
  const points = Array.from(content)
  const out: Array<string> = []
  for (let i = 0; i < points.length; i += chunkSize) out.push(points.slice(i, i + chunkSize).join(""))
  return out
}

/**
 * The chunks of a streamed answer, in OpenAI's order: the role, one chunk per piece, the finish
 * reason, and with `includeUsage` a last chunk with no choices and the usage (the others then
 * carry `usage: null`).
 *
 * @internal
 */
export const chunks = (
  answer: Answer,
  contentPieces: ReadonlyArray<string>,
  includeUsage: boolean
): ReadonlyArray<Record<string, unknown>> => {
  const withUsage = includeUsage && answer.usage !== undefined
  const chunk = (choices: ReadonlyArray<unknown>) => ({
    id: answer.id,
    object: "chat.completion.chunk",
    created: answer.created,
    model: answer.model,
    system_fingerprint: "fp_fake",
    choices,
    ...(withUsage ? { usage: null } : {})
  })
  const delta = (d: Record<string, unknown>, finishReason: string | null) => ({
    index: 0,
    delta: d,
    logprobs: null,
    finish_reason: finishReason
  })
  const out: Array<Record<string, unknown>> = [
    chunk([delta({ role: "assistant", content: "", refusal: null }, null)]),
    ...contentPieces.map((piece) => chunk([delta({ content: piece }, null)])),
    chunk([delta({}, answer.finishReason)])
  ]
  if (withUsage && answer.usage !== undefined) out.push({ ...chunk([]), usage: fullUsage(answer.usage) })
  return out
}

/**
 * Chunks without `choices`.
 *
 * @internal
 */
export const wrongShapeChunk = (answer: Answer): Record<string, unknown> => ({
  id: answer.id,
  object: "chat.completion.chunk",
  created: answer.created,
  model: answer.model
})

/**
 * One SSE event carrying `data`.
 *
 * @internal
 */
export const event = (data: string): string => `data: ${data}\n\n`

/**
 * The event that ends an OpenAI stream.
 *
 * @internal
 */
export const done: string = event("[DONE]")

// ---------------------------------------------------------------------------------------------
// usage
// ---------------------------------------------------------------------------------------------

const words = (text: string): number => text.split(/\s+/).filter((w) => w.length > 0).length

const messageWords = (message: ChatCompletion.ChatMessage): number => {
  const content = message.content
  if (typeof content === "string") return words(content)
  if (!Array.isArray(content)) return 0
  let n = 0
  for (const part of content) {
    if (typeof part === "object" && part !== null && "text" in part && typeof part.text === "string") {
      n += words(part.text)
    }
  }
  return n
}

/**
 * The default usage: prompt words (at least 1) and answer words, a stand-in for tokens.
 *
 * @internal
 */
export const defaultUsage = (request: ChatCompletion.ChatRequest, reply: string): ChatCompletion.Usage => {
  const prompt = Math.max(1, request.messages.reduce((n, message) => n + messageWords(message), 0))
  const completion = words(reply)
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
}

/**
 * The models list of `GET /v1/models`.
 *
 * @internal
 */
export const modelObject = (id: string, created: number): Record<string, unknown> => ({
  id,
  object: "model",
  created,
  owned_by: "fake-provider"
})
