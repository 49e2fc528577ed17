/**
 * A `ChatClient` over one OpenAI-compatible endpoint (`POST {baseUrl}/chat/completions`), on the
 * `HttpClient` of `effect/http`: OpenAI itself, Azure OpenAI, Groq, Together, OpenRouter,
 * Mistral, DeepSeek, the OpenAI-compatible endpoints of Anthropic and Gemini, vLLM, Ollama,
 * LM Studio, llama.cpp.
 *
 * Every failure is an `LlmError`, mapped from the status, the provider's error body and its
 * headers; responses are decoded with the `ChatCompletion` schemas; streams are parsed as
 * server-sent events up to `[DONE]`. Interrupting a call aborts its HTTP request, and so do the
 * client's own bounds: a whole-request `timeout`, an `idleTimeout` between bytes or events, and a
 * size limit. Redirects are never followed, and at most `maxConnections` requests are in flight at
 * once. The API key is `Redacted` until it is written into the `Authorization` header of a request
 * to this endpoint, and is scrubbed from every error detail and from the HTTP client's spans.
 *
 * @example
 * ```ts
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { ChatClient, ChatCompletion } from "@resilient-llm/core"
 * import { OpenAiCompatible } from "@resilient-llm/openai"
 * import { Effect, Layer } from "effect"
 *
 * const ChatLive = OpenAiCompatible.layerConfig().pipe(Layer.provide(NodeHttpClient.layerUndici))
 *
 * const program = ChatClient.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello!" }] }).pipe(
 *   Effect.map(ChatCompletion.text),
 *   Effect.provide(ChatLive)
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as ChatClient from "@resilient-llm/core/ChatClient"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as InternalClient from "./internal/client.js"
import * as InternalEndpoint from "./internal/endpoint.js"

/**
 * The options of one endpoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * The API root, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`. Requests go to
   * `{baseUrl}/chat/completions` (a query string, such as Azure's `api-version`, is kept); a
   * `baseUrl` that already ends in `/chat/completions` is used as it is. It must be an `http:` or
   * `https:` URL without credentials. A query value other than `api-version`'s counts as a secret
   * (some providers take their key as `?key=`): it is scrubbed from errors and spans.
   */
  readonly baseUrl: string
  /**
   * Sent as `Authorization: Bearer <key>`, only to `baseUrl`. Omit it for local servers; an empty
   * key counts as none.
   */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /**
   * Extra headers for every request (`OpenAI-Organization`, `api-key` for Azure,
   * `HTTP-Referer` for OpenRouter). A `Redacted` value is a secret: it is sent, but kept out of
   * spans and scrubbed from errors, as are the values of `authorization`, `api-key`, `x-api-key`,
   * `x-goog-api-key`, `proxy-authorization` and `cookie` however they are given.
   */
  readonly headers?: Readonly<Record<string, string | Redacted.Redacted<string>>> | undefined
  /**
   * The largest response accepted, in bytes (default 8 MiB). For `create`, the whole body: a
   * larger `content-length` is refused before reading, and reading stops at the first byte past
   * the limit. For `stream`, each server-sent event (in characters); the stream as a whole is
   * consumed incrementally and bounded by the caller's timeout. Either way the refusal is a
   * `ResponseDecodeError` and the request is aborted.
   */
  readonly maxResponseBytes?: number | undefined
  /**
   * The longest a `create` call may take, from sending the request to the last byte of the body
   * (default 10 minutes, as in the official SDKs); for a `stream`, the longest wait for the
   * response's headers. `"Infinity"` turns it off. The call then fails with a `TimeoutError` and the
   * request is aborted, closing its connection.
   */
  readonly timeout?: Duration.Input | undefined
  /**
   * The longest wait for the next byte of a `create` body once its headers arrived, and for the
   * next event of a `stream` (default 5 minutes). A body that declares its length is read in one
   * piece and must arrive whole within it. A stream's comments and keep-alives (`: keep-alive`,
   * named events such as `ping`) do not count: a stream that only keeps itself alive is stalled.
   * `"Infinity"` turns it off. Then a `TimeoutError` whose `detail` says so, and the request is
   * aborted.
   */
  readonly idleTimeout?: Duration.Input | undefined
  /**
   * The most requests in flight to this endpoint at once (default 256), so also the most
   * connections it opens (HTTP/1.1 takes one per request); further calls wait, in the order they
   * came, for a request to end. A stream holds its connection until it ends. The wait counts in
   * `timeout`. `Infinity` for no bound.
   */
  readonly maxConnections?: number | undefined
  /**
   * Transforms the `HttpClient` this endpoint uses, e.g. to add a proxy's headers, change span
   * names, or retry at the HTTP level. Do not make it follow redirects (`HttpClient.followRedirects`):
   * it would re-send the request, credentials included, wherever a `Location` points.
   */
  readonly transformClient?: ((client: HttpClient.HttpClient) => HttpClient.HttpClient) | undefined
}

const defaultBaseUrl = "https://api.openai.com/v1"

