import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Duration, Option, Redacted, Schema } from "effect"
import * as Errors from "../src/internal/errors.js"
import * as Routing from "../src/internal/routing.js"

const now = Date.UTC(2025, 0, 1, 0, 0, 0)

describe("parseRetryAfter", () => {
  const cases: ReadonlyArray<readonly [Record<string, string>, Option.Option<Duration.Duration>]> = [
    [{ "retry-after-ms": "1500" }, Option.some(Duration.millis(1500))],
    [{ "retry-after-ms": "0" }, Option.some(Duration.zero)],
    [{ "retry-after-ms": " 20.5 " }, Option.some(Duration.millis(20.5))],
    [{ "retry-after": "30" }, Option.some(Duration.seconds(30))],
    [{ "retry-after": "0.25" }, Option.some(Duration.millis(250))],
    [{ "retry-after-ms": "-1", "retry-after": "2" }, Option.some(Duration.seconds(2))],
    [{ "retry-after": new Date(now + 90_000).toUTCString() }, Option.some(Duration.seconds(90))],
    [{ "retry-after": "Tue, 31 Dec 2024 23:59:00 GMT" }, Option.some(Duration.zero)],
    [{ "retry-after": "Sat, 01 Jan 10000 00:00:00 GMT" }, Option.none()],
    [{ "retry-after": "Fri, 31 Dec 9999 23:59:59 GMT" }, Option.some(Duration.millis(Errors.maxRetryAfterMillis))],
    [{ "retry-after": "1".repeat(500) }, Option.some(Duration.millis(Errors.maxRetryAfterMillis))],
    [{ "retry-after": "86401" }, Option.some(Duration.millis(Errors.maxRetryAfterMillis))],
    [{ "retry-after": "-3" }, Option.none()],
    [{ "retry-after": "+3" }, Option.none()],
    [{ "retry-after": "3s" }, Option.none()],
    [{ "retry-after": "Infinity" }, Option.none()],
    [{ "retry-after": "NaN" }, Option.none()],
    [{ "retry-after": "0x10" }, Option.none()],
    [{ "retry-after": "" }, Option.none()],
    [{ "retry-after": "2025" }, Option.some(Duration.seconds(2025))],
    [{ "retry-after": "x".repeat(10_000) }, Option.none()],
    [{}, Option.none()]
  ]
  for (const [headers, expected] of cases) {
    it(`${JSON.stringify(headers).slice(0, 70)}`, () => {
      assert.deepStrictEqual(Errors.parseRetryAfter(headers, now), expected)
    })
  }

  it("falls back to Gemini's retryDelay in the body", () => {
    assert.deepStrictEqual(Errors.parseRetryAfter({}, now, "17s"), Option.some(Duration.seconds(17)))
    assert.deepStrictEqual(Errors.parseRetryAfter({}, now, "1.5s"), Option.some(Duration.millis(1500)))
    assert.deepStrictEqual(Errors.parseRetryAfter({}, now, "soon"), Option.none())
    assert.deepStrictEqual(Errors.parseRetryAfter({ "retry-after": "1" }, now, "17s"), Option.some(Duration.seconds(1)))
  })

  it.prop(
    "any header values give no hint or a finite hint within the clamp",
    {
      ms: Schema.NullOr(Schema.String),
      after: Schema.NullOr(Schema.String),
      nowMillis: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 ** 42 }))
    },
    ({ after, ms, nowMillis }) => {
      const headers: Record<string, string> = {}
      if (ms !== null) headers["retry-after-ms"] = ms
      if (after !== null) headers["retry-after"] = after
      const hint = Errors.parseRetryAfter(headers, nowMillis)
      if (Option.isSome(hint)) {
        const millis = Duration.toMillis(hint.value)
        assert.isTrue(Number.isFinite(millis) && millis >= 0 && millis <= Errors.maxRetryAfterMillis)
      }
    }
  )
})

describe("sanitize", () => {
  const key = Redacted.make("k3y-Zq8XyW3vU7tS1rP9oN5mL2kJ")

  it("replaces the whole key and any 8-character fragment of it", () => {
    assert.strictEqual(Errors.sanitize("bad key k3y-Zq8XyW3vU7tS1rP9oN5mL2kJ!", [key]), "bad key <redacted>!")
    assert.strictEqual(Errors.sanitize("near \"W3vU7tS1rP\" end", [key]), "near \"<redacted>\" end")
    assert.strictEqual(Errors.sanitize("short k3y-Zq8 stays", [key]), "short k3y-Zq8 stays")
  })

  it("scrubs before truncating, so a cut cannot expose part of the key", () => {
    const text = `${"x".repeat(500)} k3y-Zq8XyW3vU7tS1rP9oN5mL2kJ`
    const out = Errors.sanitize(text, [key], 510)
    assert.notInclude(out, "k3y-Zq8")
    assert.isAtMost(out.length, 511)
  })

  it("masks bearer tokens and sk- keys that are not ours, and flattens control characters", () => {
    assert.strictEqual(
      Errors.sanitize("Authorization: Bearer abc.def\nsk-proj-1234567890abc\u0000end", []),
      "Authorization: Bearer <redacted> sk-<redacted> end"
    )
  })

  it("truncates long text without splitting a surrogate pair", () => {
    const out = Errors.sanitize(`${"a".repeat(9)}😀tail`, [], 10)
    assert.strictEqual(out, `${"a".repeat(9)}…`)
  })

  it("keeps a short secret out by exact replacement", () => {
    assert.strictEqual(Errors.sanitize("key ollama rejected", [Redacted.make("ollama")]), "key <redacted> rejected")
  })
})

