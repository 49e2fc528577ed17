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
  new LlmError.CircuitOpenError({ model: "m", retryAfter: Duration.seconds(10) }),
  new LlmError.ThrottledError({ model: "m", deployment: "east", limit: "rpm", retryAfter: Duration.seconds(2) }),
  new LlmError.BulkheadFullError({ model: "m", deployment: "east", maxConcurrent: 4, maxQueued: 8 }),
  new LlmError.BudgetExceededError({ model: "m", key: "team-a", spentUsd: 10.5, limitUsd: 10, resetsAt: 86_400_000 }),
  new LlmError.AnswerRejectedError({
    model: "m",
    reason: "truncated",
    detail: "finish_reason length",
    countsForBreaker: false
  })
]

describe("LlmError", () => {
  it("covers every tag once", () => {
    assert.deepStrictEqual(all.map((e) => e._tag), [...LlmError.tags])
  })

  it("isRetryable follows the table", () => {
    assert.deepStrictEqual(
      all.filter(LlmError.isRetryable).map((e) => e._tag),
      ["RateLimitError", "TimeoutError", "ServerError", "ConnectionError", "ResponseDecodeError", "AnswerRejectedError"]
    )
  })

  it("isFallbackable is every error but BadRequestError and BudgetExceededError", () => {
    assert.deepStrictEqual(all.filter((e) => !LlmError.isFallbackable(e)).map((e) => e._tag), [
      "BadRequestError",
      "BudgetExceededError"
    ])
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

  it("isRefusal is every refusal made before anything was sent", () => {
    assert.deepStrictEqual(all.filter(LlmError.isRefusal).map((e) => e._tag), [
      "CircuitOpenError",
      "ThrottledError",
      "BulkheadFullError",
      "BudgetExceededError"
    ])
  })

  it("the capacity errors say which limit, which deployment and when", () => {
    assert.strictEqual(
      all[11].message,
      "Deployment east of m has no room under its requests-per-minute limit; room again in 2s"
    )
    assert.strictEqual(
      new LlmError.ThrottledError({
        model: "m",
        deployment: undefined,
        limit: "cooldown",
        retryAfter: Duration.millis(1500)
      })
        .message,
      "Model m is cooling down after the provider's rate limit; room again in 1s 500ms"
    )
    assert.strictEqual(all[12].message, "Deployment east of m is full: 4 calls in flight and 8 waiting")
    assert.strictEqual(
      all[13].message,
      "The budget of key \"team-a\" is spent ($10.50 of $10.00) until 1970-01-02T00:00:00.000Z; model m was not called"
    )
    assert.strictEqual(all[14].message, "Model m gave an answer cut off by its token limit: finish_reason length")
  })

  it("retryAfter reads the hint of a rate limit only", () => {
    assert.deepStrictEqual(LlmError.retryAfter(all[0]), Option.some(Duration.seconds(7)))
    assert.deepStrictEqual(LlmError.retryAfter(all[2]), Option.none())
  })
})
