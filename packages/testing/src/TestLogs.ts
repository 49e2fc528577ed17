/**
 * Captures the log lines an effect writes, for assertions. Under `it.effect` the default logger
 * writes to a `TestConsole`, as text, so a test that checks what the library logs (which model
 * served, a circuit opening) provides the capturing layer instead; each line keeps its level,
 * message and annotations as data.
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
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as References from "effect/References"

/**
 * One captured line. `level` is the upper-case label (`"INFO"`, `"WARN"`, `"ERROR"`); `message`
 * is the first value logged (the text, for `Effect.log("...")`).
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
  /** Replaces the default logger with the capturing one; the other loggers (the tracer's) stay. */
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
  const logger = Logger.make(({ fiber, logLevel, message }) => {
    lines.push({
      // Effect 4 names levels "Info", "Warn"; the capture keeps the labels tests were written
      // against ("INFO", "WARN")
      level: logLevel.toUpperCase(),
      message: Array.isArray(message) ? message[0] : message,
      annotations: { ...fiber.getRef(References.CurrentLogAnnotations) }
    })
  })
  const layer = Layer.effect(
    Logger.CurrentLoggers,
    Effect.map(Logger.CurrentLoggers, (current) => {
      // a log line still becomes an event of the current span, as without the capture
      const loggers = new Set([...current].filter((existing) => existing !== Logger.defaultLogger))
      return loggers.add(logger)
    })
  )
  return { lines, layer }
}
