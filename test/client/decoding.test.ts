import { assert, describe, it } from "@effect/vitest"
import { ChatClient, ChatCompletion, Fallback, LlmError, Observability } from "@resilient-llm/core"
import { FakeProvider } from "@resilient-llm/testing"
import { Effect, Metric, Stream } from "effect"
import * as Fake from "../support/Fake.js"

// What decoding refuses and what it keeps, end to end: a provider's body over real HTTP, through
// OpenAiCompatible and the patterns.

const json = { "content-type": "application/json" }

const completionBody = (fields: Record<string, unknown>) =>
  JSON.stringify({ id: "x", object: "chat.completion", created: 1, model: "broken", ...fields })

const prompt = ChatCompletion.prompt("Which model answers?")

describe("decoding over HTTP", () => {
  it.live("empty or missing `choices` is a ResponseDecodeError: retryable, and a chain falls back", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({
        models: {
          broken: {
            script: [
              FakeProvider.raw({ status: 200, headers: json, body: completionBody({ choices: [] }) }),
              FakeProvider.raw({ status: 200, headers: json, body: completionBody({}) })
            ]
          },
          backup: { reply: "backup here." }
        }
      })
      const client = Fake.client(fake.url)
      for (const _ of [1, 2]) {
        const error = yield* ChatClient.create(Fake.request("broken")).pipe(Effect.flip, Effect.provide(client))
        assert.strictEqual(error._tag, "ResponseDecodeError")
        assert.include(error.message, "choices")
        assert.isTrue(LlmError.isRetryable(error))
        assert.isTrue(LlmError.isFallbackable(error))
      }
      yield* fake.setModel("broken", {
        script: () => FakeProvider.raw({ status: 200, headers: json, body: completionBody({ choices: [] }) })
      })
      const served = yield* Fallback.chain(["broken", "backup"])(prompt).pipe(Effect.provide(client))
      assert.strictEqual(served.model, "backup")
      assert.strictEqual(ChatCompletion.text(served.value), "backup here.")
      assert.deepStrictEqual(served.attempts.map((a) => [a.model, a.error?._tag]), [
        ["broken", "ResponseDecodeError"],
        ["backup", undefined]
      ])
    }))

  it.live("a token count of 1e400 is refused, the chain falls back, and the token counter stays finite", () =>
    Effect.gen(function*() {
      const body = `{"model":"broken","choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],` +
        `"usage":{"prompt_tokens":1e400,"completion_tokens":2,"total_tokens":1e400}}`
      const fake = yield* Fake.start({
        models: {
          broken: { script: () => FakeProvider.raw({ status: 200, headers: json, body }) },
          backup: { reply: "backup here.", usage: { prompt_tokens: 7, completion_tokens: 3 } }
        }
      })
      const served = yield* Fallback.chain(["broken", "backup"])(prompt).pipe(Effect.provide(Fake.client(fake.url)))
      assert.strictEqual(served.model, "backup")
      const [failed] = served.attempts
      assert.strictEqual(failed.error?._tag, "ResponseDecodeError")
      assert.include(failed.error?.message, "usage.prompt_tokens")
      const counted = (model: string, kind: string) =>
        Effect.map(Metric.value(Metric.withAttributes(Observability.tokens, { model, kind })), (state) => state.count)
      assert.strictEqual(yield* counted("broken", "input"), 0)
      assert.strictEqual(yield* counted("backup", "input"), 7)
      assert.strictEqual(yield* counted("backup", "output"), 3)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.live("a stream's reasoning text and a provider's own fields reach the caller", () =>
    Effect.gen(function*() {
      const chunk = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
        `data: ${
          JSON.stringify({
            id: "c",
            object: "chat.completion.chunk",
            created: 1,
            model: "reasoner",
            choices: [{ index: 0, delta, finish_reason: null }],
            ...extra
          })
        }\n\n`
      const fake = yield* Fake.start({
        models: {
          reasoner: {
            script: [FakeProvider.raw({
              status: 200,
              headers: { "content-type": "text/event-stream" },
              body: [
                chunk({ role: "assistant", reasoning_content: "Two and two " }),
                chunk({ reasoning_content: "make four." }),
                chunk({ content: "4" }, { x_groq: { id: "req_1" } }),
                "data: [DONE]\n\n"
              ].join("")
            })]
          }
        }
      })
      const chunks = yield* ChatClient.stream(Fake.request("reasoner")).pipe(
        Stream.runCollect,
        Effect.provide(Fake.client(fake.url))
      )
      assert.strictEqual(chunks.map(ChatCompletion.chunkReasoning).join(""), "Two and two make four.")
      assert.strictEqual(chunks.map(ChatCompletion.chunkText).join(""), "4")
      assert.deepStrictEqual(chunks[2]?.x_groq, { id: "req_1" })
    }))
})
