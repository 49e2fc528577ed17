/**
 * The experiment runner: validates the options, assigns variants, serves and records calls,
 * forks shadow calls into the experiment's scope, and turns the recorder's aggregates into the
 * summary with its intervals and verdicts.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import * as ChatClient from "../ChatClient.js"
import * as ChatCompletion from "../ChatCompletion.js"
import * as Experiment from "../Experiment.js"
import type * as LlmError from "../LlmError.js"
import * as Observability from "../Observability.js"
import * as Retry from "../Retry.js"
import * as AttemptDetails from "./attemptDetails.js"
import { pick, stickyPoint } from "./experimentAssignment.js"
import type { CallRecord, Finished, VariantState } from "./experimentRecorder.js"
import * as Stats from "./experimentStats.js"
import type * as ExperimentStore from "./experimentStore.js"
import { openStream } from "./fallback.js"
import { count, show } from "./options.js"
import * as retry from "./retry.js"

const DEFAULT_SAMPLE_SIZE = 1_000
const DEFAULT_SCORE_WINDOW = 10_000
const DEFAULT_SHADOW_CONCURRENCY = 16
const DEFAULT_CONFIDENCE = 0.95
const DEFAULT_MIN_SAMPLES = 30

interface Config {
  readonly name: string
  readonly variants: ReadonlyArray<Experiment.Variant>
  readonly weights: ReadonlyArray<number>
  readonly assignment: Experiment.Assignment
  readonly controlIndex: number
  readonly shadowConcurrency: number | undefined
  readonly sampleSize: number
  readonly scoreWindow: number
  readonly confidence: number
  readonly minSamples: number
}

const isBlank = (s: unknown): boolean => typeof s !== "string" || s.trim().length === 0

/** Every reason the options describe no experiment, or the validated config. */
const validate = (options: Experiment.Options): Config | string => {
  if (isBlank(options.name)) return "the name is empty"
  if (options.assignment !== "random" && options.assignment !== "sticky") {
    return `the assignment must be "random" or "sticky", got ${JSON.stringify(options.assignment)}`
  }
  const variants = options.variants
  if (!Array.isArray(variants) || variants.length === 0) return "there are no variants"
  const seen = new Set<string>()
  let total = 0
  for (const variant of variants) {
    if (isBlank(variant.name)) return "a variant has an empty name"
    if (seen.has(variant.name)) return `two variants are named "${variant.name}"`
    seen.add(variant.name)
    if (isBlank(variant.model)) return `variant "${variant.name}" has no model`
    if (typeof variant.weight !== "number" || !Number.isFinite(variant.weight)) {
      return `variant "${variant.name}" has a weight that is not a finite number (${String(variant.weight)})`
    }
    if (variant.weight < 0) return `variant "${variant.name}" has a negative weight (${variant.weight})`
    total += variant.weight
  }
  if (total === 0) return "every weight is zero, so no variant gets traffic"
  // the assignment maps a point in [0, 1) onto the running sum of the weights
  if (!Number.isFinite(total)) return "the weights are too large: their sum is not a finite number"
  const controlIndex = options.control === undefined ? 0 : variants.findIndex((v) => v.name === options.control)
  if (controlIndex < 0) return `the control "${options.control}" is not one of the variants`
  const shadow = options.shadow === true ? {} : options.shadow === false ? undefined : options.shadow
  const shadowConcurrency = shadow === undefined ? undefined : shadow.concurrency ?? DEFAULT_SHADOW_CONCURRENCY
  const checkedShadow = shadowConcurrency === undefined ? undefined : count("shadow concurrency", shadowConcurrency)
  if (typeof checkedShadow === "string") return checkedShadow
  const sampleSize = count("sampleSize", options.sampleSize ?? DEFAULT_SAMPLE_SIZE)
  if (typeof sampleSize === "string") return sampleSize
  const scoreWindow = count("scoreWindow", options.scoreWindow ?? DEFAULT_SCORE_WINDOW)
  if (typeof scoreWindow === "string") return scoreWindow
  const confidence = options.confidence ?? DEFAULT_CONFIDENCE
  if (!(typeof confidence === "number" && confidence > 0 && confidence < 1)) {
    return `confidence must be between 0 and 1 (both excluded), got ${show(confidence)}`
  }
  const minSamples = count("minSamples", options.minSamples ?? DEFAULT_MIN_SAMPLES, 2)
  if (typeof minSamples === "string") return minSamples
  return {
    name: options.name,
    variants: variants.map((v) => ({ name: v.name, model: v.model, weight: v.weight })),
    weights: variants.map((v) => v.weight),
    assignment: options.assignment,
    controlIndex,
    shadowConcurrency: checkedShadow,
    sampleSize,
    scoreWindow,
    confidence,
    minSamples
  }
}

