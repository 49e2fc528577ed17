import { assert, describe, it } from "@effect/vitest"
import { TestLogs, TestSpans } from "@resilient-llm/testing"
import { Effect, Tracer } from "effect"

describe("TestLogs", () => {
  it.effect("captures each line's level, first message and annotations, per capture", () =>
    Effect.gen(function*() {
      const first = TestLogs.make()
      const second = TestLogs.make()
      yield* Effect.logWarning("circuit opened", { extra: 1 }).pipe(
        Effect.annotateLogs("llm.model", "gpt-4o"),
        Effect.provide(first.layer)
      )
      yield* Effect.logInfo("served").pipe(Effect.provide(second.layer))
      assert.deepStrictEqual(first.lines, [
        { level: "WARN", message: "circuit opened", annotations: { "llm.model": "gpt-4o" } }
      ])
      assert.deepStrictEqual(second.lines.map((line) => [line.level, line.message]), [["INFO", "served"]])
    }))

  it.effect("replaces only the default logger: a captured line still becomes an event of its span", () =>
    Effect.gen(function*() {
      const logs = TestLogs.make()
      const capture = yield* TestSpans.make
      yield* Effect.logInfo("served").pipe(
        Effect.withSpan("attempt"),
        Effect.withTracer(capture.tracer),
        Effect.provide(logs.layer)
      )
      const [span] = capture.spans
      if (!(span instanceof Tracer.NativeSpan)) return assert.fail("expected Effect's own span")
      assert.deepStrictEqual(span.events.map(([name]) => name), ["served"])
      assert.deepStrictEqual(logs.lines.map((line) => line.message), ["served"])
    }))
})
