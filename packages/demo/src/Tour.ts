/**
 * The tour: the patterns of resilient-llm, one act each, run against whatever `ChatClient`
 * is in context, returning plain report data (what a person reads, and what `--json` prints).
 *
 * 1. **Fallback chain**: `["gpt-nonexistent", primary, backup]`, so a typo'd model name, a 503 and
 *    a hanging model all end with an answer, and the report says which model served and why.
 * 2. **Circuit breaker**: the primary has an outage; the breaker opens after three failures, the
 *    chain skips the primary at once (the time saved is measured), probes it after a break, and
 *    closes when it has recovered. Transitions are read from a `CircuitBreaker` subscription.
 * 3. **A/B experiment**: a few hundred requests split between a control and a challenger (every
 *    other user's answer streamed, as a chat window would show it), every answer scored by the
 *    judge model, and the summary with intervals and verdicts.
 * 4. **Best-of-n**: three models answer the same question, the judge scores each, the best wins.
 * 5. **Deployments**: a logical model served by two deployments on two providers; the first one's
 *    rate limit fills and the calls spill over to the second; every call is priced, and a team's
 *    budget refuses its calls once spent.
 *
 * Then the per-model metrics from `Observability.snapshot`. `fake` runs the tour against a
 * `FakeProvider` started for the occasion (the `Story`); `live` runs it against a real endpoint,
 * without the outage act, which needs a scripted fake. Everything goes over real HTTP through
 * `OpenAiCompatible`. While it runs, the tour reports what happens as `Event`s.
 *
 * @since 0.1.0
 */
import {
  BestOfN,
  Budget,
  ChatClient,
  ChatCompletion,
  CircuitBreaker,
  Deployments,
  Experiment,
  Fallback,
  Judge,
  Observability
} from "@resilient-llm/core"
import { OpenAiCompatible, Providers } from "@resilient-llm/openai"
import { FakeProvider } from "@resilient-llm/testing"
import * as Arr from "effect/Array"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import type * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as Story from "./Story.js"

// ---------------------------------------------------------------------------------------------
// report data
// ---------------------------------------------------------------------------------------------

/**
 * The acts of the tour.
 *
 * @since 0.1.0
 * @category models
 */
export type Section = "fallback" | "breaker" | "experiment" | "bestOfN" | "deployments"

/**
 * One attempt of a fallback chain: `outcome` is `success`, `cancelled` (a hedge answered first) or
 * the error's tag.
 *
 * @since 0.1.0
 * @category models
 */
export interface Attempt {
  readonly model: string
  /** The deployment tried, when the model is a logical one (the deployments act). */
  readonly deployment: string | undefined
  /** What the call cost in US dollars, when its deployment has a price. */
  readonly costUsd: number | undefined
  /** 0 for the first try at the model, 1 for its first retry. */
  readonly retry: number
  /** Whether the model was started as a hedge, while the one before it still ran. */
  readonly hedge: boolean
  readonly outcome: string
  readonly durationMs: number
  /** The HTTP status of the failure, when the error has one (`ServerError`, `BadRequestError`, ...). */
  readonly status: number | undefined
  /** The error's message, on a failure. */
  readonly error: string | undefined
}

/**
 * One request through a fallback chain: who served it, and every attempt before.
 *
 * @since 0.1.0
 * @category models
 */
