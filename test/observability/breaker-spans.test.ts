import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, CircuitBreaker, Fallback } from "@resilient-llm/core"
import { TestChatClient } from "@resilient-llm/testing"
import { Effect, Layer } from "effect"
import * as InMemoryTelemetry from "./InMemoryTelemetry.js"

describe("breaker refusals in a fallback chain's trace", () => {
  it.live("each refused model is a span of its own under the chain's, which names no refused model", () =>
    Effect.gen(function*() {
      const { exporter, layer: telemetry } = InMemoryTelemetry.make("breaker-spans")
      const spans = yield* Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.CircuitBreaker
        yield* breaker.isolate("a")
        yield* breaker.isolate("b")
        const served = yield* Fallback.chain(["a", "b", "c"], { breaker })(ChatCompletion.prompt("hi"))
        assert.strictEqual(served.model, "c")
        return exporter.getFinishedSpans()
      }).pipe(
        Effect.provide(Layer.merge(CircuitBreaker.layer(), TestChatClient.layer({ c: [TestChatClient.reply("ok")] }))),
        Effect.provide(telemetry)
      )
      const root = spans.find((span) => span.name === "resilient-llm.fallback")
      assert.isDefined(root)
      assert.notProperty(root!.attributes, "llm.model", "the chain's span is not labelled by a refusal")
      assert.strictEqual(root!.attributes["llm.served_model"], "c")
      const refused = spans.filter((span) => span.name === "resilient-llm.breaker.refused")
      assert.deepStrictEqual(
        refused.map((span) => [span.attributes["llm.model"], span.attributes["llm.breaker.state"]]),
        [
          ["a", "isolated"],
          ["b", "isolated"]
        ]
      )
      assert.isTrue(refused.every((span) => span.parentSpanContext?.spanId === root!.spanContext().spanId))
    }))
})
