import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, type LlmError } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { Duration, Effect, Option, Redacted, Result, Stream } from "effect"
import type * as Http from "node:http"
import * as TestServer from "./TestServer.js"
import { transports } from "./Transports.js"

const model = "gpt-4o"
const request = (extra: Record<string, unknown> = {}): ChatCompletion.ChatRequest => ({
  model,
  messages: [{ role: "user", content: "hi" }],
  ...extra
})

const encoder = new TextEncoder()
const bytesOf = (text: string): ReadonlyArray<Uint8Array> =>
  Array.from(encoder.encode(text), (b) => new Uint8Array([b]))

/**
 * A server that answers a stream request with `pieces`, each written separately; then ends the
 * response, unless `hold` (the stream then stays open until the client leaves).
 */
const serving = (
  pieces: ReadonlyArray<string | Uint8Array>,
  options: { readonly hold?: boolean; readonly headers?: Http.OutgoingHttpHeaders } = {}
) =>
  TestServer.make(async (_, res) => {
    TestServer.startEvents(res, options.headers)
    await TestServer.writeSlowly(res, pieces)
    if (!options.hold) res.end()
  })

const streamFrom = (
  server: TestServer.TestServer,
  extra: Record<string, unknown> = {},
  options: Partial<OpenAiCompatible.Options> = {}
) =>
  Effect.flatMap(
    OpenAiCompatible.make({ baseUrl: server.baseUrl, apiKey: Redacted.make("sk-stream"), ...options }),
    (chat) => Stream.runCollect(chat.stream(request(extra)))
  )

/** The chunks a stream delivered, then how it ended. */
const outcome = (server: TestServer.TestServer, options: Partial<OpenAiCompatible.Options> = {}) =>
  Effect.flatMap(
    OpenAiCompatible.make({ baseUrl: server.baseUrl, ...options }),
    (chat) =>
      chat.stream(request()).pipe(
        Stream.result,
        Stream.runCollect,
        Effect.map((all) => {
          const texts = all.flatMap((item) => Result.isSuccess(item) ? [ChatCompletion.chunkText(item.success)] : [])
          const error = all.flatMap((item) => Result.isFailure(item) ? [item.failure] : [])[0]
          return { texts, error }
        })
      )
  )

const roleChunk = {
  id: "c1",
  object: "chat.completion.chunk",
  created: 1,
  model,
  choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]
}
const finishChunk = {
  id: "c1",
  object: "chat.completion.chunk",
  created: 1,
  model,
  choices: [{ index: 0, delta: {}, finish_reason: "stop" }]
}
const usageChunk = {
  id: "c1",
  object: "chat.completion.chunk",
  created: 1,
  model,
  choices: [],
  usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 }
}

const openAiStream = [
  TestServer.event(roleChunk),
  TestServer.event(TestServer.chunk(model, "Héllo")),
  TestServer.event(TestServer.chunk(model, ", wörld ")),
  TestServer.event(TestServer.chunk(model, "🌍")),
  TestServer.event(finishChunk),
  TestServer.event(usageChunk),
  "data: [DONE]\n\n"
].join("")

const expectTexts = (chunks: ReadonlyArray<ChatCompletion.ChatCompletionChunk>) => {
  assert.deepStrictEqual(chunks.map(ChatCompletion.chunkText), ["", "Héllo", ", wörld ", "🌍", "", ""])
  assert.strictEqual(chunks[4].choices[0].finish_reason, "stop")
  assert.deepStrictEqual(chunks[5].usage, { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 })
}

const expectTag = <T extends LlmError.LlmError["_tag"]>(
  error: LlmError.LlmError | undefined,
  tag: T
): Extract<LlmError.LlmError, { _tag: T }> => {
  if (error === undefined) return assert.fail(`expected ${tag}, the stream succeeded`)
  if (!isTag(error, tag)) return assert.fail(`expected ${tag}, got ${error._tag}: ${error.message}`)
  return error
}
const isTag = <T extends LlmError.LlmError["_tag"]>(
  error: LlmError.LlmError,
  tag: T
): error is Extract<LlmError.LlmError, { _tag: T }> => error._tag === tag

