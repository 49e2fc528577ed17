import { assert, describe, it } from "@effect/vitest"
import { LlmError } from "@resilient-llm/core"
import { Duration, Option } from "effect"

const all: ReadonlyArray<LlmError.LlmError> = [
  new LlmError.RateLimitError({ model: "m", retryAfter: Option.some(Duration.seconds(7)) }),
  new LlmError.TimeoutError({ model: "m", timeout: Duration.seconds(30) }),
  new LlmError.ServerError({ model: "m", status: 503 }),
  new LlmError.ConnectionError({ model: "m", detail: "ECONNREFUSED" }),
  new LlmError.ResponseDecodeError({ model: "m", detail: "bad json" }),
  new LlmError.AuthenticationError({ model: "m", status: 401 }),
  new LlmError.ModelNotFoundError({ model: "m" }),
  new LlmError.ContextLengthError({ model: "m" }),
  new LlmError.ContentFilterError({ model: "m" }),
  new LlmError.BadRequestError({ model: "m", status: 400, code: Option.some("invalid_value") }),
  new LlmError.CircuitOpenError({ model: "m", retryAfter: Duration.seconds(10) })
]

describe("LlmError", () => {
  it("covers every tag once", () => {
    assert.deepStrictEqual(all.map((e) => e._tag), [...LlmError.tags])
  })

  it("isRetryable follows the table", () => {
    assert.deepStrictEqual(
      all.filter(LlmError.isRetryable).map((e) => e._tag),
      ["RateLimitError", "TimeoutError", "ServerError", "ConnectionError", "ResponseDecodeError"]
    )
  })

  it("isFallbackable is every error but BadRequestError", () => {
    assert.deepStrictEqual(all.filter((e) => !LlmError.isFallbackable(e)).map((e) => e._tag), ["BadRequestError"])
    assert.isFalse(LlmError.isFallbackable(new Error("not ours")))
    assert.isFalse(LlmError.isRetryable({ _tag: "ServerError" }))
  })

  it("messages read well and name the model", () => {
    assert.strictEqual(all[0].message, "Model m is rate limited (retry after 7s)")
    assert.strictEqual(all[9].message, "Model m rejected the request with HTTP 400 (invalid_value)")
    for (const error of all) assert.include(error.message, "m")
  })

  it("an open circuit says when to retry; an isolated one says it waits for a reset", () => {
    assert.strictEqual(all[10].message, "The circuit for model m is open; retry in 10s")
    assert.strictEqual(
      new LlmError.CircuitOpenError({ model: "m", retryAfter: Duration.infinity }).message,
      "The circuit for model m is isolated until it is reset"
    )
  })

  it("retryAfter reads the hint of a rate limit only", () => {
    assert.deepStrictEqual(LlmError.retryAfter(all[0]), Option.some(Duration.seconds(7)))
    assert.deepStrictEqual(LlmError.retryAfter(all[2]), Option.none())
  })
})