export interface Request {
  /** 1 for the act's first request. */
  readonly number: number
  readonly prompt: string
  /** The model that served, `undefined` when none did. */
  readonly servedBy: string | undefined
  /** The deployment that served, when the model is a logical one. */
  readonly deployment: string | undefined
  /** What the request cost, all attempts together, when any was priced. */
  readonly costUsd: number | undefined
  /** The budget key the request was charged to, if any. */
  readonly key: string | undefined
  readonly reply: string | undefined
  readonly durationMs: number
  readonly attempts: ReadonlyArray<Attempt>
  /** Why no model served (`AllModelsFailed`'s message), when none did. */
  readonly error: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface FallbackConfig {
  readonly section: "fallback"
  readonly models: ReadonlyArray<string>
  readonly timeoutMs: number
  readonly retries: number
  readonly retryDelayMs: number
  /** The last request's chain: the primary and the backup, hedged after `hedgeDelayMs`. */
  readonly hedgedModels: ReadonlyArray<string>
  readonly hedgeDelayMs: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface FallbackReport {
  readonly section: "fallback"
  readonly status: "ran"
  readonly config: FallbackConfig
  readonly requests: ReadonlyArray<Request>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface BreakerConfig {
  readonly section: "breaker"
  readonly models: ReadonlyArray<string>
  readonly timeoutMs: number
  /** Consecutive failures that open the circuit. */
  readonly trip: number
  /** The first break; each reopening after a failed probe doubles it. */
  readonly firstBreakMs: number
}

/**
 * A state change of a circuit, as read from the breaker's subscription; `atMs` is from the start
 * of the act.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transition {
  readonly key: string
  readonly from: CircuitBreaker.State
  readonly to: CircuitBreaker.State
  readonly reason: CircuitBreaker.Reason
  readonly atMs: number
  /** On an opening: how long until the next probe. */
  readonly breakMs: number | undefined
  /** The request of the act in flight when the transition was seen, if one was. */
  readonly during: number | undefined
}

/**
 * One moment of the breaker act, in the order they happened.
 *
 * @since 0.1.0
 * @category models
 */
export type Step =
  | { readonly kind: "note"; readonly atMs: number; readonly text: string }
  | {
    readonly kind: "request"
    readonly atMs: number
    readonly request: Request
    /** The primary's circuit right after the request. */
    readonly state: CircuitBreaker.State
  }
  | { readonly kind: "transition"; readonly atMs: number; readonly transition: Transition }

/**
 * @since 0.1.0
 * @category models
 */
export interface BreakerReport {
  readonly section: "breaker"
  readonly status: "ran"
  readonly config: BreakerConfig
  readonly timeline: ReadonlyArray<Step>
  readonly transitions: ReadonlyArray<Transition>
  /** Requests that skipped the primary at once because its circuit was open. */
  readonly skipped: number
  /** What a failed call to the primary cost while its circuit was closed (mean, ms). */
  readonly failureCostMs: number
  /** `skipped × failureCostMs`: the waiting the open circuit spared. */
  readonly savedMs: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ExperimentConfig {
  readonly section: "experiment"
  readonly name: string
  readonly assignment: Experiment.Assignment
  readonly variants: ReadonlyArray<Experiment.Variant>
  readonly requests: number
  readonly concurrency: number
  readonly judge: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ExperimentReport {
  readonly section: "experiment"
  readonly status: "ran"
  readonly config: ExperimentConfig
  /** Requests answered, and failed (the error reached the caller, and was recorded). */
  readonly served: number
  readonly failed: number
  /** Of the requests answered, those streamed (`Experiment.stream`, every other user). */
  readonly streamed: number
  /** Answers the judge scored, and answers it could not score. */
  readonly scored: number
  readonly unscored: number
  readonly durationMs: number
  readonly summary: Experiment.Summary
}

/**
 * @since 0.1.0
 * @category models
 */
export interface BestOfNConfig {
  readonly section: "bestOfN"
  readonly prompt: string
  readonly models: ReadonlyArray<string>
  readonly judge: string
  /** How the fake judge scores, when it is the fake. */
  readonly judgeRule: string | undefined
  readonly candidateTimeoutMs: number
}

/**
 * One candidate of best-of-n, whatever became of it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Candidate {
  readonly model: string
  readonly status: BestOfN.Candidate["status"]
  readonly score: number | undefined
  readonly latencyMs: number | undefined
  readonly judgeLatencyMs: number | undefined
  readonly text: string | undefined
  readonly error: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface BestOfNReport {
  readonly section: "bestOfN"
  readonly status: "ran"
  readonly config: BestOfNConfig
  readonly durationMs: number
  /** Every candidate, in `models` order. */
  readonly candidates: ReadonlyArray<Candidate>
  /** The scored candidates' models, best first. */
  readonly ranking: ReadonlyArray<string>
  readonly best: string | undefined
  /** Why no answer was picked, when none was. */
  readonly error: string | undefined
}

/**
 * One deployment of the deployments act.
 *
 * @since 0.2.0
 * @category models
 */
export interface DeploymentSpec {
  readonly name: string
  readonly provider: string
  readonly providerModel: string
  readonly priority: number
  readonly rpm: number | undefined
  /** US dollars per million input and output tokens. */
  readonly price: { readonly input: number; readonly output: number }
}

/**
 * @since 0.2.0
 * @category models
 */
export interface DeploymentsConfig {
  readonly section: "deployments"
  /** The logical model the requests name. */
  readonly model: string
  readonly deployments: ReadonlyArray<DeploymentSpec>
  /** Each request's `max_tokens`, which bounds the cost estimated before the call. */
  readonly maxTokens: number
  /** The budget every key has, but the first team's. */
  readonly budget: { readonly limitUsd: number; readonly period: string }
  /** The team whose requests fill a deployment's rate limit, and the team whose budget runs out. */
  readonly burstKey: string
  readonly budgetKey: string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface DeploymentsReport {
  readonly section: "deployments"
  readonly status: "ran"
  readonly config: DeploymentsConfig
  readonly requests: ReadonlyArray<Request>
  /** Requests served, and what they cost, by deployment. */
  readonly served: Readonly<Record<string, number>>
  readonly costUsd: Readonly<Record<string, number>>
  /** The budget key's spending at the end, and the request its budget refused, if one was. */
  readonly budget: {
    readonly key: string
    readonly spentUsd: number
    readonly limitUsd: number
    readonly refused: number | undefined
  }
  /** Each deployment's rate limit at the end: requests per minute it allows now. */
  readonly limits: Readonly<Record<string, number | undefined>>
}

/**
 * An act that could not run here, and why.
 *
 * @since 0.1.0
 * @category models
 */
export interface Skipped<S extends Section = Section> {
  readonly section: S
  readonly status: "skipped"
  readonly reason: string
}

/**
 * What the tour found, act by act, then the per-model metrics.
 *
 * @since 0.1.0
 * @category models
 */
export interface Report {
  readonly mode: "fake" | "live"
  /** The base URL the tour called (never a key). */
  readonly endpoint: string
  /** The fake provider's seed; `undefined` against a real endpoint. */
  readonly seed: number | undefined
  readonly durationMs: number
  readonly fallback: FallbackReport
  readonly breaker: BreakerReport | Skipped<"breaker">
  readonly experiment: ExperimentReport | Skipped<"experiment">
  readonly bestOfN: BestOfNReport
  readonly deployments: DeploymentsReport | Skipped<"deployments">
  /** `Observability.snapshot` of this run's metrics, one row per model. */
  readonly metrics: ReadonlyArray<Observability.ModelStats>
}

/**
 * @since 0.1.0
 * @category models
 */
export type SectionConfig = FallbackConfig | BreakerConfig | ExperimentConfig | BestOfNConfig | DeploymentsConfig

/**
 * @since 0.1.0
 * @category models
 */
export type SectionReport = FallbackReport | BreakerReport | ExperimentReport | BestOfNReport | DeploymentsReport

/**
 * What the tour reports while it runs, in the order it happens.
 *
 * @since 0.1.0
 * @category models
 */
export type Event =
  | {
    readonly _tag: "Started"
    readonly mode: Report["mode"]
    readonly endpoint: string
    readonly seed: number | undefined
  }
  | { readonly _tag: "SectionStarted"; readonly number: number; readonly config: SectionConfig }
  | { readonly _tag: "SectionSkipped"; readonly number: number; readonly skipped: Skipped }
  | { readonly _tag: "Note"; readonly text: string }
  | {
    readonly _tag: "Request"
    readonly section: "fallback" | "breaker" | "deployments"
    readonly request: Request
    /** In the breaker act, the primary's circuit right after the request. */
    readonly state: CircuitBreaker.State | undefined
  }
  | { readonly _tag: "Transition"; readonly transition: Transition }
  | { readonly _tag: "Progress"; readonly section: Section; readonly done: number; readonly total: number }
  | { readonly _tag: "SectionFinished"; readonly report: SectionReport }

/**
 * The tour could not run: the fake provider could not start, a pattern was misconfigured, the
 * environment holds no valid endpoint, or the story did not unfold as scripted.
 *
 * @since 0.1.0
 * @category errors
 */
export class TourError extends Data.TaggedError("TourError")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return this.reason
  }
}

// ---------------------------------------------------------------------------------------------
// options
// ---------------------------------------------------------------------------------------------

/**
 * The models of the tour, by role.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cast {
  /** The fallback chain of act 1, an invalid name first. */
  readonly fallback: ReadonlyArray<string>
  /** The chain of act 2: the model with an outage, and its fallback. */
  readonly primary: string
  readonly backup: string
  /** The A/B variants; without a challenger the act is skipped. */
  readonly control: string
  readonly challenger: string | undefined
  /** Best-of-n's candidates. */
  readonly candidates: ReadonlyArray<string>
  readonly judge: string
}

/**
 * The time policy of the tour, in milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Timing {
  readonly fallbackTimeoutMs: number
  readonly retryDelayMs: number
  /** How long act 1's last request waits for the primary before starting the backup alongside it. */
  readonly hedgeDelayMs: number
  readonly breakerTimeoutMs: number
  readonly firstBreakMs: number
  readonly candidateTimeoutMs: number
}

