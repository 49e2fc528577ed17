import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, type LlmError } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { Effect, Schema } from "effect"
import { readFileSync } from "node:fs"
import * as TestServer from "./TestServer.js"

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")

const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "hi" }] }

/** Serves `body` (raw bytes or text) as a 200 JSON response and calls `create`. */
const createWith = (body: string | Uint8Array, options: { readonly maxResponseBytes?: number } = {}) =>
  Effect.gen(function*() {
    const server = yield* TestServer.make((_, res) => {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(body)
    })
    const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl, ...options })
    return yield* chat.create(request)
  })

const decodeFailure = (error: LlmError.LlmError): string => {
  if (error._tag !== "ResponseDecodeError") return assert.fail(`expected ResponseDecodeError, got ${error.message}`)
  return error.detail
}

describe("decoding what providers send", () => {
  it.live("OpenAI: refusal, annotations, token details, service_tier and the rest are kept, typed", () =>
    Effect.gen(function*() {
      const completion = yield* createWith(fixture("openai.json"))
      assert.strictEqual(completion.id, "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG")
      assert.strictEqual(completion.model, "gpt-4o-2024-08-06")
      assert.strictEqual(ChatCompletion.text(completion), "The capital of France is Paris.")
      assert.strictEqual(completion.choices[0].finish_reason, "stop")
      assert.strictEqual(completion.usage?.prompt_tokens_details?.cached_tokens, 0)
      assert.strictEqual(completion.usage?.completion_tokens_details?.reasoning_tokens, 0)
      assert.strictEqual(completion.service_tier, "default")
      assert.strictEqual(completion.system_fingerprint, "fp_fc9f1d7035")
      assert.strictEqual(completion.created, 1741570283)
      assert.strictEqual(completion.object, "chat.completion")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("every field of every fixture, top-level and nested, the unknown ones included, reaches the caller", () =>
    Effect.gen(function*() {
      const encode = Schema.encodeEffect(ChatCompletion.ChatCompletion)
      for (const name of ["openai.json", "openai-tool-call.json", "anthropic-compat.json", "ollama.json"]) {
        const completion = yield* createWith(fixture(name))
        assert.deepStrictEqual<unknown>(yield* encode(completion), JSON.parse(fixture(name)), name)
      }
      // what decoding fills in for providers that leave it out is added; nothing is dropped
      const local = yield* createWith(fixture("local-server.json"))
      assert.strictEqual(local.choices[0].stop_reason, 128008)
      assert.deepStrictEqual(local.timings, { prompt_n: 12, prompt_ms: 35.2, predicted_n: 9, predicted_ms: 101.7 })
      assert.isNull(local.choices[0].message.reasoning_content)
      const gemini = yield* createWith(fixture("gemini-compat.json"))
      assert.deepStrictEqual<unknown>(yield* encode(gemini), { ...JSON.parse(fixture("gemini-compat.json")), id: "" })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("OpenAI: a tool call with content null", () =>
    Effect.gen(function*() {
      const completion = yield* createWith(fixture("openai-tool-call.json"))
      const message = completion.choices[0].message
      assert.isNull(message.content)
      assert.strictEqual(ChatCompletion.text(completion), "")
      assert.deepStrictEqual(message.tool_calls, [{
        id: "call_abc123",
        type: "function",
        function: { name: "get_weather", arguments: "{\"city\":\"Paris\"}" }
      }])
      assert.strictEqual(completion.choices[0].finish_reason, "tool_calls")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("Anthropic's OpenAI-compatible endpoint", () =>
    Effect.gen(function*() {
      const completion = yield* createWith(fixture("anthropic-compat.json"))
      assert.strictEqual(completion.model, "claude-sonnet-4-20250514")
      assert.strictEqual(ChatCompletion.text(completion), "Paris is the capital of France.")
      assert.deepStrictEqual<unknown>(completion.usage, {
        prompt_tokens: 19,
        completion_tokens: 11,
        total_tokens: 30,
        prompt_tokens_details: { cached_tokens: 0 }
      })
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("Gemini's OpenAI-compatible endpoint: no id", () =>
    Effect.gen(function*() {
      const completion = yield* createWith(fixture("gemini-compat.json"))
      assert.strictEqual(completion.id, "")
      assert.strictEqual(completion.model, "gemini-2.0-flash")
      assert.strictEqual(ChatCompletion.text(completion), "Paris.\n")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a vLLM / llama.cpp style server: no usage, content null, tool call without type, extra fields", () =>
    Effect.gen(function*() {
      const completion = yield* createWith(fixture("local-server.json"))
      assert.isUndefined(completion.usage)
      assert.isNull(completion.choices[0].message.content)
      assert.deepStrictEqual(completion.choices[0].message.tool_calls, [{
        id: "chatcmpl-tool-1",
        type: "function",
        function: { name: "lookup", arguments: "{}" }
      }])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("Ollama: no usage", () =>
    Effect.gen(function*() {
      const completion = yield* createWith(fixture("ollama.json"))
      assert.strictEqual(ChatCompletion.text(completion), "Bonjour !")
      assert.isUndefined(completion.usage)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})

describe("decoding failures are typed", () => {
  const cases: ReadonlyArray<readonly [string, string | Uint8Array, string]> = [
    ["a body without choices", JSON.stringify({ id: "x", model: "m", object: "chat.completion" }), "choices"],
    ["empty choices", JSON.stringify({ id: "x", model: "m", choices: [] }), "choices"],
    ["a choice without a message", JSON.stringify({ model: "m", choices: [{ index: 0 }] }), "message"],
    [
      "a token count JSON.parse reads as Infinity",
      `{"model":"m","choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":1e400,"completion_tokens":1}}`,
      "usage.prompt_tokens"
    ],
    [
      "a negative token count",
      JSON.stringify({
        model: "m",
        choices: [{ message: { content: "x" } }],
        usage: { prompt_tokens: 1, completion_tokens: -3 }
      }),
      "usage.completion_tokens"
    ],
    ["not JSON", "{\"id\": \"x\", \"choices\": [", "not valid JSON"],
    ["an empty body", "", "empty"],
    ["an HTML page", "<html><body>Welcome to the captive portal</body></html>", "not valid JSON"],
    ["invalid UTF-8", new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), "UTF-8"],
    ["JSON nested a million levels deep", "[".repeat(1_000_000) + "]".repeat(1_000_000), "deeper than 64"],
    [
      "deep nesting inside a valid completion",
      JSON.stringify({ model: "m", choices: [{ message: { content: "x" } }] }).replace(
        "\"x\"}",
        `"x", "extra": ${"[".repeat(100_000)}${"]".repeat(100_000)}}`
      ),
      "deeper than 64"
    ]
  ]
  for (const [name, body, expected] of cases) {
    it.live(`${name} is a ResponseDecodeError`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(createWith(body))
        const detail = decodeFailure(error)
        assert.include(detail, expected)
        assert.isAtMost(detail.length, 513)
      }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
  }

  it.live("nesting up to the limit is accepted", () =>
    Effect.gen(function*() {
      const nested = `${"[".repeat(50)}${"]".repeat(50)}`
      const completion = yield* createWith(
        `{"model":"m","choices":[{"message":{"content":"ok"},"x_provider":{"content":${nested}}}]}`
      )
      assert.strictEqual(ChatCompletion.text(completion), "ok")
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})

describe("maxResponseBytes", () => {
  const body = JSON.stringify(TestServer.completion("m", "x".repeat(1000)))

  it.live("a body of exactly the limit is read; one byte less is refused", () =>
    Effect.gen(function*() {
      const size = Buffer.byteLength(body)
      const completion = yield* createWith(body, { maxResponseBytes: size })
      assert.strictEqual(ChatCompletion.text(completion).length, 1000)
      const error = yield* Effect.flip(createWith(body, { maxResponseBytes: size - 1 }))
      assert.include(decodeFailure(error), `exceeds the limit of ${size - 1} bytes`)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a larger content-length is refused before the body is read, and the connection closed", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make((_, res) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": String(100 * 1024 * 1024) })
        res.write("{") // then nothing: the client must not wait for the other 100 MiB
      })
      const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl, maxResponseBytes: 1024 * 1024 })
      const error = yield* Effect.flip(chat.create(request))
      assert.include(decodeFailure(error), "of 104857600 bytes (content-length) exceeds the limit of 1048576 bytes")
      yield* server.awaitConnections((open) => open === 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("an endless chunked body is refused once the limit is passed, and the connection closed", () =>
    Effect.gen(function*() {
      let written = 0
      const piece = "x".repeat(64 * 1024)
      const server = yield* TestServer.make(async (_, res) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.write("{\"model\":\"m\",\"pad\":\"")
        while (!res.destroyed) {
          // write until the client hangs up, honouring back-pressure
          const drained = res.write(piece)
          written += piece.length
          if (!drained) {
            await new Promise<void>((resolve) => {
              const resume = () => {
                res.off("drain", resume).off("close", resume)
                resolve()
              }
              res.on("drain", resume).on("close", resume)
            })
          }
        }
      })
      const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl, maxResponseBytes: 256 * 1024 })
      const error = yield* Effect.flip(chat.create(request))
      assert.include(decodeFailure(error), "exceeds the limit of 262144 bytes")
      yield* server.awaitConnections((open) => open === 0)
      // the client stopped early: what was written is the limit plus socket buffers, not an unbounded body
      assert.isBelow(written, 16 * 1024 * 1024)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
