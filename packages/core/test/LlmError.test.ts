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
  new LlmError.RedirectError({ model: "m", status: 302, location: Option.some("https://elsewhere.example") }),
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

  it("the provider's verdict (x-should-retry) overrides the table either way", () => {
    assert.isFalse(LlmError.isRetryable(new LlmError.ServerError({ model: "m", status: 503, retryable: false })))
    assert.isFalse(
      LlmError.isRetryable(new LlmError.RateLimitError({ model: "m", retryAfter: Option.none(), retryable: false }))
    )
    assert.isTrue(
      LlmError.isRetryable(
        new LlmError.BadRequestError({ model: "m", status: 400, code: Option.none(), retryable: true })
      )
    )
    // it says nothing about falling back
    assert.isTrue(LlmError.isFallbackable(new LlmError.ServerError({ model: "m", status: 503, retryable: false })))
    assert.isFalse(
      LlmError.isFallbackable(
        new LlmError.BadRequestError({ model: "m", status: 400, code: Option.none(), retryable: true })
      )
    )
  })

  it("a redirect names its status and target origin, and a timeout what it timed", () => {
    assert.strictEqual(
      all[9].message,
      "Model m answered HTTP 302, a redirect to https://elsewhere.example, which is not followed"
    )
    assert.strictEqual(
      new LlmError.RedirectError({ model: "m", status: 300, location: Option.none() }).message,
      "Model m answered HTTP 300, a redirect, which is not followed"
    )
    assert.strictEqual(
      new LlmError.TimeoutError({ model: "m", timeout: Duration.minutes(5), detail: "no event (idleTimeout)" }).message,
      "Model m did not answer within 5m: no event (idleTimeout)"
    )
  })

  it("isFallbackable is every error but BadRequestError", () => {
    assert.deepStrictEqual(all.filter((e) => !LlmError.isFallbackable(e)).map((e) => e._tag), ["BadRequestError"])
    assert.isFalse(LlmError.isFallbackable(new Error("not ours")))
    assert.isFalse(LlmError.isRetryable({ _tag: "ServerError" }))
  })

  it("messages read well and name the model", () => {
    assert.strictEqual(all[0].message, "Model m is rate limited (retry after 7s)")
    assert.strictEqual(all[10].message, "Model m rejected the request with HTTP 400 (invalid_value)")
    for (const error of all) assert.include(error.message, "m")
  })

  it("an open circuit says when to retry; an isolated one says it waits for a reset", () => {
    assert.strictEqual(all[11].message, "The circuit for model m is open; retry in 10s")
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
