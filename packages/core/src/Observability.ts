/**
 * What every pattern reports about every attempt: a span, one structured log line and metrics,
 * all labelled with the model and the pattern, so a dashboard can say which model served each
 * request and how each model is doing. Nothing here needs configuring: the spans and metrics go
 * wherever the application's Effect runtime sends them (OpenTelemetry through
 * `@effect/opentelemetry`, Prometheus, the console).
 *
 * Metric names:
 *
 * | metric | kind | labels |
 * | --- | --- | --- |
 * | `resilient_llm_requests_total` | counter | `model`, `pattern`, `outcome` |
 * | `resilient_llm_latency_ms` | histogram | `model` |
 * | `resilient_llm_latency_summary_ms` | summary (p50, p95, p99 over 10 minutes) | `model` |
 * | `resilient_llm_tokens_total` | counter | `model`, `kind` (`input`, `output`) |
 * | `resilient_llm_breaker_state` | gauge (0 closed, 1 half-open, 2 open) | `model` |
 * | `resilient_llm_breaker_transitions_total` | counter | `model`, `from`, `to` |
 * | `resilient_llm_hedges_total` | counter | `model` (the hedge's), `outcome` (`served`, `failed`, `cancelled`, `interrupted`) |
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import * as ChatCompletion from "./ChatCompletion.js"
import * as AttemptDetails from "./internal/attemptDetails.js"

/**
 * The pattern an attempt belongs to, as its spans, logs and metrics name it.
 *
 * @since 0.1.0
 * @category models
 */
export type Pattern = "fallback" | "experiment" | "best-of-n" | "judge" | "breaker" | "client" | (string & {})

/**
 * Requests by `model`, `pattern` and `outcome` (`success`, an error's tag, `interrupted`, `defect`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const requests = Metric.counter("resilient_llm_requests_total", {
  description: "Model attempts by model, pattern and outcome",
  incremental: true
})
const requestsOf = (attributes: Metric.Metric.AttributeSet) =>
  Metric.counter(requests.id, { description: requests.description, incremental: true, attributes })

/**
 * Latency of every attempt in milliseconds, failures included, by `model`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const latency = Metric.histogram("resilient_llm_latency_ms", {
  boundaries: Metric.exponentialBoundaries({ start: 5, factor: 2, count: 16 }),
  description: "Attempt latency in milliseconds by model"
})
const latencyOf = (attributes: Metric.Metric.AttributeSet) =>
  Metric.histogram(latency.id, {
    boundaries: Metric.exponentialBoundaries({ start: 5, factor: 2, count: 16 }),
    description: latency.description,
    attributes
  })

/**
 * Recent latency quantiles (p50, p95, p99 over the last 10 minutes, at most 1,000 samples) by
 * `model`; what `snapshot` reads.
 *
 * @since 0.1.0
 * @category metrics
 */
export const latencySummary = Metric.summary("resilient_llm_latency_summary_ms", {
  maxAge: "10 minutes",
  maxSize: 1000,
  quantiles: [0.5, 0.95, 0.99],
  description: "Recent attempt latency quantiles in milliseconds by model"
})
const latencySummaryOf = (attributes: Metric.Metric.AttributeSet) =>
  Metric.summary(latencySummary.id, {
    maxAge: "10 minutes",
    maxSize: 1000,
    quantiles: [0.5, 0.95, 0.99],
    description: latencySummary.description,
    attributes
  })

/**
 * Tokens by `model` and `kind` (`input` or `output`), as the provider reported them.
 *
 * @since 0.1.0
 * @category metrics
 */
export const tokens = Metric.counter("resilient_llm_tokens_total", {
  description: "Tokens by model and kind",
  incremental: true
})
const tokensOf = (attributes: Metric.Metric.AttributeSet) =>
  Metric.counter(tokens.id, { description: tokens.description, incremental: true, attributes })

/**
 * The state of each model's circuit: 0 closed, 1 half-open, 2 open.
 *
 * @since 0.1.0
 * @category metrics
 */
export const breakerState = Metric.gauge("resilient_llm_breaker_state", {
  description: "Circuit state by model: 0 closed, 1 half-open, 2 open"
})

/**
 * Circuit transitions by `model`, `from` and `to`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const breakerTransitions = Metric.counter("resilient_llm_breaker_transitions_total", {
  description: "Circuit breaker transitions by model, from and to",
  incremental: true
})

/**
 * Hedges a fallback chain started, by the `model` started as a hedge and how the hedge ended:
 * `served` (it answered first), `failed`, `cancelled` (another model answered first) or
 * `interrupted` (the caller gave up). A hedge that seldom serves costs calls for nothing: its
 * delay may be too short.
 *
 * @since 0.2.0
 * @category metrics
 */
