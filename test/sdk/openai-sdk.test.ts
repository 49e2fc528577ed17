import { assert, describe, it } from "@effect/vitest"
import { FakeProvider } from "@resilient-llm/testing"
import { Effect } from "effect"
import OpenAI from "openai"
import * as Fake from "../support/Fake.js"

// The official `openai` SDK against FakeProvider: if the SDK is satisfied, the fake speaks the
// real protocol, and what our client is tested against is what providers send.

const apiKey = "sk-fake-sdk-0123456789abcdef"
const model = "gpt-test"

const sdk = (fake: FakeProvider.Service) => new OpenAI({ baseURL: fake.url, apiKey, maxRetries: 0, timeout: 5_000 })

describe("the official openai SDK against FakeProvider", () => {
  it.live("a completion", () =>
    Effect.gen(function*() {
      const usage = { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 }
      const fake = yield* Fake.start({ apiKey, models: { [model]: { reply: "Hello from the fake.", usage } } })
      const completion = yield* Effect.promise(() =>
        sdk(fake).chat.completions.create({
          model,
          messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }],
          temperature: 0.2
        })
      )
      assert.strictEqual(completion.object, "chat.completion")
      assert.strictEqual(completion.model, model)
      assert.strictEqual(completion.choices[0].message.role, "assistant")
      assert.strictEqual(completion.choices[0].message.content, "Hello from the fake.")
      assert.strictEqual(completion.choices[0].finish_reason, "stop")
      assert.strictEqual(completion.usage?.total_tokens, 12)
      const [received] = yield* fake.requests
      assert.strictEqual(received.authorization, `Bearer ${apiKey}`)
      assert.strictEqual(received.status, 200)
    }))

  it.live("a stream, iterated with the SDK and assembled", () =>
    Effect.gen(function*() {
      const reply = "A streamed answer arrives word by word."
      const fake = yield* Fake.start({ apiKey, models: { [model]: { reply, chunkDelay: "1 millis" } } })
      const { text, chunks, usage } = yield* Effect.promise(async () => {
        const stream = await sdk(fake).chat.completions.create({
          model,
          messages: [{ role: "user", content: "Stream please" }],
          stream: true,
          stream_options: { include_usage: true }
        })
        let text = ""
        let chunks = 0
        let usage: OpenAI.CompletionUsage | undefined
        for await (const chunk of stream) {
          assert.strictEqual(chunk.object, "chat.completion.chunk")
          chunks++
          text += chunk.choices[0]?.delta.content ?? ""
          if (chunk.usage) usage = chunk.usage
        }
        return { text, chunks, usage }
      })
      assert.strictEqual(text, reply)
      assert.isAbove(chunks, 5)
      assert.isDefined(usage)
      assert.strictEqual(usage?.completion_tokens, reply.split(" ").length)
      const [received] = yield* fake.requests
      assert.isTrue(received.stream)
    }))

  it.live("a 429 is the SDK's own RateLimitError, with the retry-after header", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({
        apiKey,
        models: { [model]: { script: [FakeProvider.rateLimited({ retryAfter: { seconds: 3 } })] } }
      })
      const error = yield* Effect.flip(Effect.tryPromise({
        try: () => sdk(fake).chat.completions.create({ model, messages: [{ role: "user", content: "Hi" }] }),
        catch: (error) => error
      }))
      assert.instanceOf(error, OpenAI.RateLimitError)
      if (!(error instanceof OpenAI.RateLimitError)) return
      assert.strictEqual(error.status, 429)
      assert.strictEqual(error.code, "rate_limit_exceeded")
      assert.strictEqual(error.headers.get("retry-after"), "3")
      assert.strictEqual(yield* fake.requestCount, 1, "maxRetries: 0 means one request")
    }))

  it.live("an unknown model is the SDK's NotFoundError, a wrong key its AuthenticationError", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ apiKey, models: { [model]: {} } })
      const attempt = (client: OpenAI, name: string) =>
        Effect.flip(Effect.tryPromise({
          try: () => client.chat.completions.create({ model: name, messages: [{ role: "user", content: "Hi" }] }),
          catch: (error) => error
        }))
      const notFound = yield* attempt(sdk(fake), "no-such-model")
      assert.instanceOf(notFound, OpenAI.NotFoundError)
      const wrongKey = new OpenAI({ baseURL: fake.url, apiKey: "sk-wrong", maxRetries: 0 })
      const unauthorised = yield* attempt(wrongKey, model)
      assert.instanceOf(unauthorised, OpenAI.AuthenticationError)
    }))

  it.live("the SDK lists the fake's models", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ apiKey, models: { [model]: {}, "claude-test": {} } })
      const ids = yield* Effect.promise(async () => {
        const ids: Array<string> = []
        for await (const entry of sdk(fake).models.list()) ids.push(entry.id)
        return ids
      })
      assert.sameMembers(ids, [model, "claude-test"])
    }))
})