describe("OpenAiCompatible.stream", () => {
  it.live("asks for a stream, keeps stream_options, and decodes every chunk up to [DONE]", () =>
    Effect.gen(function*() {
      const server = yield* serving([openAiStream])
      const chunks = yield* streamFrom(server, { stream_options: { include_usage: true } })
      expectTexts(chunks)
      const [sent] = server.requests
      assert.strictEqual(sent.headers.accept, "text/event-stream")
      assert.deepStrictEqual(sent.json, {
        model,
        messages: [{ role: "user", content: "hi" }],
        stream_options: { include_usage: true },
        stream: true
      })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("events split byte by byte across TCP writes, multi-byte characters included", () =>
    Effect.gen(function*() {
      const server = yield* serving(bytesOf(openAiStream))
      expectTexts(yield* streamFrom(server))
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("multi-line data, comments, keep-alive lines, CRLF, named events and retry fields", () =>
    Effect.gen(function*() {
      const pretty = JSON.stringify(TestServer.chunk(model, "multi"), null, 2).split("\n")
      const server = yield* serving(bytesOf(
        ": connected\n\n" +
          "\n\n" +
          "retry: 10000\n" +
          `data: ${JSON.stringify(TestServer.chunk(model, "a"))}\n\n` +
          ": keep-alive\n" +
          ":\n\n" +
          `${pretty.map((line) => `data: ${line}`).join("\n")}\n\n` +
          "event: ping\ndata: {\"type\":\"ping\"}\n\n" +
          `id: 7\r\ndata: ${JSON.stringify(TestServer.chunk(model, "crlf"))}\r\n\r\n` +
          "data:\n\n" +
          `data:${JSON.stringify(TestServer.chunk(model, "no space"))}\n\n` +
          "data: [DONE]\n\n"
      ))
      const chunks = yield* streamFrom(server)
      assert.deepStrictEqual(chunks.map(ChatCompletion.chunkText), ["a", "multi", "crlf", "no space"])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a final [DONE] without its blank line still ends the stream", () =>
    Effect.gen(function*() {
      const server = yield* serving([TestServer.event(TestServer.chunk(model, "x")), "data: [DONE]"])
      const chunks = yield* streamFrom(server)
      assert.deepStrictEqual(chunks.map(ChatCompletion.chunkText), ["x"])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("stops reading at [DONE] and closes the connection, whatever follows", () =>
    Effect.gen(function*() {
      const server = yield* serving(
        [TestServer.event(TestServer.chunk(model, "x")), "data: [DONE]\n\n", "data: not json at all\n\n"],
        { hold: true }
      )
      const chunks = yield* streamFrom(server)
      assert.deepStrictEqual(chunks.map(ChatCompletion.chunkText), ["x"])
      yield* server.awaitConnections((open) => open === 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a stream that ends before [DONE] is a ResponseDecodeError after the chunks it sent", () =>
    Effect.gen(function*() {
      const server = yield* serving([TestServer.event(TestServer.chunk(model, "a")), TestServer.event(finishChunk)])
      const { error, texts } = yield* outcome(server)
      assert.deepStrictEqual(texts, ["a", ""])
      assert.include(expectTag(error, "ResponseDecodeError").detail, "ended before [DONE]")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a stream cut inside an event is a ResponseDecodeError", () =>
    Effect.gen(function*() {
      const server = yield* serving([TestServer.event(TestServer.chunk(model, "a")), "data: {\"id\":\"c1\",\"choi"])
      const { error, texts } = yield* outcome(server)
      assert.deepStrictEqual(texts, ["a"])
      assert.include(expectTag(error, "ResponseDecodeError").detail, "not valid JSON")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a connection reset mid-stream is a ConnectionError", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make(async (_, res) => {
        TestServer.startEvents(res)
        await TestServer.writeSlowly(res, [TestServer.event(TestServer.chunk(model, "a"))])
        res.socket?.destroy()
      })
      const { error, texts } = yield* outcome(server)
      assert.deepStrictEqual(texts, ["a"])
      expectTag(error, "ConnectionError")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("invalid UTF-8 in the stream is a ResponseDecodeError", () =>
    Effect.gen(function*() {
      const server = yield* serving([
        TestServer.event(TestServer.chunk(model, "a")),
        new Uint8Array([0x64, 0x61, 0x74, 0x61, 0x3a, 0x20, 0xc3, 0x28, 0x0a, 0x0a])
      ])
      const { error } = yield* outcome(server)
      assert.include(expectTag(error, "ResponseDecodeError").detail, "UTF-8")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("an event that is JSON but not a chunk is a ResponseDecodeError", () =>
    Effect.gen(function*() {
      const server = yield* serving([
        TestServer.event({ id: "x", object: "chat.completion.chunk" }),
        "data: [DONE]\n\n"
      ])
      const { error } = yield* outcome(server)
      assert.include(expectTag(error, "ResponseDecodeError").detail, "choices")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("an event longer than maxResponseBytes is refused without waiting for its end", () =>
    Effect.gen(function*() {
      const server = yield* serving([TestServer.event(TestServer.chunk(model, "a")), `data: "${"x".repeat(8192)}`], {
        hold: true
      })
      const { error, texts } = yield* outcome(server, { maxResponseBytes: 4096 })
      assert.deepStrictEqual(texts, ["a"])
      assert.include(expectTag(error, "ResponseDecodeError").detail, "exceeds the limit of 4096 characters")
      yield* server.awaitConnections((open) => open === 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})

describe("line endings and long lines, on every transport", () => {
  for (const [name, layer] of transports) {
    it.live(`${name}: a stream with CR-only line endings, cut anywhere, reads like one with LF`, () =>
      Effect.gen(function*() {
        const body = [
          ...Array.from({ length: 50 }, (_, i) => TestServer.event(TestServer.chunk(model, `${i} `))),
          "data: [DONE]\n\n"
        ]
          .join("")
          .replaceAll("\n", "\r")
        // pieces of 7 bytes: every CR falls somewhere in a read, some at its end
        const pieces = Array.from({ length: Math.ceil(body.length / 7) }, (_, i) => body.slice(i * 7, i * 7 + 7))
        const server = yield* serving(pieces)
        const { error, texts } = yield* outcome(server)
        assert.isUndefined(error)
        assert.deepStrictEqual(texts, Array.from({ length: 50 }, (_, i) => `${i} `))
      }).pipe(Effect.provide(layer)))

    it.live(`${name}: one line without an end is refused at the limit, and the connection closed`, () =>
      Effect.gen(function*() {
        let written = 0
        const server = yield* TestServer.make(async (_, res) => {
          TestServer.startEvents(res)
          res.write("data: ")
          const piece = "x".repeat(16 * 1024)
          while (!res.destroyed && written < 64 * 1024 * 1024) {
            written += piece.length
            if (!res.write(piece)) {
              await new Promise<void>((resolve) => {
                res.once("drain", resolve).once("close", resolve)
              })
            }
          }
        })
        const { error, texts } = yield* outcome(server, { maxResponseBytes: 1024 * 1024 })
        assert.deepStrictEqual(texts, [])
        assert.include(expectTag(error, "ResponseDecodeError").detail, "exceeds the limit of 1048576 characters")
        yield* server.awaitConnections((open) => open === 0)
        // the limit and what the sockets buffered, not the 64 MiB the server had to send
        assert.isBelow(written, 32 * 1024 * 1024)
      }).pipe(Effect.provide(layer)))
  }
})

describe("OpenAiCompatible.stream errors", () => {
  const midStream = (payload: string) =>
    Effect.gen(function*() {
      const server = yield* serving([TestServer.event(TestServer.chunk(model, "before")), payload], { hold: true })
      const result = yield* outcome(server)
      assert.deepStrictEqual(result.texts, ["before"])
      return result.error
    })

  it.live("an error object mid-stream is mapped like an HTTP error", () =>
    Effect.gen(function*() {
      const rate = yield* midStream(
        TestServer.event({ error: { message: "Rate limit reached", type: "rate_limit_error" } })
      )
      assert.deepStrictEqual(expectTag(rate, "RateLimitError").retryAfter, Option.none())
      assert.include(rate!.message, "error event in the stream: Rate limit reached")

      const context = yield* midStream(
        TestServer.event({
          error: { message: "too long", type: "invalid_request_error", code: "context_length_exceeded" }
        })
      )
      expectTag(context, "ContextLengthError")

      const overloaded = yield* midStream(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
      )
      assert.strictEqual(expectTag(overloaded, "ServerError").status, 529)

      const gemini = yield* midStream(
        TestServer.event([{ error: { code: 503, message: "The model is overloaded.", status: "UNAVAILABLE" } }])
      )
      assert.strictEqual(expectTag(gemini, "ServerError").status, 503)

      const unknown = yield* midStream(TestServer.event({ error: { message: "Something broke" } }))
      assert.strictEqual(expectTag(unknown, "ServerError").status, 500)

      const filtered = yield* midStream(TestServer.event({ error: { message: "blocked", code: "content_filter" } }))
      expectTag(filtered, "ContentFilterError")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  for (const [name, layer] of transports) {
    it.live(`${name}: an error event is an error whatever its data: empty, text, or none at all`, () =>
      Effect.gen(function*() {
        for (
          const payload of [
            "event: error\ndata:\n\n",
            "event: error\n\n",
            "event: error\ndata: upstream exploded\n\n"
          ]
        ) {
          // the server would go on to end the stream properly: the error must not be skipped
          const server = yield* serving([
            TestServer.event(TestServer.chunk(model, "before")),
            payload,
            TestServer.event(TestServer.chunk(model, "after")),
            "data: [DONE]\n\n"
          ])
          const { error, texts } = yield* outcome(server)
          assert.deepStrictEqual(texts, ["before"], JSON.stringify(payload))
          const failure = expectTag(error, "ServerError")
          assert.strictEqual(failure.status, 500)
          assert.include(failure.message, "error event in the stream")
          if (payload.includes("exploded")) assert.include(failure.message, "upstream exploded")
        }
      }).pipe(Effect.provide(layer)))
  }

  const statusCases: ReadonlyArray<
    readonly [number, Http.OutgoingHttpHeaders, unknown, (e: LlmError.LlmError) => void]
  > = [
    [
      429,
      { "retry-after": "12" },
      { error: { message: "slow down", type: "rate_limit_error" } },
      (e) => assert.deepStrictEqual(expectTag(e, "RateLimitError").retryAfter, Option.some(Duration.seconds(12)))
    ],
    [
      401,
      {},
      { error: { message: "bad key", code: "invalid_api_key" } },
      (e) => assert.strictEqual(expectTag(e, "AuthenticationError").status, 401)
    ],
    [
      404,
      {},
      { error: { message: "no such model", code: "model_not_found" } },
      (e) => void expectTag(e, "ModelNotFoundError")
    ],
    [
      529,
      {},
      { type: "error", error: { type: "overloaded_error", message: "Overloaded" } },
      (e) => assert.strictEqual(expectTag(e, "ServerError").status, 529)
    ],
    [
      400,
      {},
      { error: { message: "bad", code: "invalid_value" } },
      (e) => assert.deepStrictEqual(expectTag(e, "BadRequestError").code, Option.some("invalid_value"))
    ]
  ]
  for (const [status, headers, body, check] of statusCases) {
    it.live(`HTTP ${status} on a stream request is mapped like create`, () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make((_, res) => TestServer.json(res, status, body, headers))
        const { error, texts } = yield* outcome(server)
        assert.deepStrictEqual(texts, [])
        check(error!)
      }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
  }

  it.live("a JSON answer to a stream request: an error object is mapped, a completion is refused", () =>
    Effect.gen(function*() {
      const erroring = yield* TestServer.make((_, res) =>
        TestServer.json(res, 200, { error: { message: "no quota", code: "insufficient_quota" } })
      )
      const quota = (yield* outcome(erroring)).error
      assert.strictEqual(expectTag(quota, "AuthenticationError").status, 429)

      const completing = yield* TestServer.make((_, res) =>
        TestServer.json(res, 200, TestServer.completion(model, "x"))
      )
      const refused = (yield* outcome(completing)).error
      assert.include(expectTag(refused, "ResponseDecodeError").detail, "expected an event stream")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
