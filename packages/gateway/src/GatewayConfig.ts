/**
 * The gateway's configuration file, in YAML or JSON: the providers it talks to (their keys read
 * from the environment, never written in the file), the deployments of each logical model (with
 * their routing strategy, rate limits, bulkheads, circuit breakers and prices, run by
 * `@resilient-llm/core`'s `Deployments`), the virtual models clients ask for (a fallback chain, an
 * experiment or a best-of-n, each with its retry, timeouts and rate limit), and the gateway keys
 * clients authenticate with, with their budgets. The schemas below
 * are the whole format; `parse` reads a file's text and checks it against them and against itself
 * (every name it refers to exists), and a mistake is a `GatewayConfigError` whose every issue names
 * the line, the column and the field.
 *
 * @example
 * ```ts
 * import { GatewayConfig } from "@resilient-llm/gateway"
 * import { Effect } from "effect"
 *
 * const config = GatewayConfig.parse(`
 * providers:
 *   local:
 *     fake:
 *       models:
 *         fast: { reply: "Hello!" }
 * deployments:
 *   fast: { provider: local }
 * models:
 *   chat:
 *     fallback: [fast]
 *     timeout: 5 seconds
 * keys:
 *   - name: dev
 *     sha256: 0b006f9beb977623c3f78ec1be7fe09519ecfab87240f4f263e4164f76667e55
 *     models: ["*"]
 * `, { source: "gateway.yaml" }).pipe(Effect.map((config) => Object.keys(config.models)))
 * ```
 *
 * @since 0.1.0
 */
import * as Cost from "@resilient-llm/core/Cost"
import * as RateLimit from "@resilient-llm/core/RateLimit"
import * as Routing from "@resilient-llm/core/Routing"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as internal from "./internal/config.js"

/**
 * A positive duration, read from a string such as `"30 seconds"`, `"250 millis"`, `"2 minutes"`,
 * or from a number of milliseconds (`1500`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const DurationInput = Schema.Union([Schema.DurationFromString, Schema.DurationFromMillis]).check(
  Schema.makeFilter((duration: Duration.Duration) =>
    (Duration.isFinite(duration) && Duration.toMillis(duration) > 0) || durationExpected
  )
)

const durationExpected = `expected a positive duration such as "30 seconds", "250 millis" or a number of milliseconds`

/**
 * A duration of zero or more, as `DurationInput` reads it (`"0 millis"` and `0` are allowed).
 *
 * @since 0.2.0
 * @category schemas
 */
export const DurationOrZero = Schema.Union([Schema.DurationFromString, Schema.DurationFromMillis]).check(
  Schema.makeFilter((duration: Duration.Duration) =>
    (Duration.isFinite(duration) && Duration.toMillis(duration) >= 0) || durationOrZeroExpected
  )
)

const durationOrZeroExpected = `expected a duration of zero or more, such as "2 seconds" or a number of milliseconds`

const PositiveInt = Schema.Number.check(Schema.isInt(), Schema.isGreaterThan(0))
const Rate = Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))
const Name = Schema.String.check(Schema.isNonEmpty())
const EnvName = Schema.String.check(
  Schema.makeFilter((s: string) =>
    /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) || "expected the name of an environment variable, such as OPENAI_API_KEY"
  )
)

/**
 * How the gateway listens, drains, samples its status history and watches its file.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Server = Schema.Struct({
  /** Default `127.0.0.1`. */
  host: Schema.optionalKey(Name),
  /** Default 8787; 0 picks a free port. */
  port: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 65535 }))),
  /** How long shutdown waits for requests in flight before it cuts them; default 30 seconds. */
  shutdownTimeout: Schema.optionalKey(DurationInput),
  /** The largest request body accepted; default 4 MiB. */
  maxBodyBytes: Schema.optionalKey(PositiveInt),
  /** Serve `/status` and `/status/data`; default true. */
  statusPage: Schema.optionalKey(Schema.Boolean),
  /** The status history: one point per `interval` (default 10 seconds), `points` kept (default 360). */
  history: Schema.optionalKey(Schema.Struct({
    interval: Schema.optionalKey(DurationInput),
    points: Schema.optionalKey(PositiveInt)
  })),
  /** How often the file is checked for changes; default 1 second. `false` never reloads. */
  reload: Schema.optionalKey(Schema.Union([Schema.Literal(false), Schema.Struct({ interval: DurationInput })])),
  /** The least severe log line written; default `info`. */
  logLevel: Schema.optionalKey(Schema.Literals(["all", "debug", "info", "warn", "error", "none"]))
})

