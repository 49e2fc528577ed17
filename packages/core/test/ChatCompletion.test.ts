import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion } from "@resilient-llm/core"
import { Effect, Option, Schema } from "effect"

describe("ChatCompletion.PromptRequest", () => {
  it("keeps every named field of a request but model, with its type, and lets extra fields through", () => {
    const request: ChatCompletion.PromptRequest = {
      messages: [{ role: "user", content: "Name a prime." }],
      temperature: 0,
      stop: ["\n"],
      // a provider's own extension
      reasoning_effort: "low"
    }
    const messages: ReadonlyArray<ChatCompletion.ChatMessage> = request.messages
    const temperature: number | null | undefined = request.temperature
    assert.strictEqual(messages[0].content, "Name a prime.")
    assert.strictEqual(temperature, 0)
    assert.strictEqual(request.reasoning_effort, "low")

    // @ts-expect-error a request needs its messages: only extra fields is not a request
    const nothing: ChatCompletion.PromptRequest = { nothing: 1 }
    // @ts-expect-error `messages` is a list of messages, not `unknown`
    const text: ChatCompletion.PromptRequest = { messages: "Name a prime." }
    // @ts-expect-error a named field keeps its type
    const hot: ChatCompletion.PromptRequest = { messages: [], temperature: "hot" }
    // @ts-expect-error a message keeps its type
    const noRole: ChatCompletion.PromptRequest = { messages: [{ content: "hi" }] }

    // and the schema refuses at run time what the types refuse
    const isPromptRequest = Schema.is(ChatCompletion.PromptRequest)
    assert.isFalse(isPromptRequest(nothing))
    assert.isFalse(isPromptRequest(text))
    assert.isFalse(isPromptRequest(hot))
    assert.isFalse(isPromptRequest(noRole))
    assert.isTrue(isPromptRequest(request))
  })

  it("accepts null where the OpenAI spec does (temperature, top_p, stop, seed, max_tokens, stream_options)", () => {
    const defaults: ChatCompletion.PromptRequest = {
      messages: [{ role: "user", content: "hi" }],
      temperature: null,
      top_p: null,
      stop: null,
      seed: null,
      max_tokens: null,
      stream_options: null
    }
    assert.isTrue(Schema.is(ChatCompletion.PromptRequest)(defaults))
    assert.isFalse(Schema.is(ChatCompletion.PromptRequest)({ ...defaults, user: null }), "user is not nullable")
  })
})

describe("ChatCompletion.withModel", () => {
  it("sets the model and keeps every other field, extensions included", () => {
    const request: ChatCompletion.PromptRequest = {
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 8,
      reasoning_effort: "low"
    }
    const chat: ChatCompletion.ChatRequest = ChatCompletion.withModel(request, "gpt-4o")
    assert.deepStrictEqual(chat, {
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 8,
      reasoning_effort: "low",
      model: "gpt-4o"
    })
    assert.deepStrictEqual(request, {
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 8,
      reasoning_effort: "low"
    })
  })

  it("replaces a model carried among the extra fields", () => {
    const request: ChatCompletion.PromptRequest = { messages: [], model: "stale" }
    assert.strictEqual(ChatCompletion.withModel(request, "fresh").model, "fresh")
  })

  it.effect("what it builds encodes as a ChatRequest", () =>
    Effect.gen(function*() {
      const encoded = yield* ChatCompletion.encodeRequest(
        ChatCompletion.withModel(ChatCompletion.prompt("hi", { seed: 7, user_tier: "free" }), "m")
      )
      assert.deepStrictEqual(encoded, {
        model: "m",
        messages: [{ role: "user", content: "hi" }],
        seed: 7,
        user_tier: "free"
      })
    }))
})

describe("ChatCompletion.decodeCompletion", () => {
  it.effect("tolerates what providers differ in: extra fields, no usage, no id, content null", () =>
    Effect.gen(function*() {
      const completion = yield* ChatCompletion.decodeCompletion({
        object: "chat.completion",
        created: 1_700_000_000,
        system_fingerprint: "fp_1",
        model: "m",
        choices: [{ message: { content: null, annotations: [] }, logprobs: null }]
      })
      // the fields the schema names, with their defaults; the others are left out
      assert.deepStrictEqual(completion, {
        id: "",
        model: "m",
        choices: [{ index: 0, message: { role: "assistant", content: null }, finish_reason: null }]
      })
      assert.strictEqual(ChatCompletion.text(completion), "")
      assert.isTrue(Option.isNone(ChatCompletion.tokens(completion)))
      // an explicit `undefined` reads as absent
      const undefinedFields = yield* ChatCompletion.decodeCompletion({
        id: undefined,
        model: "m",
        choices: [{ message: { role: undefined, content: "hi" }, finish_reason: undefined }]
      })
      assert.deepStrictEqual(undefinedFields.choices[0], {
        index: 0,
        message: { role: "assistant", content: "hi" },
        finish_reason: null
      })
      assert.strictEqual(undefinedFields.id, "")
    }))

  it.effect("fails on what would break a caller: no choices, or none at all", () =>
    Effect.gen(function*() {
      for (const body of [{ model: "m", choices: [] }, { model: "m" }, { choices: [{ message: {} }] }]) {
        const error = yield* Effect.flip(ChatCompletion.decodeCompletion(body))
        assert.strictEqual(error._tag, "SchemaError", JSON.stringify(body))
      }
    }))

  it.effect("a chunk and a request decode the same way: defaults for the chunk, extensions kept in the request", () =>
    Effect.gen(function*() {
      const chunk = yield* ChatCompletion.decodeChunk({
        choices: [{ delta: { content: "a", extra: 2 }, logprobs: null }],
        obfuscation: "x"
      })
      assert.deepStrictEqual(chunk, {
        id: "",
        model: "",
        choices: [{ index: 0, delta: { content: "a" }, finish_reason: null }]
      })
      const request = yield* Schema.decodeUnknownEffect(ChatCompletion.ChatRequest)({
        model: "m",
        messages: [{ role: "user", content: "hi", cache_control: { type: "ephemeral" } }],
        reasoning_effort: "low"
      })
      assert.deepStrictEqual(request, {
        model: "m",
        messages: [{ role: "user", content: "hi", cache_control: { type: "ephemeral" } }],
        reasoning_effort: "low"
      })
    }))
})

describe("ChatCompletion.prompt", () => {
  it("one user message, and the options with their types", () => {
    const request = ChatCompletion.prompt("Name a prime.", { temperature: 0, max_tokens: 16, logprobs: true })
    assert.deepStrictEqual(request, {
      temperature: 0,
      max_tokens: 16,
      logprobs: true,
      messages: [{ role: "user", content: "Name a prime." }]
    })
    // @ts-expect-error an option keeps its type
    const hot = ChatCompletion.prompt("hi", { temperature: "hot" })
    assert.strictEqual<unknown>(hot.temperature, "hot", "refused by the types; at run time passed on as given")
  })
})