/** What bounds each try of a stream: the wait for its first chunk, and the retries before one. */
interface StreamBounds {
  readonly timeout: Duration.Duration | undefined
  readonly policy: retry.Config<LlmError.LlmError> | undefined
}

const checkStreamOptions = (options: Experiment.StreamOptions | undefined): StreamBounds | string => {
  const raw: unknown = options
  if (raw !== undefined && (typeof raw !== "object" || raw === null)) {
    return `options must be an object, got ${show(raw)}`
  }
  let timeout: Duration.Duration | undefined
  if (options?.timeout !== undefined) {
    const checked = retry.checkTimeout({ model: "stream", timeout: options.timeout })
    if (typeof checked === "string") return checked
    timeout = Duration.isFinite(checked.timeout) ? checked.timeout : undefined
  }
  if (options?.retry === undefined) return { timeout, policy: undefined }
  const policy = retry.check(options.retry, "retry.")
  return typeof policy === "string" ? policy : { timeout, policy }
}

/** @internal */
export const make = (
  options: Experiment.Options
): Effect.Effect<Experiment.Experiment, Experiment.ExperimentConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const config = validate(options)
    if (typeof config === "string") {
      return yield* new Experiment.ExperimentConfigError({ experiment: String(options.name), reason: config })
    }
    const scope = yield* Effect.scope
    const store = yield* Experiment.CurrentStore
    const log = yield* store.open({
      name: config.name,
      variants: config.variants,
      sampleSize: config.sampleSize,
      scoreWindow: config.scoreWindow
    })
    const shadowSlots = config.shadowConcurrency === undefined
      ? undefined
      : yield* Semaphore.make(config.shadowConcurrency)

    const choose = (key: string | undefined): Effect.Effect<number> => {
      if (config.assignment === "sticky" && key !== undefined) {
        return Effect.sync(() => pick(config.weights, stickyPoint(config.name, key)))
      }
      const draw = Effect.map(Random.next, (u) => pick(config.weights, u))
      return config.assignment === "sticky"
        ? Effect.andThen(log.unkeyed, draw)
        : draw
    }

    /** Records a finished or interrupted call; the reservoir's draw comes from `Random`. */
    const recordExit = (
      variant: number,
      call: Omit<Finished, "outcome" | "inputTokens" | "outputTokens">,
      exit: Exit.Exit<unknown, unknown>,
      // what reported the call's usage: the completion, or a stream's usage chunk
      usage: { readonly usage?: ChatCompletion.Usage | null | undefined } | undefined
    ): Effect.Effect<void> => {
      // a cost no real call could have is left out, as a token count is
      const costUsd = call.costUsd !== undefined && isCost(call.costUsd) ? call.costUsd : undefined
      const outcome = Observability.outcomeOf(exit)
      if (outcome === "interrupted") return log.interrupted(variant)
      const tokens = Exit.isSuccess(exit) && usage !== undefined ? ChatCompletion.tokens(usage) : Option.none()
      return Effect.flatMap(Random.next, (u) =>
        log.record(
          variant,
          {
            ...call,
            costUsd,
            outcome,
            // a provider's usage is not trusted blindly: a count no real call has is left out
            inputTokens: Option.isSome(tokens) && ChatCompletion.isTokenCount(tokens.value.input)
              ? tokens.value.input
              : undefined,
            outputTokens: Option.isSome(tokens) && ChatCompletion.isTokenCount(tokens.value.output)
              ? tokens.value.output
              : undefined
          },
          u,
          !call.shadow
        ))
    }

    const serve = (variant: number, request: ChatCompletion.PromptRequest, shadow: boolean) =>
      Effect.gen(function*() {
        const { model, name } = config.variants[variant]
        const callId = yield* Effect.sync(() => log.nextCallId())
        const startedAt = yield* Clock.currentTimeMillis
        // the deployment router, when it serves the model, writes the call's cost here
        const details = AttemptDetails.make()
        const completion = yield* ChatClient.create(ChatCompletion.withModel(request, model)).pipe(
          Observability.attempt({
            pattern: "experiment",
            model,
            attributes: {
              "llm.experiment": config.name,
              "llm.variant": name,
              "llm.call_id": callId,
              "llm.shadow": shadow
            }
          }),
          Effect.provideService(AttemptDetails.CurrentDetails, details),
          Effect.onExit((exit) =>
            Effect.flatMap(
              Clock.currentTimeMillis,
              (endedAt) =>
                recordExit(
                  variant,
                  {
                    callId,
                    shadow,
                    startedAt,
                    latencyMs: endedAt - startedAt,
                    costUsd: AttemptDetails.costOf(details)
                  },
                  exit,
                  Exit.isSuccess(exit) ? exit.value : undefined
                )
            )
          )
        )
        return {
          completion,
          variant: name,
          model,
          callId,
          costUsd: AttemptDetails.costOf(details)
        } satisfies Experiment.Served
      })

    const forkShadow = (variant: number, request: ChatCompletion.PromptRequest) =>
      shadowSlots === undefined ? Effect.void : serve(variant, request, true).pipe(
        // the error is recorded; nobody waits for a shadow call's result
        Effect.ignore,
        shadowSlots.withPermitsIfAvailable(1),
        Effect.flatMap(Option.match({
          onNone: () => log.dropped(variant),
          onSome: () => Effect.void
        })),
        Effect.forkIn(scope),
        Effect.asVoid
      )

    /** The line that says who serves a call: "served by" a model, or "streaming from" it. */
    const announce =
      (doing: string) => (served: { readonly model: string; readonly variant: string; readonly callId: string }) =>
        Effect.logInfo(`${doing} ${served.model} (variant ${served.variant})`).pipe(
          Effect.annotateLogs({
            "llm.model": served.model,
            "llm.variant": served.variant,
            "llm.call_id": served.callId
          })
        )

    const complete = (request: ChatCompletion.PromptRequest, callOptions?: { readonly key?: string }) =>
      Effect.flatMap(choose(callOptions?.key), (variant) =>
        shadowSlots !== undefined && variant !== config.controlIndex
          ? Effect.andThen(forkShadow(variant, request), serve(config.controlIndex, request, false))
          : serve(variant, request, false)).pipe(
          Effect.tap(announce("served by")),
          Observability.pattern("experiment", { "llm.experiment": config.name })
        )

    /**
     * Streams from one variant, once its first chunk is in (each try bounded by `timeout`, retried
     * by `policy` before a chunk), and records the call once: when the stream ends, fails or is
     * stopped, when the opening fails, or when the caller's scope closes on a stream never read.
     */
    const serveStream = (
      variant: number,
      request: ChatCompletion.PromptRequest,
      bounds: StreamBounds
    ): Effect.Effect<Experiment.StreamServed, LlmError.LlmError, ChatClient.ChatClient | Scope.Scope> =>
      Effect.gen(function*() {
        const { model, name } = config.variants[variant]
        const callId = yield* Effect.sync(() => log.nextCallId())
        const startedAt = yield* Clock.currentTimeMillis
        const details = AttemptDetails.make()
        let settled = false
        let usageChunk: ChatCompletion.ChatCompletionChunk | undefined
        const settle = (exit: Exit.Exit<unknown, unknown>) =>
          Effect.suspend(() => {
            if (settled) return Effect.void
            settled = true
            return Effect.flatMap(Clock.currentTimeMillis, (endedAt) =>
              recordExit(
                variant,
                {
                  callId,
                  shadow: false,
                  startedAt,
                  latencyMs: endedAt - startedAt,
                  costUsd: AttemptDetails.costOf(details)
                },
                exit,
                usageChunk
              ))
          })
        const client = yield* ChatClient.ChatClient
        const once = openStream(model, client.stream(ChatCompletion.withModel(request, model)))
        const bounded = bounds.timeout === undefined ? once : retry.timeout(once, model, bounds.timeout)
        const policy = bounds.policy
        const tries = policy === undefined ? bounded : retry.retrying(bounded, () => retry.policy(policy))
        // The attempt reports to this call's record: the stream read on keeps the context it was
        // opened in, so the router's hop (with its cost), written when the stream ends, lands here.
        const opened = yield* Observability.observeAttempt(tries, "experiment", model, () => ({
          "llm.pattern": "experiment",
          "llm.model": model,
          "llm.experiment": config.name,
          "llm.variant": name,
          "llm.call_id": callId,
          "llm.shadow": false,
          "llm.stream": true
        }), details).pipe(Effect.onError((cause) => settle(Exit.failCause(cause))))
        // A stream still unread when the caller's scope closes (which closes the stream's own) was
        // not the model's doing. Held by the stream's scope, not the caller's: nothing is left behind
        // in a long-lived caller scope once the stream has ended.
        yield* Scope.addFinalizer(opened.scope, settle(Exit.interrupt()))
        // set only when the model's stream has ended: a stream that stops before is its reader's doing
        let ended = false
        const stream = Stream.fromArray(opened.chunks).pipe(
          Stream.concat(Stream.fromPull(Effect.succeed(opened.pull))),
          Stream.tap((chunk) =>
            Effect.sync(() => {
              if (chunk.usage != null) usageChunk = chunk
            })
          ),
          Stream.concat(Stream.fromEffectDrain(Effect.sync(() => {
            ended = true
          }))),
          Stream.onExit((exit) =>
            // settled first: closing the scope runs the finalizer above, which would call it unread.
            // A stream that ended has had its router settle (and write its cost) already.
            Effect.andThen(
              settle(Exit.isSuccess(exit) && !ended ? Exit.interrupt() : exit),
              Scope.close(opened.scope, exit)
            )
          )
        )
        return { stream, variant: name, model, callId }
      })

    const stream = (
      request: ChatCompletion.PromptRequest,
      options?: Experiment.StreamOptions
    ): Effect.Effect<
      Experiment.StreamServed,
      LlmError.LlmError | Retry.RetryConfigError,
      ChatClient.ChatClient | Scope.Scope
    > => {
      const bounds = checkStreamOptions(options)
      if (typeof bounds === "string") return Effect.fail(new Retry.RetryConfigError({ reason: bounds }))
      return Effect.flatMap(
        choose(options?.key),
        (variant) =>
          shadowSlots !== undefined && variant !== config.controlIndex
            ? Effect.andThen(forkShadow(variant, request), serveStream(config.controlIndex, request, bounds))
            : serveStream(variant, request, bounds)
      ).pipe(
        Effect.tap(announce("streaming from")),
        Observability.pattern("experiment", { "llm.experiment": config.name, "llm.stream": true })
      )
    }

    const score = (callId: string, value: number): Effect.Effect<void, Experiment.ScoreError> =>
      Effect.flatMap(
        Number.isFinite(value) ? log.score(callId, value) : Effect.succeed("invalid-score" as const),
        (result) =>
          result === "scored"
            ? Effect.void
            : Effect.fail(new Experiment.ScoreError({ experiment: config.name, callId, reason: result }))
      )

    const record = (
      call: Experiment.RecordedCall
    ): Effect.Effect<string, Experiment.UnknownVariantError | Experiment.InvalidCallError> => {
      const variant = config.variants.findIndex((v) => v.name === call.variant)
      if (variant < 0) {
        return Effect.fail(new Experiment.UnknownVariantError({ experiment: config.name, variant: call.variant }))
      }
      const invalid = invalidField(call)
      if (invalid !== undefined) {
        return Effect.fail(new Experiment.InvalidCallError({ experiment: config.name, ...invalid }))
      }
      const write = (u: number, startedAt: number) =>
        Effect.suspend(() => {
          const callId = log.nextCallId()
          return Effect.as(
            log.record(
              variant,
              {
                callId,
                shadow: call.shadow ?? false,
                startedAt,
                latencyMs: call.latencyMs,
                outcome: call.outcome,
                inputTokens: call.inputTokens,
                outputTokens: call.outputTokens,
                costUsd: call.costUsd
              },
              u,
              true
            ),
            callId
          )
        })
      // nested rather than `Effect.all`: `record` may run millions of times
      return Effect.flatMap(Random.next, (u) =>
        call.startedAt === undefined
          ? Effect.flatMap(Clock.currentTimeMillis, (now) => write(u, now))
          : write(u, call.startedAt))
    }

    const experiment: Experiment.Experiment = {
      name: config.name,
      control: config.variants[config.controlIndex].name,
      variants: config.variants,
      complete,
      stream,
      score,
      record,
      summary: Effect.map(log.snapshot, (snapshot) => summarize(config, snapshot)),
      export: Effect.map(
        log.sample,
        (sample) => sample.map((call) => JSON.stringify(exported(config.name, call)) + "\n").join("")
      ),
      recorderSize: log.size
    }
    return experiment
  })