export const hedges = Metric.counter("resilient_llm_hedges_total", {
  description: "Hedged attempts by model and how they ended",
  incremental: true
})

/**
 * How an attempt ended, as a label: `success`, the error's `_tag`, `interrupted` or `defect`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const outcomeOf = <A, E>(exit: Exit.Exit<A, E>): string => {
  if (Exit.isSuccess(exit)) return "success"
  const failure = Cause.findErrorOption(exit.cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    return Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" ? error._tag : "error"
  }
  return Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "defect"
}

interface TokenUsage {
  readonly input: number | undefined
  readonly output: number | undefined
}

// Only token counts are recorded: a usage built by hand (a test double, a custom client) may
// carry `Infinity` or `-1`, and one such value would stay in the counter for good. Decoded
// completions never carry one.
const countOf = (value: unknown): number | undefined => ChatCompletion.isTokenCount(value) ? value : undefined

const usageOf = (value: unknown): TokenUsage | undefined => {
  if (!Predicate.hasProperty(value, "usage") || !Predicate.isObject(value.usage)) return undefined
  const usage = value.usage
  const input = Predicate.hasProperty(usage, "prompt_tokens") ? countOf(usage.prompt_tokens) : undefined
  const output = Predicate.hasProperty(usage, "completion_tokens") ? countOf(usage.completion_tokens) : undefined
  return input === undefined && output === undefined ? undefined : { input, output }
}

// The hot path: every attempt updates five metrics. A metric made by `Metric.withAttributes` puts
// its labels into a new context on every update, and the metric under it, shared by every label
// set, computes its series key again (sorting and serializing the labels) whenever the label set
// it sees differs from the last one: with two models, or the input and output token counters, that
// is every update. So each label set gets a metric of its own, built with its labels as
// attributes, whose series key is computed once; it is the very series `withAttributes` would
// address. The attributes of the fiber (`Metric.CurrentMetricAttributes`) are merged in by Effect.
interface ModelSeries {
  readonly latency: Metric.Metric<number, unknown>
  readonly latencySummary: Metric.Metric<number, unknown>
  readonly inputTokens: Metric.Metric<number, unknown>
  readonly outputTokens: Metric.Metric<number, unknown>
  /** The request counters by pattern, then outcome. */
  readonly requests: Map<string, Map<string, Metric.Metric<number, unknown>>>
}

// Model names and outcomes come from callers and providers: past this many cached metrics, a new
// label set is built for each update (correct, only slower), so memory stays bounded.
const maxCachedSeries = 4096
let cachedSeries = 0
const seriesByModel = new Map<string, ModelSeries>()

const modelSeries = (model: string): ModelSeries => {
  const cached = seriesByModel.get(model)
  if (cached !== undefined) return cached
  const made: ModelSeries = {
    latency: latencyOf({ model }),
    latencySummary: latencySummaryOf({ model }),
    inputTokens: tokensOf({ model, kind: "input" }),
    outputTokens: tokensOf({ model, kind: "output" }),
    requests: new Map()
  }
  if (cachedSeries < maxCachedSeries) {
    cachedSeries += 4
    seriesByModel.set(model, made)
  }
  return made
}

const requestSeries = (series: ModelSeries, model: string, pattern: string, outcome: string) => {
  let byOutcome = series.requests.get(pattern)
  const cached = byOutcome?.get(outcome)
  if (cached !== undefined) return cached
  const made = requestsOf({ model, pattern, outcome })
  if (cachedSeries < maxCachedSeries) {
    cachedSeries += 1
    if (byOutcome === undefined) {
      byOutcome = new Map()
      series.requests.set(pattern, byOutcome)
    }
    byOutcome.set(outcome, made)
  }
  return made
}

const recordMetrics = (
  context: Context.Context<never>,
  model: string,
  pattern: string,
  outcome: string,
  latencyMs: number,
  usage: TokenUsage | undefined
): void => {
  const series = modelSeries(model)
  requestSeries(series, model, pattern, outcome).updateUnsafe(1, context)
  series.latency.updateUnsafe(latencyMs, context)
  series.latencySummary.updateUnsafe(latencyMs, context)
  if (usage?.input !== undefined) series.inputTokens.updateUnsafe(usage.input, context)
  if (usage?.output !== undefined) series.outputTokens.updateUnsafe(usage.output, context)
}

const hedgeSeries = new Map<string, Metric.Metric<number, unknown>>()

