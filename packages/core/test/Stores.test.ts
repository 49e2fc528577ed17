import { assert, describe, it, layer } from "@effect/vitest"
import { Budget, ChatCompletion, Experiment, RateLimit, Stores } from "@resilient-llm/core"
import { RedisServer, TestChatClient, TestLogs } from "@resilient-llm/testing"
import { Context, Effect, Fiber, Layer, Metric, Option, Tracer } from "effect"
import * as Redis from "effect/persistence/Redis"
import { TestClock } from "effect/testing"
import { freshPrefix, RedisLive } from "./support/Stores.js"

/** An instance of the application: its own stores (and guard) over the shared Redis. */
const instance = (prefix: string, options: Omit<Stores.RedisOptions, "prefix"> = {}) =>
  Layer.build(Stores.layerRedis({ timeout: "1000 days", ...options, prefix }))

/** Every key under `prefix`, with its remaining time to live. */
const keysOf = (prefix: string) =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const keys = yield* redis.send<ReadonlyArray<string>>("KEYS", `${prefix}*`)
    return yield* Effect.forEach(keys, (key) => Effect.map(redis.send<number>("PTTL", key), (ttl) => ({ key, ttl })))
  })

/** Everything stored under `prefix`, as text. */
const dump = (prefix: string) =>
  Effect.gen(function*() {
    const redis = yield* Redis.Redis
    const keys = yield* redis.send<ReadonlyArray<string>>("KEYS", `${prefix}*`)
    const values = yield* Effect.forEach(keys, (key) =>
      Effect.flatMap(redis.send<string>("TYPE", key), (type) =>
        type === "hash"
          ? redis.send<unknown>("HGETALL", key)
          : type === "list"
          ? redis.send<unknown>("LRANGE", key, "0", "-1")
          : redis.send<unknown>("GET", key)))
    return JSON.stringify([keys, values])
  })

/** Waits, in real time, until the client talks to the server again after a restart. */
const reconnected = Effect.gen(function*() {
  const redis = yield* Redis.Redis
  for (let i = 0; i < 200; i++) {
    const ok = yield* redis.send("PING").pipe(Effect.as(true), Effect.catch(() => Effect.succeed(false)))
    if (ok) return
    yield* TestClock.withLive(Effect.sleep("50 millis"))
  }
  return yield* Effect.die(new Error("the client did not reconnect"))
})

const counter = (snapshot: ReadonlyArray<Metric.Metric.Snapshot>, name: string, attributes: Record<string, string>) => {
  const found = snapshot.find((m) =>
    m.id === name && Object.entries(attributes).every(([k, v]) => m.attributes?.[k] === v)
  )
  return found?.type === "Counter" ? found.state.count : undefined
}

const answering = TestChatClient.layer({
  "model-a": () => TestChatClient.reply("the answer", { usage: { prompt_tokens: 10, completion_tokens: 5 } }),
  "model-b": () => TestChatClient.reply("the answer", { usage: { prompt_tokens: 10, completion_tokens: 5 } })
})

