import { assert, describe, it } from "@effect/vitest"
import { ChatClient, ChatCompletion } from "@resilient-llm/core"
import { Effect, Schema, Stream } from "effect"
import * as fc from "fast-check"
import * as Fake from "../support/Fake.js"
import { loadDocument } from "./openApi.js"
import { expectConformingRequests, requestErrors } from "./RequestConformance.js"
import { arbitrary } from "./schemaArbitrary.js"

// Every request body our client sends must be a `CreateChatCompletionRequest` of the official
// spec. These requests name every field of `ChatRequest`, in every shape the spec gives it; the
// FakeProvider records what went over the wire and the spec's validator checks each body.

const model = "gpt-test"

const weatherTool: ChatCompletion.Tool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["city", "unit"],
      additionalProperties: false
    },
    strict: true
  }
}

const representative: ReadonlyArray<readonly [string, ChatCompletion.ChatRequest]> = [
  ["one user message", { model, messages: [{ role: "user", content: "Hello" }] }],
  ["every role, content parts with an image, a tool call and its result", {
    model,
    messages: [
      { role: "developer", content: "Answer in French." },
      { role: "system", content: [{ type: "text", text: "You are a weather assistant." }] },
      {
        role: "user",
        name: "ada",
        content: [
          { type: "text", text: "What is the weather where this photo was taken?" },
          { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=", detail: "low" } }
        ]
      },
      {
        role: "assistant",
        content: null,
        tool_calls: [{
          id: "call_1",
          type: "function",
          function: { name: "get_weather", arguments: "{\"city\":\"Paris\",\"unit\":\"celsius\"}" }
        }]
      },
      { role: "tool", tool_call_id: "call_1", content: "{\"temperature\":21}" },
      { role: "assistant", content: "Il fait 21 °C à Paris." },
      { role: "user", content: "Merci !" }
    ]
  }],
  ["tools with a named tool_choice and every sampling field", {
    model,
    messages: [{ role: "user", content: "Weather in Oslo?" }],
    tools: [weatherTool],
    tool_choice: { type: "function", function: { name: "get_weather" } },
    temperature: 0.7,
    top_p: 0.9,
    max_tokens: 256,
    seed: 42,
    user: "user-1234",
    stop: "\n\n"
  }],
  ["tool_choice as a mode", {
    model,
    messages: [{ role: "user", content: "Weather in Lima?" }],
    tools: [weatherTool],
    tool_choice: "required"
  }],
  ["response_format json_schema, stop as an array, a provider extension", {
    model,
    messages: [{ role: "user", content: "Give me a city and its country." }],
    response_format: {
      type: "json_schema",
      json_schema: {
        name: "city",
        strict: true,
        schema: {
          type: "object",
          properties: { city: { type: "string" }, country: { type: "string" } },
          required: ["city", "country"],
          additionalProperties: false
        }
      }
    },
    stop: ["END", "STOP"],
    reasoning_effort: "low"
  }],
  ["response_format json_object", {
    model,
    messages: [{ role: "system", content: "Reply in JSON." }, { role: "user", content: "A colour." }],
    response_format: { type: "json_object" },
    temperature: 0
  }],
  ["stream_options.include_usage (dropped by create, kept by stream)", {
    model,
    messages: [{ role: "user", content: "Count to three." }],
    stream_options: { include_usage: true },
    max_tokens: 16
  }]
]

/** What `create` sends: the request without `stream` or `stream_options`. */
const createBody = (request: ChatCompletion.ChatRequest) => {
  const { stream: _stream, stream_options: _options, ...rest } = request
  return rest
}

/** What `stream` sends: the request with `stream: true`, `stream_options` as given. */
const streamBody = (request: ChatCompletion.ChatRequest) => ({ ...request, stream: true })

describe("conformance with the OpenAI OpenAPI spec: requests", () => {
  it.live("every request our client sends, created or streamed, is a CreateChatCompletionRequest", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ models: { [model]: { reply: "ok" } } })
      yield* Effect.forEach(representative, ([, request]) =>
        Effect.andThen(
          ChatClient.create(request),
          ChatClient.stream(request).pipe(Stream.runDrain)
        )).pipe(Effect.provide(Fake.client(fake.url)))

      const received = yield* fake.requests
      assert.strictEqual(received.length, representative.length * 2)
      for (const [index, [name, request]] of representative.entries()) {
        const created = received[index * 2]
        const streamed = received[index * 2 + 1]
        assert.deepStrictEqual(created.body, createBody(request), `${name}: the create body is the request`)
        assert.deepStrictEqual(streamed.body, streamBody(request), `${name}: the stream body is the request`)
        for (const sent of [created, streamed]) {
          assert.strictEqual(sent.status, 200, `${name}: the fake accepted it`)
          assert.deepStrictEqual(yield* requestErrors(sent.body), [], `${name}: ${JSON.stringify(sent.body)}`)
        }
      }
      assert.strictEqual(yield* expectConformingRequests(fake), representative.length * 2)
    }))

  it.effect("the validator is not vacuous: it refuses bodies that break the spec, and so do our types", () =>
    Effect.gen(function*() {
      const hi = [{ role: "user", content: "hi" }]
      // [what is wrong, the body, whether ChatRequest's schema (and so its type) refuses it too]
      const invalid: ReadonlyArray<readonly [string, unknown, boolean]> = [
        ["no messages", { model, messages: [] }, false],
        ["no model", { messages: hi }, true],
        ["an unknown role", { model, messages: [{ role: "robot", content: "hi" }] }, true],
        ["a tool message without tool_call_id", { model, messages: [{ role: "tool", content: "42" }] }, true],
        ["a user message without content", { model, messages: [{ role: "user" }] }, true],
        ["five stop sequences", { model, messages: hi, stop: ["a", "b", "c", "d", "e"] }, false],
        ["a fractional seed", { model, messages: hi, seed: 1.5 }, false],
        ["temperature out of range", { model, messages: hi, temperature: 3 }, false],
        ["an image part without a URL", {
          model,
          messages: [{ role: "user", content: [{ type: "image_url", image_url: {} }] }]
        }, true],
        [
          "an unknown content part",
          { model, messages: [{ role: "user", content: [{ type: "txt", text: "hi" }] }] },
          true
        ],
        ["an image in a system message", {
          model,
          messages: [{ role: "system", content: [{ type: "image_url", image_url: { url: "https://x.test/a.png" } }] }]
        }, true],
        ["an unknown tool type", { model, messages: hi, tools: [{ type: "fucntion", function: { name: "f" } }] }, true],
        ["a function without a name", { model, messages: hi, tools: [{ type: "function", function: {} }] }, true],
        ["an unknown tool_choice mode", { model, messages: hi, tool_choice: "requried" }, true],
        ["a named tool_choice without a name", {
          model,
          messages: hi,
          tool_choice: { type: "function", function: {} }
        }, true],
        ["an unknown response_format", { model, messages: hi, response_format: { type: "json" } }, true],
        ["a json_schema format without a name", {
          model,
          messages: hi,
          response_format: { type: "json_schema", json_schema: { schema: {} } }
        }, true]
      ]
      const isChatRequest = Schema.is(ChatCompletion.ChatRequest)
      for (const [name, body, typed] of invalid) {
        const errors = yield* requestErrors(body)
        assert.isAbove(errors.length, 0, `${name} must be refused: ${JSON.stringify(body)}`)
        if (typed) assert.isFalse(isChatRequest(body), `ChatRequest must refuse ${name}`)
      }
    }))

  it.live(
    "every request the spec allows is a ChatRequest (our types are no stricter than the spec), sent unchanged",
    () =>
      Effect.gen(function*() {
        const document = loadDocument()
        const schema = document.components.schemas["CreateChatCompletionRequest"]
        assert.isDefined(schema)
        const isChatRequest = Schema.is(ChatCompletion.ChatRequest)
        const candidates = fc.sample(arbitrary(document, schema, { maxDepth: 5 }), { numRuns: 150, seed: 20261126 })
        const requests: Array<ChatCompletion.ChatRequest> = []
        for (const candidate of candidates) {
          if ((yield* requestErrors(candidate)).length > 0) continue
          if (!isChatRequest(candidate)) return assert.fail(`the spec allows it: ${JSON.stringify(candidate)}`)
          // `create` leaves streaming to `stream`: compare like with like
          requests.push({ ...createBody(candidate), model })
        }
        assert.isAtLeast(requests.length, 140, `only ${requests.length} of 150 candidates were valid`)
        const fake = yield* Fake.start({ models: { [model]: { reply: "ok" } } })
        yield* Effect.forEach(requests, (request) => Effect.result(ChatClient.create(request))).pipe(
          Effect.provide(Fake.client(fake.url))
        )
        const received = yield* fake.requests
        assert.strictEqual(received.length, requests.length, "every request was sent")
        for (const [index, request] of requests.entries()) {
          assert.deepStrictEqual(received[index].body, JSON.parse(JSON.stringify(request)))
        }
      }),
    60_000
  )
})
