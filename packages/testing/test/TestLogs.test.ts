import { assert, describe, it } from "@effect/vitest"
import { TestLogs } from "@resilient-llm/testing"
import { Effect } from "effect"

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
})