/**
 * Counts one hedge of `model` that ended with `outcome`.
 *
 * @internal
 */
export const recordHedge = (
  context: Context.Context<never>,
  model: string,
  outcome: "served" | "failed" | "cancelled" | "interrupted"
): void => {
  const id = `${model}\u0000${outcome}`
  let series = hedgeSeries.get(id)
  if (series === undefined) {
    series = Metric.counter(hedges.id, {
      description: hedges.description,
      incremental: true,
      attributes: { model, outcome }
    })
    if (hedgeSeries.size < maxCachedSeries) hedgeSeries.set(id, series)
  }
  series.updateUnsafe(1, context)
}

/**
 * Whether a line logged at `level` now would reach a logger; when not, it need not be built.
 *
 * @internal
 */
export const logsAt = (fiber: Fiber.Fiber<unknown, unknown>, level: LogLevel.LogLevel): boolean =>
  !LogLevel.isGreaterThan(fiber.getRef(References.MinimumLogLevel), level) &&
  fiber.getRef(References.CurrentLoggers).size > 0

/**
 * Runs one attempt at a model inside a span named `resilient-llm.<pattern>.attempt`, then logs one
 * line and updates the metrics with its model, pattern, outcome and latency, and tokens when the
 * value carries a `usage`. Only token counts are recorded (see `ChatCompletion.isTokenCount`): a
 * hand-built `Infinity` or `-1` would otherwise stay in the counter for good. The latency is read
 * from `Clock`, so `TestClock` drives it too. When the model is a logical one served by
 * `Deployments`, the span and the log line also name the deployment that answered last
 * (`llm.deployment`) and the attempt's cost (`llm.cost_usd`, `costUsd`).
 *
 * @since 0.1.0
 * @category combinators
 */
export const attempt = (options: {
  readonly pattern: Pattern
  readonly model: string
  readonly attributes?: Record<string, unknown>
}) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  observeAttempt(
    effect,
    options.pattern,
    options.model,
    () => ({ "llm.pattern": options.pattern, "llm.model": options.model, ...options.attributes }),
    undefined
  )

/**
 * The context an attempt or a pattern runs in: its span as the parent of the spans inside it, its
 * log annotations when a logger will read them, and its record of deployments. One context change,
 * where `withSpan`, `annotateLogs` and `provideService` make one each. (Unlike `withSpan`, no stack
 * frame is added: the frame would name this module, and it is one more context entry that every
 * service lookup inside the attempt walks past.)
 */
const enter = <R>(
  context: Context.Context<R>,
  span: Tracer.Span | undefined,
  annotations: Readonly<Record<string, unknown>> | undefined,
  details: AttemptDetails.Details | undefined
): Context.Context<R> => {
  let next = context
  if (span !== undefined) next = Context.add(next, Tracer.ParentSpan, span)
  if (annotations !== undefined) {
    next = Context.add(next, References.CurrentLogAnnotations, {
      ...Context.get(context, References.CurrentLogAnnotations),
      ...annotations
    })
  }
  if (details !== undefined) next = Context.add(next, AttemptDetails.CurrentDetails, details)
  return next
}

/**
 * Whether the patterns' spans can be seen: tracing is enabled and a tracer is installed. Effect's
 * default tracer (`Tracer.nativeTracer`) keeps spans in memory and exports them nowhere; Effect
 * documents comparing against it to skip work only a tracing backend could observe. Without one,
 * the patterns create no spans (a span and its context cost more than the rest of an attempt);
 * install any tracer (OpenTelemetry, `Tracer.make`) and every span is there.
 *
 * @internal
 */
export const tracing = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  fiber.getRef(References.TracerEnabled) && fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer

/**
 * `attempt`, for the patterns: `attributes` makes the span's whole set (only when there is a span),
 * and `report`, when given, is
 * the record the attempt's deployments go to (the caller reads it; it is not merged into the record
 * of an outer pattern).
 *
 * The span exists only when a tracer can see it (`tracing`). The log annotations and the log line
 * are built only when a logger is installed and the line's level passes the minimum.
 *
 * @internal
 */
