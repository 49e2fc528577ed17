/**
 * One instance of an application, in a process of its own, hammering the stores in one Redis
 * with other instances: `tsx test/stores/hammer.ts <scenario> <redis url> <prefix> <instances>`.
 * It waits until every instance is ready (a counter in Redis), runs the scenario with many fibers
 * at once, and prints what it was granted as one JSON line.
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import {
  Budget,
  type ChatClient,
  ChatCompletion,
  CircuitBreaker,
  Experiment,
  LlmError,
  RateLimit,
  Stores
} from "@resilient-llm/core"
import { TestChatClient } from "@resilient-llm/testing"
import { Cause, Clock, Effect, Exit, Layer, References } from "effect"
import type * as RateLimiter from "effect/persistence/RateLimiter"
import * as Redis from "effect/persistence/Redis"

const [scenario, url, prefix, instances, index] = process.argv.slice(2)

const ready = Effect.gen(function*() {
  const redis = yield* Redis.Redis
  yield* redis.send("INCR", `${prefix}ready`)
  while (Number(yield* redis.send<string>("GET", `${prefix}ready`)) < Number(instances)) {
    yield* Effect.sleep("5 millis")
  }
})

const FIBERS = 16

/** Every fiber calls `attempt` until `millis` have passed; the grants and the time span they took. */
const hammer = <E>(millis: number, attempt: Effect.Effect<boolean, E>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const counts = yield* Effect.forEach(Array.from({ length: FIBERS }), () =>
      Effect.gen(function*() {
        let granted = 0
        let tried = 0
        while ((yield* Clock.currentTimeMillis) - start < millis) {
          tried += 1
          if (yield* attempt) granted += 1
        }
        return { granted, tried }
      }), { concurrency: "unbounded" })
    return {
      start,
      end: yield* Clock.currentTimeMillis,
      granted: counts.reduce((n, c) => n + c.granted, 0),
      tried: counts.reduce((n, c) => n + c.tried, 0)
    }
  })

type Services =
  | Budget.BudgetStore
  | Stores.Health
  | Redis.Redis
  | RateLimiter.RateLimiter
  | RateLimit.AdaptiveStore
  | ChatClient.ChatClient

const scenarios: Record<string, Effect.Effect<unknown, unknown, Services>> = {
  rate: Effect.gen(function*() {
    const limiter = yield* RateLimit.make({ model: "m", deployment: "east", rpm: 600 })
    yield* ready
    return yield* hammer(1500, Effect.as(limiter.tryAcquire(0), true).pipe(Effect.catch(() => Effect.succeed(false))))
  }),
  budget: Effect.gen(function*() {
    const budget = yield* Budget.make({ limitUsd: 10, period: "1 day" })
    yield* ready
    return yield* hammer(
      1000,
      Effect.as(budget.reserve({ key: "team", model: "m", estimateUsd: 0.125 }), true).pipe(
        Effect.catch(() => Effect.succeed(false))
      )
    )
  }),
  breaker: Effect.gen(function*() {
    const breaker = yield* CircuitBreaker.make({
      trip: CircuitBreaker.consecutiveFailures(1),
      breakDuration: "1 second",
      maxProbeDuration: "1 minute"
    })
    const redis = yield* Redis.Redis
    const openedAt = `${prefix}openedAt`
    yield* ready
    if (index === "0") {
      // one instance's failure opens the circuit for all
      yield* Effect.ignore(breaker.protect("m")(Effect.fail(new LlmError.ServerError({ model: "m", status: 503 }))))
      yield* redis.send("SET", openedAt, String(yield* Clock.currentTimeMillis))
    }
    let opened: string | null = null
    while ((opened = yield* redis.send<string | null>("GET", openedAt)) === null) yield* Effect.sleep("5 millis")
    const stateWhileOpen = yield* breaker.state("m")
    // every fiber of every instance calls at once, once the break is over: one probe in all
    const due = Number(opened) + 1_100
    while ((yield* Clock.currentTimeMillis) < due) yield* Effect.sleep("5 millis")
    const exits = yield* Effect.forEach(
      Array.from({ length: FIBERS }),
      // the probe runs long enough that every process calls while it runs, however late the
      // machine lets a process run (a call after the probe succeeded is rightly admitted)
      () => Effect.exit(breaker.protect("m")(Effect.as(Effect.sleep("4 seconds"), "probe"))),
      { concurrency: "unbounded" }
    )
    // the probe has ended, in whichever process ran it
    while ((yield* Clock.currentTimeMillis) < due + 5_000) yield* Effect.sleep("20 millis")
    return {
      stateWhileOpen,
      admitted: exits.filter(Exit.isSuccess).length,
      refused: exits.filter((exit) =>
        Exit.isFailure(exit) && exit.cause.reasons.some((r) =>
          Cause.isFailReason(r) && r.error._tag === "CircuitOpenError"
        )
      ).length,
      stateAfter: yield* breaker.state("m")
    }
  }).pipe(Effect.scoped),
  experiment: Effect.gen(function*() {
    const experiment = yield* Experiment.make({
      name: "shared",
      assignment: "random",
      variants: [{ name: "a", model: "model-a", weight: 1 }, { name: "b", model: "model-b", weight: 1 }]
    })
    yield* ready
    let calls = 0
    yield* Effect.forEach(
      Array.from({ length: FIBERS }),
      () =>
        Effect.forEach(
          Array.from({ length: 25 }),
          () =>
            Effect.tap(experiment.complete(ChatCompletion.prompt("hi")), () =>
              Effect.sync(() => {
                calls += 1
              }))
        ),
      { concurrency: "unbounded" }
    )
    return { calls, summary: yield* experiment.summary }
  }).pipe(Effect.scoped)
}

const RedisLive = NodeRedis.layer({ url, disableOfflineQueue: true })
const program = Effect.gen(function*() {
  const result = yield* scenarios[scenario]
  const health = yield* Stores.Health
  return { result, localAnswers: yield* health.localAnswers }
}).pipe(
  Effect.provide(Stores.layerRedis({ prefix, timeout: "5 seconds" }).pipe(Layer.provideMerge(RedisLive))),
  // stdout carries the result alone
  Effect.provideService(References.MinimumLogLevel, "None"),
  Effect.provide(TestChatClient.layer({
    "model-a": () => TestChatClient.reply("a", { usage: { prompt_tokens: 1, completion_tokens: 1 } }),
    "model-b": () => TestChatClient.reply("b", { usage: { prompt_tokens: 1, completion_tokens: 1 } })
  }))
)

Effect.runPromise(program).then(
  (result) => {
    process.stdout.write(JSON.stringify(result) + "\n")
    process.exit(0)
  },
  (error) => {
    process.stderr.write(String(error) + "\n")
    process.exit(1)
  }
)