/**
 * The default `maxResponseBytes`: 8 MiB.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxResponseBytes: number = InternalEndpoint.defaultMaxResponseBytes

/**
 * The default `timeout`: 10 minutes, as in the official SDKs.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTimeout: Duration.Duration = InternalEndpoint.defaultTimeout

/**
 * The default `idleTimeout`: 5 minutes.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultIdleTimeout: Duration.Duration = InternalEndpoint.defaultIdleTimeout

/**
 * The default `maxConnections`: 256 requests in flight per endpoint.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxConnections: number = InternalEndpoint.defaultMaxConnections

/**
 * Options that cannot work: a `baseUrl` that is not an absolute `http(s)` URL or carries
 * credentials, an invalid or reserved header, a header value with a line break, `authorization`
 * together with `apiKey`, a `maxResponseBytes` or `maxConnections` that is not a positive integer,
 * a `timeout` or `idleTimeout` that is not a positive duration, and for
 * `Providers`, duplicate or empty names, providers without models, and exact model names an
 * earlier provider already serves. `reason` never contains a secret or the URL itself.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProviderConfigError extends Data.TaggedError("ProviderConfigError")<{
  readonly provider: string | undefined
  readonly reason: string
}> {
  override get message(): string {
    return this.provider === undefined
      ? `Invalid endpoint configuration: ${this.reason}`
      : `Invalid configuration of provider ${this.provider}: ${this.reason}`
  }
}

/**
 * Builds the client from the `HttpClient` in context.
 *
 * Invalid options (see `ProviderConfigError`) are a defect: they are a programming error, found
 * when the layer is built, at startup. Use `Providers.make`, or `layerConfig`, for configuration
 * that comes from outside the code and should fail as a typed error.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<ChatClient.Service, never, HttpClient.HttpClient> =>
  Effect.suspend(() =>
    Result.match(InternalEndpoint.resolveEndpoint(options), {
      onFailure: (reason) => Effect.die(new ProviderConfigError({ provider: undefined, reason })),
      onSuccess: (endpoint) => InternalClient.fromEndpoint(endpoint, options.transformClient)
    })
  )

/**
 * Provides `ChatClient` over one endpoint.
 *
 * @example
 * ```ts
 * import { OpenAiCompatible } from "@resilient-llm/openai"
 * import { Redacted } from "effect"
 *
 * const Groq = OpenAiCompatible.layer({
 *   baseUrl: "https://api.groq.com/openai/v1",
 *   apiKey: Redacted.make(process.env.GROQ_API_KEY ?? "")
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<ChatClient.ChatClient, never, HttpClient.HttpClient> =>
  Layer.effect(ChatClient.ChatClient, make(options))

/**
 * Provides `ChatClient` from configuration: by default `OPENAI_BASE_URL` (default
 * `https://api.openai.com/v1`) and `OPENAI_API_KEY` (read as `Redacted`, optional), from the
 * `ConfigProvider` in context. Pass other `Config`s to read other names. Options that cannot
 * work (a base URL that is not a valid endpoint, a key with a line break) are a `ConfigError`.
 *
 * @example
 * ```ts
 * import { OpenAiCompatible } from "@resilient-llm/openai"
 * import { Config } from "effect"
 *
 * // the defaults: OPENAI_BASE_URL and OPENAI_API_KEY
 * const OpenAi = OpenAiCompatible.layerConfig()
 *
 * // other variables
 * const Together = OpenAiCompatible.layerConfig({
 *   baseUrl: Config.succeed("https://api.together.xyz/v1"),
 *   apiKey: Config.Redacted("TOGETHER_API_KEY")
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options?: Omit<Options, "baseUrl" | "apiKey"> & {
    readonly baseUrl?: Config.Config<string> | undefined
    readonly apiKey?: Config.Config<Redacted.Redacted<string> | undefined> | undefined
  }
): Layer.Layer<ChatClient.ChatClient, Config.ConfigError, HttpClient.HttpClient> => {
  const baseUrl = options?.baseUrl ??
    Config.schema(BaseUrl, "OPENAI_BASE_URL").pipe(Config.withDefault(defaultBaseUrl))
  const apiKey = options?.apiKey ??
    Config.map(Config.option(Config.Redacted("OPENAI_API_KEY")), Option.getOrUndefined)
  // The whole endpoint is checked here, so a key that cannot be sent (a CRLF .env file leaves a
  // "\r") fails as a ConfigError, as a bad URL does, rather than as a defect.
  const endpoint = Config.mapEffect(Config.all({ baseUrl, apiKey }), (config) =>
    Result.match(
      InternalEndpoint.resolveEndpoint({ ...options, baseUrl: config.baseUrl, apiKey: config.apiKey }),
      { onFailure: (reason) => Effect.fail(invalidConfig(reason)), onSuccess: Effect.succeed }
    ))
  return Layer.effect(
    ChatClient.ChatClient,
    Effect.flatMap(endpoint, (resolved) => InternalClient.fromEndpoint(resolved, options?.transformClient))
  )
}

/** A base URL an endpoint can be built on; a failure names the variable, never the URL. */
const BaseUrl = Schema.String.check(
  Schema.makeFilter((url) =>
    Result.isSuccess(InternalEndpoint.resolveEndpoint({ baseUrl: url })) ||
    "must be an http(s) URL without credentials"
  )
)

const invalidConfig = (reason: string): Config.ConfigError =>
  new Config.ConfigError(new Schema.SchemaError(new SchemaIssue.InvalidValue({ message: reason })))
