import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, Fallback } from "@resilient-llm/core"
import { FakeProvider } from "@resilient-llm/testing"
import { Duration, Effect, Option, Schedule, Stream } from "effect"
import * as Fake from "../support/Fake.js"

// Fallback.chain over real HTTP: OpenAiCompatible against FakeProvider.

/**
 * The least a real wait of `ms` can measure by the wall clock here. Node starts a timer from the
 * event loop's time, taken when the current turn began, so a sleep scheduled after some work in
 * that turn ends early by that work's length: 1 ms on an idle machine, more when the machine is
 * busy (the suite measured a 10 ms backoff as 9 and a 60 ms hint as 59). These tests show that a
 * wait happened over HTTP; its exact length is tested in virtual time (packages/core/test).
 */
const waited = (ms: number): number => ms / 2

const prompt = ChatCompletion.prompt("Which model answers?")

describe("Fallback.chain against FakeProvider", () => {
  it.live("a model the provider does not serve fails with ModelNotFoundError and the next one serves", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ models: { "gpt-test": { reply: "gpt-test here." } } })
      const served = yield* Fallback.chain(["no-such-model", "gpt-test"])(prompt).pipe(
        Effect.provide(Fake.client(fake.url))
      )
      assert.strictEqual(served.model, "gpt-test")
      assert.strictEqual(ChatCompletion.text(served.value), "gpt-test here.")
      assert.deepStrictEqual(
        served.attempts.map((a) => [a.model, a.retry, a.outcome, a.error?._tag]),
        [["no-such-model", 0, "failure", "ModelNotFoundError"], ["gpt-test", 0, "success", undefined]]
      )
      assert.strictEqual(served.attempts[0].error?.model, "no-such-model")
      const received = yield* fake.requests
      assert.deepStrictEqual(received.map((r) => [r.model, r.status, r.rejection]), [
        ["no-such-model", 404, "model_not_found"],
        ["gpt-test", 200, undefined]
      ])
    }))

  it.live("a 503 is retried on the same model, which then serves; the backup is never called", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({
        models: { "gpt-test": { script: [FakeProvider.serverError(503)] }, "backup": {} }
      })
      const served = yield* Fallback.chain(["gpt-test", "backup"], {
        timeout: "2 seconds",
        retry: { retries: 2, base: "40 millis", jitter: false }
      })(prompt).pipe(Effect.provide(Fake.client(fake.url)))
      assert.strictEqual(served.model, "gpt-test")
      assert.deepStrictEqual(
        served.attempts.map((a) => [a.model, a.retry, a.outcome, a.error?._tag]),
        [["gpt-test", 0, "failure", "ServerError"], ["gpt-test", 1, "success", undefined]]
      )
      const failed = served.attempts[0]
      assert.strictEqual(failed.error?._tag === "ServerError" ? failed.error.status : undefined, 503)
      // the retry waited for its 40 ms backoff after the failure (see `waited`)
      assert.isAtLeast(served.attempts[1].startedAt - (failed.startedAt + failed.durationMs), waited(40))
      assert.deepStrictEqual((yield* fake.requestsTo("gpt-test")).map((r) => r.status), [503, 200])
      assert.deepStrictEqual(yield* fake.requestsTo("backup"), [])
    }))

  it.live("a retried 429 waits for its retry-after-ms, then falls back when retries run out", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({
        models: {
          "gpt-test": { script: () => FakeProvider.rateLimited({ retryAfter: { millis: 60 } }) },
          "backup": { reply: "backup here." }
        }
      })
      const served = yield* Fallback.chain(["gpt-test", "backup"], {
        retry: { retries: 1, base: "1 millis", jitter: false }
      })(prompt).pipe(Effect.provide(Fake.client(fake.url)))
      assert.strictEqual(served.model, "backup")
      assert.deepStrictEqual(
        served.attempts.map((a) => [a.model, a.retry, a.error?._tag]),
        [["gpt-test", 0, "RateLimitError"], ["gpt-test", 1, "RateLimitError"], ["backup", 0, undefined]]
      )
      const [first, second] = served.attempts
      assert.isAtLeast(second.startedAt - (first.startedAt + first.durationMs), waited(60), "the hint was honoured")
    }))

  it.live("a hanging model times out, its HTTP request is released, and the next model serves", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ models: { "slow": { script: [FakeProvider.hang()] }, "gpt-test": {} } })
      // the timeout is every attempt's, the healthy one's too: far above a loopback call on a busy machine
      const served = yield* Fallback.chain(["slow", "gpt-test"], { timeout: "1 second" })(prompt).pipe(
        Effect.provide(Fake.client(fake.url))
      )
      assert.strictEqual(served.model, "gpt-test")
      assert.deepStrictEqual(served.attempts.map((a) => a.error?._tag), ["TimeoutError", undefined])
      assert.isAtLeast(served.attempts[0].durationMs, waited(1000))
      assert.strictEqual(yield* Fake.eventually(fake.activeRequests, (n) => n === 0), 0)
    }))

  it.live("a 400 stops the chain: the request is at fault, no other model is asked", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({
        models: { "gpt-test": { script: [FakeProvider.badRequest({ code: "invalid_value" })] }, "backup": {} }
      })
      const failure = yield* Fallback.chain(["gpt-test", "backup"])(prompt).pipe(
        Effect.catchTag("FallbackConfigError", (error) => Effect.die(error)),
        Effect.flip,
        Effect.provide(Fake.client(fake.url))
      )
      assert.strictEqual(failure._tag, "AllModelsFailed")
      assert.strictEqual(failure.reason, "NotFallbackable")
      assert.deepStrictEqual(failure.untried, ["backup"])
      assert.strictEqual(failure.stoppedBy?._tag, "BadRequestError")
      if (failure.stoppedBy?._tag === "BadRequestError") {
        assert.deepStrictEqual(failure.stoppedBy.code, Option.some("invalid_value"))
      }
      assert.deepStrictEqual(yield* fake.requestsTo("backup"), [])
    }))

  it.live("every model failing over HTTP is AllModelsFailed with each attempt's error in order", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({
        models: {
          "a": { script: [FakeProvider.serverError(529)] },
          "b": { script: [FakeProvider.malformedJson()] },
          "c": { script: [FakeProvider.resetConnection()] }
        }
      })
      const failure = yield* Fallback.chain(["a", "b", "c"])(prompt).pipe(
        Effect.catchTag("FallbackConfigError", (error) => Effect.die(error)),
        Effect.flip,
        Effect.provide(Fake.client(fake.url))
      )
      assert.strictEqual(failure.reason, "Exhausted")
      assert.deepStrictEqual(failure.attempts.map((a) => [a.model, a.error._tag]), [
        ["a", "ServerError"],
        ["b", "ResponseDecodeError"],
        ["c", "ConnectionError"]
      ])
      assert.include(failure.message, "a: Model a failed with HTTP 529")
    }))
})

