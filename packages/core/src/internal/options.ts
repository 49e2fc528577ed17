/**
 * The checks behind every pattern's options (`Fallback`, `Retry`, `CircuitBreaker`, `Experiment`,
 * `BestOfN`, `Judge`), so they agree on what a count, a duration, a number and a function are,
 * and say what is wrong in the same words: `timeout must be a positive duration, got soon`. Each
 * check returns the value, read and narrowed, or the reason as a string, which the pattern turns
 * into its own typed config error. Nothing here trusts the static types: options may come from a
 * config file.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
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
 * An option's value as a reason quotes it: a duration formatted, anything else as `String` gives
 * it (so `"soon"` reads `soon` and `NaN` reads `NaN`), an object as JSON.
 *
 * @internal
 */
export const show = (input: unknown): string => {
  if (Duration.isDuration(input)) return Duration.format(input)
  if (typeof input === "object" && input !== null && !Array.isArray(input)) {
    try {
      return JSON.stringify(input)
    } catch {
      return text(input)
    }
  }
  return text(input)
}

// `String` throws on a value that cannot become text (`[{ toString: {} }]` or `[{ toString: "" }]`
// from a config file): the reason then quotes it as JSON, or names its kind, rather than crash the
// check that quotes it
const text = (input: unknown): string => {
  try {
    return String(input)
  } catch {
    try {
      return JSON.stringify(input) ?? Object.prototype.toString.call(input)
    } catch {
      return Object.prototype.toString.call(input)
    }
  }
}

/**
 * A count checked: a whole number of at least `min` (1 by default), or why it is not.
 *
 * @internal
 */
export const count = (name: string, input: unknown, min = 1): number | string =>
  typeof input === "number" && Number.isSafeInteger(input) && input >= min
    ? input
    : `${name} must be a whole number of at least ${min}, got ${show(input)}`

/**
 * A duration checked: positive (or, with `zero`, at least 0), and finite unless `infinite`
 * allows `Duration.infinity`; or why it is not. Any form of `Duration.Input` is read, and
 * nothing else: `"soon"`, `NaN` and negative durations are refused.
 *
 * @internal
 */
export const duration = (
  name: string,
  input: unknown,
  rule: { readonly zero?: boolean; readonly infinite?: boolean } = {}
): Duration.Duration | string => {
  const invalid = `${name} must be ${rule.zero ? "a duration of at least 0" : "a positive duration"}, got ${
    show(input)
  }`
  // NaN would be read as zero milliseconds
  if (typeof input === "number" && Number.isNaN(input)) return invalid
  const decoded = decodeDurationInput(input)
  if (decoded._tag === "None") return invalid
  const millis = Duration.toMillis(decoded.value)
  if (Number.isNaN(millis) || millis < 0 || (!rule.zero && millis === 0)) return invalid
  if (!rule.infinite && !Number.isFinite(millis)) return `${name} must be a finite duration, got ${show(input)}`
  return decoded.value
}

/**
 * An optional duration: `undefined` stays `undefined`.
 *
 * @internal
 */
export const optionalDuration = (
  name: string,
  input: unknown,
  rule: { readonly zero?: boolean; readonly infinite?: boolean } = {}
): Duration.Duration | undefined | string => input === undefined ? undefined : duration(name, input, rule)

/**
 * A number checked: finite and within `[min, max]`; or why it is not.
 *
 * @internal
 */
export const finite = (
  name: string,
  input: unknown,
  range: { readonly min?: number; readonly max?: number } = {}
): number | string => {
  const ok = typeof input === "number" && Number.isFinite(input) &&
    (range.min === undefined || input >= range.min) && (range.max === undefined || input <= range.max)
  if (ok) return input
  const bounds = range.min !== undefined && range.max !== undefined
    ? ` between ${range.min} and ${range.max}`
    : range.min !== undefined
    ? ` of at least ${range.min}`
    : range.max !== undefined
    ? ` of at most ${range.max}`
    : ""
  return `${name} must be a finite number${bounds}, got ${show(input)}`
}

/**
 * An optional function: why it is not one, or `undefined` when it is (or is absent).
 *
 * @internal
 */
export const optionalFunction = (name: string, input: unknown): string | undefined =>
  input === undefined || typeof input === "function" ? undefined : `${name} must be a function, got ${show(input)}`
