/**
 * A judge scores an answer to a prompt with a number on a scale, for `BestOfN` to rank candidates
 * and for experiments to compare models. `Judge.llm` asks a model through `ChatClient` and reads
 * its reply strictly: the reply must be one plain number within the scale, and anything else
 * (`"eight"`, `"8/10"`, `"8 because…"`, `""`, a number off the scale, the judge model failing) is a
 * `JudgeError` carrying the raw reply. A judge never makes up a score, so a broken judge cannot
 * quietly pick answers at random. `Judge.fromFunction` turns a heuristic into a judge, and
 * `Judge.average` asks a panel of judges at once and takes the mean of the scores it gets.
 *
 * @example
 * ```ts
 * import { Judge } from "@resilient-llm/core"
 *
 * // a judge model on the default rubric (accuracy, completeness, clarity) and scale (1 to 10)
 * const JudgeLive = Judge.layerLlm({ model: "gpt-4o-mini" })
 *
 * // a heuristic, for tests
 * const ByLength = Judge.layer(Judge.fromFunction(({ response }) => Math.min(10, response.length / 100)))
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as ChatClient from "./ChatClient.js"
import * as ChatCompletion from "./ChatCompletion.js"
import * as internal from "./internal/judge.js"
import { count } from "./internal/options.js"
import type * as LlmError from "./LlmError.js"
import * as Observability from "./Observability.js"

/**
 * The range a judge scores on, both ends included.
 *
 * @since 0.1.0
 * @category models
 */
export interface Scale {
  readonly min: number
  readonly max: number
}

/**
 * The default scale: 1 (worst) to 10 (best).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultScale: Scale = internal.defaultScale

/**
 * The default rubric of `Judge.llm`: accuracy, completeness and clarity, weighted equally.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRubric: string = internal.defaultRubric

/**
 * What a judge is asked to score: the prompt as text, and the response to it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScoreInput {
  readonly prompt: string
  readonly response: string
}

/**
 * A judge's verdict.
 *
 * @since 0.1.0
 * @category models
 */
export interface Score {
  /** The score, on the judge's scale. */
  readonly value: number
  /** How long the judge took, in milliseconds by `Clock`. */
  readonly latencyMs: number
  /** Who judged: the model of an LLM judge, the name of a function judge, the panel's name for an average. */
  readonly judge: string
  /** The judge model's raw reply, for an LLM judge. */
  readonly reply?: string
  /** The judge model's token usage, when the provider reported it. */
  readonly usage?: ChatCompletion.Usage
  /** For an average: the score of every judge on the panel that scored. */
  readonly judges?: ReadonlyArray<Score>
  /** For an average: the error of every judge on the panel that did not score. */
  readonly failures?: ReadonlyArray<JudgeError>
}

/**
 * Why a judge could not score:
 *
 * - `NotANumber`: the reply is not a single plain number (`"eight"`, `"8/10"`, `"8 because"`, `""`);
 * - `OutOfScale`: the reply is a number off the scale (`"11"` on 1 to 10);
 * - `ModelFailed`: the judge model's call failed; `cause` is its `LlmError`;
 * - `TooFewJudges`: fewer judges of a panel scored than it needs; `failures` holds their errors;
 * - `TimedOut`: the judge was still scoring when its time was up (`BestOfN`'s `judgeTimeout`) and
 *   was interrupted; `timeout` says how long it had;
 * - `InvalidOptions`: the judge was built with options that describe no judge (a scale that is not
 *   a range, a `minJudges` that is not a whole number of at least 1); `detail` says which.
 *
 * @since 0.1.0
 * @category models
 */
export type JudgeErrorReason =
  | "NotANumber"
  | "OutOfScale"
  | "ModelFailed"
  | "TooFewJudges"
  | "TimedOut"
  | "InvalidOptions"

/**
 * A judge could not score an answer. Never replaced by a default score.
 *
 * @since 0.1.0
 * @category errors
 */
export class JudgeError extends Data.TaggedError("JudgeError")<{
  readonly reason: JudgeErrorReason
  /** Who judged: the judge model, the function judge's name, or the panel's name. */
  readonly judge: string
  /** The raw reply that could not be read as a score. */
  readonly reply?: string
  readonly scale?: Scale
  /** For `ModelFailed`: the judge model's error. */
  readonly cause?: LlmError.LlmError
  /** For `TooFewJudges`: the error of every judge of the panel that did not score. */
  readonly failures?: ReadonlyArray<JudgeError>
  /** For `TooFewJudges`: how many judges had to score. */
  readonly required?: number
  /** For `TimedOut`: how long the judge had. */
  readonly timeout?: Duration.Duration
  /** For `InvalidOptions`: what is wrong with them. */
  readonly detail?: string
}> {
  override get message(): string {
    const reply = this.reply === undefined ? "" : internal.quoteReply(this.reply)
    const scale = this.scale ?
      ` on the scale ${internal.formatNumber(this.scale.min)} to ${internal.formatNumber(this.scale.max)}` :
      ""
    switch (this.reason) {
      case "NotANumber":
        return `Judge ${this.judge} replied ${reply}, which is not a single number${scale}`
      case "OutOfScale":
        return `Judge ${this.judge} replied ${reply}, which is not${scale}`
      case "ModelFailed":
        return `Judge ${this.judge} could not score: ${this.cause?.message ?? "the model call failed"}`
      case "TimedOut":
        return `Judge ${this.judge} did not score ${
          this.timeout === undefined ? "in time" : `within ${Duration.format(this.timeout)}`
        }`
      case "InvalidOptions":
        return `Judge ${this.judge} is misconfigured: ${this.detail ?? "invalid options"}`
      case "TooFewJudges": {
        const failures = this.failures ?? []
        return `Judge ${this.judge}: ${failures.length} judge(s) failed and fewer than ${this.required ?? 1} scored (${
          failures.map((failure) => failure.message).join("; ")
        })`
      }
    }
  }
}

