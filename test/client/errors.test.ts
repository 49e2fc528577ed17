import { assert, describe, it } from "@effect/vitest"
import { ChatClient, LlmError, Retry } from "@resilient-llm/core"
import { FakeProvider } from "@resilient-llm/testing"
import { Duration, Effect, Exit, Option, Stream } from "effect"
import * as Fake from "../support/Fake.js"

// Every row of the LlmError table an HTTP response can produce, from a FakeProvider fault, through
// OpenAiCompatible over real HTTP on 127.0.0.1.

const model = "gpt-test"

/** The error of one `create` against a model that plays `outcome`. */
const createFailure = (outcome: FakeProvider.Outcome) =>
  Effect.gen(function*() {
    const fake = yield* Fake.start({ models: { [model]: { script: [outcome] } } })
    const error = yield* ChatClient.create(Fake.request(model)).pipe(Effect.flip, Effect.provide(Fake.client(fake.url)))
    const [received] = yield* fake.requests
    assert.strictEqual(received.outcome?._tag, outcome._tag, "the fake played the scripted fault")
    return error
  })

/** The chunks delivered before a streamed call failed, and its error. */
const streamFailure = (outcome: FakeProvider.Outcome) =>
  Effect.gen(function*() {
    const fake = yield* Fake.start({ models: { [model]: { reply: "one two three four five", script: [outcome] } } })
    const delivered: Array<string> = []
    const exit = yield* ChatClient.stream(Fake.request(model)).pipe(
      Stream.runForEach((chunk) => Effect.sync(() => delivered.push(chunk.choices[0]?.delta.content ?? ""))),
      Effect.exit,
      Effect.provide(Fake.client(fake.url))
    )
    assert.isTrue(Exit.isFailure(exit), "the stream must fail")
    const error = yield* Effect.flip(exit)
    return { delivered: delivered.join(""), error }
  })

const seconds = (d: Option.Option<Duration.Duration>) => Option.map(d, Duration.toSeconds)

describe("RateLimitError", () => {
  it.live("429 with retry-after in seconds", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.rateLimited({ retryAfter: { seconds: 7 } }))
      assert.strictEqual(error._tag, "RateLimitError")
      assert.strictEqual(error.model, model)
      assert.deepStrictEqual(LlmError.retryAfter(error), Option.some(Duration.seconds(7)))
      assert.isTrue(LlmError.isRetryable(error))
    }))

  it.live("429 with retry-after as an HTTP date", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.rateLimited({ retryAfter: { date: "30 seconds" } }))
      assert.strictEqual(error._tag, "RateLimitError")
      // An HTTP date has whole seconds: the hint is 30 s, less the part of a second already gone.
      const hint = seconds(LlmError.retryAfter(error))
      assert.isTrue(Option.isSome(hint), "a date is a hint")
      assert.isAtLeast(Option.getOrThrow(hint), 28)
      assert.isAtMost(Option.getOrThrow(hint), 30)
    }))

  it.live("429 with retry-after-ms", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.rateLimited({ retryAfter: { millis: 1500 } }))
      assert.strictEqual(error._tag, "RateLimitError")
      assert.deepStrictEqual(LlmError.retryAfter(error), Option.some(Duration.millis(1500)))
    }))

  it.live("429 without a hint", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.rateLimited())
      assert.strictEqual(error._tag, "RateLimitError")
      assert.deepStrictEqual(LlmError.retryAfter(error), Option.none())
    }))
})

describe("ServerError", () => {
  for (const status of [500, 502, 503, 529] as const) {
    it.live(`HTTP ${status}`, () =>
      Effect.gen(function*() {
        const error = yield* createFailure(FakeProvider.serverError(status))
        assert.strictEqual(error._tag, "ServerError")
        assert.strictEqual(error._tag === "ServerError" ? error.status : undefined, status)
        assert.strictEqual(error.model, model)
        assert.isTrue(LlmError.isRetryable(error))
      }))
  }

  it.live("HTTP 503 on a streamed request fails the stream before any chunk", () =>
    Effect.gen(function*() {
      const { delivered, error } = yield* streamFailure(FakeProvider.serverError(503))
      assert.strictEqual(delivered, "")
      assert.strictEqual(error._tag, "ServerError")
    }))
})

describe("ConnectionError", () => {
  it.live("a reset before the response", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.resetConnection())
      assert.strictEqual(error._tag, "ConnectionError")
      assert.strictEqual(error.model, model)
      assert.isTrue(LlmError.isRetryable(error))
    }))

  it.live("a reset in the middle of a stream, after the chunks already sent", () =>
    Effect.gen(function*() {
      const { delivered, error } = yield* streamFailure(FakeProvider.resetConnection({ afterChunks: 3 }))
      assert.strictEqual(error._tag, "ConnectionError")
      // the first event is the role, then one word per event
      assert.strictEqual(delivered, "one two ")
    }))

  it.live("a refused port (the fake has stopped)", () =>
    Effect.gen(function*() {
      const url = yield* Effect.scoped(Effect.map(Fake.start({ models: { [model]: {} } }), (fake) => fake.url))
      const error = yield* ChatClient.create(Fake.request(model)).pipe(Effect.flip, Effect.provide(Fake.client(url)))
      assert.strictEqual(error._tag, "ConnectionError")
      assert.strictEqual(error.model, model)
    }))
})

