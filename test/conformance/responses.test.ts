import { assert, describe, it } from "@effect/vitest"
import { ChatClient, ChatCompletion } from "@resilient-llm/core"
import { FakeProvider } from "@resilient-llm/testing"
import { Effect, Result, Schema, Stream } from "effect"
import * as fc from "fast-check"
import * as Fake from "../support/Fake.js"
import { isRecord, loadDocument, type SchemaValidator, validator } from "./openApi.js"
import { arbitrary } from "./schemaArbitrary.js"

// What a provider sends must reach the caller whole: every response and chunk the spec allows
// decodes and re-encodes to the same JSON, the fields the spec names typed, and the fields it
// does not (generated as `x_provider_extension` on every object that allows them) kept.

const document = loadDocument()

/** Values of a spec schema that the spec's own validator accepts. */
const conforming = (validate: SchemaValidator): fc.Arbitrary<unknown> => {
  const schema = document.components.schemas[validate.name]
  assert.isDefined(schema)
  return arbitrary(document, schema).filter((value) => validate.errors(value).length === 0)
}

/** A generator that drifted from the spec would quietly test nothing: most candidates must pass. */
const expectMostlyValid = (validate: SchemaValidator, count: number, seed: number) => {
  const schema = document.components.schemas[validate.name]
  assert.isDefined(schema)
  const candidates = fc.sample(arbitrary(document, schema), { numRuns: count, seed })
  const valid = candidates.filter((value) => validate.errors(value).length === 0).length
  assert.isAtLeast(valid, count * 0.8, `${valid} of ${count} generated ${validate.name} values are valid`)
}

/** The value as JSON carries it (what a provider's body parses to). */
const asJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value))

/** The paths (array indices as `[]`) of the named fields in a JSON value: what a run covered. */
const paths = (value: unknown, prefix = "", into = new Set<string>()): Set<string> => {
  if (Array.isArray(value)) { for (const item of value) paths(item, `${prefix}[]`, into) }
  else if (isRecord(value)) {
    for (const [key, item] of Object.entries(value)) {
      into.add(`${prefix}.${key}`)
      // an extension's own keys are random
      if (key !== "x_provider_extension" && key !== "metadata") paths(item, `${prefix}.${key}`, into)
    }
  }
  return into
}

const hasChoices = (value: unknown): value is { readonly choices: ReadonlyArray<unknown> } =>
  isRecord(value) && Array.isArray(value.choices)

const decodeCompletion = Schema.decodeUnknownResult(ChatCompletion.ChatCompletion)
const encodeCompletion = Schema.encodeUnknownResult(ChatCompletion.ChatCompletion)
const decodeChunk = Schema.decodeUnknownResult(ChatCompletion.ChatCompletionChunk)
const encodeChunk = Schema.encodeUnknownResult(ChatCompletion.ChatCompletionChunk)

/** What the named fields of a completion covered in a run must include. */
const completionPaths = [
  ".object",
  ".created",
  ".system_fingerprint",
  ".service_tier",
  ".choices[].logprobs.content[].top_logprobs[].bytes",
  ".choices[].logprobs.refusal[].logprob",
  ".choices[].message.annotations[].url_citation.url",
  ".choices[].message.audio.transcript",
  ".choices[].message.tool_calls[].function.arguments",
  ".choices[].message.tool_calls[].custom.input",
  ".usage.prompt_tokens_details.cached_tokens",
  ".usage.completion_tokens_details.reasoning_tokens",
  ".x_provider_extension",
  ".choices[].x_provider_extension",
  ".choices[].message.x_provider_extension",
  ".usage.x_provider_extension",
  ".usage.prompt_tokens_details.x_provider_extension",
  ".choices[].message.audio.x_provider_extension",
  ".choices[].message.annotations[].url_citation.x_provider_extension"
]

const chunkPaths = [
  ".object",
  ".created",
  ".system_fingerprint",
  ".service_tier",
  ".obfuscation",
  ".choices[].logprobs.content[].logprob",
  ".choices[].delta.tool_calls[].function.arguments",
  ".choices[].delta.role",
  ".usage.completion_tokens_details.reasoning_tokens",
  ".x_provider_extension",
  ".choices[].delta.x_provider_extension"
]