/** What is wrong with a call given to `record`, if anything. */
const invalidField = (
  call: Experiment.RecordedCall
): Pick<Experiment.InvalidCallError, "field" | "value" | "expected"> | undefined => {
  if (!(Number.isFinite(call.latencyMs) && call.latencyMs >= 0)) {
    return { field: "latencyMs", value: call.latencyMs, expected: "a finite number of milliseconds, at least 0" }
  }
  if (call.inputTokens !== undefined && !ChatCompletion.isTokenCount(call.inputTokens)) {
    return { field: "inputTokens", value: call.inputTokens, expected: "a whole number, at least 0" }
  }
  if (call.outputTokens !== undefined && !ChatCompletion.isTokenCount(call.outputTokens)) {
    return { field: "outputTokens", value: call.outputTokens, expected: "a whole number, at least 0" }
  }
  if (call.costUsd !== undefined && !isCost(call.costUsd)) {
    return { field: "costUsd", value: call.costUsd, expected: "a finite number of US dollars, at least 0" }
  }
  if (call.startedAt !== undefined && !Number.isFinite(call.startedAt)) {
    return { field: "startedAt", value: call.startedAt, expected: "a finite time in epoch milliseconds" }
  }
  if (typeof call.outcome !== "string" || call.outcome.trim().length === 0) {
    return { field: "outcome", value: call.outcome, expected: "\"success\" or an error's tag" }
  }
  return undefined
}

