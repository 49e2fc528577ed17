/**
 * Best-of-n: ask several models the same question at once, have the `Judge` in context score
 * every answer, and return the best, with a report of every candidate. Candidates run in
 * parallel and each is judged as soon as it arrives, while the others are still generating, so
 * the call takes about as long as the slowest candidate plus one judge call. A candidate that
 * fails, times out or cannot be judged (in time, with `judgeTimeout`) stays in the report with its
 * error; ties go to the model listed first. With `earlyStop`, a good enough answer interrupts the
 * candidates still running.
 *
 * @example
 * ```ts
 * import { BestOfN, ChatCompletion, Judge } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const program = BestOfN.complete(ChatCompletion.prompt("Explain CRDTs in one paragraph"), {
 *   models: ["gpt-4o", "claude-sonnet", "llama-3.1-70b"],
 *   candidateTimeout: "20 seconds",
 *   judgeTimeout: "10 seconds"
 * }).pipe(
 *   Effect.map((report) => report.best.text),
 *   Effect.provide(Judge.layerLlm({ model: "gpt-4o-mini" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as ChatClient from "./ChatClient.js"
import type * as ChatCompletion from "./ChatCompletion.js"
import * as internal from "./internal/bestOfN.js"
import type * as Judge from "./Judge.js"
import type * as LlmError from "./LlmError.js"
import * as Observability from "./Observability.js"

/**
 * Prompt and completion tokens of a candidate, as the provider reported them.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tokens {
  readonly input: number
  readonly output: number
}

/**
 * A candidate that answered and was scored.
 *
 * @since 0.1.0
 * @category models
 */
export interface Scored {
  readonly status: "scored"
  readonly model: string
  /** The candidate's position in `models`. */
  readonly index: number
  readonly completion: ChatCompletion.ChatCompletion
  readonly text: string
  readonly score: number
  /** The judge's whole verdict (reply, judge model, panel). */
  readonly judgement: Judge.Score
  /** How long the candidate took to answer, in milliseconds. */
  readonly latencyMs: number
  readonly tokens: Tokens | undefined
  /** How long the judge took to score it, in milliseconds. */
  readonly judgeLatencyMs: number
  readonly error: undefined
}

/**
 * A candidate whose model call failed, or ran past `candidateTimeout` (a `TimeoutError`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Failed {
  readonly status: "failed"
  readonly model: string
  readonly index: number
  readonly completion: undefined
  readonly text: undefined
  readonly score: undefined
  readonly judgement: undefined
  readonly latencyMs: number
  readonly tokens: undefined
  readonly judgeLatencyMs: undefined
  readonly error: LlmError.LlmError
}

/**
 * A candidate that answered but could not be judged: the judge replied with something that is
 * not a score on its scale, the judge model failed, or the judge was still scoring after
 * `judgeTimeout` (a `JudgeError` with reason `TimedOut`).
 *
 * @since 0.1.0
 * @category models
 */
export interface JudgeFailed {
  readonly status: "judge-failed"
  readonly model: string
  readonly index: number
  readonly completion: ChatCompletion.ChatCompletion
  readonly text: string
  readonly score: undefined
  readonly judgement: undefined
  readonly latencyMs: number
  readonly tokens: Tokens | undefined
  readonly judgeLatencyMs: number
  readonly error: Judge.JudgeError
}

/**
 * A candidate interrupted by an early stop, before it was scored. When it had already answered,
 * its answer is kept.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cancelled {
  readonly status: "cancelled"
  readonly model: string
  readonly index: number
  readonly completion: ChatCompletion.ChatCompletion | undefined
  readonly text: string | undefined
  readonly score: undefined
  readonly judgement: undefined
  readonly latencyMs: number | undefined
  readonly tokens: Tokens | undefined
  readonly judgeLatencyMs: undefined
  readonly error: undefined
}

/**
 * One model's part in a best-of-n call. Every variant has every field, `undefined` where it does
 * not apply, so a report reads as a table.
 *
 * @since 0.1.0
 * @category models
 */
export type Candidate = Scored | Failed | JudgeFailed | Cancelled

/**
 * What `BestOfN.complete` returns.
 *
 * @since 0.1.0
 * @category models
 */
export interface Report {
  /** The candidate with the highest score; on a tie, the one whose model comes first in `models`. */
  readonly best: Scored
  /** Every candidate, in `models` order, whatever became of it. */
  readonly candidates: ReadonlyArray<Candidate>
  /** The scored candidates, best first, ties in `models` order. */
  readonly ranking: ReadonlyArray<Scored>
}

/**
 * Fewer candidates than `minCandidates` could be scored. `candidates` holds every candidate with
 * its error.
 *
 * @since 0.1.0
 * @category errors
 */
