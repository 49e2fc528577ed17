import { assert, it } from "@effect/vitest"
import { TestSpans } from "@resilient-llm/testing"
import { Effect } from "effect"

it.effect("opens one span per attempt", () =>
  Effect.gen(function*() {
    const capture = yield* TestSpans.make
    yield* Effect.void.pipe(
      Effect.withSpan("attempt", { attributes: { "llm.model": "gpt-4o" } }),
      Effect.withTracer(capture.tracer)
    )
    assert.deepStrictEqual(capture.spans.map((span) => span.name), ["attempt"])
    assert.strictEqual(capture.spans[0].attributes.get("llm.model"), "gpt-4o")
  }))