/**
 * What a scripted fake lets the tour do to the primary.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stage {
  readonly outage: Effect.Effect<void, TourError>
  readonly recover: Effect.Effect<void, TourError>
}

/**
 * Options of `run`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  readonly cast: Cast
  readonly timing: Timing
  /** A/B requests, and how many run at once. */
  readonly requests: number
  readonly concurrency: number
  /** The primary's outage and recovery; without one the breaker act is skipped. */
  readonly stage: Stage | undefined
  readonly judgeRule: string | undefined
  /**
   * The providers of the deployments act, by the names its deployments give (`azure` and
   * `openai`); without them the act is skipped.
   */
  readonly providers?: Layer.Layer<Deployments.ProviderClients> | undefined
  readonly onEvent?: ((event: Event) => Effect.Effect<void>) | undefined
}

/**
 * What `run` returns: the acts and the metrics.
 *
 * @since 0.1.0
 * @category models
 */
export type Acts = Pick<Report, "fallback" | "breaker" | "experiment" | "bestOfN" | "deployments" | "metrics">

// ---------------------------------------------------------------------------------------------
// the acts
// ---------------------------------------------------------------------------------------------

const since = (start: number): Effect.Effect<number> => Effect.map(Clock.currentTimeMillis, (now) => now - start)

/** A pattern's own failure (misconfigured, or the fake could not start) as the tour's, its message kept. */
const orTourError = <A, E extends { readonly message: string }, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, TourError, R> => Effect.mapError(effect, (cause) => new TourError({ reason: cause.message, cause }))

const attemptOf = (attempt: Fallback.Attempt): Attempt => ({
  model: attempt.model,
  deployment: attempt.deployment,
  costUsd: attempt.costUsd,
  retry: attempt.retry,
  hedge: attempt.hedge,
  outcome: attempt.outcome === "failure" ? attempt.error._tag : attempt.outcome,
  durationMs: attempt.durationMs,
  status: attempt.outcome === "failure" && "status" in attempt.error ? attempt.error.status : undefined,
  error: attempt.outcome === "failure" ? attempt.error.message : undefined
})

const costOf = (attempts: ReadonlyArray<Attempt>): number | undefined =>
  attempts.reduce<number | undefined>(
    (sum, attempt) => attempt.costUsd === undefined ? sum : (sum ?? 0) + attempt.costUsd,
    undefined
  )