export class NoCandidatesError extends Data.TaggedError("NoCandidatesError")<{
  readonly candidates: ReadonlyArray<Candidate>
  /** How many scored candidates were needed. */
  readonly required: number
}> {
  /** The errors of the candidates that failed or could not be judged, in `models` order. */
  get failures(): ReadonlyArray<LlmError.LlmError | Judge.JudgeError> {
    return this.candidates.flatMap((candidate) => candidate.error === undefined ? [] : [candidate.error])
  }

  override get message(): string {
    const scored = this.candidates.filter((candidate) => candidate.status === "scored").length
    const details = this.candidates.map((candidate) =>
      candidate.error === undefined
        ? `${candidate.model}: ${candidate.status}`
        : `${candidate.model}: ${candidate.error.message}`
    )
    return `Best-of-n scored ${scored} of ${this.candidates.length} candidate(s), fewer than the ${this.required} required${
      details.length > 0 ? ` (${details.join("; ")})` : ""
    }`
  }
}

/**
 * The options of `BestOfN.complete` describe no best-of-n call: a blank model name, a
 * `minCandidates` or `concurrency` that is not a whole number of at least 1, a `candidateTimeout`
 * or `judgeTimeout` that is not a positive duration, or an `earlyStop.targetScore` that is not a
 * finite number.
 * Nothing was called.
 *
 * @since 0.1.0
 * @category errors
 */
export class BestOfNConfigError extends Data.TaggedError("BestOfNConfigError")<{
  readonly reason: string
}> {
  override get message(): string {
    return `Best-of-n is misconfigured: ${this.reason}`
  }
}

/**
 * Options of `BestOfN.complete`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** One candidate per entry, in order of preference (it breaks ties). A model may appear twice. */
  readonly models: ReadonlyArray<string>
  /**
   * How many candidate calls may be in flight at once (a whole number of at least 1); unbounded by
   * default. Judging takes no slot.
   */
  readonly concurrency?: number | "unbounded"
  /**
   * A candidate still generating once more than this (a positive duration) has passed fails with
   * `TimeoutError` and is interrupted, at exactly this time; one answering exactly at the deadline
   * counts.
   */
  readonly candidateTimeout?: Duration.Input
  /**
   * A judgement still running once more than this (a positive duration) has passed since the
   * candidate was handed to the judge is interrupted (an LLM judge's request is aborted), and the
   * candidate is `judge-failed` with a `JudgeError` of reason `TimedOut`; one scored exactly at the
   * deadline counts. The other candidates are not affected. Unbounded by default: without it, a
   * judge that hangs holds the whole call.
   */
  readonly judgeTimeout?: Duration.Input
  /**
   * How many candidates must be scored for the call to succeed (a whole number of at least 1);
   * defaults to 1. More than there are models always fails with `NoCandidatesError`.
   */
  readonly minCandidates?: number
  /**
   * Once `minCandidates` are scored and one of them scores at least `targetScore`, interrupt the
   * candidates still generating or being judged and report them as `cancelled`.
   */
  readonly earlyStop?: { readonly targetScore: number }
  /** The prompt text the judge reads; by default the request's messages as text. */
  readonly judgePrompt?: string
}

/**
 * Asks every model in `options.models` for a completion of `request`, in parallel, scores each
 * answer with the `Judge` in context as soon as it arrives, and returns the best with a report of
 * every candidate. Fails with `NoCandidatesError` only when fewer than `minCandidates` could be
 * scored, and with `BestOfNConfigError`, before calling anything, when the options describe no
 * call. The call runs inside `Observability.pattern("best-of-n")`, each candidate call inside an
 * `Observability.attempt` of pattern `"best-of-n"`.
 *
 * Cost: one call per candidate and one judge call per answer. Latency: about the slowest
 * candidate (or `candidateTimeout`) plus one judge call (or `judgeTimeout`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const complete = (
  request: ChatCompletion.PromptRequest,
  options: Options
): Effect.Effect<Report, NoCandidatesError | BestOfNConfigError, ChatClient.ChatClient | Judge.Judge> =>
  Effect.gen(function*() {
    const config = internal.validate(options)
    if (typeof config === "string") return yield* new BestOfNConfigError({ reason: config })
    const required = config.required
    const candidates = yield* internal.run(request, options, config)
    const ranking = internal.rank(candidates)
    if (ranking.length < required) {
      return yield* new NoCandidatesError({ candidates, required })
    }
    const best = ranking[0]
    yield* Effect.logInfo(
      `served by ${best.model} with score ${best.score}, best of ${ranking.length} scored of ${candidates.length}`
    ).pipe(Effect.annotateLogs({ "llm.model": best.model, "llm.score": best.score, "llm.scored": ranking.length }))
    return { best, candidates, ranking }
  }).pipe(
    Observability.pattern("best-of-n", { "llm.models": options.models.join(",") })
  )
