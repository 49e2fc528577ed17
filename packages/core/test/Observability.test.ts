import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, LlmError, Observability } from "@resilient-llm/core"
import { TestLogs } from "@resilient-llm/testing"
import { Duration, Effect, Fiber, Metric } from "effect"
import { TestClock } from "effect/testing"

describe("Observability.attempt", () => {
  it.effect("logs one annotated line per attempt and times it by Clock", () =>
    Effect.gen(function*() {
      const { layer, lines } = TestLogs.make()
      const completion = ChatCompletion.make({
        model: "m1",
        content: "hi",
        usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 }
      })
      yield* Effect.sleep("250 millis").pipe(
        Effect.as(completion),
        Observability.attempt({ pattern: "fallback", model: "m1" }),
        Effect.provide(layer),
        Effect.forkChild,
        Effect.tap(() => TestClock.adjust("250 millis")),
        Effect.flatMap(Fiber.await)
      )
      yield* Effect.fail(new LlmError.ServerError({ model: "m2", status: 503 })).pipe(
        Observability.attempt({ pattern: "fallback", model: "m2" }),
        Effect.provide(layer),
        Effect.ignore
      )
      assert.strictEqual(lines.length, 2)
      assert.deepStrictEqual(lines[0], {
        level: "INFO",
        message: "attempt succeeded",
        annotations: { "llm.model": "m1", "llm.pattern": "fallback", outcome: "success", latencyMs: 250 }
      })
      assert.strictEqual(lines[1].level, "WARN")
      assert.strictEqual(lines[1].annotations["outcome"], "ServerError")
      assert.strictEqual(lines[1].annotations["llm.model"], "m2")
    }))
})

describe("Observability.attempt: tokens", () => {
  it.effect("records token counts, and never a count no provider could send (the counter is never poisoned)", () =>
    Effect.gen(function*() {
      const succeedWith = (model: string, usage: ChatCompletion.Usage) =>
        Effect.succeed(ChatCompletion.make({ model, content: "hi", usage })).pipe(
          Observability.attempt({ pattern: "test", model })
        )
      const counted = (model: string, kind: "input" | "output") =>
        Effect.map(Metric.value(Metric.withAttributes(Observability.tokens, { model, kind })), (state) => state.count)
      yield* succeedWith("m", { prompt_tokens: 3, completion_tokens: 5 })
      // built by hand (a test double, a custom ChatClient): decoding would refuse each of these
      yield* succeedWith("m", { prompt_tokens: Infinity, completion_tokens: 1 })
      yield* succeedWith("m", { prompt_tokens: 2, completion_tokens: -1 })
      yield* succeedWith("m", { prompt_tokens: Number.NaN, completion_tokens: 0.5 })
      yield* succeedWith("m", { prompt_tokens: 4, completion_tokens: 2 })
      assert.strictEqual(yield* counted("m", "input"), 3 + 2 + 4)
      assert.strictEqual(yield* counted("m", "output"), 5 + 1 + 2)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
})

describe("Observability.snapshot", () => {
  it.effect("counts requests, errors and interruptions per model, filtered by labels", () =>
    Effect.gen(function*() {
      const run = (model: string, effect: Effect.Effect<unknown, LlmError.LlmError>) =>
        effect.pipe(Observability.attempt({ pattern: "test", model }), Effect.ignore)
      yield* run("a", Effect.succeed(1))
      yield* run("a", Effect.succeed(1))
      yield* run("a", Effect.fail(new LlmError.TimeoutError({ model: "a", timeout: Duration.seconds(1) })))
      const hanging = yield* Effect.forkChild(run("a", Effect.never))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(hanging)
      yield* run("b", Effect.fail(new LlmError.ModelNotFoundError({ model: "b" })))
      // an attempt labelled for another run: in the registry, but not in this run's figures
      yield* run("c", Effect.succeed(1)).pipe(Observability.withMetricLabels({ run: "other-run" }))
      const stats = yield* Observability.snapshot({ labels: { run: "snapshot-test" } })
      assert.deepStrictEqual(stats.map((s) => [s.model, s.requests, s.successes, s.errors, s.interrupted]), [
        ["a", 4, 2, 1, 1],
        ["b", 1, 0, 1, 0]
      ])
      assert.strictEqual(stats[0].errorRate, 1 / 3)
      assert.strictEqual(stats[1].errorRate, 1)
      assert.deepStrictEqual(stats[1].outcomes, { ModelNotFoundError: 1 })
      assert.isTrue(typeof stats[0].p50Ms === "number")
      const other = yield* Observability.snapshot({ labels: { run: "nothing-here" } })
      assert.deepStrictEqual(other, [])
      const otherRun = yield* Observability.snapshot({ labels: { run: "other-run" } })
      assert.deepStrictEqual(otherRun.map((s) => [s.model, s.requests]), [["c", 1]])
      assert.deepStrictEqual((yield* Observability.snapshot()).map((s) => [s.model, s.requests]), [
        ["a", 4],
        ["b", 1],
        ["c", 1]
      ])
    }).pipe(
      Observability.withMetricLabels({ run: "snapshot-test" }),
      // a registry of its own: what other tests recorded is not in it
      Effect.provideService(Metric.MetricRegistry, new Map())
    ))
})