/** Sends one request through a chain and describes what happened, served or not. */
const serve = (
  chain: ReturnType<typeof Fallback.chain>,
  number: number,
  prompt: string,
  options: { readonly key?: string; readonly maxTokens?: number } = {}
): Effect.Effect<Request, never, ChatClient.ChatClient> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const request = chain(
      ChatCompletion.prompt(prompt, options.maxTokens === undefined ? undefined : { max_tokens: options.maxTokens })
    )
    const result = yield* Effect.result(options.key === undefined ? request : Budget.withKey(request, options.key))
    const durationMs = yield* since(start)
    return Result.match(result, {
      onSuccess: (served): Request => {
        const attempts = served.attempts.map(attemptOf)
        return {
          number,
          prompt,
          servedBy: served.model,
          deployment: served.deployment,
          costUsd: costOf(attempts),
          key: options.key,
          reply: ChatCompletion.text(served.value),
          durationMs,
          attempts,
          error: undefined
        }
      },
      onFailure: (failure): Request => {
        const attempts = failure._tag === "AllModelsFailed" ? failure.attempts.map(attemptOf) : []
        return {
          number,
          prompt,
          servedBy: undefined,
          deployment: undefined,
          costUsd: costOf(attempts),
          key: options.key,
          reply: undefined,
          durationMs,
          attempts,
          error: failure.message
        }
      }
    })
  })

type Emit = (event: Event) => Effect.Effect<void>

const emitFrom = (onEvent: ((event: Event) => Effect.Effect<void>) | undefined): Emit => onEvent ?? (() => Effect.void)

const fallbackAct = (options: RunOptions, emit: Emit) =>
  Effect.gen(function*() {
    const config: FallbackConfig = {
      section: "fallback",
      models: options.cast.fallback,
      timeoutMs: options.timing.fallbackTimeoutMs,
      retries: 1,
      retryDelayMs: options.timing.retryDelayMs,
      hedgedModels: [options.cast.primary, options.cast.backup],
      hedgeDelayMs: options.timing.hedgeDelayMs
    }
    yield* emit({ _tag: "SectionStarted", number: 1, config })
    const chain = Fallback.chain(config.models, {
      timeout: Duration.millis(config.timeoutMs),
      retry: { retries: config.retries, base: Duration.millis(config.retryDelayMs), jitter: false }
    })
    // The last request hedges: a primary that has not answered after the delay gets the backup
    // started alongside it, and whichever answers first serves.
    const hedged = Fallback.chain(config.hedgedModels, {
      timeout: Duration.millis(config.timeoutMs),
      hedge: { delay: Duration.millis(config.hedgeDelayMs) }
    })
    const requests = yield* Effect.forEach(Arr.range(1, 4), (number) =>
      Effect.tap(
        serve(number === 4 ? hedged : chain, number, Story.orderPrompt(1000 + number)),
        (request) => emit({ _tag: "Request", section: "fallback", request, state: undefined })
      ))
    const report: FallbackReport = { section: "fallback", status: "ran", config, requests }
    yield* emit({ _tag: "SectionFinished", report })
    return report
  })

const breakerAct = (
  options: RunOptions,
  emit: Emit
): Effect.Effect<BreakerReport | Skipped<"breaker">, TourError, ChatClient.ChatClient | Scope.Scope> =>
  Effect.gen(function*() {
    const stage = options.stage
    if (stage === undefined) {
      const skipped: Skipped<"breaker"> = {
        section: "breaker",
        status: "skipped",
        reason: "it needs an outage, which only the built-in fake provider can script; run the demo without " +
          "--models to see the circuit open and close"
      }
      yield* emit({ _tag: "SectionSkipped", number: 2, skipped })
      return skipped
    }
    const { backup, primary } = options.cast
    const config: BreakerConfig = {
      section: "breaker",
      models: [primary, backup],
      timeoutMs: options.timing.breakerTimeoutMs,
      trip: 3,
      firstBreakMs: options.timing.firstBreakMs
    }
    yield* emit({ _tag: "SectionStarted", number: 2, config })
    const start = yield* Clock.currentTimeMillis
    const breaker = yield* CircuitBreaker.make({
      trip: CircuitBreaker.consecutiveFailures(config.trip),
      breakDuration: Schedule.exponential(Duration.millis(config.firstBreakMs))
    }).pipe(orTourError)

    // Every transition, as it happens: recorded, and reported at once.
    const seen = yield* SubscriptionRef.make<ReadonlyArray<Transition>>([])
    const inFlight = yield* Ref.make<number | undefined>(undefined)
    const subscription = yield* breaker.subscribe
    yield* Stream.fromSubscription(subscription).pipe(
      Stream.runForEach((change) =>
        Effect.flatMap(Ref.get(inFlight), (during) => {
          const transition: Transition = {
            key: change.key,
            from: change.from,
            to: change.to,
            reason: change.reason,
            atMs: change.at - start,
            breakMs: change.breakDuration === undefined ? undefined : Duration.toMillis(change.breakDuration),
            during
          }
          return Effect.andThen(
            SubscriptionRef.update(seen, (all) => [...all, transition]),
            emit({ _tag: "Transition", transition })
          )
        })
      ),
      Effect.forkScoped
    )

    const waitFor = (to: CircuitBreaker.State, count: number) =>
      SubscriptionRef.changes(seen).pipe(
        Stream.filter((all) => all.filter((t) => t.key === primary && t.to === to).length >= count),
        Stream.take(1),
        Stream.runDrain,
        Effect.timeoutOrElse({
          duration: Duration.millis(config.firstBreakMs * 8 + 5_000),
          orElse: () =>
            Effect.fail(new TourError({ reason: `the circuit of ${primary} never became ${to} (${count})` }))
        })
      )

    const steps = yield* Ref.make<ReadonlyArray<Step>>([])
    const note = (text: string) =>
      Effect.flatMap(
        since(start),
        (atMs) =>
          Effect.andThen(
            Ref.update(steps, Arr.append<Step>({ kind: "note", atMs, text })),
            emit({ _tag: "Note", text })
          )
      )
    const chain = Fallback.chain(config.models, { timeout: Duration.millis(config.timeoutMs), breaker })
    const counter = yield* Ref.make(0)
    const request = (times: number) =>
      Effect.repeat(
        Effect.gen(function*() {
          const number = yield* Ref.updateAndGet(counter, (n) => n + 1)
          yield* Ref.set(inFlight, number)
          const served = yield* serve(chain, number, Story.orderPrompt(2000 + number))
          yield* Ref.set(inFlight, undefined)
          const state = yield* breaker.state(primary)
          const atMs = yield* since(start)
          yield* Ref.update(steps, Arr.append<Step>({ kind: "request", atMs, request: served, state }))
          yield* emit({ _tag: "Request", section: "breaker", request: served, state })
        }),
        { times: times - 1 }
      )

    yield* note(`${primary} stops answering: every call hangs until the client gives up`)
    yield* stage.outage
    yield* request(config.trip)
    yield* note(`while its circuit is open, requests skip ${primary} without waiting`)
    yield* request(2)
    yield* waitFor("half-open", 1)
    yield* note(`the break is over: the next request probes ${primary}, which is still down`)
    yield* request(1)
    yield* stage.recover
    yield* note(`${primary} recovers, but its circuit stays open until the next probe`)
    yield* request(2)
    yield* waitFor("half-open", 2)
    yield* note(`the next request probes ${primary} again`)
    yield* request(1)
    yield* waitFor("closed", 1)
    yield* request(1)

    const transitions = yield* SubscriptionRef.get(seen)
    const timeline = [
      ...(yield* Ref.get(steps)),
      ...transitions.map((transition): Step => ({ kind: "transition", atMs: transition.atMs, transition }))
    ].sort((a, b) => a.atMs - b.atMs)
    const primaryAttempts = timeline.flatMap((step) =>
      step.kind === "request" ? step.request.attempts.filter((attempt) => attempt.model === primary) : []
    )
    const skipped = primaryAttempts.filter((attempt) => attempt.outcome === "CircuitOpenError").length
    const costs = primaryAttempts.filter((attempt) => attempt.outcome === "TimeoutError").map((a) => a.durationMs)
    const failureCostMs = costs.length === 0 ? 0 : Math.round(costs.reduce((sum, ms) => sum + ms, 0) / costs.length)
    const report: BreakerReport = {
      section: "breaker",
      status: "ran",
      config,
      timeline,
      transitions,
      skipped,
      failureCostMs,
      savedMs: skipped * failureCostMs
    }
    yield* emit({ _tag: "SectionFinished", report })
    return report
  })

