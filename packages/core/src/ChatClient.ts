/**
 * The one service every pattern calls: create a completion, or stream one, for a named model.
 * Supply it with a Layer: `OpenAiCompatible.layer` over HTTP, `Providers.layer` over several
 * endpoints, or `TestChatClient.layer` from a script. Interrupting `create` aborts the request.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { ChatCompletion, ChatCompletionChunk, ChatRequest } from "./ChatCompletion.js"
import type { LlmError } from "./LlmError.js"

/**
 * What a `ChatClient` does: send one request to the model it names, as a whole completion or as
 * a stream of chunks. Every failure is an `LlmError` in the error channel, classified so that the
 * patterns know whether to retry or fall back; interrupting either aborts the request.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** Asks `request.model` for a completion. */
  readonly create: (request: ChatRequest) => Effect.Effect<ChatCompletion, LlmError>
  /** Asks `request.model` for a streamed completion, one chunk per server-sent event. */
  readonly stream: (request: ChatRequest) => Stream.Stream<ChatCompletionChunk, LlmError>
}

/**
 * The service tag of the client the patterns call. Provide it with a Layer: `OpenAiCompatible.layer`
 * or `Providers.layer` (from `@resilient-llm/openai`) over HTTP, `TestChatClient.layer` (from
 * `@resilient-llm/testing`) from a script, or `Layer.succeed(ChatClient, ...)` for anything else.
 *
 * @example
 * ```ts
 * import { ChatClient, ChatCompletion } from "@resilient-llm/core"
 * import { Effect, Layer, Stream } from "effect"
 *
 * // a client of your own: every model echoes the last message, whole or as one chunk
 * const echo = (request: ChatCompletion.ChatRequest) => String(request.messages.at(-1)?.content)
 * const Echo = Layer.succeed(ChatClient.ChatClient, {
 *   create: (request) => Effect.succeed(ChatCompletion.make({ model: request.model, content: echo(request) })),
 *   stream: (request) =>
 *     Stream.make({
 *       id: "echo",
 *       model: request.model,
 *       choices: [{ index: 0, delta: { content: echo(request) }, finish_reason: "stop" }]
 *     })
 * })
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class ChatClient extends Context.Service<ChatClient, Service>()("@resilient-llm/core/ChatClient") {}

/**
 * Asks the `ChatClient` in context for a completion.
 *
 * @example
 * ```ts
 * import { ChatClient, ChatCompletion } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const answer = ChatClient.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello!" }] }).pipe(
 *   Effect.map(ChatCompletion.text)
 * ) // Effect<string, LlmError, ChatClient>
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const create = (request: ChatRequest): Effect.Effect<ChatCompletion, LlmError, ChatClient> =>
  Effect.flatMap(ChatClient, (client) => client.create(request))

/**
 * Asks the `ChatClient` in context for a streamed completion: one chunk per server-sent event, up
 * to the provider's `[DONE]`.
 *
 * @example
 * ```ts
 * import { ChatClient, ChatCompletion } from "@resilient-llm/core"
 * import { Stream } from "effect"
 *
 * const words = ChatClient.stream({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Count to 3" }] }).pipe(
 *   Stream.map(ChatCompletion.chunkText),
 *   Stream.mkString
 * ) // Effect<string, LlmError, ChatClient>
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const stream = (request: ChatRequest): Stream.Stream<ChatCompletionChunk, LlmError, ChatClient> =>
  Stream.unwrap(Effect.map(ChatClient, (client) => client.stream(request)))
