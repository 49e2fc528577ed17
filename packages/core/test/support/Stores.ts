/**
 * Runs a suite once per store: in memory, and in Redis (a real `redis-server` this file starts on
 * 127.0.0.1 and a free port, stopped when the suite ends). Each test gets fresh stores (in Redis,
 * a prefix of its own, so tests sharing the server see none of each other's keys), provided for
 * the whole test.
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { describe, layer } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import type { Budget, RateLimit } from "@resilient-llm/core"
import { Stores } from "@resilient-llm/core"
import { RedisServer } from "@resilient-llm/testing"
import { Clock, Context, Duration, Effect, Layer } from "effect"
import type * as RateLimiter from "effect/persistence/RateLimiter"
import type * as Redis from "effect/persistence/Redis"
import type * as Scope from "effect/Scope"
import { TestClock } from "effect/testing"

/** The connection every Redis suite of a file shares, and its server. */
export const RedisLive: Layer.Layer<Redis.Redis | NodeRedis.NodeRedis | RedisServer.Server, unknown> = Layer
  .unwrap(Effect.map(RedisServer.Server, (server) =>
    NodeRedis.layer({
      url: server.url,
      // a command to a Redis that is down fails at once instead of waiting to be sent on reconnection
      disableOfflineQueue: true
    }))).pipe(Layer.provideMerge(RedisServer.layer))

let suite = 0

/** A fresh prefix per test: `test:<pid>:<n>:`. */
export const freshPrefix = (): string => `test:${process.pid}:${++suite}:`

/** What every store layer provides. */
export type AllStores = Budget.BudgetStore | RateLimiter.RateLimiter | RateLimit.AdaptiveStore | Stores.Health

/**
 * Lets forked fibers run until none waits on the store: a Redis command takes real time, so a
 * test that forks a call and then moves the `TestClock` first waits for the call to reach its
 * next suspension (a sleep), as a call on the memory store does at once.
 */
export const settle: Effect.Effect<void, never, Stores.Health> = Effect.gen(function*() {
  const health = yield* Stores.Health
  let quiet = 0
  for (let round = 0; round < 5_000 && quiet < 20; round++) {
    yield* Effect.yieldNow
    if ((yield* health.inFlight) > 0) {
      quiet = 0
      yield* TestClock.withLive(Effect.sleep("1 millis"))
    } else {
      quiet += 1
    }
  }
})

/** One kind of store. */
export interface StoreKind {
  readonly name: "memory" | "redis"
}

/** `it` whose `effect` tests get fresh stores of the kind. */
export interface StoreIt<R> {
  readonly effect: <A, E>(name: string, self: () => Effect.Effect<A, E, AllStores | Scope.Scope | R>) => void
  readonly it: Vitest.MethodsNonLive<R>
}

// Every operation must reach Redis: a suite that passed on the local view would prove nothing.
const checked = <A, E, R>(self: Effect.Effect<A, E, R | Stores.Health>) =>
  Effect.gen(function*() {
    const health = yield* Stores.Health
    const result = yield* self
    const local = yield* health.localAnswers
    if (local > 0) return yield* Effect.die(new Error(`${local} store operation(s) did not reach Redis`))
    return result
  })

/** The suite `f`, once with the stores in memory and once with them in Redis. */
export const eachStore = (
  name: string,
  f: <R>(it: StoreIt<R>, store: StoreKind) => void
): void => {
  describe(`${name} (memory)`, () => {
    layer(Layer.empty)((it) =>
      f({
        it,
        effect: (name, self) =>
          it.effect(name, () =>
            trackingSleeps(Effect.provide(Effect.suspend(self), Stores.layerMemory)).pipe(
              // a test of a shared layer gets a clock of its own, at 0, as a plain `it.effect` does
              Effect.provide(TestClock.layer())
            ))
      }, { name: "memory" })
    )
  })
  layer(RedisLive, { timeout: "30 seconds" })(`${name} (redis)`, (it) =>
    f({
      it,
      effect: (name, self) =>
        it.effect(name, () =>
          checked(Effect.suspend(self)).pipe(
            Effect.provide(Layer.orDie(Stores.layerRedis({ timeout: "1000 days", prefix: freshPrefix() }))),
            trackingSleeps,
            Effect.provide(TestClock.layer())
          ))
    }, { name: "redis" }))
}

/**
 * The instants at which sleeps of the test are due, kept by a `Clock` that wraps the `TestClock`,
 * so that `adjust` can stop at each of them.
 */
const Deadlines = Context.Reference<Array<number> | undefined>("test/Stores/Deadlines", {
  defaultValue: () => undefined
})

/**
 * Provides a `Clock` that is the test's `TestClock` and also notes when each sleep is due.
 */
const trackingSleeps = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const clock = yield* TestClock.testClockWith(Effect.succeed)
    const deadlines: Array<number> = []
    const tracking: TestClock.TestClock = {
      adjust: (duration) => clock.adjust(duration),
      setTime: (timestamp) => clock.setTime(timestamp),
      withLive: (effect) => clock.withLive(effect),
      currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe(),
      currentTimeMillis: clock.currentTimeMillis,
      currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe(),
      currentTimeNanos: clock.currentTimeNanos,
      monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
      monotonicTimeNanos: clock.monotonicTimeNanos,
      sleep: (duration) =>
        Effect.suspend(() => {
          const at = clock.currentTimeMillisUnsafe() + Duration.toMillis(duration)
          deadlines.push(at)
          return Effect.ensuring(
            clock.sleep(duration),
            Effect.sync(() => {
              const index = deadlines.indexOf(at)
              if (index >= 0) deadlines.splice(index, 1)
            })
          )
        })
    }
    return yield* self.pipe(Effect.provideService(Clock.Clock, tracking), Effect.provideService(Deadlines, deadlines))
  })

/**
 * `TestClock.adjust`, one due sleep at a time: the clock moves to the next instant a sleep is due,
 * then waits until no fiber waits on the store, and so on up to `duration`. A call woken at one
 * instant thus does its Redis commands at that instant, as it does its memory updates, before
 * the clock moves on.
 */
export const adjust = (duration: Duration.Input): Effect.Effect<void, never, Stores.Health> =>
  Effect.gen(function*() {
    const deadlines = yield* Deadlines
    const now = () => Effect.clockWith((clock) => Effect.succeed(clock.currentTimeMillisUnsafe()))
    const target = (yield* now()) + Duration.toMillis(Duration.fromInputUnsafe(duration))
    yield* settle
    if (deadlines === undefined) return yield* Effect.andThen(TestClock.adjust(duration), settle)
    while (true) {
      const current = yield* now()
      const next = Math.min(target, ...deadlines.filter((at) => at > current))
      if (next > current) yield* TestClock.adjust(next - current)
      yield* settle
      if (next >= target) return
    }
  })