/**
 * The `server` section once decoded: durations are `Duration`s, every field still optional
 * (the gateway applies the defaults).
 *
 * @since 0.1.0
 * @category models
 */
export interface Server extends Schema.Schema.Type<typeof Server> {}

/**
 * A model of the built-in fake provider: its answer, its latency and random faults.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FakeModel = Schema.Struct({
  reply: Schema.optionalKey(Schema.String),
  /** A fixed latency, or a range drawn from per call. */
  latency: Schema.optionalKey(
    Schema.Union([DurationInput, Schema.Struct({ min: DurationInput, max: DurationInput })])
  ),
  /** The pause between streamed chunks. */
  chunkDelay: Schema.optionalKey(DurationInput),
  /** The share of calls answered with each fault; together at most 1. */
  faults: Schema.optionalKey(Schema.Struct({
    serverError: Schema.optionalKey(Rate),
    rateLimited: Schema.optionalKey(Rate),
    hang: Schema.optionalKey(Rate),
    malformed: Schema.optionalKey(Rate)
  }))
})

/**
 * One fake model once decoded: its reply, its latency (fixed or a range), its pause between
 * streamed chunks and its fault shares.
 *
 * @since 0.1.0
 * @category models
 */
export interface FakeModel extends Schema.Schema.Type<typeof FakeModel> {}

/**
 * A provider: an OpenAI-compatible endpoint, or `fake`, a `FakeProvider` the gateway starts on
 * 127.0.0.1 (no key, no network). `apiKeyEnv` and `secretHeadersEnv` name environment variables;
 * the key itself is never in the file, and goes only to `baseUrl`. `models` lists names or globs
 * (`gpt-*`) that virtual models may use directly, without a deployment.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Provider = Schema.Struct({
  baseUrl: Schema.optionalKey(Name),
  apiKeyEnv: Schema.optionalKey(EnvName),
  headers: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  secretHeadersEnv: Schema.optionalKey(Schema.Record(Schema.String, EnvName)),
  maxResponseBytes: Schema.optionalKey(PositiveInt),
  models: Schema.optionalKey(Schema.Array(Name)),
  fake: Schema.optionalKey(Schema.Struct({
    seed: Schema.optionalKey(Schema.Number.check(Schema.isInt())),
    models: Schema.Record(Name, FakeModel)
  }))
})

/**
 * One entry of `providers` once decoded: the endpoint's URL, the names of the environment
 * variables that hold its secrets, its plain headers and its model patterns, or a `fake` one.
 *
 * @since 0.1.0
 * @category models
 */
export interface Provider extends Schema.Schema.Type<typeof Provider> {}