layer(RedisLive, { timeout: "60 seconds" })("Stores.layerRedis", (it) => {
  it.effect("instances sharing a prefix share budgets, limits and experiments; another prefix shares nothing", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const a = yield* instance(prefix)
      const b = yield* instance(prefix)
      const elsewhere = yield* instance(freshPrefix())
      const config = { limitUsd: 1, period: "1 day" } as const

      // a budget: what one instance spends, the other sees
      yield* Effect.flatMap(
        Budget.make(config),
        (budget) => budget.reserve({ key: "team", model: "m", estimateUsd: 0.6 })
      ).pipe(Effect.provide(a))
      const spentInB = yield* Effect.flatMap(Budget.make(config), (budget) => budget.status("team")).pipe(
        Effect.provide(b)
      )
      assert.strictEqual(spentInB.spentUsd, 0.6)
      yield* Effect.flatMap(
        Budget.make(config),
        (budget) => budget.reserve({ key: "team", model: "m", estimateUsd: 0.6 })
      ).pipe(Effect.provide(b))
      const refused = yield* Effect.flip(
        Effect.flatMap(Budget.make(config), (budget) => budget.reserve({ key: "team", model: "m", estimateUsd: 0.1 }))
      ).pipe(Effect.provide(a))
      assert.strictEqual(refused._tag, "BudgetExceededError")
      const fresh = yield* Effect.flatMap(Budget.make(config), (budget) => budget.status("team")).pipe(
        Effect.provide(elsewhere)
      )
      assert.strictEqual(fresh.spentUsd, 0)

      // a rate limit: two requests a minute between them
      const limiter = RateLimit.make({ model: "m", deployment: "east", rpm: 2 })
      yield* Effect.flatMap(limiter, (l) => l.tryAcquire(0)).pipe(Effect.provide(a))
      yield* Effect.flatMap(limiter, (l) => l.tryAcquire(0)).pipe(Effect.provide(b))
      const throttled = yield* Effect.flip(Effect.flatMap(limiter, (l) => l.tryAcquire(0))).pipe(Effect.provide(a))
      assert.isTrue(throttled._tag === "ThrottledError" && throttled.limit === "rpm")
      yield* Effect.flatMap(limiter, (l) => l.tryAcquire(0)).pipe(Effect.provide(elsewhere))

      // an experiment: the summary counts every instance's calls, and a call is scored anywhere
      const options: Experiment.Options = {
        name: "shared",
        assignment: "random",
        variants: [{ name: "control", model: "model-a", weight: 1 }, {
          name: "challenger",
          model: "model-b",
          weight: 1
        }]
      }
      const servedByA = yield* Effect.flatMap(
        Experiment.make(options),
        (e) => Effect.forEach([1, 2, 3], () => e.complete(ChatCompletion.prompt("hi")))
      ).pipe(Effect.scoped, Effect.provide(a))
      const summary = yield* Effect.flatMap(Experiment.make(options), (e) =>
        Effect.gen(function*() {
          yield* e.complete(ChatCompletion.prompt("hi"))
          yield* e.score(servedByA[0].callId, 4)
          return yield* e.summary
        })).pipe(Effect.scoped, Effect.provide(b))
      assert.strictEqual(summary.variants.reduce((n, v) => n + v.calls, 0), 4)
      assert.strictEqual(summary.variants.reduce((n, v) => n + v.score.count, 0), 1)
      assert.notStrictEqual(servedByA[0].callId, servedByA[1].callId)
    }).pipe(Effect.provide(answering)))

  it.effect("keys start with the prefix, expire when idle, and hold no prompt, answer or caller key", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      const stores = yield* instance(prefix, { expireAfterIdle: "1 hour" })
      yield* Effect.gen(function*() {
        const budget = yield* Budget.make({ limitUsd: 1, period: "1 day" })
        yield* budget.reserve({ key: "team-a", model: "m", estimateUsd: 0.1 })
        const limiter = yield* RateLimit.make({ model: "m", deployment: "east", rpm: 10, tpm: 1000 })
        yield* limiter.tryAcquire(100)
        yield* limiter.rateLimited(Option.none())
        const experiment = yield* Experiment.make({
          name: "privacy",
          assignment: "sticky",
          variants: [{ name: "a", model: "model-a", weight: 1 }]
        })
        const served = yield* experiment.complete(ChatCompletion.prompt("SECRET PROMPT TEXT"), {
          key: "alice@example.com"
        })
        yield* experiment.score(served.callId, 5)
      }).pipe(Effect.scoped, Effect.provide(stores))
      const keys = yield* keysOf(prefix)
      assert.isAbove(keys.length, 5)
      for (const { key, ttl } of keys) {
        assert.isTrue(key.startsWith(prefix), key)
        // -1 would be a key that never expires
        assert.isAbove(ttl, 0, `${key} expires`)
      }
      const adaptive = keys.find((k) => k.key.includes("adaptive"))
      assert.isTrue(adaptive !== undefined && adaptive.ttl <= 3_600_000)
      const text = yield* dump(prefix)
      for (const secret of ["SECRET PROMPT", "the answer", "alice"]) assert.notInclude(text, secret)
    }).pipe(Effect.provide(answering)))

  it.effect(
    "Redis slow: the call waits no longer than the timeout and goes on locally, with a warning, a metric and a span event; then Redis is back and the writes made meanwhile reach it",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.Server
        const prefix = freshPrefix()
        const logs = TestLogs.make()
        // the events of every span, by span name
        const events: Array<{ readonly span: string; readonly name: string; readonly attributes: unknown }> = []
        const inner = yield* Effect.tracer
        const tracer = Tracer.make({
          span: (options) => {
            const span = inner.span(options)
            const event = span.event.bind(span)
            span.event = (name, startTime, attributes) => {
              events.push({ span: options.name, name, attributes })
              event(name, startTime, attributes)
            }
            return span
          },
          context: inner.context
        })
        const stores = yield* instance(prefix, { timeout: "100 millis", retryAfter: "1 second" })
        const health = Context.get(stores, Stores.Health)
        const budget = yield* Budget.make({ limitUsd: 1, period: "1 day" }).pipe(Effect.provide(stores))
        const reserve = (estimateUsd: number) =>
          budget.reserve({ key: "team", model: "m", estimateUsd }).pipe(
            Effect.withSpan("caller"),
            Effect.withTracer(tracer),
            Effect.provide(logs.layer)
          )

        yield* reserve(0.25)
        yield* server.pause
        const slow = yield* Effect.forkChild(reserve(0.25))
        yield* TestClock.adjust("99 millis")
        assert.isUndefined(slow.pollUnsafe(), "still waiting for Redis")
        yield* TestClock.adjust("1 millis")
        // answered by the local view, which knew the 0.25 spent before
        assert.strictEqual((yield* Fiber.join(slow)).amountUsd, 0.25)
        const warnings = logs.lines.filter((line) => line.level === "WARN")
        assert.strictEqual(warnings.length, 1)
        assert.include(String(warnings[0].message), "did not answer budget.reserve: no answer within 100 ms")
        const event = events.find((e) => e.span === "caller" && e.name === "resilient-llm.store.unavailable")
        assert.deepStrictEqual(event?.attributes, {
          "store.operation": "budget.reserve",
          "store.reason": "timeout",
          "store.error": "no answer within 100 ms"
        })
        // while Redis is away, calls go straight to the local view: no waiting at all
        yield* reserve(0.25)
        assert.isFalse(yield* health.available)
        assert.strictEqual(yield* health.pendingWrites, 2)
        const metrics = yield* Metric.snapshot
        assert.strictEqual(
          counter(metrics, "resilient_llm_store_local_total", { operation: "budget.reserve", reason: "timeout" }),
          1
        )
        assert.strictEqual(
          counter(metrics, "resilient_llm_store_local_total", { operation: "budget.reserve", reason: "away" }),
          1
        )
        assert.strictEqual(warnings.length, 1, "one warning per outage, not one per call")

        yield* server.resume
        yield* TestClock.adjust("1 second")
        // the first call after `retryAfter` reaches Redis again, and the queued writes follow it
        const status = yield* budget.status("team").pipe(Effect.provide(logs.layer))
        yield* Effect.gen(function*() {
          while ((yield* health.pendingWrites) > 0) yield* TestClock.withLive(Effect.sleep("5 millis"))
        })
        assert.isTrue(yield* health.available)
        assert.isAtLeast(status.spentUsd, 0.25)
        // Redis has every write: the first, the one that timed out (Redis carried it out late, and
        // it was replayed too: at least once, never lost) and the one made while it was away
        const spent = yield* budget.status("team").pipe(Effect.provide(stores))
        assert.strictEqual(spent.spentUsd, 1)
        assert.isTrue(logs.lines.some((line) => String(line.message).includes("answers again")))
      }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("Redis down: calls go on at once, and when it is back (with its data) the writes made meanwhile reach it", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.Server
      const prefix = freshPrefix()
      const stores = yield* instance(prefix, { timeout: "1 second", retryAfter: "2 seconds" })
      const health = Context.get(stores, Stores.Health)
      const options: Experiment.Options = {
        name: "outage",
        assignment: "random",
        variants: [{ name: "a", model: "model-a", weight: 1 }]
      }
      const experiment = yield* Experiment.make(options).pipe(Effect.provide(stores))
      const budget = yield* Budget.make({ limitUsd: 10, period: "1 day" }).pipe(Effect.provide(stores))
      yield* experiment.complete(ChatCompletion.prompt("before"))
      yield* budget.reserve({ key: "team", model: "m", estimateUsd: 1 })

      yield* server.stop
      // nothing waits: a client that knows the server is gone fails the command at once
      yield* experiment.complete(ChatCompletion.prompt("during"))
      yield* experiment.complete(ChatCompletion.prompt("during"))
      yield* budget.reserve({ key: "team", model: "m", estimateUsd: 2 })
      assert.isFalse(yield* health.available)
      // the summary is this instance's own view meanwhile
      assert.strictEqual((yield* experiment.summary).variants[0].calls, 3)

      yield* server.start
      yield* reconnected
      yield* TestClock.adjust("2 seconds")
      const status = yield* budget.status("team")
      while ((yield* health.pendingWrites) > 0) yield* TestClock.withLive(Effect.sleep("5 millis"))
      assert.isTrue(yield* health.available)
      assert.strictEqual(status.spentUsd, 1, "what Redis kept through the restart")
      assert.strictEqual((yield* budget.status("team")).spentUsd, 3)
      // another instance sees every call, the ones made during the outage included
      const other = yield* instance(prefix)
      const summary = yield* Effect.flatMap(Experiment.make(options), (e) => e.summary).pipe(
        Effect.scoped,
        Effect.provide(other)
      )
      assert.strictEqual(summary.variants[0].calls, 3)
    }).pipe(Effect.provide(answering), Effect.scoped))
})

describe("Stores.layerRedis options", () => {
  layer(RedisLive)((it) => {
    it.effect("a blank prefix or a non-positive duration is a StoreConfigError", () =>
      Effect.gen(function*() {
        for (
          const options of [
            { prefix: "" },
            { prefix: "  " },
            { prefix: "app:", timeout: -5 },
            { prefix: "app:", retryAfter: 0 },
            { prefix: "app:", maxPendingWrites: 0 }
          ]
        ) {
          const error = yield* Effect.flip(Layer.build(Stores.layerRedis(options)))
          assert.strictEqual(error._tag, "StoreConfigError", JSON.stringify(options))
        }
      }))
  })
})

describe("Stores.redactUrl", () => {
  it("never shows a password of the URL", () => {
    assert.strictEqual(Stores.redactUrl("redis://user:hunter2@cache:6379/0"), "redis://user:***@cache:6379/0")
    assert.strictEqual(Stores.redactUrl("redis://:hunter2@cache:6379"), "redis://:***@cache:6379")
    assert.strictEqual(Stores.redactUrl("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379")
  })
})