describe("ResponseDecodeError", () => {
  it.live("a 200 whose body is not JSON", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.malformedJson())
      assert.strictEqual(error._tag, "ResponseDecodeError")
      assert.isTrue(LlmError.isRetryable(error))
    }))

  it.live("a 200 with JSON of the wrong shape (no choices)", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.wrongShape())
      assert.strictEqual(error._tag, "ResponseDecodeError")
      assert.include(error.message, "choices")
    }))

  it.live("a JSON body cut in half", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.truncatedStream())
      assert.strictEqual(error._tag, "ResponseDecodeError")
    }))

  it.live("a stream that ends without [DONE], after the chunks it sent", () =>
    Effect.gen(function*() {
      const { delivered, error } = yield* streamFailure(FakeProvider.truncatedStream({ afterChunks: 3 }))
      assert.strictEqual(error._tag, "ResponseDecodeError")
      assert.include(error.message, "[DONE]")
      assert.strictEqual(delivered, "one two ")
    }))

  it.live("a stream cut in the middle of an event", () =>
    Effect.gen(function*() {
      const { delivered, error } = yield* streamFailure(
        FakeProvider.truncatedStream({ afterChunks: 2, midEvent: true })
      )
      assert.strictEqual(error._tag, "ResponseDecodeError")
      assert.strictEqual(delivered, "one ")
    }))

  it.live("a streamed event that is not JSON", () =>
    Effect.gen(function*() {
      const { error } = yield* streamFailure(FakeProvider.malformedJson())
      assert.strictEqual(error._tag, "ResponseDecodeError")
    }))
})

describe("AuthenticationError", () => {
  const apiKey = "sk-fake-the-right-key-0123456789"

  it.live("401 from the fake's apiKey for a wrong key, which no error repeats", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ apiKey, models: { [model]: {} } })
      const wrongKey = "sk-fake-a-wrong-key-9876543210"
      const error = yield* ChatClient.create(Fake.request(model)).pipe(
        Effect.flip,
        Effect.provide(Fake.client(fake.url, { apiKey: wrongKey }))
      )
      assert.strictEqual(error._tag, "AuthenticationError")
      assert.strictEqual(error._tag === "AuthenticationError" ? error.status : undefined, 401)
      assert.isFalse(LlmError.isRetryable(error))
      assert.isTrue(LlmError.isFallbackable(error))
      const [received] = yield* fake.requests
      assert.strictEqual(received.rejection, "unauthorized")
      assert.strictEqual(received.authorization, `Bearer ${wrongKey}`)
      for (const text of [error.message, String(error), JSON.stringify(error)]) {
        assert.notInclude(text, wrongKey)
        assert.notInclude(text, apiKey)
      }
    }))

  it.live("401 when no key is sent", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ apiKey, models: { [model]: {} } })
      const error = yield* ChatClient.create(Fake.request(model)).pipe(
        Effect.flip,
        Effect.provide(Fake.client(fake.url))
      )
      assert.strictEqual(error._tag, "AuthenticationError")
      const [received] = yield* fake.requests
      assert.strictEqual(received.authorization, undefined)
    }))

  it.live("the right key is served", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ apiKey, models: { [model]: {} } })
      const completion = yield* ChatClient.create(Fake.request(model)).pipe(
        Effect.provide(Fake.client(fake.url, { apiKey }))
      )
      assert.strictEqual(completion.model, model)
    }))

  it.live("403", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.authenticationError(403))
      assert.strictEqual(error._tag, "AuthenticationError")
      assert.strictEqual(error._tag === "AuthenticationError" ? error.status : undefined, 403)
    }))
})

describe("ModelNotFoundError", () => {
  it.live("the fake's 404 model_not_found for a model it does not serve", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ models: { [model]: {} } })
      const error = yield* ChatClient.create(Fake.request("no-such-model")).pipe(
        Effect.flip,
        Effect.provide(Fake.client(fake.url))
      )
      assert.strictEqual(error._tag, "ModelNotFoundError")
      assert.strictEqual(error.model, "no-such-model")
      assert.isFalse(LlmError.isRetryable(error))
      assert.isTrue(LlmError.isFallbackable(error))
      const [received] = yield* fake.requests
      assert.strictEqual(received.status, 404)
      assert.strictEqual(received.rejection, "model_not_found")
    }))
})