const experimentAct = (
  options: RunOptions,
  judge: Judge.Service,
  emit: Emit
): Effect.Effect<ExperimentReport | Skipped<"experiment">, TourError, ChatClient.ChatClient | Scope.Scope> =>
  Effect.gen(function*() {
    const { challenger, control } = options.cast
    if (challenger === undefined) {
      const skipped: Skipped<"experiment"> = {
        section: "experiment",
        status: "skipped",
        reason: "it needs two models: a control and a challenger"
      }
      yield* emit({ _tag: "SectionSkipped", number: 3, skipped })
      return skipped
    }
    const config: ExperimentConfig = {
      section: "experiment",
      name: "support-answers",
      assignment: "sticky",
      variants: [
        { name: "control", model: control, weight: 1 },
        { name: "challenger", model: challenger, weight: 1 }
      ],
      requests: options.requests,
      concurrency: options.concurrency,
      judge: options.cast.judge
    }
    yield* emit({ _tag: "SectionStarted", number: 3, config })
    const start = yield* Clock.currentTimeMillis
    const experiment = yield* Experiment.make({
      name: config.name,
      variants: config.variants,
      assignment: config.assignment
    }).pipe(orTourError)

    const done = yield* Ref.make(0)
    const step = Math.max(1, Math.round(config.requests / 40))
    const progress = Effect.flatMap(
      Ref.updateAndGet(done, (n) => n + 1),
      (n) =>
        n % step === 0 || n === config.requests
          ? emit({ _tag: "Progress", section: "experiment", done: n, total: config.requests })
          : Effect.void
    )
    // user-1 ... user-N, each keeping its variant (sticky); even users read their answer as a stream,
    // chunk by chunk (recorded when it ends); every answer goes to the judge.
    const answer = (prompt: string, user: number) => {
      const request = ChatCompletion.prompt(prompt)
      const key = `user-${user}`
      if (user % 2 === 1) {
        return Effect.map(
          experiment.complete(request, { key }),
          (served) => ({ callId: served.callId, text: ChatCompletion.text(served.completion), streamed: false })
        )
      }
      return experiment.stream(request, { key }).pipe(
        Effect.flatMap((served) =>
          Effect.map(
            Stream.runFold(served.stream, () => "", (text, chunk) => text + ChatCompletion.chunkText(chunk)),
            (text) => ({ callId: served.callId, text, streamed: true })
          )
        ),
        Effect.scoped
      )
    }
    const one = (user: number) => {
      const prompt = Story.orderPrompt(3000 + user)
      return answer(prompt, user).pipe(
        Effect.flatMap((served) =>
          judge.score({ prompt, response: served.text }).pipe(
            Effect.flatMap((score) => experiment.score(served.callId, score.value)),
            Effect.as("scored" as const),
            Effect.orElseSucceed(() => "unscored" as const),
            Effect.map((outcome) => ({ outcome, streamed: served.streamed }))
          )
        ),
        Effect.orElseSucceed(() => ({ outcome: "failed" as const, streamed: false })),
        Effect.tap(() => progress)
      )
    }
    const outcomes = yield* Effect.forEach(Arr.range(1, config.requests), one, { concurrency: config.concurrency })
    const summary = yield* experiment.summary
    const count = (outcome: "scored" | "unscored" | "failed") => outcomes.filter((o) => o.outcome === outcome).length
    const report: ExperimentReport = {
      section: "experiment",
      status: "ran",
      config,
      served: config.requests - count("failed"),
      failed: count("failed"),
      streamed: outcomes.filter((o) => o.streamed).length,
      scored: count("scored"),
      unscored: count("unscored"),
      durationMs: yield* since(start),
      summary
    }
    yield* emit({ _tag: "SectionFinished", report })
    return report
  })

