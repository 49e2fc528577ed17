/**
 * Captures the log lines an effect writes, for assertions. `it.effect` removes the logger, so a
 * test that checks what the library logs (which model served, a circuit opening) provides the
 * capturing layer instead; each line keeps its level, message and annotations as data.
 *
 * @example
 * ```ts
 * import { TestLogs } from "@resilient-llm/testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const logs = TestLogs.make()
 *   yield* Effect.logWarning("circuit opened").pipe(Effect.annotateLogs("llm.model", "gpt-4o"), Effect.provide(logs.layer))
 *   // logs.lines: [{ level: "WARN", message: "circuit opened", annotations: { "llm.model": "gpt-4o" } }]
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as HashMap from "effect/HashMap"
import type * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"

/**
 * One captured line. `message` is the first value logged (the text, for `Effect.log("...")`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Line {
  readonly level: string
  readonly message: unknown
  readonly annotations: Readonly<Record<string, unknown>>
}

/**
 * A capture: `lines` fills as the effects under `layer` log.
 *
 * @since 0.1.0
 * @category models
 */
export interface TestLogs {
  readonly lines: ReadonlyArray<Line>
  /** Replaces the default logger with the capturing one. */
  readonly layer: Layer.Layer<never>
}

/**
 * A new, empty capture.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): TestLogs => {
  const lines: Array<Line> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    lines.push({
      level: logLevel.label,
      message: Array.isArray(message) ? message[0] : message,
      annotations: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}