/**
 * A judge.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly score: (input: ScoreInput) => Effect.Effect<Score, JudgeError>
  /**
   * Who judges, as a `JudgeError` raised outside the judge names it (a `TimedOut` error from
   * `BestOfN`): the model of `Judge.llm`, the name of `Judge.fromFunction` and `Judge.average`.
   */
  readonly name?: string
}

/**
 * The judge in context, used by `BestOfN`.
 *
 * @since 0.1.0
 * @category services
 */
export class Judge extends Context.Service<Judge, Service>()("@resilient-llm/core/Judge") {}

/**
 * Scores with the judge in context.
 *
 * @since 0.1.0
 * @category accessors
 */
export const score = (input: ScoreInput): Effect.Effect<Score, JudgeError, Judge> =>
  Effect.flatMap(Judge, (judge) => judge.score(input))

/**
 * Reads a judge's reply strictly: the whole reply, trimmed of surrounding whitespace, must be one
 * plain decimal (`8`, `8.5`, `-1`) within the scale. A plain decimal is an optional minus sign,
 * ASCII digits, and optionally a point followed by more ASCII digits; leading and trailing zeros
 * are fine (`"08"`, `"8.50"`) and `"-0"` reads as 0. `"8"` and `" 8.5\n"` parse; `"eight"`,
 * `"8/10"`, `"8 because"`, `""`, `"8."`, `".5"`, `"+8"`, `"8 .5"`, `"1e1"`, `"NaN"`, `"Infinity"`,
 * digits of other scripts (`"８"`) and `"11"` on 1 to 10 are `JudgeError`s carrying the reply.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseScore = (
  reply: string,
  options?: { readonly scale?: Scale; readonly judge?: string }
): Result.Result<number, JudgeError> => {
  const scale = options?.scale ?? defaultScale
  return Result.mapError(
    internal.parseReply(reply, scale),
    (reason) => new JudgeError({ reason, judge: options?.judge ?? "parser", reply, scale })
  )
}

/**
 * Options of `Judge.llm`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LlmOptions {
  /** The judge model, asked through `ChatClient`. */
  readonly model: string
  /** What to judge on; defaults to `defaultRubric` (accuracy, completeness, clarity). */
  readonly rubric?: string
  /** Defaults to 1 to 10. */
  readonly scale?: Scale
  /** Defaults to 0, so the same answer tends to get the same score. */
  readonly temperature?: number
  /**
   * Other request fields for the judge call (`max_tokens`, `seed`, provider extensions); the
   * temperature is the `temperature` option.
   */
  readonly request?: ChatCompletion.RequestOptions & { readonly temperature?: never }
}