describe("Fallback.stream against FakeProvider", () => {
  const encoder = new TextEncoder()
  const chunk = JSON.stringify({
    id: "chatcmpl-1",
    object: "chat.completion.chunk",
    created: 0,
    model: "talker",
    choices: [{ index: 0, delta: { role: "assistant", content: "Once" }, finish_reason: null }]
  })
  // One chunk, then only keep-alive comments, for ever: the stream neither ends nor goes quiet.
  const keepAlive = FakeProvider.raw({
    status: 200,
    headers: { "content-type": "text/event-stream" },
    body: Stream.concat(
      Stream.make(encoder.encode(`data: ${chunk}\n\n`)),
      Stream.repeat(Stream.make(encoder.encode(": keep-alive\n\n")), Schedule.spaced("50 millis"))
    )
  })

  for (
    const [name, options, limit] of [
      ["deadline", { deadline: "400 millis" }, 400],
      ["idleTimeout", { idleTimeout: "300 millis" }, 300]
    ] as const
  ) {
    it.live(`a stream kept alive by comments after its first chunk fails at its ${name} and is closed`, () =>
      Effect.gen(function*() {
        const fake = yield* Fake.start({ models: { talker: { script: () => keepAlive } } })
        const error = yield* Effect.gen(function*() {
          const served = yield* Fallback.stream(["talker"], options)(prompt)
          assert.strictEqual(served.model, "talker")
          return yield* Effect.flip(Stream.runDrain(served.value))
        }).pipe(Effect.scoped, Effect.provide(Fake.client(fake.url)))
        assert.strictEqual(error._tag, "TimeoutError")
        assert.strictEqual(error._tag === "TimeoutError" ? Duration.toMillis(error.timeout) : undefined, limit)
        // the connection was closed: the server is no longer writing
        assert.strictEqual(yield* Fake.eventually(fake.activeRequests, (n) => n === 0), 0)
      }))
  }
})
