/**
 * A/B experiments between models: route a share of real traffic to one or more challengers,
 * record what each variant did (latency, tokens, errors, later a quality score), and answer the
 * question a team actually asks: is the challenger better, worse, or not yet known? Assignment is
 * random (through Effect's `Random`, so seedable) or sticky (a stable hash of a caller key, so a
 * user keeps their variant across calls and processes). In shadow mode the control answers every
 * request and a challenger runs on a copy in the background, only to be measured. Memory stays
 * bounded: running aggregates plus a fixed-size sample per variant.
 *
 * @example
 * ```ts
 * import { ChatCompletion, Experiment } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const experiment = yield* Experiment.make({
 *     name: "summarizer-2025-06",
 *     variants: [
 *       { name: "control", model: "gpt-4o", weight: 0.8 },
 *       { name: "challenger", model: "claude-sonnet", weight: 0.2 }
 *     ],
 *     assignment: "sticky"
 *   })
 *   const served = yield* experiment.complete(ChatCompletion.prompt("Summarize: ..."), { key: "user-42" })
 *   yield* experiment.score(served.callId, 4)
 *   const summary = yield* experiment.summary
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as ChatClient from "./ChatClient.js"
import type * as ChatCompletion from "./ChatCompletion.js"
import * as internal from "./internal/experiment.js"
import * as ExperimentStore from "./internal/experimentStore.js"
import type * as LlmError from "./LlmError.js"
import type * as Retry from "./Retry.js"

/**
 * One arm of an experiment: a name for reports, the model it calls, and its share of traffic.
 * Weights are relative (they need not sum to 1); a zero weight keeps a variant in the reports
 * without sending it traffic.
 *
 * @since 0.1.0
 * @category models
 */
export interface Variant {
  readonly name: string
  readonly model: string
  readonly weight: number
}

/**
 * How a call gets its variant.
 *
 * - `"random"`: a fresh draw from Effect's `Random` per call.
 * - `"sticky"`: a stable hash (FNV-1a with MurmurHash3's finaliser, over the UTF-8 bytes of the
 *   experiment's name and the key) of the `key` passed to `complete`: the same key gets the same
 *   variant on every call, in every process, as long as the name and the variants' weights stay
 *   the same. A call without a key falls back to a random draw and is counted in
 *   `Summary.unkeyed`, so a missing key shows up in the report rather than failing a user's
 *   request.
 *
 * @since 0.1.0
 * @category models
 */
export type Assignment = "random" | "sticky"

/**
 * Shadow mode settings.
 *
 * @since 0.1.0
 * @category models
 */
export interface ShadowOptions {
  /**
   * How many shadow calls may run at once (default 16). When all slots are taken, a new shadow
   * call is dropped and counted (`VariantSummary.shadowDropped`), never queued.
   */
  readonly concurrency?: number
}

/**
 * Options of `Experiment.make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Names the experiment in spans (`llm.experiment`), call ids, the sticky hash and exports. */
  readonly name: string
  /** At least one; names unique and not blank; a model each; weights finite, non-negative, not all zero. */
  readonly variants: ReadonlyArray<Variant>
  readonly assignment: Assignment
  /** The variant the others are compared against; the first one by default. */
  readonly control?: string
  /**
   * Shadow mode: the control answers every request. When the assignment picks a challenger, that
   * challenger also runs on the same request in the background and is only recorded, so the
   * weights say what share of traffic each challenger mirrors (give the control weight 0 to
   * mirror every request). Off by default.
   */
  readonly shadow?: boolean | ShadowOptions
  /** Raw calls kept per variant, for percentiles and `export` (default 1,000). */
  readonly sampleSize?: number
  /**
   * How many of the most recent calls can still receive a score (default 10,000). An older call
   * id is forgotten, and scoring it fails with `ScoreError` (`reason: "unknown"`).
   */
  readonly scoreWindow?: number
  /** Confidence level of the intervals in `summary` (default 0.95). */
  readonly confidence?: number
  /**
   * The fewest observations each side needs before a comparison can say anything but
   * `inconclusive` (default 30; at least 2).
   */
  readonly minSamples?: number
}

/**
 * What `complete` returns: the completion, which variant and model served it, and the id to
 * score it by.
 *
 * @since 0.1.0
 * @category models
 */
