/**
 * One `ChatClient` over several OpenAI-compatible endpoints, routed by model name: `gpt-*` to
 * OpenAI, `claude-*` to Anthropic's compatible endpoint, `llama3.1:8b` to a local Ollama. Each
 * provider is an `OpenAiCompatible` endpoint with its own key, which is only ever sent to that
 * provider's base URL. A model that no provider serves fails with `ModelNotFoundError`, and no
 * request is sent.
 *
 * @example
 * ```ts
 * import { Providers } from "@resilient-llm/openai"
 * import { Config, Effect, Layer } from "effect"
 *
 * const ChatLive = Layer.unwrap(Effect.gen(function*() {
 *   const openAiKey = yield* Config.Redacted("OPENAI_API_KEY")
 *   const anthropicKey = yield* Config.Redacted("ANTHROPIC_API_KEY")
 *   return Providers.layer([
 *     { name: "openai", baseUrl: "https://api.openai.com/v1", apiKey: openAiKey, models: ["gpt-*", "o3*"] },
 *     { name: "anthropic", baseUrl: "https://api.anthropic.com/v1", apiKey: anthropicKey, models: ["claude-*"] },
 *     { name: "local", baseUrl: "http://localhost:11434/v1", models: ["llama3.1:8b", "qwen2.5:*"] }
 *   ])
 * }))
 * ```
 *
 * @since 0.1.0
 */
import * as ChatClient from "@resilient-llm/core/ChatClient"
import type * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as Deployments from "@resilient-llm/core/Deployments"
import * as LlmError from "@resilient-llm/core/LlmError"
import * as Effect from "effect/Effect"
import type * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import * as InternalClient from "./internal/client.js"
import * as InternalEndpoint from "./internal/endpoint.js"
import * as Routing from "./internal/routing.js"
import * as OpenAiCompatible from "./OpenAiCompatible.js"

/**
 * A provider: a name (for errors and logs), an endpoint, and the models it serves.
 *
 * `models` holds exact names (`"gpt-4o"`) and globs where `*` stands for any run of characters,
 * `/` included (`"gpt-*"`, `"meta-llama/*"`, `"*-instruct"`, or `"*"` for a catch-all); no other
 * character is special.
 *
 * @since 0.1.0
 * @category models
 */
export interface Provider extends Endpoint {
  readonly models: ReadonlyArray<string>
}

/**
 * A named endpoint, for `clients`: a provider as deployments name it.
 *
 * @since 0.2.0
 * @category models
 */
export interface Endpoint extends OpenAiCompatible.Options {
  readonly name: string
}