export const observeAttempt = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  pattern: string,
  model: string,
  attributes: () => Record<string, unknown>,
  report: AttemptDetails.Details | undefined
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) => {
    const clock = fiber.getRef(Clock.Clock)
    const start = clock.currentTimeMillisUnsafe()
    const outer = report === undefined ? fiber.getRef(AttemptDetails.CurrentDetails) : undefined
    const details = report ?? AttemptDetails.make()
    const annotations = fiber.getRef(References.CurrentLoggers).size > 0
      ? { "llm.model": model, "llm.pattern": pattern }
      : undefined
    const finish = (span: Tracer.Span | undefined) => (exit: Exit.Exit<A, E>): Effect.Effect<void> | undefined => {
      const outcome = outcomeOf(exit)
      const latencyMs = clock.currentTimeMillisUnsafe() - start
      const usage = Exit.isSuccess(exit) ? usageOf(exit.value) : undefined
      const deployment = details.current
      const costUsd = AttemptDetails.costOf(details)
      if (span !== undefined) {
        span.attribute("llm.outcome", outcome)
        span.attribute("llm.latency_ms", latencyMs)
        if (usage?.input !== undefined) span.attribute("llm.tokens.input", usage.input)
        if (usage?.output !== undefined) span.attribute("llm.tokens.output", usage.output)
        if (deployment !== undefined) span.attribute("llm.deployment", deployment)
        if (costUsd !== undefined) span.attribute("llm.cost_usd", costUsd)
      }
      if (outer !== undefined) AttemptDetails.merge(outer, details)
      recordMetrics(fiber.context, model, pattern, outcome, latencyMs, usage)
      const succeeded = outcome === "success"
      if (annotations === undefined || !logsAt(fiber, succeeded ? "Info" : "Warn")) return undefined
      logNow(
        fiber,
        succeeded ? "Info" : "Warn",
        succeeded ? "attempt succeeded" : "attempt failed",
        deployment === undefined && costUsd === undefined
          ? { outcome, latencyMs }
          : { outcome, latencyMs, "llm.deployment": deployment ?? "", costUsd: costUsd ?? 0 }
      )
      return undefined
    }
    // The finalizer runs inside the attempt's context: its log line is the span's and annotated
    // with the model; the span ends after it, with its attributes.
    const run = (span: Tracer.Span | undefined) =>
      Effect.updateContext(
        Effect.onExitPrimitive(effect, finish(span)),
        (context: Context.Context<R>) => enter(context, span, annotations, details)
      )
    if (!tracing(fiber)) return run(undefined)
    return Effect.useSpan(`resilient-llm.${pattern}.attempt`, { attributes: attributes() }, run)
  })

/**
 * Runs a whole pattern call (every attempt it makes) inside a span named `resilient-llm.<pattern>`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const pattern = (
  name: Pattern,
  attributes?: Record<string, unknown>
): <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R> => observePattern(name, attributes, undefined)

/**
 * `pattern`, with `end` called when the call ends, inside the pattern's span and log annotations,
 * to annotate the span and log its outcome (with `logNow`). With tracing disabled and no logger,
 * neither has anything to do, and the call runs as it is.
 *
 * @internal
 */
export const observePattern = <A, E>(
  name: Pattern,
  attributes: Record<string, unknown> | undefined,
  end:
    | ((fiber: Fiber.Fiber<unknown, unknown>, span: Tracer.Span | undefined, exit: Exit.Exit<A, E>) => void)
    | undefined
) => {
  const spanName = `resilient-llm.${name}`
  const spanOptions = { attributes: { "llm.pattern": name, ...attributes } }
  const annotations = { "llm.pattern": name }
  return <A2 extends A, E2 extends E, R>(effect: Effect.Effect<A2, E2, R>): Effect.Effect<A2, E2, R> =>
    Effect.withFiber((fiber) => {
      const logging = fiber.getRef(References.CurrentLoggers).size > 0 ? annotations : undefined
      const traced = tracing(fiber)
      if (!traced && logging === undefined) return effect
      const run = (span: Tracer.Span | undefined) =>
        Effect.updateContext(
          end === undefined ? effect : Effect.onExitPrimitive(effect, (exit) => {
            end(fiber, span, exit)
            return undefined
          }),
          (context: Context.Context<R>) => enter(context, span, logging, undefined)
        )
      return traced ? Effect.useSpan(spanName, spanOptions, run) : run(undefined)
    })
}

/**
 * Writes one line to the fiber's loggers now, as `Effect.log` would from this fiber, with
 * `annotations` added to the fiber's. It is synchronous, for the finalizers of the hot path, where
 * an effect for the line and another to annotate it cost more than the rest of the finalizer. The
 * caller checks `logsAt` first.
 *
 * @internal
 */