export interface Served {
  readonly completion: ChatCompletion.ChatCompletion
  readonly variant: string
  readonly model: string
  readonly callId: string
  /** What the call cost in US dollars, when `Deployments` served it from a priced deployment. */
  readonly costUsd: number | undefined
}

/**
 * What `stream` returns once the first chunk has arrived: the stream (that chunk, then the rest),
 * which variant and model serve it, and the id to score it by. The call is recorded when the
 * stream ends.
 *
 * @since 0.2.0
 * @category models
 */
export interface StreamServed {
  readonly stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError>
  readonly variant: string
  readonly model: string
  readonly callId: string
}

/**
 * The options of `stream`. A stream cannot be bounded from outside the way a completion is (with
 * `Retry.withTimeout` and `Retry.withRetry` around `complete`'s client): both bound the wait for
 * the first chunk, so they are options here.
 *
 * @since 0.2.0
 * @category models
 */
export interface StreamOptions {
  /** The caller key of sticky assignment, as for `complete`. */
  readonly key?: string | undefined
  /** The longest wait for the first chunk (per try); past it the try fails with `TimeoutError`. */
  readonly timeout?: Duration.Input | undefined
  /**
   * Retries of a call that failed before its first chunk, with `Retry`'s policy; once a chunk has
   * been sent, a failure ends the stream.
   */
  readonly retry?: Retry.Options<LlmError.LlmError> | undefined
}

/**
 * A call served outside `complete` (a streamed one, say), for `Experiment.record`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedCall {
  readonly variant: string
  readonly latencyMs: number
  /** `"success"`, or the tag of the error the call failed with. */
  readonly outcome: string
  readonly inputTokens?: number
  readonly outputTokens?: number
  /** What the call cost, in US dollars. */
  readonly costUsd?: number
  readonly shadow?: boolean
  /** When the call started, in epoch milliseconds; the `Clock`'s time of recording by default. */
  readonly startedAt?: number
}

/**
 * One line of `export`. Caller keys are never recorded: a key is often a user id.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExportedCall {
  readonly experiment: string
  readonly callId: string
  readonly variant: string
  readonly model: string
  readonly shadow: boolean
  readonly startedAt: number
  readonly latencyMs: number
  readonly outcome: string
  readonly inputTokens: number | null
  readonly outputTokens: number | null
  readonly costUsd: number | null
  readonly score: number | null
}

/**
 * Mean and spread of one measure over a variant's calls.
 *
 * @since 0.1.0
 * @category models
 */
export interface Moments {
  readonly count: number
  /** `undefined` when `count` is 0. */
  readonly mean: number | undefined
  /** Sample standard deviation; `undefined` below two observations. */
  readonly sd: number | undefined
}

/**
 * One variant's figures. Latency and tokens are over successful calls; the error rate is over
 * finished calls (interrupted ones are counted apart: the caller gave up, the model did not fail).
 *
 * @since 0.1.0
 * @category models
 */
export interface VariantSummary {
  readonly name: string
  readonly model: string
  readonly weight: number
  readonly isControl: boolean
  /** Calls that finished, successes and errors, shadow calls included. */
  readonly calls: number
  readonly errors: number
  /** `errors / calls`, 0 when there were none. */
  readonly errorRate: number
  readonly interrupted: number
  /**
   * Finished calls by outcome: `success` or an error's tag. At most 64 distinct labels are kept
   * per variant; calls with a label first seen after that are counted under `other`.
   */
  readonly outcomes: Readonly<Record<string, number>>
  /** Milliseconds, successful calls; p50 and p95 come from the sample. */
  readonly latency: Moments & { readonly p50: number | undefined; readonly p95: number | undefined }
  readonly inputTokens: Moments
  readonly outputTokens: Moments
  /**
   * What the variant's calls cost in US dollars: the mean per call and `total`, over every
   * finished call whose cost is known (served by `Deployments` from a priced deployment, or
   * recorded with `costUsd`), shadow calls included.
   */
  readonly costUsd: Moments & { readonly total: number }
  readonly score: Moments
  /** Shadow calls for this variant dropped because every shadow slot was busy. */
  readonly shadowDropped: number
  /** Raw calls held in the sample. */
  readonly sampled: number
}