describe("conformance with the OpenAI OpenAPI spec: responses", () => {
  it.effect(
    "every CreateChatCompletionResponse the spec allows decodes and re-encodes to the same JSON; empty choices are refused",
    () =>
      Effect.gen(function*() {
        const validate = yield* validator("CreateChatCompletionResponse")
        expectMostlyValid(validate, 100, 20261125)
        const covered = new Set<string>()
        let decoded = 0
        let refused = 0
        fc.assert(
          fc.property(conforming(validate), (body) => {
            assert.isTrue(hasChoices(body))
            const raw = asJson(body)
            const result = decodeCompletion(raw)
            if (hasChoices(body) && body.choices.length === 0) {
              // The spec allows it; for a caller a completion with nothing in it is a failure, typed.
              assert.isTrue(Result.isFailure(result), "a completion without choices must not decode")
              refused++
              return
            }
            if (Result.isFailure(result)) return assert.fail(`${JSON.stringify(raw)}\n${result.failure.message}`)
            const encoded = encodeCompletion(result.success)
            if (Result.isFailure(encoded)) return assert.fail(`${JSON.stringify(raw)}\n${encoded.failure.message}`)
            assert.deepStrictEqual(asJson(encoded.success), raw)
            paths(raw, "", covered)
            decoded++
          }),
          { numRuns: 300, seed: 20261125 }
        )
        assert.isAbove(decoded, 200)
        assert.isAbove(refused, 0)
        for (const path of completionPaths) assert.isTrue(covered.has(path), `no generated response had ${path}`)
      }),
    120_000
  )

  it.effect(
    "every CreateChatCompletionStreamResponse the spec allows decodes and re-encodes to the same JSON",
    () =>
      Effect.gen(function*() {
        const validate = yield* validator("CreateChatCompletionStreamResponse")
        expectMostlyValid(validate, 100, 7)
        const covered = new Set<string>()
        fc.assert(
          fc.property(conforming(validate), (body) => {
            const raw = asJson(body)
            const result = decodeChunk(raw)
            if (Result.isFailure(result)) return assert.fail(`${JSON.stringify(raw)}\n${result.failure.message}`)
            const encoded = encodeChunk(result.success)
            if (Result.isFailure(encoded)) return assert.fail(`${JSON.stringify(raw)}\n${encoded.failure.message}`)
            assert.deepStrictEqual(asJson(encoded.success), raw)
            paths(raw, "", covered)
          }),
          { numRuns: 300, seed: 7 }
        )
        for (const path of chunkPaths) assert.isTrue(covered.has(path), `no generated chunk had ${path}`)
      }),
    120_000
  )

  it.live(
    "through the client over HTTP, a completion and a stream's chunks reach the caller with every field they had",
    () =>
      Effect.gen(function*() {
        const completions = yield* validator("CreateChatCompletionResponse")
        const chunks = yield* validator("CreateChatCompletionStreamResponse")
        // A content_filter finish is served as ContentFilterError, by design: not an answer.
        const served = (body: unknown) =>
          hasChoices(body) && body.choices.length > 0 &&
          body.choices.every((choice) => !isRecord(choice) || choice.finish_reason !== "content_filter")
        const bodies = fc.sample(conforming(completions).filter(served), { numRuns: 40, seed: 11 }).map(asJson)
        const streams = fc.sample(fc.array(conforming(chunks).filter(served), { minLength: 1, maxLength: 5 }), {
          numRuns: 10,
          seed: 12
        }).map(asJson)
        const json = { "content-type": "application/json" }
        const sse = { "content-type": "text/event-stream" }
        const model = "gpt-test"
        const fake = yield* Fake.start({
          models: {
            [model]: {
              script: [
                ...bodies.map((body) => FakeProvider.raw({ status: 200, headers: json, body: JSON.stringify(body) })),
                ...streams.map((events) =>
                  FakeProvider.raw({
                    status: 200,
                    headers: sse,
                    body: [
                      ...(Array.isArray(events) ? events : []).map((event) => `data: ${JSON.stringify(event)}\n\n`),
                      "data: [DONE]\n\n"
                    ].join("")
                  })
                )
              ]
            }
          }
        })
        const client = Fake.client(fake.url)
        for (const body of bodies) {
          const completion = yield* ChatClient.create(Fake.request(model)).pipe(Effect.provide(client))
          assert.deepStrictEqual(asJson(yield* ChatCompletion.encodeCompletion(completion)), body)
        }
        const encodeChunkEffect = Schema.encodeEffect(ChatCompletion.ChatCompletionChunk)
        for (const events of streams) {
          const received = yield* ChatClient.stream(Fake.request(model)).pipe(
            Stream.mapEffect((chunk) => encodeChunkEffect(chunk)),
            Stream.runCollect,
            Effect.provide(client)
          )
          assert.deepStrictEqual(asJson(received), events)
        }
      }),
    120_000
  )

  it.effect("the spec's own example completion decodes, typed, and re-encodes to itself", () =>
    Effect.gen(function*() {
      const { errors } = yield* validator("CreateChatCompletionResponse")
      const example = {
        id: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        object: "chat.completion",
        created: 1741570283,
        model: "gpt-4o-2024-08-06",
        choices: [{
          index: 0,
          message: { role: "assistant", content: "A boardwalk through a meadow.", refusal: null, annotations: [] },
          logprobs: null,
          finish_reason: "stop"
        }],
        usage: {
          prompt_tokens: 1117,
          completion_tokens: 46,
          total_tokens: 1163,
          prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
          completion_tokens_details: {
            reasoning_tokens: 0,
            audio_tokens: 0,
            accepted_prediction_tokens: 0,
            rejected_prediction_tokens: 0
          }
        },
        service_tier: "default",
        system_fingerprint: "fp_fc9f1d7035"
      }
      assert.deepStrictEqual(errors(example), [])
      const completion = yield* ChatCompletion.decodeCompletion(example)
      assert.strictEqual(ChatCompletion.text(completion), "A boardwalk through a meadow.")
      assert.deepStrictEqual(ChatCompletion.tokens(completion), ChatCompletion.tokens({ usage: example.usage }))
      assert.strictEqual(completion.usage?.prompt_tokens_details?.cached_tokens, 0)
      assert.strictEqual(completion.usage?.completion_tokens_details?.reasoning_tokens, 0)
      assert.deepStrictEqual<unknown>(yield* ChatCompletion.encodeCompletion(completion), example)
    }), 60_000)
})