/**
 * How a deployment's rate adapts to its provider's 429s, as `RateLimit.Adaptive`: each 429
 * multiplies the rate by `decrease` (default 0.5, never below `floor` times the configured rate,
 * default 0.1), each success adds `increase` times it back (default 0.05), and a 429 without a
 * `retry-after` rests the deployment for `cooldown` (default 1 second).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Adaptive = Schema.Struct({
  decrease: RateLimit.Adaptive.fields.decrease,
  increase: RateLimit.Adaptive.fields.increase,
  floor: RateLimit.Adaptive.fields.floor,
  cooldown: Schema.optionalKey(DurationOrZero)
})

/**
 * The adaptive rate options of a deployment once decoded, with `cooldown` as a `Duration`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Adaptive extends Schema.Schema.Type<typeof Adaptive> {}

/**
 * One deployment of a logical model, as `Deployments.Deployment`: the provider that serves it, the
 * provider's own name for the model (default: the logical name), its `name` (default
 * `provider/model`; unique in the file: the key of its circuit and limits, and the `deployment`
 * label of the metrics), its `weight` within its `priority` group (lower priorities first; weight
 * 0 is a standby), its limits (`rpm`, `tpm`, `adaptive`), its bulkhead (`maxConcurrent`,
 * `maxQueued`), a `timeout` per call, and its `price` in US dollars per million tokens.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Deployment = Schema.Struct({
  name: Schema.optionalKey(Name),
  provider: Name,
  model: Schema.optionalKey(Name),
  weight: Schema.optionalKey(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0), Schema.isFinite())),
  priority: Schema.optionalKey(Schema.Number.check(Schema.isInt())),
  rpm: Schema.optionalKey(PositiveInt),
  tpm: Schema.optionalKey(PositiveInt),
  adaptive: Schema.optionalKey(Schema.Union([Schema.Literal(false), Adaptive])),
  maxConcurrent: Schema.optionalKey(PositiveInt),
  maxQueued: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))),
  timeout: Schema.optionalKey(DurationInput),
  price: Schema.optionalKey(Cost.Price)
})

/**
 * One deployment once decoded, as `parse` returns it inside `deployments`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Deployment extends Schema.Schema.Type<typeof Deployment> {}

/**
 * Retries per model, as `Retry.Options`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RetryOptions = Schema.Struct({
  retries: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))),
  base: Schema.optionalKey(DurationInput),
  factor: Schema.optionalKey(Schema.Number.check(Schema.isGreaterThanOrEqualTo(1))),
  maxDelay: Schema.optionalKey(DurationInput),
  maxWait: Schema.optionalKey(DurationInput),
  jitter: Schema.optionalKey(Schema.Boolean)
})

/**
 * The `retry` options of a virtual model once decoded, with the delays as `Duration`s.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryOptions extends Schema.Schema.Type<typeof RetryOptions> {}

/**
 * The circuit breaker of each deployment, as `CircuitBreaker.Options`: trip on
 * `consecutiveFailures` (default 5) or on a `failureRate`; open for `breakDuration` (default 30
 * seconds).
 *
 * @since 0.1.0
 * @category schemas
 */
export const BreakerOptions = Schema.Struct({
  consecutiveFailures: Schema.optionalKey(PositiveInt),
  failureRate: Schema.optionalKey(Schema.Struct({
    threshold: Schema.Number.check(Schema.isGreaterThan(0), Schema.isLessThanOrEqualTo(1)),
    window: DurationInput,
    minimumCalls: PositiveInt
  })),
  breakDuration: Schema.optionalKey(DurationInput),
  halfOpenProbes: Schema.optionalKey(PositiveInt),
  maxProbeDuration: Schema.optionalKey(DurationInput),
  slowCallThreshold: Schema.optionalKey(DurationInput)
})

/**
 * The circuit breaker options once decoded, with the windows and durations as `Duration`s.
 *
 * @since 0.1.0
 * @category models
 */
export interface BreakerOptions extends Schema.Schema.Type<typeof BreakerOptions> {}

/**
 * A logical model and its deployments, as `Deployments.Model`: the routing `strategy` among them
 * (`weighted`, the default, `least-busy`, `lowest-latency` or `cheapest`), how long a call may wait
 * for a rate limit to have room (`maxWait`, default none: it moves on), whether a failed
 * deployment hands the call to the next (`failover`, default true), and the `breaker` of each of
 * its deployments (default: the file's top-level `breaker`).
 *
 * @since 0.2.0
 * @category schemas
 */
export const LogicalModel = Schema.Struct({
  strategy: Schema.optionalKey(Schema.Literals(Routing.strategies)),
  maxWait: Schema.optionalKey(DurationOrZero),
  failover: Schema.optionalKey(Schema.Boolean),
  breaker: Schema.optionalKey(Schema.Union([Schema.Literal(false), BreakerOptions])),
  deployments: Schema.Array(Deployment)
})

/**
 * A logical model with routing options once decoded: its strategy, wait, failover, breaker and
 * deployments.
 *
 * @since 0.2.0
 * @category models
 */
export interface LogicalModel extends Schema.Schema.Type<typeof LogicalModel> {}