/**
 * The verdict of a comparison, from the challenger's side: `better` or `worse` when the whole
 * confidence interval lies on one side of zero, `inconclusive` when it contains zero or either
 * side has fewer than `minSamples` observations.
 *
 * @since 0.1.0
 * @category models
 */
export type Verdict = "better" | "worse" | "inconclusive"

/**
 * A challenger against the control on one measure: the difference (challenger minus control) with
 * its confidence interval. For latency and error rate lower is better; for score higher is.
 *
 * The intervals: Welch's t for the means (latency, score), with the Welch–Satterthwaite degrees
 * of freedom; Newcombe's hybrid score interval (Wilson's interval for each rate, combined) for the
 * error rate, which keeps its coverage near 0, where error rates live, and is asymmetric there:
 * 0 errors in 1,000 calls against 4 in 1,000 is `inconclusive`, as Fisher's exact test agrees
 * (p = 0.125).
 *
 * @since 0.1.0
 * @category models
 */
export interface Comparison {
  readonly metric: "latency" | "errorRate" | "score"
  readonly control: { readonly n: number; readonly value: number | undefined }
  readonly challenger: { readonly n: number; readonly value: number | undefined }
  /** Challenger minus control; `undefined` when either side has no data. */
  readonly difference: number | undefined
  /** The interval's bounds; `undefined` when it cannot be computed (fewer than two observations). */
  readonly lower: number | undefined
  readonly upper: number | undefined
  /** Welch–Satterthwaite degrees of freedom for means; `undefined` for the error rate (a score interval). */
  readonly df: number | undefined
  readonly verdict: Verdict
  /** Why the verdict is what it is, in a sentence. */
  readonly reason: string
}

/**
 * One challenger against the control.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChallengerComparison {
  readonly variant: string
  readonly latency: Comparison
  readonly errorRate: Comparison
  readonly score: Comparison
}

/**
 * What `experiment.summary` returns.
 *
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  readonly experiment: string
  readonly control: string
  readonly confidence: number
  readonly minSamples: number
  readonly variants: ReadonlyArray<VariantSummary>
  /** Every challenger against the control, in `variants` order. */
  readonly comparisons: ReadonlyArray<ChallengerComparison>
  /** Shadow calls dropped for lack of a slot, all variants together. */
  readonly shadowDropped: number
  /** Sticky calls made without a key (assigned at random instead). */
  readonly unkeyed: number
}

/**
 * A running experiment.
 *
 * @since 0.1.0
 * @category models
 */
export interface Experiment {
  readonly name: string
  readonly control: string
  readonly variants: ReadonlyArray<Variant>
  /**
   * Serves the request through the variant the assignment picks (through the control, in shadow
   * mode), and records the call. A model's error reaches the caller unchanged, after it is
   * recorded.
   */
  readonly complete: (
    request: ChatCompletion.PromptRequest,
    options?: { readonly key?: string }
  ) => Effect.Effect<Served, LlmError.LlmError, ChatClient.ChatClient>
  /**
   * Streams the request from the variant the assignment picks (the same pick `complete` makes for
   * the same key), once its first chunk has arrived; in shadow mode the control streams and the
   * challenger runs a whole completion in the background. A failure before the first chunk
   * reaches the caller unchanged, after it is recorded. The call is recorded when the stream
   * ends: its latency is the whole call, to the last chunk, so that streamed and whole calls of a
   * variant compare; its tokens come from the stream's usage chunk, when the request asked for one
   * (`stream_options.include_usage`). A failure after the first chunk is recorded as that failure;
   * a stream its reader stopped early, or never read before the scope closed, as interrupted (in
   * no figure). Read the stream inside the call's `Scope`. Options that describe no timeout or
   * retry policy fail with `RetryConfigError`, and nothing is sent or recorded.
   */
  readonly stream: (
    request: ChatCompletion.PromptRequest,
    options?: StreamOptions
  ) => Effect.Effect<StreamServed, LlmError.LlmError | Retry.RetryConfigError, ChatClient.ChatClient | Scope.Scope>
  /**
   * Attaches a score (higher is better) to a successful call among the last `scoreWindow` calls.
   * A call is scored once: a second score fails with `ScoreError` (`reason: "already-scored"`),
   * so a retried scoring job cannot count twice.
   */
  readonly score: (callId: string, score: number) => Effect.Effect<void, ScoreError>
  /**
   * Records a call served elsewhere (a stream, a batch job) and returns its call id. A variant the
   * experiment does not have is an `UnknownVariantError`; a latency, token count, start time or
   * outcome that no real call could have (negative, `NaN`, infinite, fractional tokens, an empty
   * outcome) is an `InvalidCallError`, and nothing is recorded.
   */
  readonly record: (call: RecordedCall) => Effect.Effect<string, UnknownVariantError | InvalidCallError>
  readonly summary: Effect.Effect<Summary>
  /** The sampled calls, one JSON object (`ExportedCall`) per line, each line ending in `\n`. */
  readonly export: Effect.Effect<string>
  /** Raw call records held in memory: the samples plus the score window. Bounded by options. */
  readonly recorderSize: Effect.Effect<number>
}

