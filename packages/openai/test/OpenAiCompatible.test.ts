import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ChatClient, ChatCompletion, LlmError } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { Cause, Config, ConfigProvider, Duration, Effect, Exit, Layer, Option, Redacted, Result } from "effect"
import { FetchHttpClient, HttpClient, HttpClientResponse } from "effect/http"
import { TestClock } from "effect/testing"
import type * as Http from "node:http"
import * as TestServer from "./TestServer.js"

const key = "sk-test-3f9a1c7e5b2d4a6c8e0f1a2b3c4d5e6f"
const apiKey = Redacted.make(key)

const request = (model = "gpt-4o", extra: Record<string, unknown> = {}): ChatCompletion.ChatRequest => ({
  model,
  messages: [{ role: "user", content: "hi" }],
  ...extra
})

const client = (server: TestServer.TestServer, options: Partial<OpenAiCompatible.Options> = {}) =>
  OpenAiCompatible.make({ baseUrl: server.baseUrl, apiKey, ...options })

/** A server that answers every request with `status`, `body` and `headers`. */
const answering = (status: number, body: unknown, headers: Http.OutgoingHttpHeaders = {}) =>
  TestServer.make((_, res) => {
    if (typeof body === "string") {
      res.writeHead(status, headers)
      res.end(body)
    } else {
      TestServer.json(res, status, body, headers)
    }
  })

/** A failure with one typed error: no defect, no interruption. */
const isFailureOnly = (cause: Cause.Cause<unknown>): boolean =>
  cause.reasons.length === 1 && Cause.isFailReason(cause.reasons[0])

const failureOf = (status: number, body: unknown, headers: Http.OutgoingHttpHeaders = {}) =>
  Effect.gen(function*() {
    const server = yield* answering(status, body, headers)
    const chat = yield* client(server)
    return yield* Effect.flip(chat.create(request()))
  })

