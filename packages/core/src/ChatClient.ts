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
 * @since 0.1.0
 * @category services
 */
export class ChatClient extends Context.Service<ChatClient, Service>()("@resilient-llm/core/ChatClient") {}

/**
 * Asks the `ChatClient` in context for a completion.
 *
 * @since 0.1.0
 * @category accessors
 */
export const create = (request: ChatRequest): Effect.Effect<ChatCompletion, LlmError, ChatClient> =>
  Effect.flatMap(ChatClient, (client) => client.create(request))

/**
 * Asks the `ChatClient` in context for a streamed completion.
 *
 * @since 0.1.0
 * @category accessors
 */
export const stream = (request: ChatRequest): Stream.Stream<ChatCompletionChunk, LlmError, ChatClient> =>
  Stream.unwrap(Effect.map(ChatClient, (client) => client.stream(request)))