/**
 * The options of `Experiment.make` describe no valid experiment.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExperimentConfigError extends Data.TaggedError("ExperimentConfigError")<{
  readonly experiment: string
  readonly reason: string
}> {
  override get message(): string {
    return `Experiment "${this.experiment}" is misconfigured: ${this.reason}`
  }
}

/**
 * A score could not be attached: the call id is unknown (never issued, or older than the score
 * window), the call failed, it was already scored, or the score is not a finite number.
 *
 * @since 0.1.0
 * @category errors
 */
export class ScoreError extends Data.TaggedError("ScoreError")<{
  readonly experiment: string
  readonly callId: string
  readonly reason: "unknown" | "failed-call" | "already-scored" | "invalid-score"
}> {
  override get message(): string {
    const why = {
      "unknown": "it is unknown or older than the score window",
      "failed-call": "the call failed, so there is no answer to score",
      "already-scored": "it already has a score",
      "invalid-score": "the score is not a finite number"
    }[this.reason]
    return `Cannot score call ${this.callId} of experiment "${this.experiment}": ${why}`
  }
}

/**
 * `record` named a variant the experiment does not have.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownVariantError extends Data.TaggedError("UnknownVariantError")<{
  readonly experiment: string
  readonly variant: string
}> {
  override get message(): string {
    return `Experiment "${this.experiment}" has no variant "${this.variant}"`
  }
}

/**
 * `record` was given a call no real call could be: `field` holds `value`, which is not what it
 * must be (`expected`).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidCallError extends Data.TaggedError("InvalidCallError")<{
  readonly experiment: string
  readonly field: "latencyMs" | "inputTokens" | "outputTokens" | "costUsd" | "startedAt" | "outcome"
  readonly value: unknown
  readonly expected: string
}> {
  override get message(): string {
    const shown = typeof this.value === "string" ? JSON.stringify(this.value) : String(this.value)
    return `Experiment "${this.experiment}" cannot record a call whose ${this.field} is ${shown}: expected ${this.expected}`
  }
}

/**
 * Where experiments keep their records: this process's memory by default; `Stores.layerRedis`
 * sets a store in Redis, where every instance running an experiment of the same name records
 * into one log and `summary` counts all their calls. `make` reads it when it starts.
 *
 * @since 0.2.0
 * @category references
 */
export const CurrentStore: Context.Reference<ExperimentStore.Store> = Context.Reference<ExperimentStore.Store>(
  "@resilient-llm/core/Experiment/CurrentStore",
  { defaultValue: () => ExperimentStore.memory }
)

/**
 * Starts an experiment. It allocates the recorder and, for shadow mode, the background calls'
 * slots; the shadow calls run in the `Scope` of `make`, so closing it interrupts those still
 * running. Fails with `ExperimentConfigError` when the name is blank, the assignment is neither
 * `"random"` nor `"sticky"`, there are no variants, a variant's name or model is blank, two share a
 * name, a weight is negative or not finite, every weight is zero, the weights' sum overflows,
 * `control` names no variant, or a numeric option is out of range.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: Options) => Effect.Effect<Experiment, ExperimentConfigError, Scope.Scope> = internal.make
