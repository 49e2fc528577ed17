import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, LlmError, RateLimit } from "@resilient-llm/core"
import { Duration, Effect, Fiber, Layer, Metric, Option, Schema } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import { TestClock } from "effect/testing"
import { eachStore, settle } from "./support/Stores.js"

const limiter = (options: Omit<RateLimit.Options, "model">) =>
  RateLimit.make({ model: "gpt-4o", deployment: "east", ...options })

const refusal = <A>(effect: Effect.Effect<A, LlmError.ThrottledError>) =>
  Effect.map(Effect.flip(effect), (error) => [error.limit, Duration.toMillis(error.retryAfter)] as const)

eachStore("RateLimit", (it) => {
  it.effect("requests per minute: a token bucket that refills evenly over the minute", () =>
    Effect.gen(function*() {
      const l = yield* limiter({ rpm: 3 })
      for (let i = 0; i < 3; i++) yield* l.tryAcquire(0)
      const error = yield* Effect.flip(l.tryAcquire(0))
      assert.instanceOf(error, LlmError.ThrottledError)
      assert.deepStrictEqual([error.model, error.deployment, error.limit], ["gpt-4o", "east", "rpm"])
      assert.strictEqual(Duration.toMillis(error.retryAfter), 20_000) // one request every 20 s
      yield* TestClock.adjust("20 seconds")
      yield* l.tryAcquire(0)
      assert.deepStrictEqual(yield* refusal(l.tryAcquire(0)), ["rpm", 20_000])
    }))

  it.effect("tokens per minute: a refused call takes nothing, its request included", () =>
    Effect.gen(function*() {
      const l = yield* limiter({ rpm: 2, tpm: 1000 })
      assert.deepStrictEqual(yield* l.tryAcquire(600), { tokens: 600, factor: 1 })
      assert.deepStrictEqual((yield* refusal(l.tryAcquire(600)))[0], "tpm")
      // the refused call gave its request back: one request and 400 tokens are left
      yield* l.tryAcquire(400)
      assert.deepStrictEqual((yield* refusal(l.tryAcquire(0)))[0], "rpm")
    }))

  it.effect("a request larger than the whole limit is refused for good, and says why", () =>
    Effect.gen(function*() {
      const l = yield* limiter({ tpm: 1000 })
      const error = yield* Effect.flip(l.tryAcquire(5000))
      assert.strictEqual(error.limit, "tpm")
      assert.isFalse(Duration.isFinite(error.retryAfter))
      assert.include(error.message, "the request needs about 5000 tokens, more than the limit of 1000 a minute")
    }))

  it.effect("settle corrects the estimate from the usage: more is taken, less is given back up to a full bucket", () =>
    Effect.gen(function*() {
      const l = yield* limiter({ tpm: 1000 })
      const permit = yield* l.tryAcquire(300)
      yield* l.settle(permit, 900) // 100 left
      assert.deepStrictEqual((yield* refusal(l.tryAcquire(200)))[0], "tpm")
      const small = yield* l.tryAcquire(100) // 0 left
      yield* l.settle(small, 0) // 100 back
      yield* l.tryAcquire(100)
      // a refund never fills the bucket past its size
      yield* TestClock.adjust("1 minute") // full again: 1000
      const big = yield* l.tryAcquire(800) // 200 left
      yield* TestClock.adjust("1 minute") // refilled to 1000 while the call ran
      yield* l.settle(big, 10) // would give 790 back: capped at the size
      yield* l.tryAcquire(1000)
      assert.deepStrictEqual((yield* refusal(l.tryAcquire(1)))[0], "tpm")
    }))

  it.effect("acquire waits for room when it comes within maxWait, and refuses at once when it does not", () =>
    Effect.gen(function*() {
      const l = yield* limiter({ rpm: 1 })
      yield* l.tryAcquire(0)
      assert.deepStrictEqual(yield* refusal(l.acquire(0, "10 seconds")), ["rpm", 60_000]) // no waiting in vain
      const waiting = yield* Effect.forkChild(l.acquire(0, "2 minutes"))
      yield* settle
      yield* TestClock.adjust("59 seconds")
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* Fiber.join(waiting), { tokens: 0, factor: 1 })
    }))

  it.effect("a 429 cools the deployment down and lowers its rate; successes raise it back", () =>
    Effect.gen(function*() {
      const l = yield* limiter({ rpm: 100, tpm: 10_000 })
      yield* l.rateLimited(Option.some(Duration.seconds(5)))
      assert.deepStrictEqual(yield* refusal(l.tryAcquire(10)), ["cooldown", 5000])
      assert.deepStrictEqual(yield* l.status, { factor: 0.5, rpm: 50, tpm: 5000, cooldownMs: 5000 })
      yield* TestClock.adjust("5 seconds")
      const permit = yield* l.tryAcquire(10)
      assert.strictEqual(permit.factor, 0.5)
      // without a hint, the cooldown is the adaptive policy's (1 s by default)
      yield* l.rateLimited(Option.none())
      assert.deepStrictEqual(yield* l.status, { factor: 0.25, rpm: 25, tpm: 2500, cooldownMs: 1000 })
      yield* TestClock.adjust("1 second")
      for (let i = 0; i < 5; i++) yield* l.succeeded
      assert.deepStrictEqual(yield* l.status, { factor: 0.5, rpm: 50, tpm: 5000, cooldownMs: 0 })
      for (let i = 0; i < 20; i++) yield* l.succeeded
      assert.deepStrictEqual(yield* l.status, { factor: 1, rpm: 100, tpm: 10_000, cooldownMs: 0 })
    }))

  it.effect("the rate never falls below its floor, nor below one call a minute", () =>
    Effect.gen(function*() {
      const l = yield* limiter({ rpm: 3, adaptive: { floor: 0.2, decrease: 0.5, cooldown: "0 millis" } })
      for (let i = 0; i < 10; i++) yield* l.rateLimited(Option.none())
      assert.deepStrictEqual(yield* l.status, { factor: 0.2, rpm: 1, tpm: undefined, cooldownMs: 0 })
      const fixed = yield* RateLimit.make({ model: "m", key: "fixed", rpm: 10, adaptive: false })
      yield* fixed.rateLimited(Option.some(Duration.minutes(1)))
      assert.deepStrictEqual(yield* fixed.status, { factor: 1, rpm: 10, tpm: undefined, cooldownMs: 0 })
      yield* fixed.tryAcquire(0)
    }))

  it.effect("refusals and the adaptive factor are metrics labelled with model, deployment and limit", () =>
    Effect.gen(function*() {
      const l = yield* limiter({ rpm: 1 })
      yield* l.tryAcquire(0)
      yield* Effect.flip(l.tryAcquire(0))
      yield* l.rateLimited(Option.none())
      const metrics = yield* Metric.snapshot
      const refused = metrics.find((m) =>
        m.id === "resilient_llm_rate_limit_refusals_total" && m.attributes?.["limit"] === "rpm" &&
        m.attributes?.["deployment"] === "east" && m.attributes?.["model"] === "gpt-4o"
      )
      assert.isTrue(refused?.type === "Counter" && refused.state.count === 1)
      const factor = metrics.find((m) =>
        m.id === "resilient_llm_rate_limit_factor" && m.attributes?.["deployment"] === "east"
      )
      assert.isTrue(factor?.type === "Gauge" && factor.state.value === 0.5)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("deployments with different keys have separate limits", () =>
    Effect.gen(function*() {
      const east = yield* RateLimit.make({ model: "m", deployment: "east", rpm: 1 })
      const west = yield* RateLimit.make({ model: "m", deployment: "west", rpm: 1 })
      yield* east.tryAcquire(0)
      yield* west.tryAcquire(0)
      assert.strictEqual((yield* Effect.flip(east.tryAcquire(0))).deployment, "east")
    }))

  it.effect("limits that describe no limiter are a RateLimitConfigError", () =>
    Effect.gen(function*() {
      for (
        const options of [{ rpm: 0 }, { tpm: 1.5 }, { adaptive: { decrease: 0 } }, { adaptive: { floor: 2 } }, {
          adaptive: { cooldown: "soon" }
        }]
      ) {
        const error = yield* Effect.flip(RateLimit.make({ model: "m", ...options }))
        assert.strictEqual(error._tag, "RateLimitConfigError", JSON.stringify(options))
      }
    }))
})

describe("RateLimit", () => {
  it.effect("stores that fail let calls through rather than stopping all traffic", () =>
    Effect.gen(function*() {
      const storeError = new RateLimiter.RateLimiterError({
        reason: new RateLimiter.RateLimitStoreError({ message: "redis is down" })
      })
      const failing = Layer.mergeAll(
        Layer.succeed(RateLimiter.RateLimiter, {
          [RateLimiter.TypeId]: RateLimiter.TypeId,
          consume: () => Effect.fail(storeError),
          adaptiveConsume: () => Effect.fail(storeError),
          adaptiveFeedback: () => Effect.fail(storeError)
        }),
        Layer.succeed(RateLimit.AdaptiveStore, {
          get: () => Effect.fail(new RateLimit.AdaptiveStoreError({ reason: "down" })),
          throttled: () => Effect.fail(new RateLimit.AdaptiveStoreError({ reason: "down" })),
          succeeded: () => Effect.fail(new RateLimit.AdaptiveStoreError({ reason: "down" }))
        })
      )
      const l = yield* limiter({ rpm: 1, tpm: 10 }).pipe(Effect.provide(failing))
      for (let i = 0; i < 3; i++) yield* l.tryAcquire(5)
      yield* l.rateLimited(Option.none())
      yield* l.settle({ tokens: 5, factor: 1 }, 50)
    }))
})

describe("RateLimit, any sequence of calls", () => {
  const steps = Schema.Array(
    Schema.Struct({
      waitMs: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 15_000 })),
      calls: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 6 }))
    })
  ).check(Schema.isMaxLength(40))

  it.effect.prop(
    "never admits more than the bucket holds plus what it refilled since",
    [Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 20 })), steps],
    ([rpm, plan]) =>
      Effect.gen(function*() {
        const l = yield* RateLimit.make({ model: "m", key: `prop-${rpm}`, rpm })
        const admitted: Array<number> = []
        let now = 0
        for (const step of plan) {
          yield* TestClock.adjust(Duration.millis(step.waitMs))
          now += step.waitMs
          for (let i = 0; i < step.calls; i++) {
            if ((yield* Effect.result(l.tryAcquire(0)))._tag === "Success") admitted.push(now)
          }
        }
        const refillMs = 60_000 / rpm
        for (let i = 0; i < admitted.length; i++) {
          for (let j = i; j < admitted.length; j++) {
            const allowed = rpm + Math.floor((admitted[j] - admitted[i]) / refillMs)
            assert.isAtMost(j - i + 1, allowed, `${j - i + 1} calls between ${admitted[i]} and ${admitted[j]} ms`)
          }
        }
        // and it is not stingy: from a full bucket, rpm calls in a row go through
        if (plan.length > 0 && plan[0].calls >= rpm) {
          assert.isAtLeast(admitted.filter((t) => t === plan[0].waitMs).length, rpm)
        }
      }).pipe(Effect.provide(RateLimit.layerStoresMemory)),
    { arbitrary: { runs: 60 } }
  )
})

describe("RateLimit.estimateTokens", () => {
  it("counts four characters a token and a few per message, and the output it may write", () => {
    const request = ChatCompletion.prompt("x".repeat(400), { max_tokens: 100 })
    assert.deepStrictEqual(RateLimit.estimateTokens(request), { input: 104, output: 100 })
    assert.deepStrictEqual(RateLimit.estimateTokens(ChatCompletion.prompt("hi")), { input: 5, output: 256 })
    assert.deepStrictEqual(RateLimit.estimateTokens(ChatCompletion.prompt("hi"), { defaultOutput: 10 }), {
      input: 5,
      output: 10
    })
    const parts = {
      messages: [{ role: "user", content: [{ type: "text", text: "y".repeat(40) }, { type: "image_url" }] }],
      max_completion_tokens: 7
    }
    assert.deepStrictEqual(RateLimit.estimateTokens(parts), { input: 14, output: 7 })
  })
})