/** A token count a provider could have reported. */

/** A cost a call could have had. */
const isCost = (n: number): boolean => Number.isFinite(n) && n >= 0

const exported = (experiment: string, call: CallRecord): Experiment.ExportedCall => ({
  experiment,
  callId: call.callId,
  variant: call.variant,
  model: call.model,
  shadow: call.shadow,
  startedAt: call.startedAt,
  latencyMs: call.latencyMs,
  outcome: call.outcome,
  inputTokens: call.inputTokens ?? null,
  outputTokens: call.outputTokens ?? null,
  costUsd: call.costUsd ?? null,
  score: call.score ?? null
})

// --- summary -------------------------------------------------------------------------------------

const momentsOf = (moments: Stats.Moments): Experiment.Moments => ({
  count: moments.n,
  mean: moments.n === 0 ? undefined : moments.mean,
  sd: moments.n < 2 ? undefined : Math.sqrt(Stats.variance(moments))
})

const variantSummary = (
  config: Config,
  index: number,
  state: VariantState
): Experiment.VariantSummary => {
  const latencies = state.reservoir.filter((call) => call.outcome === "success").map((call) => call.latencyMs)
    .sort((a, b) => a - b)
  const variant = config.variants[index]
  return {
    name: variant.name,
    model: variant.model,
    weight: variant.weight,
    isControl: index === config.controlIndex,
    calls: state.calls,
    errors: state.errors,
    errorRate: state.calls === 0 ? 0 : state.errors / state.calls,
    interrupted: state.interrupted,
    outcomes: Object.fromEntries(state.outcomes),
    latency: {
      ...momentsOf(state.latency),
      p50: Stats.quantileSorted(latencies, 0.5),
      p95: Stats.quantileSorted(latencies, 0.95)
    },
    inputTokens: momentsOf(state.inputTokens),
    outputTokens: momentsOf(state.outputTokens),
    costUsd: { ...momentsOf(state.costUsd), total: state.costTotalUsd },
    score: momentsOf(state.score),
    shadowDropped: state.shadowDropped,
    sampled: state.reservoir.length
  }
}

