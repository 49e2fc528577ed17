/**
 * Captures the spans an effect ends, for assertions: which spans a pattern opened, their
 * attributes and parents, and that no secret reached them. The spans are Effect's own, made by the
 * tracer in place when the capture was made; the capture only records each one as it ends.
 *
 * @example
 * ```ts
 * import { TestSpans } from "@resilient-llm/testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const capture = yield* TestSpans.make
 *   yield* Effect.void.pipe(Effect.withSpan("work"), Effect.withTracer(capture.tracer))
 *   // capture.spans: [the "work" span, with its attributes, parent and status]
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Tracer from "effect/Tracer"

/**
 * A capture: `spans` fills, in the order they end, as effects run under `tracer`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TestSpans {
  readonly spans: ReadonlyArray<Tracer.Span>
  /** Give it to `Effect.withTracer` (or provide it as the `Tracer.Tracer` reference). */
  readonly tracer: Tracer.Tracer
}

/**
 * A new, empty capture over the tracer currently in place.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<TestSpans> = Effect.map(Effect.tracer, (inner) => {
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = inner.span(options)
      const end = span.end.bind(span)
      span.end = (endTime, exit) => {
        spans.push(span)
        end(endTime, exit)
      }
      return span
    },
    context: inner.context
  })
  return { spans, tracer }
})