/**
 * Builds the routing client from the `HttpClient` in context.
 *
 * **Routing.** Providers are tried in the order given, and within a provider its patterns in
 * order; the first provider with a pattern that matches the request's `model` serves it. An exact
 * name gets no priority over an earlier provider's glob, so put specific providers before
 * catch-alls. The model name is sent unchanged.
 *
 * **Validation**, when the layer is built, fails with a typed `ProviderConfigError` naming the
 * provider: an empty list, an empty or duplicate name, a provider without models, an empty
 * pattern, any invalid endpoint option (see `OpenAiCompatible.Options`), or an exact model name
 * that an earlier provider already matches (it could never be routed to its own provider).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  providers: ReadonlyArray<Provider>
): Effect.Effect<ChatClient.Service, OpenAiCompatible.ProviderConfigError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const invalid = (provider: string | undefined, reason: string) =>
      Effect.fail(new OpenAiCompatible.ProviderConfigError({ provider, reason }))
    if (providers.length === 0) return yield* invalid(undefined, "no providers are configured")

    const routes: Array<Routing.Route<ChatClient.Service>> = []
    const names = new Set<string>()
    for (const [index, provider] of providers.entries()) {
      const name = provider.name
      if (typeof name !== "string" || name.trim().length === 0) {
        return yield* invalid(undefined, `provider #${index + 1} has no name`)
      }
      if (names.has(name)) return yield* invalid(name, "the name is used by another provider")
      names.add(name)
      if (provider.models.length === 0) return yield* invalid(name, "it serves no models")
      const patterns: Array<Routing.Pattern> = []
      for (const source of provider.models) {
        if (typeof source !== "string" || source.length === 0) return yield* invalid(name, "a model pattern is empty")
        const pattern = Routing.compile(source)
        const earlier = pattern.exact ? Routing.find(routes, source) : undefined
        if (earlier !== undefined) {
          return yield* invalid(
            name,
            `model ${source} would never reach it: provider ${earlier.route.name}, earlier in the list, ` +
              `matches it with ${JSON.stringify(earlier.pattern.source)}`
          )
        }
        patterns.push(pattern)
      }
      const resolved = InternalEndpoint.resolveEndpoint(provider)
      if (Result.isFailure(resolved)) return yield* invalid(name, resolved.failure)
      const target = yield* InternalClient.fromEndpoint(resolved.success, provider.transformClient)
      routes.push({ name, patterns, target })
    }

    const served = [...names].join(", ")
    const notServed = (model: string) =>
      new LlmError.ModelNotFoundError({ model, detail: `no configured provider serves it (providers: ${served})` })

    return {
      create: (request: ChatCompletion.ChatRequest) => {
        const found = Routing.find(routes, request.model)
        return found === undefined ? Effect.fail(notServed(request.model)) : found.route.target.create(request)
      },
      stream: (request: ChatCompletion.ChatRequest) => {
        const found = Routing.find(routes, request.model)
        return found === undefined ? Stream.fail(notServed(request.model)) : found.route.target.stream(request)
      }
    }
  })

/**
 * Provides `ChatClient` over several providers; see `make` for routing and validation.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  providers: ReadonlyArray<Provider>
): Layer.Layer<ChatClient.ChatClient, OpenAiCompatible.ProviderConfigError, HttpClient.HttpClient> =>
  Layer.effect(ChatClient.ChatClient, make(providers))

/**
 * One client per named endpoint, as the `ProviderClients` that `Deployments` calls: a deployment
 * names its provider, and the request goes to that provider's `baseUrl`, with its key and headers
 * only, carrying the deployment's own model name. Where `layer` routes by model name, this routes
 * by provider name, so the same model name can be served by two providers (`gpt-4o` on Azure and
 * on OpenAI) and a deployment can use the provider's own name for it.
 *
 * Fails with `ProviderConfigError` when the list is empty, a name is empty or taken twice, or an
 * endpoint's options are invalid (see `OpenAiCompatible.Options`). A `Provider` of `layer` is an
 * endpoint too: its `models` are not used here.
 *
 * @example
 * ```ts
 * import { Deployments } from "@resilient-llm/core"
 * import { Providers } from "@resilient-llm/openai"
 * import { Config, Effect, Layer } from "effect"
 *
 * const ProvidersLive = Layer.unwrap(Effect.gen(function*() {
 *   const azureKey = yield* Config.Redacted("AZURE_OPENAI_API_KEY")
 *   const openAiKey = yield* Config.Redacted("OPENAI_API_KEY")
 *   return Providers.clients([
 *     { name: "azure", baseUrl: "https://my-resource.openai.azure.com/openai/v1", headers: { "api-key": azureKey } },
 *     { name: "openai", baseUrl: "https://api.openai.com/v1", apiKey: openAiKey }
 *   ])
 * }))
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const clients = (
  endpoints: ReadonlyArray<Endpoint>
): Layer.Layer<Deployments.ProviderClients, OpenAiCompatible.ProviderConfigError, HttpClient.HttpClient> =>
  Layer.effect(Deployments.ProviderClients)(Effect.gen(function*() {
    const invalid = (provider: string | undefined, reason: string) =>
      Effect.fail(new OpenAiCompatible.ProviderConfigError({ provider, reason }))
    if (endpoints.length === 0) return yield* invalid(undefined, "no providers are configured")
    const byName = new Map<string, ChatClient.Service>()
    for (const [index, endpoint] of endpoints.entries()) {
      const name = endpoint.name
      if (typeof name !== "string" || name.trim().length === 0) {
        return yield* invalid(undefined, `provider #${index + 1} has no name`)
      }
      if (byName.has(name)) return yield* invalid(name, "the name is used by another provider")
      const resolved = InternalEndpoint.resolveEndpoint(endpoint)
      if (Result.isFailure(resolved)) return yield* invalid(name, resolved.failure)
      byName.set(name, yield* InternalClient.fromEndpoint(resolved.success, endpoint.transformClient))
    }
    return { names: [...byName.keys()], get: (provider: string) => byName.get(provider) }
  }))