export const logNow = (
  fiber: Fiber.Fiber<unknown, unknown>,
  level: LogLevel.LogLevel,
  message: string,
  annotations: Readonly<Record<string, unknown>>
): void => {
  const previous = fiber.context
  fiber.setContext(
    Context.add(previous, References.CurrentLogAnnotations, {
      ...Context.get(previous, References.CurrentLogAnnotations),
      ...annotations
    })
  )
  try {
    const date = new Date(fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
    const options = { message: [message], logLevel: level, cause: Cause.empty, fiber, date }
    for (const logger of fiber.getRef(References.CurrentLoggers)) logger.log(options)
  } finally {
    fiber.setContext(previous)
  }
}

/**
 * One model's figures in a `snapshot`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelStats {
  readonly model: string
  /** Attempts that ended, whatever the outcome. */
  readonly requests: number
  readonly successes: number
  /** Attempts that failed with an error (interruptions are not errors). */
  readonly errors: number
  readonly interrupted: number
  /** `errors / (requests - interrupted)`, 0 when nothing finished. */
  readonly errorRate: number
  /** Outcome counts by label: `success`, an error tag, `interrupted`, `defect`. */
  readonly outcomes: Readonly<Record<string, number>>
  readonly p50Ms: number | undefined
  readonly p95Ms: number | undefined
  readonly p99Ms: number | undefined
}

const labelsOf = (snapshot: Metric.Metric.Snapshot): ReadonlyMap<string, string> =>
  new Map(Object.entries(snapshot.attributes ?? {}))

const matches = (labels: ReadonlyMap<string, string>, filter: Readonly<Record<string, string>>): boolean =>
  Object.entries(filter).every(([key, value]) => labels.get(key) === value)

/**
 * Per-model request counts, error rates and recent latency quantiles, as plain data for a status
 * page or a report. Reads Effect's metric registry. `labels` keeps only the series carrying those
 * extra labels (set through `Metric.CurrentMetricAttributes`), to look at one tenant, one test or one run.
 *
 * @since 0.1.0
 * @category accessors
 */
export const snapshot = (
  options?: { readonly labels?: Readonly<Record<string, string>> }
): Effect.Effect<ReadonlyArray<ModelStats>> =>
  Effect.map(Metric.snapshot, (snapshots) => {
    const filter = options?.labels ?? {}
    const outcomes = new Map<string, Record<string, number>>()
    const quantiles = new Map<string, ReadonlyArray<readonly [number, number | undefined]>>()
    for (const snapshot of snapshots) {
      const labels = labelsOf(snapshot)
      const model = labels.get("model")
      if (model === undefined || !matches(labels, filter)) continue
      if (snapshot.id === "resilient_llm_requests_total" && snapshot.type === "Counter") {
        const outcome = labels.get("outcome") ?? "unknown"
        const counts = outcomes.get(model) ?? {}
        counts[outcome] = (counts[outcome] ?? 0) + Number(snapshot.state.count)
        outcomes.set(model, counts)
      } else if (snapshot.id === "resilient_llm_latency_summary_ms" && snapshot.type === "Summary") {
        quantiles.set(model, snapshot.state.quantiles)
      }
    }
    const quantile = (model: string, q: number): number | undefined =>
      quantiles.get(model)?.find(([at]) => at === q)?.[1]
    return Array.from(outcomes.entries()).sort(([a], [b]) => a.localeCompare(b)).map(([model, counts]): ModelStats => {
      const total = Object.values(counts).reduce((sum, n) => sum + n, 0)
      const successes = counts["success"] ?? 0
      const interrupted = counts["interrupted"] ?? 0
      const errors = total - successes - interrupted
      const finished = total - interrupted
      return {
        model,
        requests: total,
        successes,
        errors,
        interrupted,
        errorRate: finished === 0 ? 0 : errors / finished,
        outcomes: counts,
        p50Ms: quantile(model, 0.5),
        p95Ms: quantile(model, 0.95),
        p99Ms: quantile(model, 0.99)
      }
    })
  })

/**
 * Adds labels (a tenant, a feature, a run) to every metric the effect updates, this library's and
 * any other, by merging them into Effect's `Metric.CurrentMetricAttributes`; a label given again
 * replaces the outer one. What `Effect.tagMetrics` did in Effect 3. `snapshot({ labels })` then
 * reads only those series.
 *
 * @example
 * ```ts
 * import { ChatCompletion, Fallback, Observability } from "@resilient-llm/core"
 *
 * const forTenant = (tenant: string) =>
 *   Fallback.chain(["gpt-4o", "claude-sonnet"])(ChatCompletion.prompt("Hello")).pipe(
 *     Observability.withMetricLabels({ tenant })
 *   )
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const withMetricLabels =
  (labels: Readonly<Record<string, string>>) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.updateService(effect, Metric.CurrentMetricAttributes, (current) => ({ ...current, ...labels }))
