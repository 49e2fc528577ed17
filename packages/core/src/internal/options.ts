/**
 * Checks shared by the patterns' option validation, so every pattern agrees on what a count and a
 * duration are.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"

/**
 * A count: a whole number of at least 1 that a double holds exactly (so `2 ** 53` and beyond,
 * which cannot be told from their neighbours, are not counts).
 *
 * @internal
 */
export const isPositiveInteger = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 1

// Every form of `Duration.Input` a caller can write: a `Duration`, milliseconds, nanoseconds, a
// string such as "5 seconds", or `[seconds, nanos]`.
const DurationInput = Schema.Union([
  Schema.Duration,
  Schema.DurationFromMillis,
  Schema.DurationFromNanos,
  Schema.DurationFromString,
  Schema.Tuple([Schema.Finite, Schema.Finite]).pipe(
    Schema.decodeTo(Schema.Duration, {
      decode: SchemaGetter.transform(([seconds, nanos]) => Duration.fromInputUnsafe([seconds, nanos])),
      encode: SchemaGetter.transform((duration): readonly [number, number] => [Duration.toSeconds(duration), 0])
    })
  )
])

const decodeDurationInput = Schema.decodeUnknownOption(DurationInput)

/**
 * An option given as a duration, read without trusting its type: `None` for anything that is not
 * a duration (`"soon"`, an object, `NaN`), so a pattern can refuse it with its own typed error
 * instead of dying on it.
 *
 * @internal
 */
export const decodeDuration = (input: unknown): Option.Option<Duration.Duration> => decodeDurationInput(input)