/**
 * An entry of `deployments`: one deployment (`{ provider, model?, ... }`), a list of them, or a
 * `LogicalModel` with its routing options. An object with a `deployments` field is a
 * `LogicalModel`, any other object one deployment.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DeploymentsEntry = Schema.Union([Deployment, Schema.Array(Deployment), LogicalModel])

/**
 * One entry of `deployments` once decoded, in whichever of its three forms the file used (one
 * deployment, a list, or a logical model with routing options); `logicalModelsOf` gives every
 * form as one list of deployments.
 *
 * @since 0.2.0
 * @category models
 */
export type DeploymentsEntry = Schema.Schema.Type<typeof DeploymentsEntry>

/**
 * A rate limit of a virtual model as a whole, over every request it serves, on
 * `RateLimit`'s token buckets: requests and tokens (estimated before the request, corrected from
 * what its calls reported) per minute. A request that finds no room waits up to `maxWait`
 * (default none), then is refused with a 429 and a `retry-after`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const VirtualRateLimit = Schema.Struct({
  rpm: Schema.optionalKey(PositiveInt),
  tpm: Schema.optionalKey(PositiveInt),
  maxWait: Schema.optionalKey(DurationOrZero)
})

/**
 * The `rateLimit` of a virtual model once decoded, with `maxWait` as a `Duration`.
 *
 * @since 0.2.0
 * @category models
 */
export interface VirtualRateLimit extends Schema.Schema.Type<typeof VirtualRateLimit> {}

/**
 * An A/B experiment between models. Sticky assignment keys on the request's `user` field, or on
 * the gateway key's name when it has none.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ExperimentOptions = Schema.Struct({
  name: Schema.optionalKey(Name),
  assignment: Schema.optionalKey(Schema.Literals(["random", "sticky"])),
  variants: Schema.Array(Schema.Struct({
    name: Name,
    model: Name,
    weight: Schema.Number.check(Schema.isGreaterThanOrEqualTo(0), Schema.isFinite())
  })),
  control: Schema.optionalKey(Name),
  shadow: Schema.optionalKey(Schema.Boolean),
  minSamples: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(2)))
})

/**
 * The `experiment` of a virtual model once decoded: its variants with their weights and the
 * assignment rule.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExperimentOptions extends Schema.Schema.Type<typeof ExperimentOptions> {}

/**
 * Best-of-n: every model answers, the judge model scores each answer, the best is served.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BestOfNOptions = Schema.Struct({
  models: Schema.Array(Name),
  judge: Schema.Struct({
    model: Name,
    rubric: Schema.optionalKey(Schema.String),
    scale: Schema.optionalKey(Schema.Struct({ min: Schema.Finite, max: Schema.Finite }))
  }),
  candidateTimeout: Schema.optionalKey(DurationInput),
  judgeTimeout: Schema.optionalKey(DurationInput),
  minCandidates: Schema.optionalKey(PositiveInt),
  concurrency: Schema.optionalKey(PositiveInt)
})

/**
 * The `bestOfN` of a virtual model once decoded: its candidate models, its judge and its time
 * limits.
 *
 * @since 0.1.0
 * @category models
 */
export interface BestOfNOptions extends Schema.Schema.Type<typeof BestOfNOptions> {}

/**
 * Hedging of a fallback virtual model, `Fallback`'s `hedge` option: when a logical model has not
 * answered after `delay`, the next one is started alongside it; the first answer serves and the
 * other is cancelled (for a stream, the first chunk). `delay` is a duration (`0` starts them
 * together) or `{ percentile, initial, samples?, minSamples?, min?, max? }`: that percentile
 * (above 0, at most 100) of the model's last `samples` (default 100) successful latencies, within
 * `min` and `max`, and `initial` until there are `minSamples` (default 20, at most `samples`).
 * `maxHedges` (default 1) is how many hedges one request may start; `maxInFlight` (default no
 * limit) how many may run at once across the virtual model's requests.
 *
 * @example
 * ```yaml
 * models:
 *   chat:
 *     fallback: [gpt-4o, claude-sonnet]
 *     timeout: 30 seconds
 *     hedge: { delay: { percentile: 95, initial: 2 seconds }, maxInFlight: 20 }
 * ```
 *
 * @since 0.2.0
 * @category schemas
 */