const format = (n: number): string => Number.isInteger(n) ? String(n) : n.toPrecision(4)

const compare = (
  metric: Experiment.Comparison["metric"],
  control: { readonly n: number; readonly value: number | undefined },
  challenger: { readonly n: number; readonly value: number | undefined },
  interval: Stats.Interval | undefined,
  higherIsBetter: boolean,
  config: Config
): Experiment.Comparison => {
  const difference = control.value !== undefined && challenger.value !== undefined
    ? challenger.value - control.value
    : undefined
  const enough = control.n >= config.minSamples && challenger.n >= config.minSamples
  const verdict = enough ? Stats.verdict(interval, higherIsBetter) : "inconclusive"
  const level = `${format(config.confidence * 100)}%`
  const reason = !enough
    ? `too few samples: ${challenger.n} challenger and ${control.n} control, ${config.minSamples} needed on each side`
    : interval === undefined
    ? "no interval could be computed: the values are too large for their spread to be measured"
    : verdict === "inconclusive"
    ? `the ${level} interval [${format(interval.lower)}, ${format(interval.upper)}] contains 0`
    : `the ${level} interval [${format(interval.lower)}, ${format(interval.upper)}] excludes 0`
  return {
    metric,
    control,
    challenger,
    difference,
    lower: interval?.lower,
    upper: interval?.upper,
    df: interval?.df,
    verdict,
    reason
  }
}

