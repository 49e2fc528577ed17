import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ChatClient, ChatCompletion, LlmError, Retry } from "@resilient-llm/core"
import { Providers } from "@resilient-llm/openai"
import { FakeProvider } from "@resilient-llm/testing"
import { Effect, Fiber, Layer, Redacted, Stream } from "effect"
import * as Fake from "../support/Fake.js"

const model = "gpt-test"
const usage = { prompt_tokens: 11, completion_tokens: 4, total_tokens: 15 }

describe("OpenAiCompatible against FakeProvider: success", () => {
  it.live("create returns the completion with its usage", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ models: { [model]: { reply: "The sky is blue.", usage } } })
      const completion = yield* ChatClient.create(Fake.request(model, "What colour is the sky?")).pipe(
        Effect.provide(Fake.client(fake.url))
      )
      assert.strictEqual(ChatCompletion.text(completion), "The sky is blue.")
      assert.strictEqual(completion.model, model)
      assert.strictEqual(completion.choices[0].finish_reason, "stop")
      assert.deepStrictEqual(completion.usage, usage)
      const [received] = yield* fake.requests
      assert.strictEqual(received.status, 200)
      assert.isFalse(received.stream)
      assert.deepStrictEqual(received.body, {
        model,
        messages: [{ role: "user", content: "What colour is the sky?" }]
      })
    }))

  it.live("stream assembles the text from its chunks and ends with the usage chunk", () =>
    Effect.gen(function*() {
      const reply = "Streams arrive one word at a time, then a usage chunk."
      const fake = yield* Fake.start({ models: { [model]: { reply, usage, chunkDelay: "1 millis" } } })
      const chunks = yield* ChatClient.stream({
        ...Fake.request(model),
        stream_options: { include_usage: true }
      }).pipe(Stream.runCollect, Effect.provide(Fake.client(fake.url)))
      const texts = chunks.map(ChatCompletion.chunkText)
      assert.strictEqual(texts.join(""), reply)
      assert.isAbove(texts.filter((text) => text !== "").length, 5, "the reply came in several chunks")
      const last = chunks[chunks.length - 1]
      assert.deepStrictEqual(last.choices, [])
      assert.deepStrictEqual(last.usage, usage)
      assert.isTrue(chunks.some((chunk) => chunk.choices[0]?.finish_reason === "stop"))
      const [received] = yield* fake.requests
      assert.isTrue(received.stream)
    }))

  it.live("a stream without include_usage has no usage chunk", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ models: { [model]: { reply: "two words", usage } } })
      const chunks = yield* ChatClient.stream(Fake.request(model)).pipe(
        Stream.runCollect,
        Effect.provide(Fake.client(fake.url))
      )
      assert.strictEqual(chunks.map(ChatCompletion.chunkText).join(""), "two words")
      assert.isTrue(chunks.every((chunk) => chunk.usage === undefined || chunk.usage === null))
    }))
})

describe("interruption releases the server side", () => {
  it.live("interrupting a create waiting on a hanging model closes its connection and request", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ models: { [model]: { script: [FakeProvider.hang()] } } })
      const fiber = yield* ChatClient.create(Fake.request(model)).pipe(
        Effect.provide(Fake.client(fake.url)),
        Effect.forkChild
      )
      yield* Fake.eventually(fake.activeRequests, (n) => n === 1)
      assert.strictEqual(yield* fake.openConnections, 1)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* Fake.eventually(fake.activeRequests, (n) => n === 0), 0)
      assert.strictEqual(yield* Fake.eventually(fake.openConnections, (n) => n === 0), 0)
    }))

  it.live("a timeout on a hanging model is a TimeoutError and releases the request", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ models: { [model]: { script: [FakeProvider.hang()] } } })
      const error = yield* ChatClient.create(Fake.request(model)).pipe(
        Retry.withTimeout({ model, timeout: "100 millis" }),
        Effect.flip,
        Effect.provide(Fake.client(fake.url))
      )
      assert.strictEqual(error._tag, "TimeoutError")
      assert.isTrue(LlmError.isRetryable(error))
      assert.strictEqual(yield* Fake.eventually(fake.activeRequests, (n) => n === 0), 0)
      assert.strictEqual(yield* Fake.eventually(fake.openConnections, (n) => n === 0), 0)
    }))

  it.live("interrupting a stream's reader mid-stream releases the request", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ models: { [model]: { script: [FakeProvider.hang({ afterChunks: 2 })] } } })
      const received: Array<string> = []
      const fiber = yield* ChatClient.stream(Fake.request(model)).pipe(
        Stream.runForEach((chunk) => Effect.sync(() => received.push(ChatCompletion.chunkText(chunk)))),
        Effect.provide(Fake.client(fake.url)),
        Effect.forkChild
      )
      yield* Fake.eventually(Effect.sync(() => received.length), (n) => n === 2)
      assert.strictEqual(yield* fake.activeRequests, 1)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* Fake.eventually(fake.activeRequests, (n) => n === 0), 0)
      assert.strictEqual(yield* Fake.eventually(fake.openConnections, (n) => n === 0), 0)
    }))
})

describe("Providers.layer over two FakeProviders", () => {
  it.live("routes by model, and each server sees only its own key", () =>
    Effect.gen(function*() {
      const alphaKey = "sk-alpha-0123456789abcdef"
      const betaKey = "sk-beta-fedcba9876543210"
      const alpha = yield* Fake.start({ apiKey: alphaKey, models: { "alpha-large": {}, "alpha-small": {} } })
      const beta = yield* Fake.start({ apiKey: betaKey, models: { "beta-1": {} } })
      const ChatLive = Providers.layer([
        { name: "alpha", baseUrl: alpha.url, apiKey: Redacted.make(alphaKey), models: ["alpha-*"] },
        { name: "beta", baseUrl: beta.url, apiKey: Redacted.make(betaKey), models: ["beta-1"] }
      ]).pipe(Layer.provide(NodeHttpClient.layerUndici), Layer.orDie)

      const served = yield* Effect.forEach(
        ["alpha-large", "beta-1", "alpha-small", "beta-1"],
        (name) => Effect.map(ChatClient.create(Fake.request(name)), (completion) => completion.model)
      ).pipe(Effect.provide(ChatLive))
      assert.deepStrictEqual(served, ["alpha-large", "beta-1", "alpha-small", "beta-1"])

      const unknown = yield* ChatClient.create(Fake.request("gamma")).pipe(Effect.flip, Effect.provide(ChatLive))
      assert.strictEqual(unknown._tag, "ModelNotFoundError")

      const toAlpha = yield* alpha.requests
      const toBeta = yield* beta.requests
      assert.deepStrictEqual(toAlpha.map((r) => r.model), ["alpha-large", "alpha-small"])
      assert.deepStrictEqual(toBeta.map((r) => r.model), ["beta-1", "beta-1"])
      assert.deepStrictEqual(toAlpha.map((r) => r.authorization), [`Bearer ${alphaKey}`, `Bearer ${alphaKey}`])
      assert.deepStrictEqual(toBeta.map((r) => r.authorization), [`Bearer ${betaKey}`, `Bearer ${betaKey}`])
      // and nothing in a body carries a key either
      for (const r of [...toAlpha, ...toBeta]) {
        assert.notInclude(JSON.stringify(r.body), "sk-")
      }
    }))
})
