import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, CircuitBreaker, Fallback } from "@resilient-llm/core"
import { TestChatClient } from "@resilient-llm/testing"
import { Clock, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"

const request = ChatCompletion.prompt("Where is my order?")

// The primary hangs on its first three calls and is healthy afterwards; the fallback answers in 200 ms.
const script: TestChatClient.Script = {
  primary: (index) => index < 3 ? TestChatClient.hang : TestChatClient.reply("primary here", { delay: "100 millis" }),
  fallback: [TestChatClient.reply("fallback here", { delay: "200 millis" })]
}

const BreakerLive = CircuitBreaker.layer({
  trip: CircuitBreaker.consecutiveFailures(3),
  breakDuration: "1 minute",
  maxProbeDuration: "1 minute"
})

/**
 * Runs one request under TestClock, moving virtual time until it ends. The duration is read inside
 * the fiber, so it is exact whatever the step: TestClock wakes each sleeper at its own time.
 */
const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const fiber = yield* Effect.forkChild(Effect.zip(effect, Clock.currentTimeMillis))
    while (fiber.pollUnsafe() === undefined) yield* TestClock.adjust("1 second")
    const [result, end] = yield* Fiber.join(fiber)
    return { result, elapsedMs: end - start }
  })

describe("Fallback.chain with a circuit breaker", () => {
  it.effect("a hanging primary costs its timeout until the circuit opens, then nothing; a probe brings it back", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.CircuitBreaker
      const complete = Fallback.chain(["primary", "fallback"], { timeout: "30 seconds", breaker })

      // Three requests each wait the full 30 s on the primary before the fallback serves.
      for (let i = 0; i < 3; i++) {
        const { elapsedMs, result } = yield* timed(complete(request))
        assert.strictEqual(result.model, "fallback")
        assert.strictEqual(elapsedMs, 30_200)
        assert.deepStrictEqual(result.attempts.map((a) => [a.model, a.error?._tag]), [
          ["primary", "TimeoutError"],
          ["fallback", undefined]
        ])
      }
      assert.strictEqual(yield* breaker.state("primary"), "open")

      // Open: the primary is skipped at once, so a request costs only the fallback's 200 ms.
      for (let i = 0; i < 5; i++) {
        const { elapsedMs, result } = yield* timed(complete(request))
        assert.strictEqual(result.model, "fallback")
        assert.strictEqual(elapsedMs, 200)
        assert.deepStrictEqual(result.attempts.map((a) => [a.model, a.error?._tag, a.durationMs]), [
          ["primary", "CircuitOpenError", 0],
          ["fallback", undefined, 200]
        ])
      }
      // Nothing was sent to the primary while its circuit was open.
      assert.strictEqual((yield* TestChatClient.callsTo("primary")).length, 3)

      // After the break, the next request is the probe; the primary has recovered and serves it.
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* breaker.state("primary"), "half-open")
      const probe = yield* timed(complete(request))
      assert.strictEqual(probe.result.model, "primary")
      assert.strictEqual(probe.elapsedMs, 100)
      assert.strictEqual(yield* breaker.state("primary"), "closed")
      assert.deepStrictEqual((yield* TestChatClient.callsTo("primary")).map((call) => call.result), [
        "interrupted",
        "interrupted",
        "interrupted",
        "success"
      ])
    }).pipe(Effect.provide(Layer.merge(TestChatClient.layer(script), BreakerLive))))

  it.effect("with retries inside the chain, every failed attempt counts: one request's three timeouts open the circuit", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.CircuitBreaker
      const complete = Fallback.chain(["primary", "fallback"], {
        timeout: "30 seconds",
        retry: { retries: 2, jitter: false },
        breaker
      })
      const { result } = yield* timed(complete(request))
      assert.strictEqual(result.model, "fallback")
      assert.deepStrictEqual(result.attempts.map((a) => [a.model, a.retry, a.error?._tag]), [
        ["primary", 0, "TimeoutError"],
        ["primary", 1, "TimeoutError"],
        ["primary", 2, "TimeoutError"],
        ["fallback", 0, undefined]
      ])
      assert.strictEqual(yield* breaker.state("primary"), "open")
    }).pipe(Effect.provide(Layer.merge(TestChatClient.layer(script), BreakerLive))))
})