describe("readProviderError", () => {
  it("reads the shapes providers send", () => {
    assert.deepStrictEqual(
      Errors.readProviderError({ error: { message: "m", type: "t", code: "c", param: null } }),
      { message: "m", code: "c", numericStatus: undefined, type: "t", innerCode: undefined, retryDelay: undefined }
    )
    assert.deepStrictEqual(
      Errors.readProviderError([{ error: { code: 429, message: "m", status: "RESOURCE_EXHAUSTED" } }]),
      {
        message: "m",
        code: undefined,
        numericStatus: 429,
        type: "RESOURCE_EXHAUSTED",
        innerCode: undefined,
        retryDelay: undefined
      }
    )
    assert.strictEqual(Errors.readProviderError({ error: "model not found" }).message, "model not found")
    assert.strictEqual(Errors.readProviderError({ detail: "Not Found" }).message, "Not Found")
    assert.strictEqual(
      Errors.readProviderError({ object: "error", message: "m", type: "BadRequestError", code: 400 }).numericStatus,
      400
    )
    assert.strictEqual(
      Errors.readProviderError({
        error: { code: "content_filter", innererror: { code: "ResponsibleAIPolicyViolation" } }
      })
        .innerCode,
      "ResponsibleAIPolicyViolation"
    )
  })

  it.prop("never throws on any JSON value", { json: Schema.Json }, ({ json }) => {
    const error = Errors.readProviderError(json)
    assert.isTrue(error.message === undefined || typeof error.message === "string")
  })
})

describe("inferStatus", () => {
  const cases: ReadonlyArray<readonly [Errors.ProviderError, number]> = [
    [{ ...Errors.readProviderError({}), numericStatus: 503 }, 503],
    [{ ...Errors.readProviderError({}), numericStatus: 200, type: "rate_limit_error" }, 429],
    [{ ...Errors.readProviderError({}), type: "RESOURCE_EXHAUSTED" }, 429],
    [{ ...Errors.readProviderError({}), type: "authentication_error" }, 401],
    [{ ...Errors.readProviderError({}), type: "permission_error" }, 403],
    [{ ...Errors.readProviderError({}), code: "model_not_found" }, 404],
    [{ ...Errors.readProviderError({}), type: "overloaded_error" }, 529],
    [{ ...Errors.readProviderError({}), type: "invalid_request_error" }, 400],
    [{ ...Errors.readProviderError({}), code: "context_length_exceeded" }, 400],
    [Errors.readProviderError({}), 500]
  ]
  for (const [error, status] of cases) {
    it(`${JSON.stringify(error)} -> ${status}`, () => assert.strictEqual(Errors.inferStatus(error), status))
  }
})

describe("model patterns", () => {
  const cases: ReadonlyArray<readonly [string, string, boolean]> = [
    ["gpt-4o", "gpt-4o", true],
    ["gpt-4o", "gpt-4o-mini", false],
    ["gpt-*", "gpt-4o-mini", true],
    ["gpt-*", "gpt-", true],
    ["gpt-*", "chatgpt-4o", false],
    ["*-instruct", "llama-3-instruct", true],
    ["meta-llama/*", "meta-llama/Llama-3.1-8B", true],
    ["*", "anything/at:all", true],
    ["a*b*c", "abc", true],
    ["a*b*c", "aXbYc", true],
    ["a*b*c", "acb", false],
    ["a*a", "a", false],
    ["qwen2.5:*", "qwen2.5:7b", true],
    ["qwen2.5:*", "qwen2x5:7b", false],
    ["gpt-4?", "gpt-4o", false],
    ["gpt-4?", "gpt-4?", true]
  ]
  for (const [pattern, model, expected] of cases) {
    it(`${pattern} ${expected ? "matches" : "does not match"} ${model}`, () => {
      assert.strictEqual(Routing.compile(pattern).matches(model), expected)
    })
  }

  /** Strings of up to `maxLength` of the given characters. */
  const stringOf = (alphabet: ReadonlyArray<string>, maxLength: number): Arbitrary.Arbitrary<string> =>
    Arbitrary.array(Arbitrary.schema(Schema.Literals(alphabet)), { maxLength }).pipe(
      Arbitrary.map((characters) => characters.join(""))
    )

  const globToRegExp = (pattern: string) =>
    new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`, "s")

  it.prop(
    "matching agrees with the equivalent regular expression",
    {
      pattern: stringOf(["a", "b", "*", "-", "."], 8),
      model: stringOf(["a", "b", "-", "."], 10)
    },
    ({ model, pattern }) => {
      assert.strictEqual(Routing.compile(pattern).matches(model), globToRegExp(pattern).test(model))
    },
    { arbitrary: { runs: 2000 } }
  )
})
