import { assert, describe, it } from "@effect/vitest"
import { TestSpans } from "@resilient-llm/testing"
import { Effect, Exit, Option } from "effect"

describe("TestSpans", () => {
  it.effect("records each span as it ends, with its attributes, parent and exit, only under its tracer", () =>
    Effect.gen(function*() {
      const capture = yield* TestSpans.make
      yield* Effect.void.pipe(Effect.withSpan("outside"))
      yield* Effect.fail("boom").pipe(
        Effect.withSpan("child", { attributes: { "llm.model": "m" } }),
        Effect.ignore,
        Effect.withSpan("parent"),
        Effect.withTracer(capture.tracer)
      )
      assert.deepStrictEqual(capture.spans.map((span) => span.name), ["child", "parent"])
      const [child, parent] = capture.spans
      assert.strictEqual(child.attributes.get("llm.model"), "m")
      const childParent = Option.getOrUndefined(child.parent)
      assert.strictEqual(childParent?._tag === "Span" ? childParent.spanId : undefined, parent.spanId)
      assert.isTrue(child.status._tag === "Ended" && Exit.isFailure(child.status.exit))
    }))
})
