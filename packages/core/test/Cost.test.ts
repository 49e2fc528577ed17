import { assert, describe, it } from "@effect/vitest"
import { type ChatCompletion, Cost } from "@resilient-llm/core"
import { Option, Schema } from "effect"

const gpt4o: Cost.Price = { input: 2.5, cachedInput: 1.25, output: 10 }
const o3: Cost.Price = { input: 2, output: 8, reasoning: 8 }

const closeTo = (actual: number, expected: number) =>
  assert.isTrue(Math.abs(actual - expected) < 1e-12, `${actual} is not ${expected}`)

describe("Cost.of", () => {
  it("prices each kind of token at its own rate, per million", () => {
    closeTo(Cost.of(gpt4o, { input: 1_000, cachedInput: 200, output: 500, reasoning: 0 }), 0.00725)
    // no cached price: cached tokens cost the input price; no reasoning price: the output price
    closeTo(
      Cost.of({ input: 1, output: 2 }, { input: 1_000_000, cachedInput: 500_000, output: 1_000_000, reasoning: 1 }),
      3
    )
    closeTo(Cost.of({ ...o3, reasoning: 20 }, { input: 0, cachedInput: 0, output: 1_000, reasoning: 400 }), 0.0128)
  })

  it.prop(
    "is never negative and grows with every kind of token",
    [
      Schema.Struct({
        input: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1e7 })),
        cachedInput: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1e7 })),
        output: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1e7 })),
        reasoning: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1e7 }))
      }),
      Cost.Price
    ],
    ([tokens, price]) => {
      const cost = Cost.of(price, tokens)
      assert.isTrue(cost >= 0 && Number.isFinite(cost), String(cost))
      for (const kind of ["input", "output"] as const) {
        assert.isTrue(Cost.of(price, { ...tokens, [kind]: tokens[kind] + 1000 }) >= cost)
      }
    },
    { arbitrary: { runs: 200 } }
  )
})

describe("Cost.tokensOf", () => {
  it("reads cached and reasoning counts from the usage details when they are there", () => {
    const usage = {
      prompt_tokens: 1200,
      completion_tokens: 300,
      prompt_tokens_details: { cached_tokens: 1024 },
      completion_tokens_details: { reasoning_tokens: 256 }
    }
    assert.deepStrictEqual(
      Cost.tokensOf({ usage }),
      Option.some({ input: 1200, cachedInput: 1024, output: 300, reasoning: 256 })
    )
    assert.deepStrictEqual(
      Cost.tokensOf({ usage: { prompt_tokens: 10, completion_tokens: 5 } }),
      Option.some({ input: 10, cachedInput: 0, output: 5, reasoning: 0 })
    )
  })

  it("treats a usage no real call has as no usage, and odd details as none", () => {
    // decoding refuses such counts; a usage built by hand (a test double, a custom client) may hold them
    const usages: ReadonlyArray<ChatCompletion.Usage | null | undefined> = [
      undefined,
      null,
      { prompt_tokens: -1, completion_tokens: 1 },
      { prompt_tokens: 1, completion_tokens: NaN },
      { prompt_tokens: 1.5, completion_tokens: 1 },
      { prompt_tokens: Infinity, completion_tokens: 1 }
    ]
    for (const usage of usages) {
      assert.isTrue(Option.isNone(Cost.tokensOf({ usage })), JSON.stringify(usage))
    }
    const odd: ChatCompletion.Usage = {
      prompt_tokens: 10,
      completion_tokens: 5,
      prompt_tokens_details: { cached_tokens: 99 }, // more than the prompt: capped
      completion_tokens_details: { reasoning_tokens: -3 } // no count: none
    }
    assert.deepStrictEqual(
      Cost.tokensOf({ usage: odd }),
      Option.some({ input: 10, cachedInput: 10, output: 5, reasoning: 0 })
    )
  })

  it("ofCompletion is the cost of the reported usage, none without one", () => {
    closeTo(
      Option.getOrThrow(Cost.ofCompletion(gpt4o, { usage: { prompt_tokens: 1000, completion_tokens: 100 } })),
      0.0035
    )
    assert.isTrue(Option.isNone(Cost.ofCompletion(gpt4o, {})))
  })
})

describe("Cost.Price", () => {
  it("rejects negative and non-finite prices", () => {
    const decode = Schema.decodeUnknownOption(Cost.Price)
    assert.isTrue(Option.isSome(decode({ input: 0, output: 0 })))
    for (
      const bad of [{ input: -1, output: 1 }, { input: 1, output: Infinity }, {
        input: 1,
        output: 1,
        cachedInput: -0.5
      }, {
        output: 1
      }]
    ) {
      assert.isTrue(Option.isNone(decode(bad)), JSON.stringify(bad))
    }
  })

  it("format shows cents of a cent, and fewer digits for larger sums", () => {
    assert.strictEqual(Cost.format(0.00725), "$0.007250")
    assert.strictEqual(Cost.format(0.25), "$0.2500")
    assert.strictEqual(Cost.format(12.5), "$12.50")
  })
})
