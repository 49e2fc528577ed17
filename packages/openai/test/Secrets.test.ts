import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import type { ChatCompletion, LlmError } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { TestSpans } from "@resilient-llm/testing"
import { Cause, Effect, type Layer, Logger, Redacted, Stream } from "effect"
import { HttpClient } from "effect/http"
import { inspect } from "node:util"
import * as TestServer from "./TestServer.js"
import { transports } from "./Transports.js"

const key = "sk-live-Zq8XyW3vU7tS1rP9oN5mL2kJ0hG4fD6s"
const headerSecret = "azure-7c1f0e9d8b6a5f4e3d2c1b0a"
const secrets = [key, headerSecret]

const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "hi" }] }

/** Every rendering of an error a program might print, log or serialize. */
const renderings = (error: LlmError.LlmError): ReadonlyArray<string> => [
  error.message,
  String(error),
  JSON.stringify(error),
  inspect(error, { depth: 10 }),
  Cause.pretty(Cause.fail(error)),
  "detail" in error ? String(error.detail) : "",
  "code" in error ? String(error.code) : ""
]

const assertClean = (texts: ReadonlyArray<string>, context: string) => {
  for (const text of texts) {
    for (const secret of secrets) assert.notInclude(text, secret, context)
    // not even a long piece of it
    for (const secret of secrets) assert.notInclude(text, secret.slice(0, 16), context)
  }
}

/** A logger that keeps what the logfmt, JSON and plain loggers would print. */
const capturingLogger = (lines: Array<string>) =>
  Logger.make((options) => {
    lines.push(Logger.formatLogFmt.log(options), Logger.formatJson.log(options), Logger.formatSimple.log(options))
  })

/** Replaces every logger with one that captures into `lines`. */
const capturing = (lines: Array<string>) => Logger.layer([capturingLogger(lines)])

type Scenario = readonly [name: string, handler: TestServer.Handler, kind: "create" | "stream"]

const echo = (req: TestServer.RecordedRequest) => `${req.headers.authorization} and ${req.headers["api-key"]}`

const scenarios: ReadonlyArray<Scenario> = [
  [
    "401 echoing the key",
    (req, res) =>
      TestServer.json(res, 401, {
        error: { message: `Incorrect API key provided: ${echo(req)}`, code: "invalid_api_key" }
      }),
    "create"
  ],
  ["400 text echoing the headers", (req, res) => {
    res.writeHead(400, { "content-type": "text/plain" })
    res.end(`bad request with ${echo(req)}`)
  }, "create"],
  [
    "400 with the key as the error code",
    (_, res) => TestServer.json(res, 400, { error: { message: "nope", code: key } }),
    "create"
  ],
  [
    "429 echoing the key",
    (req, res) => TestServer.json(res, 429, { error: { message: `slow down ${echo(req)}`, type: "rate_limit_error" } }),
    "create"
  ],
  ["500 echoing the key", (req, res) => TestServer.json(res, 500, { error: { message: echo(req) } }), "create"],
  ["200 with invalid JSON around the key", (_, res) => {
    res.writeHead(200, { "content-type": "application/json" })
    res.end(`{"model": "m", "oops": ${key}}`)
  }, "create"],
  [
    "200 with the key where a message should be",
    (_, res) => TestServer.json(res, 200, { model: "m", choices: [{ message: `${key} ${headerSecret}` }] }),
    "create"
  ],
  ["an error event echoing the key", (req, res) => {
    TestServer.startEvents(res)
    res.end(TestServer.event({ error: { message: echo(req) } }))
  }, "stream"],
  ["an event that is not a chunk, holding the key", (_, res) => {
    TestServer.startEvents(res)
    res.end(TestServer.event({ choices: key, other: headerSecret }))
  }, "stream"],
  [
    "403 on a stream echoing the key",
    (req, res) => TestServer.json(res, 403, { error: { message: echo(req), type: "permission_error" } }),
    "stream"
  ]
]