export const HedgeOptions = Schema.Struct({
  delay: Schema.Union([
    DurationOrZero,
    Schema.Struct({
      percentile: Schema.Finite.check(Schema.isGreaterThan(0), Schema.isLessThanOrEqualTo(100)),
      initial: DurationOrZero,
      samples: Schema.optionalKey(PositiveInt),
      minSamples: Schema.optionalKey(PositiveInt),
      min: Schema.optionalKey(DurationOrZero),
      max: Schema.optionalKey(DurationOrZero)
    })
  ]),
  maxHedges: Schema.optionalKey(PositiveInt),
  maxInFlight: Schema.optionalKey(PositiveInt)
})

/**
 * The type of `HedgeOptions`: a fallback virtual model's hedging, as the file gives it.
 *
 * @since 0.2.0
 * @category models
 */
export interface HedgeOptions extends Schema.Schema.Type<typeof HedgeOptions> {}

/**
 * A virtual model: the name clients send as `model`, and the pattern behind it (exactly one of
 * `fallback`, `experiment`, `bestOfN`) over logical models, with the options every attempt gets:
 * `timeout` per attempt, `retry` per logical model, `deadline` for the whole request, and a
 * `rateLimit` for the virtual model as a whole, and for a fallback chain `hedge` (see
 * `HedgeOptions`). Breakers are per deployment, in `deployments`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const VirtualModel = Schema.Struct({
  description: Schema.optionalKey(Schema.String),
  fallback: Schema.optionalKey(Schema.Array(Name)),
  experiment: Schema.optionalKey(ExperimentOptions),
  bestOfN: Schema.optionalKey(BestOfNOptions),
  timeout: Schema.optionalKey(DurationInput),
  deadline: Schema.optionalKey(DurationInput),
  retry: Schema.optionalKey(Schema.Union([Schema.Literal(false), RetryOptions])),
  rateLimit: Schema.optionalKey(VirtualRateLimit),
  hedge: Schema.optionalKey(HedgeOptions)
})

/**
 * One entry of `models` once decoded: its pattern and the options of its attempts.
 *
 * @since 0.1.0
 * @category models
 */
export interface VirtualModel extends Schema.Schema.Type<typeof VirtualModel> {}

/**
 * A budget of a gateway key over each `period` (fixed windows from the epoch), kept by
 * `@resilient-llm/core`'s `Budget`: US dollars (`usd`, the cost of every deployment call at the
 * deployments' prices), requests, and tokens as providers report them. Each request sets its
 * estimate aside before it runs and books what it really spent after; a key that has spent a
 * limit gets a 429 `insufficient_quota` until the next window.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Budget = Schema.Struct({
  usd: Schema.optionalKey(Schema.Finite.check(Schema.isGreaterThan(0))),
  requests: Schema.optionalKey(PositiveInt),
  tokens: Schema.optionalKey(PositiveInt),
  period: DurationInput
})

/**
 * A key's budget once decoded, with `period` as a `Duration`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Budget extends Schema.Schema.Type<typeof Budget> {}

/**
 * A gateway key: a name for logs and metrics, the key itself from an environment variable
 * (`keyEnv`) or as its SHA-256 in hex (`sha256`), never in clear in the file, the virtual models
 * it may use (`"*"` for all), and an optional budget.
 *
 * @since 0.1.0
 * @category schemas
 */
export const GatewayKey = Schema.Struct({
  name: Name,
  keyEnv: Schema.optionalKey(EnvName),
  sha256: Schema.optionalKey(Schema.String.check(
    Schema.makeFilter((s: string) => /^[0-9a-f]{64}$/.test(s) || "expected 64 lowercase hexadecimal digits")
  )),
  models: Schema.Array(Name),
  budget: Schema.optionalKey(Budget)
})

/**
 * One entry of `keys` once decoded: the key's name, where its secret comes from, its models and
 * its budget.
 *
 * @since 0.1.0
 * @category models
 */
