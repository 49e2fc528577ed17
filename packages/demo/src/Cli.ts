/**
 * The demo's command line: its flags, read strictly (an unknown flag or a bad value is a
 * `UsageError` saying which), and its `--help`.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Result from "effect/Result"
import * as Story from "./Story.js"

/**
 * What the command line asked for.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly help: boolean
  /** Print the report as one JSON document on stdout. */
  readonly json: boolean
  /** Show the library's own log lines, on stderr. */
  readonly verbose: boolean
  /** The fake provider's seed. */
  readonly seed: number
  /** A/B requests; the tour's default when `undefined`. */
  readonly requests: number | undefined
  /** Models of a real endpoint; the fake provider when `undefined`. */
  readonly models: ReadonlyArray<string> | undefined
  readonly judge: string | undefined
  /** A Redis to run the sixth act against (two instances sharing one view); none when `undefined`. */
  readonly redis: string | undefined
}

/**
 * @since 0.1.0
 * @category errors
 */
export class UsageError extends Data.TaggedError("UsageError")<{
  readonly reason: string
}> {
  override get message(): string {
    return this.reason
  }
}

/**
 * The default seed of the fake provider.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultSeed: number = Story.defaultSeed

/**
 * @since 0.1.0
 * @category constants
 */
export const help = `Usage: pnpm demo [options]

A tour of resilient-llm's patterns, run over real HTTP through OpenAiCompatible:
  1. a fallback chain that starts with a model that does not exist,
  2. a circuit breaker that opens during an outage, skips the failing model, probes it and closes,
  3. an A/B experiment between two models, every answer scored by a judge model,
  4. best-of-n: three models answer, the judge scores them, the best wins,
  5. deployments: a model on two providers, one rate limited, the calls spill over to the other,
     every call priced, and a team's budget refusing once spent (fake provider only),
then the per-model metrics. By default it starts a fake OpenAI-compatible provider on 127.0.0.1
(no key, no network) that plays a scripted, seeded story; it takes about 8 seconds.

Options:
  --json               print the whole report as one JSON document on stdout, and nothing else
                       (progress goes to stderr)
  --verbose            also print the library's own log lines (on stderr)
  --seed <n>           the fake provider's seed (default ${defaultSeed}); the same seed tells the same story
  --requests <n>       A/B requests (default 200 against the fake, 20 against a real endpoint)
  --models <a,b,...>   run against a real endpoint instead, with these models (at least two): the
                       first is the primary and the A/B control, the second the fallback and the
                       challenger, all of them answer in best-of-n
  --judge <model>      the judge with --models (default: the first model)
  --redis <url>        then a sixth act: two instances of one application (each its own breaker,
                       budget, rate limit, experiment and connection) share one view through the
                       Redis at <url> (redis://host:port); its keys expire ten minutes later
  -h, --help           show this

A real endpoint (with --models):
  OPENAI_BASE_URL      its base URL (default https://api.openai.com/v1), e.g. http://localhost:11434/v1
  OPENAI_API_KEY       its key, if it needs one
  The circuit breaker act needs an outage only the fake can script, so it is skipped. The tour makes
  about 3 + 2 x requests + 2 x models calls, e.g. 49 with three models and the default 20 requests.

Colour: on a terminal, unless NO_COLOR is set; FORCE_COLOR=1 forces it.

Examples:
  pnpm demo
  pnpm demo --json > report.json
  pnpm demo --redis redis://127.0.0.1:6379
  OPENAI_API_KEY=sk-... pnpm demo --models gpt-4o-mini,gpt-4.1-nano --judge gpt-4o-mini
`

const flagsWithValue = new Set(["--seed", "--requests", "--models", "--judge", "--redis"])
const switches = new Set(["--json", "--verbose", "--help", "-h"])

const wholeNumber = (flag: string, value: string, min: number, max: number): Result.Result<number, UsageError> => {
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN
  return Number.isSafeInteger(n) && n >= min && n <= max
    ? Result.succeed(n)
    : Result.fail(new UsageError({ reason: `${flag} takes a whole number from ${min} to ${max}, got "${value}"` }))
}

/**
 * Reads the arguments after the script's name. Flags take their value as the next argument or
 * after `=` (`--seed 7`, `--seed=7`).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (argv: ReadonlyArray<string>): Result.Result<Options, UsageError> => {
  const values = new Map<string, string>()
  const seen = new Set<string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const eq = arg.indexOf("=")
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg
    if (switches.has(flag) && flag === arg) {
      seen.add(flag === "-h" ? "--help" : flag)
    } else if (flagsWithValue.has(flag)) {
      const value = flag === arg ? argv[++i] : arg.slice(eq + 1)
      if (value === undefined || (flag === arg && value.startsWith("--"))) {
        return Result.fail(new UsageError({ reason: `${flag} needs a value` }))
      }
      if (values.has(flag)) return Result.fail(new UsageError({ reason: `${flag} is given twice` }))
      values.set(flag, value)
    } else {
      return Result.fail(new UsageError({ reason: `unknown argument "${arg}"` }))
    }
  }
  return Result.gen(function*() {
    const models = values.get("--models")?.split(",").map((model) => model.trim())
    if (models !== undefined) {
      if (models.some((model) => model === "")) {
        return yield* Result.fail(new UsageError({ reason: "--models has an empty name" }))
      }
      if (new Set(models).size < 2) {
        return yield* Result.fail(new UsageError({ reason: "--models needs at least two different models" }))
      }
      if (values.has("--seed")) {
        return yield* Result.fail(
          new UsageError({ reason: "--seed is for the fake provider; it has no effect with --models" })
        )
      }
    }
    const judge = values.get("--judge")
    if (judge !== undefined && models === undefined) {
      return yield* Result.fail(new UsageError({ reason: "--judge goes with --models (the fake has its own judge)" }))
    }
    if (judge !== undefined && judge.trim() === "") {
      return yield* Result.fail(new UsageError({ reason: "--judge needs a model name" }))
    }
    const redis = values.get("--redis")?.trim()
    if (redis !== undefined && !/^rediss?:\/\/[^\s]+$/.test(redis)) {
      return yield* Result.fail(
        new UsageError({ reason: `--redis takes a URL such as redis://127.0.0.1:6379, got "${redis}"` })
      )
    }
    const seedText = values.get("--seed")
    const seed = seedText === undefined ? defaultSeed : yield* wholeNumber("--seed", seedText, 0, 2 ** 31 - 1)
    const requestsText = values.get("--requests")
    const requests = requestsText === undefined ? undefined : yield* wholeNumber("--requests", requestsText, 1, 10_000)
    return {
      help: seen.has("--help"),
      json: seen.has("--json"),
      verbose: seen.has("--verbose"),
      seed,
      requests,
      models,
      judge: judge?.trim(),
      redis
    }
  })
}
