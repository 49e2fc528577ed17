/**
 * Benchmark 8: what a store in Redis costs per call against the same store in memory. One
 * operation per call, as the patterns make them: a budget reservation, a rate-limit admission
 * (requests and tokens per minute, never refused), an experiment's record of a finished call, and
 * a call through a closed circuit breaker that succeeds. Redis is a real `redis-server` on
 * 127.0.0.1 started for the run, reached through `NodeRedis` (the `redis` client); each call
 * waits for its answer (one call at a time, so the figure is the added latency of a call, not
 * Redis's throughput). Wall time is the figure here: most of what Redis adds is waiting for the
 * socket, which CPU time does not see; CPU time is printed beside it.
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Budget, CircuitBreaker, Experiment, RateLimit, Stores } from "@resilient-llm/core"
import { RedisServer } from "@resilient-llm/testing"
import { Context, Effect, Layer, ManagedRuntime, References } from "effect"
import type * as RateLimiter from "effect/persistence/RateLimiter"
import type * as Scope from "effect/Scope"
import { type Contender, measureRounds, sink, type Timing, timingOf } from "./measure.js"
import { type Ratio, type Row, type Section, statCell, textCell } from "./report.js"

export interface StoresOptions {
  readonly rounds: number
  readonly size: number
  readonly warmup: number
}

type Operation = "budget" | "rateLimit" | "experiment" | "breaker"

const operations: ReadonlyArray<Operation> = ["budget", "rateLimit", "experiment", "breaker"]

const labels: Record<Operation, string> = {
  budget: "Budget reserve",
  rateLimit: "RateLimit tryAcquire (rpm + tpm)",
  experiment: "Experiment record",
  breaker: "CircuitBreaker protect (closed, success)"
}

type Services = Budget.BudgetStore | RateLimiter.RateLimiter | RateLimit.AdaptiveStore | Scope.Scope

/** One operation per call, looped `n` times, from stores built once. */
const operationsOver = Effect.gen(function*() {
  const budget = yield* Budget.make({ limitUsd: 1e12, period: "1 day" })
  const limiter = yield* RateLimit.make({ model: "m", deployment: "east", rpm: 1e9, tpm: 1e12 })
  const experiment = yield* Experiment.make({
    name: "bench",
    assignment: "random",
    variants: [{ name: "a", model: "a", weight: 1 }, { name: "b", model: "b", weight: 1 }]
  })
  const breaker = yield* CircuitBreaker.make()
  const once: Record<Operation, Effect.Effect<number, unknown>> = {
    budget: Effect.map(budget.reserve({ key: "team", model: "m", estimateUsd: 0.001 }), (r) => r.period),
    rateLimit: Effect.map(limiter.tryAcquire(100), (p) => p.tokens),
    experiment: Effect.map(
      experiment.record({ variant: "a", latencyMs: 120, outcome: "success", inputTokens: 10, outputTokens: 5 }),
      (id) => id.length
    ),
    breaker: Effect.succeed(1).pipe(breaker.protect("model"))
  }
  return once
})

const loop = (once: Effect.Effect<number, unknown>) =>
  Effect.fnUntraced(function*(n: number) {
    for (let i = 0; i < n; i++) sink(yield* once)
    return n
  })

class Operations extends Context.Service<Operations, Record<Operation, Effect.Effect<number, unknown>>>()(
  "bench/stores/Operations"
) {}

/** Runs benchmark 7. */
export const stores = async (options: StoresOptions): Promise<Section> => {
  const quiet = Layer.succeed(References.MinimumLogLevel, "Warn")
  const RedisLive = Layer.unwrap(
    Effect.map(RedisServer.Server, (server) => NodeRedis.layer({ url: server.url, disableOfflineQueue: true }))
  ).pipe(Layer.provideMerge(RedisServer.layer))
  const over = <E>(stores: Layer.Layer<Exclude<Services, Scope.Scope>, E>) =>
    ManagedRuntime.make(Layer.effect(Operations, operationsOver).pipe(Layer.provide(Layer.merge(stores, quiet))))
  const inMemory = over(Stores.layerMemory)
  const inRedis = over(
    Stores.layerRedis({ prefix: `bench:${process.pid}:`, timeout: "5 seconds" }).pipe(Layer.provide(RedisLive))
  )
  const run = (runtime: typeof inMemory | typeof inRedis, operation: Operation) => (n: number) =>
    runtime.runPromise(Effect.flatMap(Operations, (ops) => loop(ops[operation])(n)))
  type Key = `${Operation}.${"memory" | "redis"}`
  const contenders: ReadonlyArray<Contender<Key>> = operations.flatMap((operation) => [
    { key: `${operation}.memory` as const, run: run(inMemory, operation) },
    { key: `${operation}.redis` as const, run: run(inRedis, operation) }
  ])
  try {
    const timings = await measureRounds(contenders, options)
    const of = (key: Key): Timing => timingOf(timings, key)
    const rows: Array<Row> = operations.flatMap((operation) => {
      const memory = of(`${operation}.memory`)
      const redis = of(`${operation}.redis`)
      const added = (redis.wallNsPerUnit.median - memory.wallNsPerUnit.median) / 1000
      return [
        {
          key: `${operation}.memory`,
          label: `${labels[operation]}, memory`,
          cells: {
            wall: statCell(memory.wallNsPerUnit, "ns"),
            cpu: statCell(memory.cpuNsPerUnit, "ns"),
            added: textCell("")
          }
        },
        {
          key: `${operation}.redis`,
          label: `${labels[operation]}, Redis`,
          cells: {
            wall: statCell(redis.wallNsPerUnit, "ns"),
            cpu: statCell(redis.cpuNsPerUnit, "ns"),
            added: textCell(`+${added.toFixed(0)} µs`)
          }
        }
      ]
    })
    const ratios: Array<Ratio> = operations.map((operation) => ({
      name: `${labels[operation]}: Redis / memory, wall time per call`,
      value: of(`${operation}.redis`).wallNsPerUnit.median / of(`${operation}.memory`).wallNsPerUnit.median
    }))
    return {
      id: "stores",
      title: "8. Shared stores: Redis against memory, per call",
      columns: [
        { key: "wall", header: "wall per call" },
        { key: "cpu", header: "CPU per call" },
        { key: "added", header: "Redis adds" }
      ],
      rows,
      ratios,
      notes: [
        "one call at a time: the wall time of a Redis call is mostly the round trip to a redis-server on 127.0.0.1",
        "a budget reservation and an experiment record are one Lua script each; a rate-limit admission reads the " +
        "adaptive state, then runs one token-bucket script for requests and one for tokens; a successful call " +
        "through a closed circuit reads the circuit once",
        "the in-memory rows are the default stores: nothing to run"
      ]
    }
  } finally {
    await inMemory.dispose()
    await inRedis.dispose()
  }
}