export interface GatewayKey extends Schema.Schema.Type<typeof GatewayKey> {}

/**
 * Where several gateway instances keep what they share: the circuits of their breakers, rate
 * limits and their adaptive state, budgets (a key's spending, requests and tokens) and
 * experiments' outcomes. Without it, every instance keeps its own in memory. The URL comes from
 * the file (`url`, no password allowed there) or from the environment (`urlEnv`), exactly one.
 * Read at start only: a change takes effect at the next start.
 *
 * @since 0.2.0
 * @category schemas
 */
export const RedisStore = Schema.Struct({
  /** `redis://host:port/db`, without a password: a URL with one belongs in `urlEnv`. */
  url: Schema.optionalKey(Name),
  /** The environment variable holding the URL, password and all. */
  urlEnv: Schema.optionalKey(EnvName),
  /** Starts every key: one per gateway fleet and environment (`"gateway:prod:"`). */
  prefix: Name,
  /** How long an operation waits for Redis before the local view answers it; default 100 millis. */
  timeout: Schema.optionalKey(DurationInput),
  /** After Redis failed or was slow, how long the local view answers before Redis is tried again; default 1 second. */
  retryAfter: Schema.optionalKey(DurationInput),
  /** Keys not written for this long expire; default 7 days. */
  expireAfterIdle: Schema.optionalKey(DurationInput),
  /** Writes kept during an outage to replay when Redis is back; default 10,000. */
  maxPendingWrites: Schema.optionalKey(PositiveInt)
})

/**
 * The `redis` entry as decoded: durations are `Duration`s.
 *
 * @since 0.2.0
 * @category models
 */
export interface RedisStore extends Schema.Schema.Type<typeof RedisStore> {}

/**
 * The whole file.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Config = Schema.Struct({
  server: Schema.optionalKey(Server),
  /** Share state between instances through Redis; without it, each instance keeps its own in memory. */
  redis: Schema.optionalKey(RedisStore),
  providers: Schema.Record(Name, Provider),
  /** The circuit breaker of every deployment whose logical model sets none; on by default, `false` turns it off. */
  breaker: Schema.optionalKey(Schema.Union([Schema.Literal(false), BreakerOptions])),
  deployments: Schema.optionalKey(Schema.Record(Name, DeploymentsEntry)),
  models: Schema.Record(Name, VirtualModel),
  keys: Schema.optionalKey(Schema.Array(GatewayKey)),
  /** Serve every request without a key. Off by default; for local development only. */
  allowUnauthenticated: Schema.optionalKey(Schema.Boolean)
})

/**
 * A whole configuration once decoded: what `parse` succeeds with and what `Gateway` runs.
 *
 * @since 0.1.0
 * @category models
 */
export interface Config extends Schema.Schema.Type<typeof Config> {}

/**
 * One mistake in a configuration: where it is (line and column from 1, when the file has the
 * field), the field's path (`models.chat.timeout`), and what is wrong.
 *
 * @since 0.1.0
 * @category models
 */
export interface Issue {
  readonly line: number | undefined
  readonly column: number | undefined
  readonly field: string
  readonly message: string
}

/**
 * A configuration that cannot run: not YAML or JSON, not in the schema's shape, or referring to
 * something it does not declare. `issues` lists every mistake found, each with its line and field.
 *
 * @since 0.1.0
 * @category errors
 */
export class GatewayConfigError extends Data.TaggedError("GatewayConfigError")<{
  readonly source: string
  readonly issues: ReadonlyArray<Issue>
}> {
  override get message(): string {
    return `Invalid gateway configuration ${this.source}:\n${
      this.issues.map((issue) => `  ${formatIssue(issue)}`).join("\n")
    }`
  }
}