const candidateOf = (candidate: BestOfN.Candidate): Candidate => ({
  model: candidate.model,
  status: candidate.status,
  score: candidate.score,
  latencyMs: candidate.latencyMs,
  judgeLatencyMs: candidate.judgeLatencyMs,
  text: candidate.text,
  error: candidate.error?.message
})

const bestOfNAct = (options: RunOptions, judge: Judge.Service, emit: Emit) =>
  Effect.gen(function*() {
    const config: BestOfNConfig = {
      section: "bestOfN",
      prompt: Story.breakerPrompt,
      models: options.cast.candidates,
      judge: options.cast.judge,
      judgeRule: options.judgeRule,
      candidateTimeoutMs: options.timing.candidateTimeoutMs
    }
    yield* emit({ _tag: "SectionStarted", number: 4, config })
    const start = yield* Clock.currentTimeMillis
    const result = yield* BestOfN.complete(ChatCompletion.prompt(config.prompt), {
      models: config.models,
      candidateTimeout: Duration.millis(config.candidateTimeoutMs)
    }).pipe(Effect.provideService(Judge.Judge, judge), Effect.result)
    const durationMs = yield* since(start)
    const report: BestOfNReport = Result.match(result, {
      onSuccess: (picked) => ({
        section: "bestOfN",
        status: "ran",
        config,
        durationMs,
        candidates: picked.candidates.map(candidateOf),
        ranking: picked.ranking.map((candidate) => candidate.model),
        best: picked.best.model,
        error: undefined
      }),
      onFailure: (error) => ({
        section: "bestOfN",
        status: "ran",
        config,
        durationMs,
        candidates: error._tag === "NoCandidatesError" ? error.candidates.map(candidateOf) : [],
        ranking: [],
        best: undefined,
        error: error.message
      })
    })
    yield* emit({ _tag: "SectionFinished", report })
    return report
  })

/** The deployments act's setting: two deployments of one logical model, priced, the first rate limited. */
const deploymentsConfig: DeploymentsConfig = {
  section: "deployments",
  model: Story.logicalModel,
  deployments: [
    {
      name: "east",
      provider: "azure",
      providerModel: Story.models.eastDeployment,
      priority: 0,
      rpm: 4,
      price: { input: 2.5, output: 10 }
    },
    {
      name: "west",
      provider: "openai",
      providerModel: Story.models.westDeployment,
      priority: 1,
      rpm: undefined,
      price: { input: 5, output: 15 }
    }
  ],
  maxTokens: 60,
  budget: { limitUsd: 0.001, period: "1 day" },
  burstKey: "team-a",
  budgetKey: "team-b"
}

const deploymentsAct = (
  options: RunOptions,
  emit: Emit
): Effect.Effect<DeploymentsReport | Skipped<"deployments">, TourError, Scope.Scope> =>
  Effect.gen(function*() {
    const providers = options.providers
    if (providers === undefined) {
      const skipped: Skipped<"deployments"> = {
        section: "deployments",
        status: "skipped",
        reason: "it needs two providers and a rate limit to fill, which the built-in fake provider stages; run " +
          "the demo without --models to see a deployment spill over and a budget refuse"
      }
      yield* emit({ _tag: "SectionSkipped", number: 5, skipped })
      return skipped
    }
    const config = deploymentsConfig
    yield* emit({ _tag: "SectionStarted", number: 5, config })
    const router = yield* Deployments.make({
      models: {
        [config.model]: {
          deployments: config.deployments.map((d) => ({
            name: d.name,
            provider: d.provider,
            model: d.providerModel,
            priority: d.priority,
            price: d.price,
            ...(d.rpm === undefined ? {} : { rpm: d.rpm })
          }))
        }
      },
      budget: { ...config.budget, keys: { [config.burstKey]: 1 } }
    }).pipe(Effect.provide(Layer.mergeAll(providers, Deployments.layerStoresMemory)), orTourError)
    const chain = Fallback.chain([config.model])
    const requests: Array<Request> = []
    const ask = (key: string) =>
      Effect.gen(function*() {
        const number = requests.length + 1
        const request = yield* serve(chain, number, Story.orderPrompt(5000 + number), {
          key,
          maxTokens: config.maxTokens
        }).pipe(Effect.provideService(ChatClient.ChatClient, router))
        requests.push(request)
        yield* emit({ _tag: "Request", section: "deployments", request, state: undefined })
        return request
      })

    const [east, west] = config.deployments
    yield* emit({
      _tag: "Note",
      text: `${config.burstKey} sends 6 requests in a row: ${east.name} allows ${east.rpm} a minute, ` +
        `then the calls spill over to ${west.name}`
    })
    for (let i = 0; i < 6; i++) yield* ask(config.burstKey)
    yield* emit({
      _tag: "Note",
      text: `${config.budgetKey} may spend $${config.budget.limitUsd} a day: its requests go through until it is ` +
        "spent, then are refused before any provider is asked"
    })
    let refused: number | undefined
    for (let i = 0; i < 8 && refused === undefined; i++) {
      const request = yield* ask(config.budgetKey)
      if (request.attempts.some((a) => a.outcome === "BudgetExceededError")) refused = request.number
    }

    const served: Record<string, number> = {}
    const costUsd: Record<string, number> = {}
    for (const request of requests) {
      if (request.deployment !== undefined) served[request.deployment] = (served[request.deployment] ?? 0) + 1
      for (const attempt of request.attempts) {
        if (attempt.deployment === undefined || attempt.costUsd === undefined) continue
        costUsd[attempt.deployment] = (costUsd[attempt.deployment] ?? 0) + attempt.costUsd
      }
    }
    const status = router.budget === undefined
      ? undefined
      : yield* router.budget.status(config.budgetKey).pipe(Effect.option)
    const snapshot = yield* router.snapshot
    const report: DeploymentsReport = {
      section: "deployments",
      status: "ran",
      config,
      requests,
      served,
      costUsd,
      budget: {
        key: config.budgetKey,
        spentUsd: status?._tag === "Some" ? status.value.spentUsd : 0,
        limitUsd: config.budget.limitUsd,
        refused
      },
      limits: Object.fromEntries(snapshot.map((d) => [d.deployment, d.limits.rpm]))
    }
    yield* emit({ _tag: "SectionFinished", report })
    return report
  })

