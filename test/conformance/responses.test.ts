import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion } from "@resilient-llm/core"
import { Effect, Result } from "effect"
import * as fc from "fast-check"
import { loadDocument, validator } from "./openApi.js"
import { arbitrary } from "./schemaArbitrary.js"

const document = loadDocument()

/** Values generated from a spec schema that the spec's own validator accepts. */
const conforming = (name: string, count: number, seed: number) =>
  Effect.map(validator(name), (validate) => {
    const schema = document.components.schemas[name]
    assert.isDefined(schema)
    const candidates = fc.sample(arbitrary(document, schema), { numRuns: count, seed })
    const valid = candidates.filter((value) => validate.errors(value).length === 0)
    // A generator that drifted from the spec would quietly test nothing: most candidates must pass.
    assert.isAtLeast(valid.length, count * 0.8, `${valid.length} of ${count} generated ${name} values are valid`)
    return { valid, validate }
  })

const hasChoices = (value: unknown): value is { readonly choices: ReadonlyArray<unknown> } =>
  typeof value === "object" && value !== null && "choices" in value && Array.isArray(value.choices)

describe("conformance with the OpenAI OpenAPI spec: responses", () => {
  it.effect(
    "every CreateChatCompletionResponse the spec allows decodes, except an empty choices list",
    () =>
      Effect.gen(function*() {
        const { valid } = yield* conforming("CreateChatCompletionResponse", 300, 20261125)
        let decoded = 0
        let refused = 0
        for (const body of valid) {
          assert.isTrue(hasChoices(body))
          const result = yield* Effect.result(ChatCompletion.decodeCompletion(body))
          if (hasChoices(body) && body.choices.length === 0) {
            // The spec allows it; for a caller a completion with nothing in it is a failure, typed.
            assert.isTrue(Result.isFailure(result), "a completion without choices must not decode")
            refused++
            continue
          }
          if (Result.isFailure(result)) assert.fail(`${JSON.stringify(body)}\n${result.failure.message}`)
          const completion = result.success
          const raw = JSON.parse(JSON.stringify(body))
          assert.strictEqual(completion.id, raw.id)
          assert.strictEqual(completion.model, raw.model)
          assert.strictEqual(completion.choices.length, raw.choices.length)
          assert.strictEqual(ChatCompletion.text(completion), raw.choices[0].message.content ?? "")
          decoded++
        }
        assert.isAbove(decoded, 100)
        assert.isAbove(refused, 0)
      }),
    60_000
  )

  it.effect(
    "every CreateChatCompletionStreamResponse the spec allows decodes as a chunk",
    () =>
      Effect.gen(function*() {
        const { valid } = yield* conforming("CreateChatCompletionStreamResponse", 300, 7)
        for (const body of valid) {
          const result = yield* Effect.result(ChatCompletion.decodeChunk(body))
          if (Result.isFailure(result)) assert.fail(`${JSON.stringify(body)}\n${result.failure.message}`)
          const raw = JSON.parse(JSON.stringify(body))
          assert.strictEqual(result.success.choices.length, raw.choices.length)
          assert.strictEqual(ChatCompletion.chunkText(result.success), raw.choices[0]?.delta.content ?? "")
        }
      }),
    60_000
  )

  it.effect("the spec's own example completion decodes", () =>
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
        usage: { prompt_tokens: 1117, completion_tokens: 46, total_tokens: 1163 },
        service_tier: "default",
        system_fingerprint: "fp_fc9f1d7035"
      }
      assert.deepStrictEqual(errors(example), [])
      const completion = yield* ChatCompletion.decodeCompletion(example)
      assert.strictEqual(ChatCompletion.text(completion), "A boardwalk through a meadow.")
      assert.deepStrictEqual(ChatCompletion.tokens(completion), ChatCompletion.tokens({ usage: example.usage }))
    }), 60_000)
})
