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

/** The example of one tag in `all`. */
const of = (tag: LlmError.LlmError["_tag"]): LlmError.LlmError => {
  const found = all.find((error) => error._tag === tag)
  if (found === undefined) throw new Error(`no ${tag} in the examples`)
  return found
}

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
      of("RedirectError").message,
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

  it("isFallbackable is every error but BadRequestError and BudgetExceededError", () => {
    assert.deepStrictEqual(all.filter((e) => !LlmError.isFallbackable(e)).map((e) => e._tag), [
      "BadRequestError",
      "BudgetExceededError"
    ])
    assert.isFalse(LlmError.isFallbackable(new Error("not ours")))
    assert.isFalse(LlmError.isRetryable({ _tag: "ServerError" }))
  })

  it("messages read well and name the model", () => {
    assert.strictEqual(of("RateLimitError").message, "Model m is rate limited (retry after 7s)")
    assert.strictEqual(of("BadRequestError").message, "Model m rejected the request with HTTP 400 (invalid_value)")
    for (const error of all) assert.include(error.message, "m")
  })

  it("an open circuit says when to retry; an isolated one says it waits for a reset", () => {
    assert.strictEqual(of("CircuitOpenError").message, "The circuit for model m is open; retry in 10s")
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
      of("ThrottledError").message,
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
    assert.strictEqual(of("BulkheadFullError").message, "Deployment east of m is full: 4 calls in flight and 8 waiting")
    assert.strictEqual(
      of("BudgetExceededError").message,
      "The budget of key \"team-a\" is spent ($10.50 of $10.00) until 1970-01-02T00:00:00.000Z; model m was not called"
    )
    assert.strictEqual(
      of("AnswerRejectedError").message,
      "Model m gave an answer cut off by its token limit: finish_reason length"
    )
  })

  it("retryAfter reads the hint of a rate limit only", () => {
    assert.deepStrictEqual(LlmError.retryAfter(of("RateLimitError")), Option.some(Duration.seconds(7)))
    assert.deepStrictEqual(LlmError.retryAfter(of("ServerError")), Option.none())
  })
})
