/**
 * Checks a FakeProvider configuration once, up front, and turns it into the normalised form the
 * server plays from: durations decoded, defaults filled in, rates summed. A bad value is reported
 * with the path to it, never discovered halfway through a test.
 *
 * @internal
 */
import type * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Http from "node:http"
import type * as FakeProvider from "../FakeProvider.js"

/** @internal */
export interface LatencyRange {
  readonly minMillis: number
  readonly maxMillis: number
}

/** @internal */
export interface NormalisedBehaviour {
  readonly latency: LatencyRange
  readonly reply: (request: ChatCompletion.ChatRequest, call: FakeProvider.CallInfo) => string
  readonly chunkSize: "word" | number
  readonly chunkDelay: Duration.Duration
  readonly usage: FakeProvider.ModelBehaviour["usage"]
  readonly script: FakeProvider.ModelBehaviour["script"]
  readonly faults: ReadonlyArray<FakeProvider.FaultRate>
}

/** @internal */
export interface NormalisedConfig {
  readonly models: ReadonlyMap<string, NormalisedBehaviour>
  readonly seed: number
  readonly apiKey: Redacted.Redacted<string> | undefined
  readonly maxRecordedRequests: number
  readonly port: number
  readonly keepAliveTimeout: Duration.Duration | undefined
}

type Check<A> = Result.Result<A, string>

const fail = (detail: string): Check<never> => Result.fail(detail)

const ok: Check<void> = Result.succeed(undefined)

const duration = (path: string, input: Duration.Input): Check<Duration.Duration> => {
  // `fromInput` also catches what an untyped caller (a config file) passes: it never throws
  const decoded = Duration.fromInput(input)
  if (Option.isNone(decoded)) return fail(`${path}: ${String(input)} is not a duration`)
  if (!Duration.isFinite(decoded.value)) {
    return fail(`${path}: must be finite (use FakeProvider.hang() to never answer)`)
  }
  // Effect 4 durations can be negative; a negative wait means no wait, as it did before
  return Result.succeed(Duration.max(decoded.value, Duration.zero))
}

const latency = (path: string, input: FakeProvider.Latency): Check<LatencyRange> => {
  if (typeof input === "object" && input !== null && "min" in input && "max" in input) {
    return Result.flatMap(
      duration(`${path}.min`, input.min),
      (min) =>
        Result.flatMap(duration(`${path}.max`, input.max), (max) => {
          const range = { minMillis: Duration.toMillis(min), maxMillis: Duration.toMillis(max) }
          return range.minMillis <= range.maxMillis
            ? Result.succeed(range)
            : fail(`${path}: min (${Duration.format(min)}) is above max (${Duration.format(max)})`)
        })
    )
  }
  return Result.map(
    duration(path, input),
    (d) => ({ minMillis: Duration.toMillis(d), maxMillis: Duration.toMillis(d) })
  )
}

/** @internal */
export const latencyOf = (input: FakeProvider.Latency): Check<LatencyRange> => latency("latency", input)

const nonNegativeInteger = (path: string, n: number | undefined): Check<void> =>
  n === undefined || (Number.isInteger(n) && n >= 0)
    ? ok
    : fail(`${path}: ${n} is not a non-negative integer`)

const status = (path: string, n: number, min: number, max: number): Check<void> =>
  Number.isInteger(n) && n >= min && n <= max ? ok : fail(`${path}: status ${n} is not in ${min}-${max}`)

const header = (path: string, name: string, value: string): Check<void> => {
  try {
    Http.validateHeaderName(name)
    Http.validateHeaderValue(name, value)
    return ok
  } catch (error) {
    return fail(`${path}: header ${JSON.stringify(name)}: ${error instanceof Error ? error.message : String(error)}`)
  }
}

const headers = (path: string, record: Readonly<Record<string, string>>): Check<void> =>
  all(Object.entries(record).map(([name, value]) => header(path, name, value)))

const all = (checks: ReadonlyArray<Check<unknown>>): Check<void> => {
  for (const check of checks) if (Result.isFailure(check)) return Result.fail(check.failure)
  return ok
}

const describeValue = (value: unknown): string =>
  typeof value === "object" && value !== null && "_tag" in value
    ? `an object with _tag ${String(value._tag)}`
    : `a value of type ${typeof value}`

/**
 * Checks one outcome, from a script list at configuration time or from a script function at call time.
 *
 * @internal
 */