/**
 * Runs the five acts against the `ChatClient` in context, then reads this run's per-model
 * metrics (every metric of the run is tagged with a run id, so earlier runs in the same process
 * do not count).
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = (options: RunOptions): Effect.Effect<Acts, TourError, ChatClient.ChatClient | Scope.Scope> =>
  Effect.gen(function*() {
    const emit = emitFrom(options.onEvent)
    const runId = `${yield* Clock.currentTimeMillis}-${yield* Random.nextIntBetween(0, 1_000_000_000)}`
    const judge = yield* Judge.llm({ model: options.cast.judge }).pipe(
      orTourError
    )
    const acts = yield* Effect.gen(function*() {
      const fallback = yield* fallbackAct(options, emit)
      const breaker = yield* breakerAct(options, emit)
      const experiment = yield* experimentAct(options, judge, emit)
      const bestOfN = yield* bestOfNAct(options, judge, emit)
      const deployments = yield* deploymentsAct(options, emit)
      return { fallback, breaker, experiment, bestOfN, deployments }
    }).pipe(Observability.withMetricLabels({ demo_run: runId }))
    const metrics = yield* Observability.snapshot({ labels: { demo_run: runId } })
    return { ...acts, metrics }
  })

// ---------------------------------------------------------------------------------------------
// against the fake, or a real endpoint
// ---------------------------------------------------------------------------------------------

/**
 * Options of `fake`.
 *
 * @since 0.1.0
 * @category models
 */
export interface FakeOptions {
  /** Seeds the fake provider (default 42): the same seed tells the same story. */
  readonly seed?: number | undefined
  /** A/B requests (default 200). */
  readonly requests?: number | undefined
  readonly onEvent?: ((event: Event) => Effect.Effect<void>) | undefined
  /**
   * Reach the fake in-process (its `fetch`, through `FetchHttpClient`) instead of over a socket.
   * The requests and responses are the same HTTP messages, but no I/O happens, so under
   * `TestClock` the whole tour runs in virtual time: its timeouts, breaks and latencies are the
   * story's, whatever the machine's load. The `HttpClient` in context is then not used.
   */
  readonly inProcess?: boolean | undefined
}