describe("OpenAiCompatible.create", () => {
  it.live("posts the encoded request with the key and decodes the completion", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make((_, res) =>
        TestServer.json(res, 200, TestServer.completion("gpt-4o", "hello"))
      )
      const chat = yield* client(server, { headers: { "OpenAI-Organization": "org-1" } })
      const completion = yield* chat.create(
        request("gpt-4o", {
          temperature: 0.2,
          stream: true,
          stream_options: { include_usage: true },
          provider_extension: { a: 1 }
        })
      )
      assert.strictEqual(ChatCompletion.text(completion), "hello")
      assert.deepStrictEqual(completion.usage, { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 })
      const [sent] = server.requests
      assert.strictEqual(sent.method, "POST")
      assert.strictEqual(sent.url, "/v1/chat/completions")
      assert.strictEqual(sent.headers.authorization, `Bearer ${key}`)
      assert.strictEqual(sent.headers["content-type"], "application/json")
      assert.strictEqual(sent.headers.accept, "application/json")
      assert.strictEqual(sent.headers["openai-organization"], "org-1")
      // unknown fields pass through; `create` never streams
      assert.deepStrictEqual(sent.json, {
        model: "gpt-4o",
        messages: [{ role: "user", content: "hi" }],
        temperature: 0.2,
        provider_extension: { a: 1 }
      })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("keeps the base URL's query string and accepts a full /chat/completions URL", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make((_, res) => TestServer.json(res, 200, TestServer.completion("m", "ok")))
      const origin = `http://127.0.0.1:${server.port}`
      yield* (yield* OpenAiCompatible.make({ baseUrl: `${origin}/openai/deployments/d1/?api-version=2024-06-01` }))
        .create(request("m"))
      yield* (yield* OpenAiCompatible.make({ baseUrl: `${origin}/v1/chat/completions` })).create(request("m"))
      assert.deepStrictEqual(server.requests.map((r) => r.url), [
        "/openai/deployments/d1/chat/completions?api-version=2024-06-01",
        "/v1/chat/completions"
      ])
      assert.isUndefined(server.requests[0].headers.authorization)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("sends secret headers, and an empty key as no key", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make((_, res) => TestServer.json(res, 200, TestServer.completion("m", "ok")))
      const chat = yield* OpenAiCompatible.make({
        baseUrl: server.baseUrl,
        apiKey: Redacted.make(""),
        headers: { "api-key": Redacted.make("azure-secret") }
      })
      yield* chat.create(request("m"))
      assert.isUndefined(server.requests[0].headers.authorization)
      assert.strictEqual(server.requests[0].headers["api-key"], "azure-secret")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})

interface FailureCase {
  readonly name: string
  readonly status: number
  readonly body: unknown
  readonly headers?: Http.OutgoingHttpHeaders
  readonly check: (error: LlmError.LlmError) => void
}

const isTag = <T extends LlmError.LlmError["_tag"]>(
  error: LlmError.LlmError,
  tag: T
): error is Extract<LlmError.LlmError, { _tag: T }> => error._tag === tag

const expectTag = <T extends LlmError.LlmError["_tag"]>(
  error: LlmError.LlmError,
  tag: T
): Extract<LlmError.LlmError, { _tag: T }> => {
  if (!isTag(error, tag)) return assert.fail(`expected ${tag}, got ${error._tag}: ${error.message}`)
  assert.strictEqual(error.model, "gpt-4o")
  return error
}

const openAiError = (message: string, type: string, code: string | null = null) => ({
  error: { message, type, param: null, code }
})

const rateLimited = (headers: Http.OutgoingHttpHeaders, expected: Option.Option<Duration.Input>) =>
(
  error: LlmError.LlmError
) => {
  const e = expectTag(error, "RateLimitError")
  assert.deepStrictEqual(e.retryAfter, Option.map(expected, Duration.fromInputUnsafe), JSON.stringify(headers))
}

const failureCases: ReadonlyArray<FailureCase> = [
  ...([
    [{ "retry-after-ms": "1500" }, Option.some(Duration.millis(1500))],
    [{ "retry-after": "7" }, Option.some(Duration.seconds(7))],
    [{ "retry-after": "2.5" }, Option.some(Duration.millis(2500))],
    [{ "retry-after-ms": "250", "retry-after": "9" }, Option.some(Duration.millis(250))],
    [{ "retry-after-ms": "soon", "retry-after": "3" }, Option.some(Duration.seconds(3))],
    [{ "retry-after": "-5" }, Option.none()],
    [{ "retry-after": "NaN" }, Option.none()],
    [{ "retry-after": "garbage" }, Option.none()],
    [{ "retry-after": "1e3" }, Option.none()],
    [{ "retry-after": "9".repeat(400) }, Option.some(Duration.hours(24))],
    [{ "retry-after-ms": "99999999999999999999" }, Option.some(Duration.hours(24))],
    [{}, Option.none()]
  ] satisfies ReadonlyArray<readonly [Http.OutgoingHttpHeaders, Option.Option<Duration.Duration>]>).map((
    [headers, expected]
  ): FailureCase => ({
    name: `429 with ${JSON.stringify(headers).slice(0, 60)}`,
    status: 429,
    body: openAiError("Rate limit reached for gpt-4o", "requests", "rate_limit_exceeded"),
    headers,
    check: rateLimited(headers, expected)
  })),
  {
    name: "429 with Gemini's RetryInfo in the body",
    status: 429,
    body: [{
      error: {
        code: 429,
        message: "Resource has been exhausted",
        status: "RESOURCE_EXHAUSTED",
        details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "31s" }]
      }
    }],
    check: rateLimited({}, Option.some(Duration.seconds(31)))
  },
  {
    name: "429 insufficient_quota (waiting does not help)",
    status: 429,
    body: openAiError("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
    check: (error) => assert.strictEqual(expectTag(error, "AuthenticationError").status, 429)
  },
  {
    name: "401",
    status: 401,
    body: openAiError("Incorrect API key provided: sk-test***4e6f.", "invalid_request_error", "invalid_api_key"),
    check: (error) => {
      const e = expectTag(error, "AuthenticationError")
      assert.strictEqual(e.status, 401)
      assert.strictEqual(e.detail, "Incorrect API key provided: sk-test***4e6f.")
    }
  },
  {
    name: "403",
    status: 403,
    body: { type: "error", error: { type: "permission_error", message: "no access" } },
    check: (error) => assert.strictEqual(expectTag(error, "AuthenticationError").status, 403)
  },
  {
    name: "402 payment required",
    status: 402,
    body: { error: { message: "Insufficient credits", code: 402 } },
    check: (error) => assert.strictEqual(expectTag(error, "AuthenticationError").status, 402)
  },
  {
    name: "404 with model_not_found",
    status: 404,
    body: openAiError("The model `gpt-5o` does not exist", "invalid_request_error", "model_not_found"),
    check: (error) =>
      assert.strictEqual(expectTag(error, "ModelNotFoundError").detail, "The model `gpt-5o` does not exist")
  },
  {
    name: "400 with model_not_found",
    status: 400,
    body: openAiError("The model does not exist", "invalid_request_error", "model_not_found"),
    check: (error) => void expectTag(error, "ModelNotFoundError")
  },
  {
    name: "404 as plain text (Ollama)",
    status: 404,
    body: `{"error":"model \\"llama9\\" not found, try pulling it first"}`,
    check: (error) =>
      assert.strictEqual(
        expectTag(error, "ModelNotFoundError").detail,
        "model \"llama9\" not found, try pulling it first"
      )
  },
  {
    name: "400 context_length_exceeded",
    status: 400,
    body: openAiError(
      "This model's maximum context length is 128000 tokens.",
      "invalid_request_error",
      "context_length_exceeded"
    ),
    check: (error) => void expectTag(error, "ContextLengthError")
  },
  {
    name: "400 context length from vLLM's message",
    status: 400,
    body: {
      object: "error",
      message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
      type: "BadRequestError",
      param: null,
      code: 400
    },
    check: (error) => void expectTag(error, "ContextLengthError")
  },
  {
    name: "400 Azure content_filter",
    status: 400,
    body: {
      error: {
        message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
        type: null,
        param: "prompt",
        code: "content_filter",
        status: 400,
        innererror: { code: "ResponsibleAIPolicyViolation" }
      }
    },
    check: (error) => void expectTag(error, "ContentFilterError")
  },
  {
    name: "400 content_policy_violation",
    status: 400,
    body: openAiError(
      "Your request was rejected by the safety system",
      "invalid_request_error",
      "content_policy_violation"
    ),
    check: (error) => void expectTag(error, "ContentFilterError")
  },
  {
    name: "422 with a code",
    status: 422,
    body: openAiError("temperature must be at most 2", "invalid_request_error", "invalid_value"),
    check: (error) => {
      const e = expectTag(error, "BadRequestError")
      assert.strictEqual(e.status, 422)
      assert.deepStrictEqual(e.code, Option.some("invalid_value"))
    }
  },
  {
    name: "400 with only a type (Anthropic)",
    status: 400,
    body: { type: "error", error: { type: "invalid_request_error", message: "messages: field required" } },
    check: (error) => {
      const e = expectTag(error, "BadRequestError")
      assert.deepStrictEqual(e.code, Option.some("invalid_request_error"))
      assert.strictEqual(e.detail, "messages: field required")
    }
  },
  {
    name: "400 with a text body",
    status: 400,
    body: "bad request: messages missing",
    check: (error) => {
      const e = expectTag(error, "BadRequestError")
      assert.deepStrictEqual(e.code, Option.none())
      assert.strictEqual(e.detail, "bad request: messages missing")
    }
  },
  ...([null, 42, "\"a string\"", "[]", "{\"error\":{\"message\":7}}", "{\"unrelated\":true}"] as const).map((
    body
  ): FailureCase => ({
    name: `400 with an odd JSON body ${String(body)}`,
    status: 400,
    body: body === null ? "null" : String(body),
    check: (error) => assert.strictEqual(expectTag(error, "BadRequestError").status, 400)
  })),
  {
    name: "500",
    status: 500,
    body: openAiError("The server had an error while processing your request.", "server_error"),
    check: (error) => assert.strictEqual(expectTag(error, "ServerError").status, 500)
  },
  {
    name: "502 with an HTML page",
    status: 502,
    body: "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    check: (error) => {
      const e = expectTag(error, "ServerError")
      assert.strictEqual(e.status, 502)
      assert.isUndefined(e.detail)
    }
  },
  {
    name: "503 with an empty body",
    status: 503,
    body: "",
    check: (error) => assert.strictEqual(expectTag(error, "ServerError").status, 503)
  },
  {
    name: "529 overloaded (Anthropic)",
    status: 529,
    body: { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
    check: (error) => {
      const e = expectTag(error, "ServerError")
      assert.strictEqual(e.status, 529)
      assert.strictEqual(e.detail, "Overloaded")
    }
  },
  {
    name: "200 with an error object instead of a completion",
    status: 200,
    body: { error: { message: "Upstream rate limit", type: "rate_limit_error", code: 429 } },
    headers: { "retry-after": "4" },
    check: rateLimited({}, Option.some(Duration.seconds(4)))
  },
  {
    name: "200 whose reply the content filter withheld",
    status: 200,
    body: {
      id: "c",
      model: "gpt-4o",
      choices: [{ index: 0, message: { role: "assistant", content: null }, finish_reason: "content_filter" }]
    },
    check: (error) => assert.include(expectTag(error, "ContentFilterError").detail, "withheld")
  },
  {
    name: "200 whose reply the content filter cut short (Azure)",
    status: 200,
    body: {
      id: "c",
      model: "gpt-4o",
      choices: [{ index: 0, message: { role: "assistant", content: "Once upon" }, finish_reason: "content_filter" }]
    },
    check: (error) => assert.include(expectTag(error, "ContentFilterError").detail, "cut the reply after 9 characters")
  },
  {
    name: "302 redirect (never followed; see Transport.test.ts)",
    status: 302,
    body: "",
    headers: { location: "https://elsewhere.example/v1/chat/completions" },
    check: (error) => {
      const e = expectTag(error, "RedirectError")
      assert.strictEqual(e.status, 302)
      assert.deepStrictEqual(e.location, Option.some("https://elsewhere.example"))
    }
  },
  {
    name: "408 request timeout (a proxy's): retryable, falls back",
    status: 408,
    body: "<html>Request Timeout</html>",
    check: (error) => {
      assert.strictEqual(expectTag(error, "ServerError").status, 408)
      assert.isTrue(LlmError.isRetryable(error))
      assert.isTrue(LlmError.isFallbackable(error))
    }
  },
  {
    name: "409 conflict: retryable, falls back",
    status: 409,
    body: openAiError("The request conflicted with another request.", "conflict"),
    check: (error) => {
      assert.strictEqual(expectTag(error, "ServerError").status, 409)
      assert.isTrue(LlmError.isRetryable(error))
      assert.isTrue(LlmError.isFallbackable(error))
    }
  },
  {
    name: "503 with x-should-retry: false is not retried, but still falls back",
    status: 503,
    body: openAiError("Maintenance", "server_error"),
    headers: { "x-should-retry": "false" },
    check: (error) => {
      assert.strictEqual(expectTag(error, "ServerError").retryable, false)
      assert.isFalse(LlmError.isRetryable(error))
      assert.isTrue(LlmError.isFallbackable(error))
    }
  },
  {
    name: "429 with x-should-retry: false is not retried",
    status: 429,
    body: openAiError("Rate limit reached", "requests", "rate_limit_exceeded"),
    headers: { "x-should-retry": "false", "retry-after": "1" },
    check: (error) => {
      expectTag(error, "RateLimitError")
      assert.isFalse(LlmError.isRetryable(error))
      assert.isTrue(LlmError.isFallbackable(error))
    }
  },
  {
    name: "400 with x-should-retry: true is retried, and still does not fall back",
    status: 400,
    body: openAiError("Try again", "invalid_request_error", "transient"),
    headers: { "x-should-retry": "true" },
    check: (error) => {
      assert.strictEqual(expectTag(error, "BadRequestError").retryable, true)
      assert.isTrue(LlmError.isRetryable(error))
      assert.isFalse(LlmError.isFallbackable(error))
    }
  },
  {
    name: "x-should-retry with another value is no verdict",
    status: 500,
    body: "",
    headers: { "x-should-retry": "maybe" },
    check: (error) => {
      assert.isUndefined(expectTag(error, "ServerError").retryable)
      assert.isTrue(LlmError.isRetryable(error))
    }
  }
]

describe("OpenAiCompatible error mapping", () => {
  for (const c of failureCases) {
    it.live(c.name, () =>
      Effect.gen(function*() {
        const error = yield* failureOf(c.status, c.body, c.headers)
        c.check(error)
      }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
  }

  it.effect("retry-after as an HTTP date counts from Clock, and a past date is zero", () =>
    Effect.gen(function*() {
      const now = Date.UTC(2025, 5, 1, 12, 0, 0)
      yield* TestClock.setTime(now)
      const inFuture = yield* failureOf(429, {}, { "retry-after": new Date(now + 42_000).toUTCString() })
      assert.deepStrictEqual(expectTag(inFuture, "RateLimitError").retryAfter, Option.some(Duration.seconds(42)))
      const inPast = yield* failureOf(429, {}, { "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT" })
      assert.deepStrictEqual(expectTag(inPast, "RateLimitError").retryAfter, Option.some(Duration.zero))
      const farFuture = yield* failureOf(429, {}, { "retry-after": "Fri, 31 Dec 9999 23:59:59 GMT" })
      assert.deepStrictEqual(expectTag(farFuture, "RateLimitError").retryAfter, Option.some(Duration.hours(24)))
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  for (
    const [name, layer] of [
      ["undici", NodeHttpClient.layerUndici],
      ["node:http", NodeHttpClient.layerNodeHttp],
      ["fetch", FetchHttpClient.layer]
    ] as const
  ) {
    it.live(`a refused connection is a ConnectionError (${name})`, () =>
      Effect.gen(function*() {
        const port = yield* Effect.scoped(Effect.map(TestServer.make(() => {}), (s) => s.port))
        const chat = yield* OpenAiCompatible.make({ baseUrl: `http://127.0.0.1:${port}/v1`, apiKey })
        const error = yield* Effect.flip(chat.create(request()))
        assert.include(expectTag(error, "ConnectionError").detail, "ECONNREFUSED")
      }).pipe(Effect.provide(layer)))
  }

  it.live("a DNS failure is a ConnectionError", () =>
    Effect.gen(function*() {
      const chat = yield* OpenAiCompatible.make({ baseUrl: "http://provider.invalid/v1", apiKey })
      const error = yield* Effect.flip(chat.create(request()))
      assert.include(expectTag(error, "ConnectionError").detail, "ENOTFOUND")
    }).pipe(
      Effect.provide(NodeHttpClient.layerNodeHttpNoAgent),
      // resolution fails here, whatever the machine's resolver does with .invalid
      Effect.provide(NodeHttpClient.layerAgentOptions({
        lookup: (hostname, _options, callback) =>
          process.nextTick(() =>
            callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }), "", 4)
          )
      }))
    ))

  it.live("a connection reset before the response is a ConnectionError", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make((_, res) => {
        res.socket?.destroy()
      })
      const chat = yield* client(server)
      const error = yield* Effect.flip(chat.create(request()))
      expectTag(error, "ConnectionError")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a connection reset while reading the body is a ConnectionError", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make((_, res) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": "1000" })
        res.write("{\"id\":\"x\",", () => res.socket?.destroy())
      })
      const chat = yield* client(server)
      const error = yield* Effect.flip(chat.create(request()))
      assert.include(expectTag(error, "ConnectionError").detail, "while reading the response")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})

describe("OpenAiCompatible with a transformClient", () => {
  it.live("a status the transformed client fails with (filterStatusOk) is still mapped from its response", () =>
    Effect.gen(function*() {
      const server = yield* answering(429, openAiError("slow down", "rate_limit_error"), { "retry-after": "3" })
      const chat = yield* client(server, { transformClient: HttpClient.filterStatusOk })
      const error = yield* Effect.flip(chat.create(request()))
      assert.deepStrictEqual(expectTag(error, "RateLimitError").retryAfter, Option.some(Duration.seconds(3)))
      assert.strictEqual(expectTag(error, "RateLimitError").detail, "slow down")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})

describe("OpenAiCompatible.layerConfig", () => {
  const withConfig = (entries: ReadonlyArray<readonly [string, string]>) =>
    Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env: Object.fromEntries(entries) }))

  it.live("reads OPENAI_BASE_URL and OPENAI_API_KEY", () =>
    Effect.gen(function*() {
      const server = yield* answering(200, TestServer.completion("gpt-4o", "configured"))
      const completion = yield* ChatClient.create(request()).pipe(
        Effect.provide(OpenAiCompatible.layerConfig()),
        withConfig([["OPENAI_BASE_URL", server.baseUrl], ["OPENAI_API_KEY", key]])
      )
      assert.strictEqual(ChatCompletion.text(completion), "configured")
      assert.strictEqual(server.requests[0].headers.authorization, `Bearer ${key}`)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("without OPENAI_API_KEY sends no authorization", () =>
    Effect.gen(function*() {
      const server = yield* answering(200, TestServer.completion("gpt-4o", "ok"))
      yield* ChatClient.create(request()).pipe(
        Effect.provide(OpenAiCompatible.layerConfig()),
        withConfig([["OPENAI_BASE_URL", server.baseUrl]])
      )
      assert.isUndefined(server.requests[0].headers.authorization)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("reads other names when given other Configs", () =>
    Effect.gen(function*() {
      const server = yield* answering(200, TestServer.completion("gpt-4o", "ok"))
      yield* ChatClient.create(request()).pipe(
        Effect.provide(OpenAiCompatible.layerConfig({
          baseUrl: Config.String("GROQ_BASE_URL"),
          apiKey: Config.Redacted("GROQ_API_KEY")
        })),
        withConfig([["GROQ_BASE_URL", server.baseUrl], ["GROQ_API_KEY", "gsk-123"], ["OPENAI_API_KEY", key]])
      )
      assert.strictEqual(server.requests[0].headers.authorization, "Bearer gsk-123")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.effect("defaults the base URL to OpenAI's", () =>
    Effect.gen(function*() {
      const urls: Array<string> = []
      const capturing = HttpClient.make((req, url) => {
        urls.push(url.href)
        return Effect.succeed(
          HttpClientResponse.fromWeb(req, new Response(JSON.stringify(TestServer.completion("gpt-4o", "ok"))))
        )
      })
      yield* ChatClient.create(request()).pipe(
        Effect.provide(OpenAiCompatible.layerConfig()),
        withConfig([]),
        Effect.provideService(HttpClient.HttpClient, capturing)
      )
      assert.deepStrictEqual(urls, ["https://api.openai.com/v1/chat/completions"])
    }))

  it.effect("an invalid OPENAI_BASE_URL is a ConfigError", () =>
    Effect.gen(function*() {
      for (const baseUrl of ["not a url", "ftp://example.com/v1", "https://user:secret@example.com/v1"]) {
        const exit = yield* Layer.build(OpenAiCompatible.layerConfig()).pipe(
          Effect.scoped,
          withConfig([["OPENAI_BASE_URL", baseUrl]]),
          Effect.provide(FetchHttpClient.layer),
          Effect.exit
        )
        assert.isTrue(Exit.isFailure(exit) && isFailureOnly(exit.cause), baseUrl)
        const message = Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
        assert.include(message, "OPENAI_BASE_URL")
        assert.notInclude(message, "secret")
      }
    }))

  it.effect("an OPENAI_API_KEY that cannot be sent (a CRLF .env file's carriage return) is a ConfigError", () =>
    Effect.gen(function*() {
      const exit = yield* Layer.build(OpenAiCompatible.layerConfig()).pipe(
        Effect.scoped,
        withConfig([["OPENAI_API_KEY", `${key}\r`]]),
        Effect.provide(FetchHttpClient.layer),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit) && isFailureOnly(exit.cause))
      const message = Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
      assert.include(message, "apiKey contains characters that cannot be sent")
      assert.notInclude(message, key)
    }))
})

describe("OpenAiCompatible.make validation", () => {
  const invalid: ReadonlyArray<readonly [string, OpenAiCompatible.Options, string]> = [
    ["a relative URL", { baseUrl: "/v1" }, "not a valid absolute URL"],
    ["a non-http URL", { baseUrl: "file:///etc/passwd" }, "http: or https:"],
    ["credentials in the URL", { baseUrl: "https://me:hunter2@example.com/v1" }, "must not contain credentials"],
    ["a line break in a header", { baseUrl: "http://x", headers: { "x-a": "1\r\nx-b: 2" } }, "x-a"],
    ["an invalid header name", { baseUrl: "http://x", headers: { "bad header": "1" } }, "is invalid"],
    ["a header set twice", { baseUrl: "http://x", headers: { "X-A": "1", "x-a": "2" } }, "set twice"],
    ["a reserved header", { baseUrl: "http://x", headers: { "Content-Type": "text/plain" } }, "set by the client"],
    [
      "authorization next to apiKey",
      { baseUrl: "http://x", apiKey, headers: { authorization: "Bearer other" } },
      "both apiKey and an authorization header"
    ],
    ["a key with a line break", { baseUrl: "http://x", apiKey: Redacted.make(`${key}\n`) }, "apiKey contains"],
    ["maxResponseBytes 0", { baseUrl: "http://x", maxResponseBytes: 0 }, "positive integer"],
    ["maxResponseBytes 1.5", { baseUrl: "http://x", maxResponseBytes: 1.5 }, "positive integer"],
    ["maxResponseBytes NaN", { baseUrl: "http://x", maxResponseBytes: Number.NaN }, "positive integer"]
  ]
  for (const [name, options, reason] of invalid) {
    it.effect(`${name} is a ProviderConfigError defect`, () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(OpenAiCompatible.make(options))
        if (Exit.isSuccess(exit)) return assert.fail("expected a defect")
        const defect = Cause.findDefect(exit.cause)
        if (Result.isFailure(defect)) return assert.fail("expected a defect")
        const error = defect.success
        assert.instanceOf(error, OpenAiCompatible.ProviderConfigError)
        assert.include(error.message, reason)
        assert.notInclude(error.message, key)
        assert.notInclude(error.message, "hunter2")
      }).pipe(Effect.provide(FetchHttpClient.layer)))
  }
})