/**
 * One issue as `line:column field: message`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatIssue = (issue: Issue): string => {
  const where = issue.line === undefined ? "" : `line ${issue.line}, column ${issue.column ?? 1}: `
  return `${where}${issue.field === "" ? "(the file)" : issue.field}: ${issue.message}`
}

const schemas: internal.Schemas = {
  file: Schema.Struct({
    ...Config.fields,
    deployments: Schema.optionalKey(Schema.Record(Name, Schema.Unknown))
  }),
  deployment: Deployment,
  list: Schema.Array(Deployment),
  logical: LogicalModel
}

const messages = { "Expected a valid Duration string": durationExpected, "Missing key": "required, and missing" }

/**
 * Reads a configuration from its text (YAML, of which JSON is a part) and checks it: the shape
 * (unknown fields are mistakes, so a misspelt option is not silently ignored), then the references
 * (every model a pattern, a judge or a key names is declared; every deployment's provider exists
 * and its name is unique; a logical model's weights are not all zero; a provider is an endpoint or
 * a fake, not both; a key has exactly one of `keyEnv` and `sha256`).
 * Environment variables are not read here: `Gateway` reads them when it builds the providers.
 *
 * @example
 * ```ts
 * import { GatewayConfig } from "@resilient-llm/gateway"
 * import { Effect } from "effect"
 *
 * // a misspelt option fails the whole file, naming the line and the field:
 * // ["line 5, column 5: models.chat.timout: unknown field"]
 * export const mistakes = GatewayConfig.parse(
 *   `providers:
 *   local: { fake: { models: { fast: {} } } }
 * models:
 *   chat:
 *     timout: 5 seconds
 *     fallback: [fast]
 * allowUnauthenticated: true
 * `,
 *   { source: "gateway.yaml" }
 * ).pipe(
 *   Effect.match({
 *     onFailure: (error) => error.issues.map(GatewayConfig.formatIssue),
 *     onSuccess: () => []
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (
  text: string,
  options?: { readonly source?: string }
): Effect.Effect<Config, GatewayConfigError> =>
  Effect.suspend(() =>
    Result.match(internal.parse(schemas, text, messages), {
      onFailure: (issues) => Effect.fail(new GatewayConfigError({ source: options?.source ?? "(text)", issues })),
      onSuccess: Effect.succeed
    })
  )

/**
 * The model names a configuration can serve: each logical model under `deployments`, and the
 * names its providers' `models` patterns match (only exact names are listed).
 *
 * @since 0.1.0
 * @category accessors
 */
export const deploymentsOf = (config: Config): ReadonlyArray<string> => internal.deploymentNames(config)

/**
 * One logical model a configuration runs, with its deployments: those declared under
 * `deployments`, and each name a virtual model calls that a provider serves directly (one
 * deployment, named `provider/name`).
 *
 * @since 0.2.0
 * @category models
 */
export interface LogicalModelOf {
  readonly name: string
  readonly deployments: ReadonlyArray<{ readonly name: string; readonly provider: string; readonly model: string }>
}

/**
 * The logical models a configuration runs, each with its deployments' names, providers and the
 * providers' model names.
 *
 * @example
 * ```ts
 * import { GatewayConfig } from "@resilient-llm/gateway"
 * import { Effect } from "effect"
 *
 * // ["gpt-4o: east, openai/gpt-4o"]
 * export const routes = GatewayConfig.parse(`
 * providers:
 *   azure: { baseUrl: "https://example.openai.azure.com/openai/v1", apiKeyEnv: AZURE_KEY }
 *   openai: { baseUrl: "https://api.openai.com/v1", apiKeyEnv: OPENAI_API_KEY }
 * deployments:
 *   gpt-4o: [{ name: east, provider: azure, model: gpt-4o-prod }, { provider: openai }]
 * models:
 *   chat: { fallback: [gpt-4o] }
 * allowUnauthenticated: true
 * `).pipe(
 *   Effect.map((config) =>
 *     GatewayConfig.logicalModelsOf(config).map((logical) =>
 *       `${logical.name}: ${logical.deployments.map((deployment) => deployment.name).join(", ")}`
 *     )
 *   )
 * )
 * ```
 *
 * @since 0.2.0
 * @category accessors
 */
export const logicalModelsOf = (config: Config): ReadonlyArray<LogicalModelOf> =>
  internal.logicalModels(config).map((logical) => ({
    name: logical.name,
    deployments: logical.deployments.map((d) => ({ name: d.name, provider: d.deployment.provider, model: d.model }))
  }))