/**
 * A judge that asks a model through `ChatClient`: the rubric and scale as the system message, the
 * prompt and response as the user message, with the instruction to reply with a single number.
 * The reply is read by `parseScore`; a reply that is not a number on the scale, and a failed call
 * to the judge model (its `LlmError` as `cause`), are `JudgeError`s. Each call is an
 * `Observability.attempt` of pattern `"judge"`. A scale that is not a range (`min` not below
 * `max`, or not finite) fails the construction with an `InvalidOptions` `JudgeError`.
 *
 * @example
 * ```ts
 * import { Judge } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const judge = yield* Judge.llm({ model: "gpt-4o-mini", scale: { min: 0, max: 1 } })
 *   const score = yield* judge.score({ prompt: "2 + 2?", response: "4" })
 *   return score.value
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const llm = (options: LlmOptions): Effect.Effect<Service, JudgeError, ChatClient.ChatClient> =>
  Effect.gen(function*() {
    const scale = options.scale ?? defaultScale
    const invalid = internal.invalidScale(scale)
    if (invalid !== undefined) {
      return yield* new JudgeError({ reason: "InvalidOptions", judge: options.model, detail: invalid })
    }
    const client = yield* ChatClient.ChatClient
    const model = options.model
    const system = internal.systemPrompt(options.rubric ?? defaultRubric, scale)
    const score = (input: ScoreInput): Effect.Effect<Score, JudgeError> =>
      Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        const completion = yield* client.create({
          ...options.request,
          model,
          temperature: options.temperature ?? 0,
          messages: [
            { role: "system", content: system },
            { role: "user", content: internal.userPrompt(input.prompt, input.response) }
          ]
        }).pipe(Effect.mapError((cause) => new JudgeError({ reason: "ModelFailed", judge: model, cause })))
        const latencyMs = (yield* Clock.currentTimeMillis) - start
        const reply = ChatCompletion.text(completion)
        const value = yield* Effect.fromResult(parseScore(reply, { scale, judge: model }))
        const result: Score = { value, latencyMs, judge: model, reply }
        return completion.usage ? { ...result, usage: completion.usage } : result
      }).pipe(Observability.attempt({ pattern: "judge", model }))
    return { score, name: model }
  })

/**
 * A judge from a function: a heuristic (length, a regular expression, a unit test run on
 * generated code) or a fixed score in tests. The function returns the score, or an Effect of it
 * (which may sleep, to script a judge's latency under `TestClock`). A result that is not a
 * finite number, or is off `scale` when one is given, is a `JudgeError`. A `scale` that is not a
 * range makes every score an `InvalidOptions` `JudgeError`, without calling `f`.
 *
 * @example
 * ```ts
 * import { Judge } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const slowJudge = Judge.fromFunction(({ response }) => Effect.as(Effect.sleep("500 millis"), response.length))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromFunction = (
  f: (input: ScoreInput) => number | Effect.Effect<number, JudgeError>,
  options?: { readonly name?: string; readonly scale?: Scale }
): Service => {
  const judge = options?.name ?? "function"
  const invalid = options?.scale === undefined ? undefined : internal.invalidScale(options.scale)
  const check = (value: number): Result.Result<number, JudgeError> => {
    if (!Number.isFinite(value)) {
      return Result.fail(new JudgeError({ reason: "NotANumber", judge, reply: String(value) }))
    }
    const scale = options?.scale
    return scale && (value < scale.min || value > scale.max)
      ? Result.fail(new JudgeError({ reason: "OutOfScale", judge, reply: String(value), scale }))
      : Result.succeed(value)
  }
  if (invalid !== undefined) {
    return {
      score: () => Effect.fail(new JudgeError({ reason: "InvalidOptions", judge, detail: invalid })),
      name: judge
    }
  }
  return {
    name: judge,
    score: (input) =>
      Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        const result = yield* Effect.suspend(() => {
          const out = f(input)
          return Effect.isEffect(out) ? out : Effect.succeed(out)
        })
        const value = yield* Effect.fromResult(check(result))
        const latencyMs = (yield* Clock.currentTimeMillis) - start
        return { value, latencyMs, judge }
      })
  }
}

/**
 * A panel: asks every judge at once and scores with the mean of the scores it gets. A judge that
 * fails is left out of the mean and reported in `failures`; the panel fails with a `TooFewJudges`
 * `JudgeError` only when fewer than `minJudges` judges scored (default 1: the panel fails only
 * when every judge failed, or has no judge). The judges should share a scale. A `minJudges` that
 * is not a whole number of at least 1 makes every score an `InvalidOptions` `JudgeError`, without
 * asking the panel.
 *
 * @example
 * ```ts
 * import { Judge } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const panel = Effect.map(
 *   Effect.all([Judge.llm({ model: "gpt-4o-mini" }), Judge.llm({ model: "claude-haiku" })]),
 *   (judges) => Judge.average(judges, { minJudges: 2 })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const average = (
  judges: ReadonlyArray<Service>,
  options?: { readonly minJudges?: number; readonly name?: string }
): Service => {
  const name = options?.name ?? "average"
  const required = count("minJudges", options?.minJudges ?? 1)
  if (typeof required === "string") {
    return {
      score: () => Effect.fail(new JudgeError({ reason: "InvalidOptions", judge: name, detail: required })),
      name
    }
  }
  return {
    name,
    score: (input) =>
      Effect.gen(function*() {
        const start = yield* Clock.currentTimeMillis
        const verdicts = yield* Effect.forEach(judges, (judge) => Effect.result(judge.score(input)), {
          concurrency: "unbounded"
        })
        const latencyMs = (yield* Clock.currentTimeMillis) - start
        const scores = verdicts.flatMap((verdict) => Result.isSuccess(verdict) ? [verdict.success] : [])
        const failures = verdicts.flatMap((verdict) => Result.isFailure(verdict) ? [verdict.failure] : [])
        if (scores.length < required) {
          return yield* new JudgeError({ reason: "TooFewJudges", judge: name, failures, required })
        }
        return {
          value: internal.mean(scores.map((s) => s.value)),
          latencyMs,
          judge: name,
          judges: scores,
          failures
        }
      })
  }
}

/**
 * Provides a judge.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (judge: Service): Layer.Layer<Judge> => Layer.succeed(Judge, judge)

/**
 * Provides a `Judge.llm` judge over the `ChatClient` in context; fails to build with an
 * `InvalidOptions` `JudgeError` when the scale is not a range.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLlm = (options: LlmOptions): Layer.Layer<Judge, JudgeError, ChatClient.ChatClient> =>
  Layer.effect(Judge, llm(options))
