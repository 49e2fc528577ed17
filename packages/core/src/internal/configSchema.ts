/**
 * Schemas shared by the configuration of deployments, limits and budgets: plain data (strings and
 * numbers, as a JSON or YAML file holds them), checked, with the same type before and after
 * decoding.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

const decodeDuration = Schema.decodeUnknownOption(Schema.DurationFromString)

/**
 * The duration a text names (`"500 millis"`, `"2 seconds"`, `"1 day"`), if it names one.
 *
 * @internal
 */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => decodeDuration(text)

/**
 * A duration written as text, finite, and at least zero (`positive`: above zero).
 *
 * @internal
 */
export const DurationText = (options: { readonly positive: boolean }) =>
  Schema.String.check(Schema.makeFilter((text: string) => {
    const duration = parseDuration(text)
    if (Option.isNone(duration)) return `expected a duration such as "2 seconds", got ${JSON.stringify(text)}`
    if (!Duration.isFinite(duration.value)) return `expected a finite duration, got ${JSON.stringify(text)}`
    if (
      options.positive
        ? !Duration.isGreaterThan(duration.value, Duration.zero)
        : Duration.isNegative(duration.value)
    ) {
      return `expected a duration ${options.positive ? "above" : "of at least"} zero, got ${JSON.stringify(text)}`
    }
    return true
  })).annotate({ description: "a duration, such as \"2 seconds\"" })

/**
 * A duration already checked by `DurationText`.
 *
 * @internal
 */
export const durationOf = (text: string): Duration.Duration =>
  Option.getOrElse(parseDuration(text), () => Duration.zero)

/**
 * A whole number of at least 1.
 *
 * @internal
 */
export const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))

/**
 * A whole number of at least 0.
 *
 * @internal
 */
export const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * A finite number of at least 0.
 *
 * @internal
 */
export const NonNegative = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * A string with something other than spaces in it.
 *
 * @internal
 */
export const Name = Schema.String.check(
  Schema.makeFilter((text: string) => text.trim().length > 0 ? true : "expected a name, got an empty string")
)