describe("ContextLengthError, ContentFilterError, BadRequestError", () => {
  it.live("400 context_length_exceeded", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.contextLengthExceeded())
      assert.strictEqual(error._tag, "ContextLengthError")
      assert.isFalse(LlmError.isRetryable(error))
      assert.isTrue(LlmError.isFallbackable(error))
    }))

  it.live("400 content_filter", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.contentFilter())
      assert.strictEqual(error._tag, "ContentFilterError")
      assert.isTrue(LlmError.isFallbackable(error))
    }))

  it.live("a 200 whose reply the filter withheld (finish_reason content_filter) is an error, not an empty answer", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.contentFilter("finish_reason"))
      assert.strictEqual(error._tag, "ContentFilterError")
      assert.include(error.message, "I can't help with that.", "the provider's refusal is kept")
      const streamed = yield* streamFailure(FakeProvider.contentFilter("finish_reason"))
      assert.strictEqual(streamed.error._tag, "ContentFilterError")
    }))

  it.live("any other 400, with its status and code", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(
        FakeProvider.badRequest({ code: "invalid_value", param: "temperature", message: "temperature is too high" })
      )
      assert.strictEqual(error._tag, "BadRequestError")
      if (error._tag !== "BadRequestError") return
      assert.strictEqual(error.status, 400)
      assert.deepStrictEqual(error.code, Option.some("invalid_value"))
      assert.include(error.message, "temperature is too high")
      assert.isFalse(LlmError.isRetryable(error))
      assert.isFalse(LlmError.isFallbackable(error))
    }))

  it.live("a 422 keeps its status", () =>
    Effect.gen(function*() {
      const error = yield* createFailure(FakeProvider.badRequest({ status: 422, code: "unprocessable" }))
      assert.strictEqual(error._tag, "BadRequestError")
      assert.strictEqual(error._tag === "BadRequestError" ? error.status : undefined, 422)
    }))
})

describe("408, 409 and x-should-retry, through Retry.withRetry", () => {
  /** The outcome of one call retried quickly, and how many requests the fake received. */
  const retried = (script: ReadonlyArray<FakeProvider.Outcome>) =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ models: { [model]: { script } } })
      const exit = yield* ChatClient.create(Fake.request(model)).pipe(
        Retry.withRetry({ base: "1 millis", maxDelay: "1 millis", retries: 3, jitter: false }),
        Effect.exit,
        Effect.provide(Fake.client(fake.url))
      )
      return { exit, requests: (yield* fake.requests).length }
    })

  for (const status of [408, 409]) {
    it.live(`a ${status} is retried, and the retry is served`, () =>
      Effect.gen(function*() {
        const { exit, requests } = yield* retried([
          FakeProvider.raw({ status, body: "{\"error\":{\"message\":\"try again\"}}" }),
          FakeProvider.reply("second time lucky")
        ])
        assert.isTrue(Exit.isSuccess(exit))
        assert.strictEqual(requests, 2)
      }))
  }

  it.live("x-should-retry: false on a 503 stops the retries at once", () =>
    Effect.gen(function*() {
      const { exit, requests } = yield* retried([
        FakeProvider.serverError(503, { headers: { "x-should-retry": "false" } }),
        FakeProvider.reply("never asked for")
      ])
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error._tag, "ServerError")
      assert.isTrue(LlmError.isFallbackable(error))
      assert.strictEqual(requests, 1)
    }))

  it.live("x-should-retry: true on a 400 is retried", () =>
    Effect.gen(function*() {
      const { exit, requests } = yield* retried([
        FakeProvider.raw({
          status: 400,
          headers: { "x-should-retry": "true" },
          body: "{\"error\":{\"message\":\"busy\",\"type\":\"invalid_request_error\"}}"
        }),
        FakeProvider.reply("served")
      ])
      assert.isTrue(Exit.isSuccess(exit))
      assert.strictEqual(requests, 2)
    }))
})

describe("every fault over a stream is the same error as over create", () => {
  const faults: ReadonlyArray<readonly [FakeProvider.Fault, LlmError.LlmError["_tag"]]> = [
    [FakeProvider.rateLimited({ retryAfter: { seconds: 1 } }), "RateLimitError"],
    [FakeProvider.serverError(529), "ServerError"],
    [FakeProvider.authenticationError(401), "AuthenticationError"],
    [FakeProvider.contextLengthExceeded(), "ContextLengthError"],
    [FakeProvider.contentFilter(), "ContentFilterError"],
    [FakeProvider.badRequest(), "BadRequestError"],
    [FakeProvider.wrongShape(), "ResponseDecodeError"],
    [FakeProvider.resetConnection(), "ConnectionError"]
  ]
  it.live("stream", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ models: { [model]: { script: faults.map(([fault]) => fault) } } })
      const tags = yield* Effect.forEach(faults, () =>
        ChatClient.stream(Fake.request(model)).pipe(
          Stream.runCollect,
          Effect.map((chunks) => chunks.length),
          Effect.flip,
          Effect.map((error) => error._tag)
        )).pipe(Effect.provide(Fake.client(fake.url)))
      assert.deepStrictEqual(tags, faults.map(([, tag]) => tag))
      const received = yield* fake.requests
      assert.isTrue(received.every((r) => r.stream), "every request asked for a stream")
    }))
})