export const validateOutcome = (path: string, outcome: FakeProvider.Outcome): Check<void> => {
  const common: Check<unknown> = outcome.latency === undefined
    ? ok
    : latency(`${path}.latency`, outcome.latency)
  if (Result.isFailure(common)) return Result.fail(common.failure)
  switch (outcome._tag) {
    case "Reply":
    case "ContextLengthExceeded":
    case "MalformedJson":
    case "WrongShape":
      return ok
    case "ContentFilter":
      return outcome.mode === "error" || outcome.mode === "finish_reason"
        ? ok
        : fail(`${path}.mode: ${String(outcome.mode)} is not "error" or "finish_reason"`)
    case "AuthenticationError":
      return outcome.status === 401 || outcome.status === 403
        ? ok
        : fail(`${path}: status ${outcome.status} is not 401 or 403`)
    case "ServerError":
      return all([status(path, outcome.status, 500, 599), headers(path, outcome.headers)])
    case "BadRequest":
      return status(path, outcome.status, 400, 499)
    case "RateLimited": {
      const hint = outcome.retryAfter
      const checks: Array<Check<unknown>> = [headers(path, outcome.headers)]
      if (hint !== undefined) {
        if ("date" in hint) checks.push(duration(`${path}.retryAfter.date`, hint.date))
        else if ("header" in hint) checks.push(header(`${path}.retryAfter`, hint.header, hint.value))
      }
      return all(checks)
    }
    case "Hang":
    case "ResetConnection":
    case "TruncatedStream":
      return nonNegativeInteger(`${path}.afterChunks`, outcome.afterChunks)
    case "Raw":
      // Effect's Node server sends only final statuses: anything outside 200-599 would reach
      // the client as a 500 of the server's own, not as the response the test asked for
      return all([status(path, outcome.status, 200, 599), headers(path, outcome.headers)])
  }
  // reachable from untyped callers (a script function written in JavaScript)
  return fail(`${path}: ${describeValue(outcome)} is not an outcome`)
}

const defaultReply = (_request: ChatCompletion.ChatRequest, call: FakeProvider.CallInfo): string =>
  `Hello from ${call.model}.`

/** @internal */
export const validateBehaviour = (
  name: string,
  behaviour: FakeProvider.ModelBehaviour
): Check<NormalisedBehaviour> => {
  const path = `models[${JSON.stringify(name)}]`
  return Result.gen(function*() {
    const range = behaviour.latency === undefined
      ? { minMillis: 0, maxMillis: 0 }
      : yield* latency(`${path}.latency`, behaviour.latency)
    const chunkDelay = behaviour.chunkDelay === undefined
      ? Duration.zero
      : yield* duration(`${path}.chunkDelay`, behaviour.chunkDelay)
    const chunkSize = behaviour.chunkSize ?? "word"
    if (chunkSize !== "word" && !(Number.isInteger(chunkSize) && chunkSize > 0)) {
      return yield* fail(`${path}.chunkSize: ${chunkSize} is not "word" or a positive integer`)
    }
    const usage = behaviour.usage
    if (typeof usage === "object") {
      const counts = [usage.prompt_tokens, usage.completion_tokens, usage.total_tokens ?? 0]
      if (!counts.every((n) => Number.isFinite(n) && n >= 0)) {
        return yield* fail(`${path}.usage: token counts must be finite and non-negative`)
      }
    }
    if (Array.isArray(behaviour.script)) {
      const script: ReadonlyArray<FakeProvider.Outcome> = behaviour.script
      for (let i = 0; i < script.length; i++) yield* validateOutcome(`${path}.script[${i}]`, script[i])
    }
    const faults = behaviour.faults ?? []
    let sum = 0
    for (let i = 0; i < faults.length; i++) {
      const { fault, rate } = faults[i]
      if (!(Number.isFinite(rate) && rate >= 0 && rate <= 1)) {
        return yield* fail(`${path}.faults[${i}].rate: ${rate} is not between 0 and 1`)
      }
      sum += rate
      yield* validateOutcome(`${path}.faults[${i}].fault`, fault)
    }
    if (sum > 1 + 1e-9) return yield* fail(`${path}.faults: the rates add up to ${sum}, more than 1`)
    const reply = behaviour.reply
    return {
      latency: range,
      reply: reply === undefined ? defaultReply : typeof reply === "string" ? () => reply : reply,
      chunkSize,
      chunkDelay,
      usage,
      script: behaviour.script,
      faults
    }
  })
}

/** @internal */
export const validateConfig = (config: FakeProvider.Config): Check<NormalisedConfig> =>
  Result.gen(function*() {
    const seed = config.seed ?? 0
    if (!Number.isFinite(seed)) return yield* fail(`seed: ${seed} is not a finite number`)
    const maxRecordedRequests = config.maxRecordedRequests ?? 1000
    yield* nonNegativeInteger("maxRecordedRequests", maxRecordedRequests)
    const port = config.port ?? 0
    if (!(Number.isInteger(port) && port >= 0 && port <= 65535)) return yield* fail(`port: ${port} is not a TCP port`)
    const keepAliveTimeout = config.keepAliveTimeout === undefined
      ? undefined
      : yield* duration("keepAliveTimeout", config.keepAliveTimeout)
    const models = new Map<string, NormalisedBehaviour>()
    for (const [name, behaviour] of Object.entries(config.models)) {
      models.set(name, yield* validateBehaviour(name, behaviour))
    }
    const apiKey = config.apiKey === undefined
      ? undefined
      : Redacted.isRedacted(config.apiKey)
      ? config.apiKey
      : Redacted.make(config.apiKey)
    return { models, seed, apiKey, maxRecordedRequests, port, keepAliveTimeout }
  })