/**
 * The fake's cast, in the roles of the tour.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fakeCast: Cast = {
  fallback: [Story.models.invalid, Story.models.primary, Story.models.backup],
  primary: Story.models.primary,
  backup: Story.models.backup,
  control: Story.models.control,
  challenger: Story.models.challenger,
  candidates: [Story.models.challenger, Story.models.control, Story.models.slow],
  judge: Story.models.judge
}

/**
 * Short times: the fake answers in milliseconds, and the whole tour takes a few seconds.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fakeTiming: Timing = {
  fallbackTimeoutMs: 500,
  retryDelayMs: 50,
  hedgeDelayMs: 150,
  breakerTimeoutMs: 400,
  firstBreakMs: 600,
  candidateTimeoutMs: 2_000
}

const urlOf = (input: Parameters<typeof globalThis.fetch>[0]): string =>
  typeof input === "string" ? input : input instanceof URL ? input.href : input.url

/**
 * The tour against a `FakeProvider` started on 127.0.0.1 for the run, playing the `Story`, over
 * real HTTP through `OpenAiCompatible`. Needs an `HttpClient` (the demo uses
 * `NodeHttpClient.layerUndici`); the server stops when the scope closes. Run it live: the fake's
 * latencies are real sleeps; or, with `inProcess`, under `TestClock` (the tests do).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fake = (
  options: FakeOptions = {}
): Effect.Effect<Report, TourError, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const seed = options.seed ?? Story.defaultSeed
    const emit = emitFrom(options.onEvent)
    const start = yield* Clock.currentTimeMillis
    const provider = yield* FakeProvider.make(Story.config(seed)).pipe(
      orTourError
    )
    // a second provider, with a key of its own, for the deployments act's `east` deployment
    const second = yield* FakeProvider.make(Story.secondConfig(seed)).pipe(orTourError)
    // In process, each fake is reached through its own `fetch`, without a socket, so its sleeps run
    // on the caller's clock (`TestClock` in the tests); otherwise over the caller's HTTP client.
    const inProcess: typeof globalThis.fetch = (input, init) =>
      (urlOf(input).startsWith(second.url) ? second.fetch : provider.fetch)(input, init)
    const http = options.inProcess === true
      ? yield* Layer.build(FetchHttpClient.layer).pipe(Effect.provideService(FetchHttpClient.Fetch, inProcess))
      : yield* Effect.context<HttpClient.HttpClient>()
    const providers = yield* Layer.build(
      Providers.clients([
        { name: "azure", baseUrl: second.url, apiKey: Redacted.make(Story.secondApiKey) },
        { name: "openai", baseUrl: provider.url, apiKey: Redacted.make(Story.apiKey) }
      ]).pipe(Layer.provide(Layer.succeedContext(http)))
    ).pipe(orTourError)
    yield* emit({ _tag: "Started", mode: "fake", endpoint: provider.url, seed })
    const client = yield* OpenAiCompatible.make({ baseUrl: provider.url, apiKey: Redacted.make(Story.apiKey) }).pipe(
      Effect.provideContext(http)
    )
    // Warm the connection pool and the code paths (a 404, a fallback, a reply), so that the first
    // act's timings are the story's and not a cold start's. This runs outside `run`, so its
    // attempts are not in the run's metrics.
    yield* Effect.forEach(
      Arr.range(1, 3),
      () => Effect.ignore(Fallback.chain([Story.models.invalid, Story.models.judge])(ChatCompletion.prompt("warm-up"))),
      { concurrency: "unbounded", discard: true }
    ).pipe(Effect.provideService(ChatClient.ChatClient, client))
    const setPrimary = (behaviour: FakeProvider.ModelBehaviour) =>
      provider.setModel(Story.models.primary, behaviour).pipe(
        orTourError
      )
    const acts = yield* run({
      cast: fakeCast,
      timing: fakeTiming,
      requests: options.requests ?? 200,
      concurrency: 20,
      stage: {
        outage: setPrimary(Story.outage(seed)),
        recover: setPrimary(Story.healthy(Story.models.primary, seed))
      },
      judgeRule: Story.judgeRule,
      providers: Layer.succeedContext(providers),
      onEvent: emit
    }).pipe(Effect.provideService(ChatClient.ChatClient, client))
    return { mode: "fake", endpoint: provider.url, seed, durationMs: yield* since(start), ...acts }
  })

/**
 * Options of `live`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LiveOptions {
  /** At least two: the first is the primary and the A/B control, the second the backup and challenger. */
  readonly models: ReadonlyArray<string>
  /** The judge model; the first of `models` by default. */
  readonly judge?: string | undefined
  /** A/B requests (default 20: each costs a model call and a judge call). */
  readonly requests?: number | undefined
  readonly onEvent?: ((event: Event) => Effect.Effect<void>) | undefined
}

/**
 * Generous times for real models.
 *
 * @since 0.1.0
 * @category constructors
 */
export const liveTiming: Timing = {
  fallbackTimeoutMs: 30_000,
  retryDelayMs: 500,
  hedgeDelayMs: 5_000,
  breakerTimeoutMs: 30_000,
  firstBreakMs: 30_000,
  candidateTimeoutMs: 60_000
}

/**
 * The tour against the endpoint in `OPENAI_BASE_URL` (default `https://api.openai.com/v1`) with
 * the key in `OPENAI_API_KEY` (optional, for local servers), read through Effect's `Config`. The
 * breaker act is skipped: it needs an outage only a fake can script. It makes about
 * `3 + 2 × requests + 2 × models` calls.
 *
 * @since 0.1.0
 * @category constructors
 */
export const live = (options: LiveOptions): Effect.Effect<Report, TourError, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const [first, second] = options.models
    if (first === undefined || second === undefined) {
      return yield* new TourError({ reason: "a tour against a real endpoint needs at least two models" })
    }
    const emit = emitFrom(options.onEvent)
    const start = yield* Clock.currentTimeMillis
    const endpoint = yield* Config.String("OPENAI_BASE_URL").pipe(
      Config.withDefault("https://api.openai.com/v1"),
      Effect.mapError((cause) => new TourError({ reason: `OPENAI_BASE_URL: ${cause.message}`, cause }))
    )
    yield* emit({ _tag: "Started", mode: "live", endpoint, seed: undefined })
    const judge = options.judge ?? first
    const acts = yield* run({
      cast: {
        fallback: [Story.models.invalid, first, second],
        primary: first,
        backup: second,
        control: first,
        challenger: second,
        candidates: options.models,
        judge
      },
      timing: liveTiming,
      requests: options.requests ?? 20,
      concurrency: 4,
      stage: undefined,
      judgeRule: undefined,
      onEvent: emit
    }).pipe(
      Effect.provide(OpenAiCompatible.layerConfig()),
      Effect.mapError((error) =>
        error instanceof Config.ConfigError
          ? new TourError({ reason: `invalid endpoint configuration: ${error.message}`, cause: error })
          : error
      )
    )
    return { mode: "live", endpoint, seed: undefined, durationMs: yield* since(start), ...acts }
  })
