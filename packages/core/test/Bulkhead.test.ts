import { assert, describe, it } from "@effect/vitest"
import { Bulkhead, LlmError } from "@resilient-llm/core"
import { Clock, Effect, Exit, Fiber, Metric, Ref } from "effect"
import { TestClock } from "effect/testing"

/** A call that takes `ms` of virtual time and records when it started. */
const call = (started: Ref.Ref<ReadonlyArray<readonly [string, number]>>, name: string, ms: number) =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    yield* Ref.update(started, (all) => [...all, [name, now] as const])
    yield* Effect.sleep(ms)
    return name
  })

describe("Bulkhead", () => {
  it.effect("runs maxConcurrent at once, queues maxQueued, refuses the rest at once", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ model: "m", deployment: "east", maxConcurrent: 2, maxQueued: 1 })
      const started = yield* Ref.make<ReadonlyArray<readonly [string, number]>>([])
      const fibers = yield* Effect.forEach(
        ["a", "b", "c", "d"],
        (name) => Effect.forkChild(bulkhead.run(call(started, name, 1000)))
      )
      yield* TestClock.adjust("0 millis")
      assert.deepStrictEqual(yield* bulkhead.stats, { inFlight: 2, queued: 1 })
      const refused = yield* Fiber.await(fibers[3])
      assert.isTrue(Exit.isFailure(refused))
      const error = yield* Effect.flip(Fiber.join(fibers[3]))
      assert.instanceOf(error, LlmError.BulkheadFullError)
      assert.deepStrictEqual([error.model, error.deployment, error.maxConcurrent, error.maxQueued], ["m", "east", 2, 1])
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(yield* Effect.forEach(fibers.slice(0, 3), Fiber.join), ["a", "b", "c"])
      // c waited for a's slot
      assert.deepStrictEqual(yield* Ref.get(started), [["a", 0], ["b", 0], ["c", 1000]])
      assert.deepStrictEqual(yield* bulkhead.stats, { inFlight: 0, queued: 0 })
    }))

  it.effect("an interrupted wait leaves the queue, and a failed call frees its slot", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ model: "m", maxConcurrent: 1, maxQueued: 1 })
      const running = yield* Effect.forkChild(bulkhead.run(Effect.andThen(Effect.sleep(1000), Effect.fail("boom"))))
      const waiting = yield* Effect.forkChild(bulkhead.run(Effect.succeed("late")))
      yield* TestClock.adjust("0 millis")
      assert.deepStrictEqual(yield* bulkhead.stats, { inFlight: 1, queued: 1 })
      yield* Fiber.interrupt(waiting)
      assert.deepStrictEqual(yield* bulkhead.stats, { inFlight: 1, queued: 0 })
      const next = yield* Effect.forkChild(bulkhead.run(Effect.succeed("next")))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Effect.flip(Fiber.join(running)), "boom")
      assert.strictEqual(yield* Fiber.join(next), "next")
      assert.deepStrictEqual(yield* bulkhead.stats, { inFlight: 0, queued: 0 })
    }))

  it.effect("slot holds a place until its scope closes", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ model: "m", maxConcurrent: 1 })
      yield* Effect.scoped(Effect.gen(function*() {
        yield* bulkhead.slot
        assert.deepStrictEqual(yield* bulkhead.stats, { inFlight: 1, queued: 0 })
        assert.instanceOf(yield* Effect.flip(bulkhead.run(Effect.void)), LlmError.BulkheadFullError)
      }))
      assert.deepStrictEqual(yield* bulkhead.stats, { inFlight: 0, queued: 0 })
    }))

  it.effect("reports its slots and refusals as metrics labelled with model and deployment", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ model: "m", deployment: "west", maxConcurrent: 1 })
      const holder = yield* Effect.forkChild(bulkhead.run(Effect.never))
      yield* TestClock.adjust("0 millis")
      yield* Effect.flip(bulkhead.run(Effect.void))
      const metrics = yield* Metric.snapshot
      const find = (id: string) =>
        metrics.find((m) => m.id === id && m.attributes?.["deployment"] === "west" && m.attributes?.["model"] === "m")
      const inFlight = find("resilient_llm_bulkhead_in_flight")
      const refusals = find("resilient_llm_bulkhead_refusals_total")
      assert.isTrue(inFlight?.type === "Gauge" && inFlight.state.value === 1)
      assert.isTrue(refusals?.type === "Counter" && refusals.state.count === 1)
      yield* Fiber.interrupt(holder)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))

  it.effect("options that describe no bulkhead are a BulkheadConfigError", () =>
    Effect.gen(function*() {
      for (const options of [{ maxConcurrent: 0 }, { maxConcurrent: 1.5 }, { maxConcurrent: 1, maxQueued: -1 }]) {
        const error = yield* Effect.flip(Bulkhead.make({ model: "m", ...options }))
        assert.strictEqual(error._tag, "BulkheadConfigError")
      }
    }))
})