describe("the API key never leaks", () => {
  for (const [name, handler, kind] of scenarios) {
    it.live(`${name}: not in the error, its renderings, or the logs`, () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make(handler)
        const chat = yield* OpenAiCompatible.make({
          baseUrl: server.baseUrl,
          apiKey: Redacted.make(key),
          headers: { "api-key": Redacted.make(headerSecret) }
        })
        const error = yield* Effect.flip(
          kind === "create" ? chat.create(request) : Stream.runDrain(chat.stream(request))
        )
        // the server did receive the secrets, so an echo was possible
        assert.strictEqual(server.requests[0].headers.authorization, `Bearer ${key}`)
        assert.strictEqual(server.requests[0].headers["api-key"], headerSecret)
        assertClean(renderings(error), name)

        const lines: Array<string> = []
        yield* Effect.logError("model call failed", Cause.fail(error)).pipe(
          Effect.andThen(Effect.logWarning(error)),
          Effect.andThen(Effect.annotateLogs(Effect.log("failed"), "error", error)),
          Effect.provide(capturing(lines))
        )
        assert.isAbove(lines.length, 0)
        assertClean(lines, `${name} (logs)`)
      }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
  }

  it.live("other bearer tokens and sk- keys in provider text are masked too", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make((_, res) =>
        TestServer.json(res, 401, {
          error: { message: "token Bearer eyJhbGciOi.payload.sig rejected, and sk-proj-AbCdEfGhIjKlMnOp is revoked" }
        })
      )
      const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl })
      const error = yield* Effect.flip(chat.create(request))
      assert.strictEqual(error._tag, "AuthenticationError")
      assert.include(error.message, "token Bearer <redacted> rejected, and sk-<redacted> is revoked")
      assert.notInclude(error.message, "eyJhbGciOi")
      assert.notInclude(error.message, "AbCdEfGh")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a key in the options is <redacted> when the options are logged or inspected", () =>
    Effect.gen(function*() {
      const options: OpenAiCompatible.Options = { baseUrl: "http://x", apiKey: Redacted.make(key) }
      const lines: Array<string> = []
      yield* Effect.log("client options", options).pipe(Effect.provide(capturing(lines)))
      assertClean([...lines, inspect(options), JSON.stringify(options), String(options.apiKey)], "options")
      assert.include(inspect(options), "<redacted>")
    }))

  const streamOnce = TestServer.make((_, res) => {
    TestServer.startEvents(res)
    res.end(`${TestServer.event(TestServer.chunk("m", "x"))}data: [DONE]\n\n`)
  })

  const spanAttributes = (server: TestServer.TestServer) =>
    Effect.gen(function*() {
      const capture = yield* TestSpans.make
      const chat = yield* OpenAiCompatible.make({
        baseUrl: server.baseUrl,
        apiKey: Redacted.make(key),
        headers: { "api-key": Redacted.make(headerSecret), "x-custom": "visible" }
      })
      const chunks = yield* chat.stream(request).pipe(Stream.runCollect, Effect.withTracer(capture.tracer))
      assert.strictEqual(chunks.length, 1)
      return capture.spans.flatMap((span) => Array.from(span.attributes))
    })

  it.live("the key goes in the Authorization header only, and spans that record headers show it redacted", () =>
    Effect.gen(function*() {
      const server = yield* streamOnce
      // Effect 4 records headers on the client span only when a TracerHeaderFilter asks for them.
      const attributes = yield* spanAttributes(server).pipe(
        Effect.provideService(HttpClient.TracerHeaderFilter, () => true)
      )

      const [sent] = server.requests
      const carrying = Object.entries(sent.headers).filter(([, v]) => String(v).includes(key)).map(([k]) => k)
      assert.deepStrictEqual(carrying, ["authorization"])
      assert.notInclude(sent.body, key)

      const headerAttributes = new Map(
        attributes.filter(([k]) => k.startsWith("http.request.header.")).map(([k, v]) => [k, String(v)])
      )
      assert.strictEqual(headerAttributes.get("http.request.header.authorization"), "<redacted>")
      assert.strictEqual(headerAttributes.get("http.request.header.api-key"), "<redacted>")
      assert.strictEqual(headerAttributes.get("http.request.header.x-custom"), "visible")
      assert.strictEqual(headerAttributes.get("http.request.header.accept"), "text/event-stream")
      assertClean(attributes.map(([k, v]) => `${k}=${String(v)}`), "span attributes")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a header the provider sends back is redacted in spans unless it is plainly safe", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make((_, res) => {
        TestServer.startEvents(res, { "x-echo": key, "x-request-id": "req-1" })
        res.end(`${TestServer.event(TestServer.chunk("m", "x"))}data: [DONE]\n\n`)
      })
      const attributes = yield* spanAttributes(server).pipe(
        Effect.provideService(HttpClient.TracerHeaderFilter, () => true)
      )
      const headerAttributes = new Map(
        attributes.filter(([k]) => k.startsWith("http.response.header.")).map(([k, v]) => [k, String(v)])
      )
      assert.strictEqual(headerAttributes.get("http.response.header.x-echo"), "<redacted>")
      assert.strictEqual(headerAttributes.get("http.response.header.x-request-id"), "req-1")
      assert.strictEqual(headerAttributes.get("http.response.header.content-type"), "text/event-stream")
      assertClean(attributes.map(([k, v]) => `${k}=${String(v)}`), "span attributes")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("by default, spans record no headers at all", () =>
    Effect.gen(function*() {
      const server = yield* streamOnce
      const attributes = yield* spanAttributes(server)
      assert.isAbove(attributes.length, 0)
      assert.deepStrictEqual(attributes.filter(([k]) => k.includes(".header.")), [])
      assertClean(attributes.map(([k, v]) => `${k}=${String(v)}`), "span attributes")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})

describe("spans never record a secret, even where the provider echoes it or the URL carries it", () => {
  const headerAttributes = (attributes: ReadonlyArray<readonly [string, unknown]>, phase: string) =>
    new Map(attributes.filter(([k]) => k.startsWith(`http.${phase}.header.`)).map(([k, v]) => [k, String(v)]))

  /** Spans of one create and one stream, every header recorded. */
  const spansOf = (options: OpenAiCompatible.Options, layer: Layer.Layer<HttpClient.HttpClient>) =>
    Effect.gen(function*() {
      const capture = yield* TestSpans.make
      const chat = yield* OpenAiCompatible.make(options)
      yield* chat.create(request).pipe(Effect.withTracer(capture.tracer))
      yield* chat.stream(request).pipe(Stream.runDrain, Effect.withTracer(capture.tracer))
      return capture.spans.filter((span) => span.kind === "client").map((span) => Array.from(span.attributes))
    }).pipe(Effect.provideService(HttpClient.TracerHeaderFilter, () => true), Effect.provide(layer))

  /** A provider that echoes the key it was sent, whole and in part, in headers that are plainly safe. */
  const echoing = TestServer.make((req, res) => {
    const sent = req.headers.authorization?.replace("Bearer ", "") ??
      new URL(req.url, "http://x").searchParams.get("key") ?? ""
    const headers = {
      "x-request-id": `req_${sent}`,
      "openai-organization": `org-${sent.slice(4, 20)}`,
      "x-ratelimit-remaining-requests": `99 ${sent.slice(-12)}`,
      "retry-after": sent
    }
    if ((req.json as { stream?: boolean }).stream) {
      TestServer.startEvents(res, headers)
      res.end(`${TestServer.event(TestServer.chunk("m", "x"))}data: [DONE]\n\n`)
    } else {
      TestServer.json(res, 200, TestServer.completion("m", "x"), headers)
    }
  })

  for (const [name, layer] of transports) {
    it.live(`${name}: a key echoed in x-request-id, openai-*, x-ratelimit-* is scrubbed from the headers recorded`, () =>
      Effect.gen(function*() {
        const server = yield* echoing
        const spans = yield* spansOf({ baseUrl: server.baseUrl, apiKey: Redacted.make(key) }, layer)
        assert.strictEqual(spans.length, 2)
        for (const attributes of spans) {
          const response = headerAttributes(attributes, "response")
          assert.strictEqual(response.get("http.response.header.x-request-id"), "req_<redacted>")
          assert.include(response.get("http.response.header.openai-organization") ?? "", "<redacted>")
          assert.strictEqual(response.get("http.response.header.x-ratelimit-remaining-requests"), "99 <redacted>")
          assert.strictEqual(response.get("http.response.header.retry-after"), "<redacted>")
          assertClean(attributes.map(([k, v]) => `${k}=${String(v)}`), `${name} span attributes`)
          for (const [k, v] of attributes) assert.notInclude(String(v), key.slice(4, 12), k)
        }
        assert.strictEqual(server.requests[0].headers.authorization, `Bearer ${key}`)
      }))

    it.live(`${name}: a key in the baseUrl's query (?key=) is scrubbed from url.full, url.query and echoes`, () =>
      Effect.gen(function*() {
        const server = yield* echoing
        const spans = yield* spansOf({ baseUrl: `${server.baseUrl}?key=${key}&api-version=2024-06-01` }, layer)
        assert.strictEqual(spans.length, 2)
        for (const attributes of spans) {
          const byKey = new Map(attributes.map(([k, v]) => [k, String(v)]))
          assert.strictEqual(byKey.get("url.query"), "key=REDACTED&api-version=2024-06-01")
          assert.strictEqual(
            byKey.get("url.full"),
            `http://127.0.0.1:${server.port}/v1/chat/completions?key=REDACTED&api-version=2024-06-01`
          )
          assert.strictEqual(byKey.get("http.response.header.x-request-id"), "req_<redacted>")
          assertClean(attributes.map(([k, v]) => `${k}=${String(v)}`), `${name} span attributes`)
        }
        // the key still went to the provider, in the query string it was configured in
        assert.strictEqual(server.requests[0].url, `/v1/chat/completions?key=${key}&api-version=2024-06-01`)
      }))
  }

  it.live("a key in the baseUrl's query that an error echoes is scrubbed from the error", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make((req, res) =>
        TestServer.json(res, 400, { error: { message: `invalid request to ${req.url}` } })
      )
      const chat = yield* OpenAiCompatible.make({ baseUrl: `${server.baseUrl}?key=${key}` })
      const error = yield* Effect.flip(chat.create(request))
      assert.strictEqual(error._tag, "BadRequestError")
      assertClean(renderings(error), "error")
      assert.include(error.message, "invalid request to /v1/chat/completions?key=<redacted>")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a redirect's target names no secret, even in its host", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make((_, res) => {
        res.writeHead(302, { location: `https://${key.slice(8, 30).toLowerCase()}.example/steal?k=${key}` })
        res.end()
      })
      const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl, apiKey: Redacted.make(key) })
      const error = yield* Effect.flip(chat.create(request))
      assert.strictEqual(error._tag, "RedirectError")
      assertClean(renderings(error), "redirect")
      assert.notInclude(error.message.toLowerCase(), key.slice(8, 20).toLowerCase())
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
