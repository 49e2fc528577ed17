/**
 * What the HTTP tests share: a `FakeProvider` whose received requests are checked against the
 * OpenAI spec when its scope closes, and our client pointed at it over undici.
 *
 * Run these tests live (`it.live`): the fake's latencies are real sleeps.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type { ChatClient, ChatCompletion } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { FakeProvider } from "@resilient-llm/testing"
import type { Scope } from "effect"
import { Effect, Layer, Redacted, Schedule } from "effect"
import { expectConformingRequests } from "../conformance/RequestConformance.js"

/**
 * Starts a `FakeProvider` for the current scope. Before the server stops, every chat request it
 * recorded is validated against the spec's `CreateChatCompletionRequest`: a test whose client sent
 * a non-conforming body fails, whatever else it asserted.
 */
export const start = (config: FakeProvider.Config): Effect.Effect<FakeProvider.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const fake = yield* Effect.orDie(FakeProvider.make(config))
    yield* Effect.addFinalizer(() => Effect.asVoid(expectConformingRequests(fake)))
    return fake
  })

/** Our client over undici (keep-alive connections), pointed at `baseUrl`. */
export const client = (
  baseUrl: string,
  options?: { readonly apiKey?: string }
): Layer.Layer<ChatClient.ChatClient> =>
  OpenAiCompatible.layer({
    baseUrl,
    ...(options?.apiKey === undefined ? {} : { apiKey: Redacted.make(options.apiKey) })
  }).pipe(Layer.provide(NodeHttpClient.layerUndici))

/** A request with one user message. */
export const request = (model: string, content = "Say hello"): ChatCompletion.ChatRequest => ({
  model,
  messages: [{ role: "user", content }]
})

/** Polls `effect` until `predicate` holds (sockets close asynchronously); dies after 5 s. */
export const eventually = <A>(effect: Effect.Effect<A>, predicate: (a: A) => boolean): Effect.Effect<A> =>
  effect.pipe(
    Effect.filterOrFail(predicate, () => "not yet"),
    Effect.retry(Schedule.spaced("10 millis")),
    Effect.timeoutOrElse({
      duration: "5 seconds",
      orElse: () => Effect.fail(new Error("the condition never held within 5 s"))
    }),
    Effect.orDie
  )