const sampleMoments = (moments: Stats.Moments): Stats.SampleMoments => ({
  n: moments.n,
  mean: moments.mean,
  variance: Stats.variance(moments)
})

const challengerComparison = (
  config: Config,
  control: VariantState,
  index: number,
  state: VariantState
): Experiment.ChallengerComparison => {
  const mean = (moments: Stats.Moments) => ({ n: moments.n, value: moments.n === 0 ? undefined : moments.mean })
  const rate = (s: VariantState) => ({ n: s.calls, value: s.calls === 0 ? undefined : s.errors / s.calls })
  return {
    variant: config.variants[index].name,
    latency: compare(
      "latency",
      mean(control.latency),
      mean(state.latency),
      Stats.welch(sampleMoments(control.latency), sampleMoments(state.latency), config.confidence),
      false,
      config
    ),
    errorRate: compare(
      "errorRate",
      rate(control),
      rate(state),
      Stats.proportions(
        { n: control.calls, successes: control.errors },
        { n: state.calls, successes: state.errors },
        config.confidence
      ),
      false,
      config
    ),
    score: compare(
      "score",
      mean(control.score),
      mean(state.score),
      Stats.welch(sampleMoments(control.score), sampleMoments(state.score), config.confidence),
      true,
      config
    )
  }
}

const summarize = (config: Config, snapshot: ExperimentStore.Snapshot): Experiment.Summary => {
  const states = snapshot.variants
  const control = states[config.controlIndex]
  return {
    experiment: config.name,
    control: config.variants[config.controlIndex].name,
    confidence: config.confidence,
    minSamples: config.minSamples,
    variants: states.map((state, index) => variantSummary(config, index, state)),
    comparisons: states.flatMap((state, index) =>
      index === config.controlIndex ? [] : [challengerComparison(config, control, index, state)]
    ),
    shadowDropped: states.reduce((sum, state) => sum + state.shadowDropped, 0),
    unkeyed: snapshot.unkeyed
  }
}
