/**
 * The deployments router: the configuration checked and resolved into one runtime per
 * deployment (its client, limiter, bulkhead, moving latency), and each call walked through the
 * deployments of its logical model in the strategy's order, skipping those without room, calling
 * the first that has, and handing over to the next on a failure another deployment could get past.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as RateLimiter from "effect/persistence/RateLimiter"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import * as Budget from "../Budget.js"
import type * as ChatClient from "../ChatClient.js"
import type * as ChatCompletion from "../ChatCompletion.js"
import * as CircuitBreaker from "../CircuitBreaker.js"
import * as Cost from "../Cost.js"
import * as Deployments from "../Deployments.js"
import * as LlmError from "../LlmError.js"
import * as Observability from "../Observability.js"
import * as RateLimit from "../RateLimit.js"
import type * as Routing from "../Routing.js"
import * as AttemptDetails from "./attemptDetails.js"
import { BulkheadImpl } from "./bulkhead.js"
import { durationOf } from "./configSchema.js"
import { firstChunk } from "./fallback.js"
import * as retry from "./retry.js"
import * as routing from "./routing.js"

// --- metrics -------------------------------------------------------------------------------------

/** @internal */
export const requests = Metric.counter("resilient_llm_deployment_requests_total", {
  description: "Calls to deployments by logical model, deployment and outcome",
  incremental: true
})

const latencyBoundaries = Metric.exponentialBoundaries({ start: 5, factor: 2, count: 16 })

/** @internal */
export const latency = Metric.histogram("resilient_llm_deployment_latency_ms", {
  boundaries: latencyBoundaries,
  description: "Latency of calls to deployments in milliseconds, by logical model and deployment"
})

/** @internal */
export const tokens = Metric.counter("resilient_llm_deployment_tokens_total", {
  description: "Tokens by logical model, deployment and kind (input, output)",
  incremental: true
})

/** @internal */
export const cost = Metric.counter("resilient_llm_cost_usd_total", {
  description: "Cost of calls in US dollars, by logical model and deployment",
  incremental: true
})

/** @internal */
export const inFlight = Metric.gauge("resilient_llm_deployment_in_flight", {
  description: "Calls in flight by logical model and deployment"
})

/** @internal */
export const skips = Metric.counter("resilient_llm_deployment_skips_total", {
  description: "Deployments skipped without a call, by logical model, deployment and reason",
  incremental: true
})

// Each deployment's series are metrics of their own, built once with their labels as attributes:
// `Metric.withAttributes` would put the labels in a new context on every update and compute the
// series key again (sorting and serializing the labels) whenever the label set differs from the
// last one seen, which, with several deployments or outcomes, is every update. These address the
// very series `withAttributes` would.
const labelledCounter = (metric: typeof requests, attributes: Metric.Metric.AttributeSet) =>
  Metric.counter(metric.id, { description: metric.description, incremental: true, attributes })

const labelledSeries = (labels: Readonly<Record<string, string>>) => ({
  inFlightGauge: Metric.gauge(inFlight.id, { description: inFlight.description, attributes: labels }),
  latencyHistogram: Metric.histogram(latency.id, {
    boundaries: latencyBoundaries,
    description: latency.description,
    attributes: labels
  }),
  costCounter: labelledCounter(cost, labels),
  inputTokens: labelledCounter(tokens, { ...labels, kind: "input" }),
  outputTokens: labelledCounter(tokens, { ...labels, kind: "output" }),
  requestsByOutcome: new Map<string, Metric.Metric<number, unknown>>()
})

// Outcomes are error tags, a short list; past this many per deployment a series is built for the
// update and not kept, so memory stays bounded whatever tags a provider's errors carry.
const maxOutcomes = 64

const requestsSeries = (d: Runtime, outcome: string): Metric.Metric<number, unknown> => {
  const cached = d.requestsByOutcome.get(outcome)
  if (cached !== undefined) return cached
  const made = labelledCounter(requests, { ...d.labels, outcome })
  if (d.requestsByOutcome.size < maxOutcomes) d.requestsByOutcome.set(outcome, made)
  return made
}

/** @internal */
export const budgetRefusals = Metric.counter("resilient_llm_budget_refusals_total", {
  description: "Calls refused because their key's budget was spent, by logical model",
  incremental: true
})

// --- configuration ------------------------------------------------------------------------------

const DEFAULT_BREAKER: CircuitBreaker.Options = {}
// the moving average of latency weighs the newest success this much
const LATENCY_WEIGHT = 0.3
// a latency older than this says little about the deployment now: it is tried again to learn it
const LATENCY_STALE_MS = 60_000

interface Runtime {
  readonly logical: string
  readonly name: string
  readonly provider: string
  readonly providerModel: string
  readonly weight: number
  readonly priority: number
  readonly price: Cost.Price | undefined
  readonly timeout: Duration.Duration | undefined
  readonly client: ChatClient.Service
  readonly limiter: RateLimit.Limiter
  readonly bulkhead: BulkheadImpl | undefined
  inFlight: number
  latency: { readonly ms: number; readonly at: number } | undefined
  readonly labels: Readonly<Record<string, string>>
  readonly inFlightGauge: Metric.Metric<number, unknown>
  readonly latencyHistogram: Metric.Metric<number, unknown>
  readonly costCounter: Metric.Metric<number, unknown>
  readonly inputTokens: Metric.Metric<number, unknown>
  readonly outputTokens: Metric.Metric<number, unknown>
  readonly requestsByOutcome: Map<string, Metric.Metric<number, unknown>>
}

interface Group {
  readonly logical: string
  readonly strategy: Routing.Strategy
  readonly maxWaitMs: number
  readonly failover: boolean
  readonly deployments: ReadonlyArray<Runtime>
}

const invalid = (reason: string, model?: string, deployment?: string) =>
  new Deployments.DeploymentsConfigError({ model, deployment, reason })

const schemaReason = (error: Schema.SchemaError): string => error.message.replace(/\s+/g, " ").trim()

// A model's fields but its deployments, each of which is decoded on its own, so an error can
// name the deployment it is about. Built on first use: the public module that holds the schemas
// imports this one.
let decoders:
  | {
    readonly top: ReturnType<typeof makeDecoders>["top"]
    readonly model: ReturnType<typeof makeDecoders>["model"]
    readonly deployment: ReturnType<typeof makeDecoders>["deployment"]
  }
  | undefined

const makeDecoders = () => ({
  top: Schema.decodeUnknownEffect(Schema.Struct({
    models: Schema.Record(Schema.String, Schema.Unknown),
    budget: Schema.optionalKey(Budget.Config)
  })),
  model: Schema.decodeUnknownEffect(
    Schema.Struct({ ...Deployments.Model.fields, deployments: Schema.Array(Schema.Unknown) })
  ),
  deployment: Schema.decodeUnknownEffect(Deployments.Deployment)
})

const getDecoders = () => decoders ??= makeDecoders()

const describeRaw = (raw: unknown, index: number): string => {
  if (typeof raw === "object" && raw !== null && "name" in raw && typeof raw.name === "string") return raw.name
  return `#${index + 1}`
}

/**
 * Decodes and checks a configuration, everything but its providers. The decoded models are
 * returned with every deployment's name filled in.
 *
 * @internal
 */
export const decode = (input: unknown): Effect.Effect<Deployments.Config, Deployments.DeploymentsConfigError> =>
  Effect.gen(function*() {
    const top = yield* getDecoders().top(input).pipe(
      Effect.mapError((error) => invalid(schemaReason(error)))
    )
    const names = Object.keys(top.models)
    if (names.length === 0) return yield* invalid("no models are configured")
    const seen = new Map<string, string>()
    const models: Record<string, Deployments.Model> = {}
    for (const logical of names) {
      if (logical.trim().length === 0) return yield* invalid("a model has an empty name")
      const model = yield* getDecoders().model(top.models[logical]).pipe(
        Effect.mapError((error) => invalid(schemaReason(error), logical))
      )
      if (model.deployments.length === 0) return yield* invalid("it has no deployments", logical)
      const deployments: Array<Deployments.Deployment> = []
      for (const [index, raw] of model.deployments.entries()) {
        const deployment = yield* getDecoders().deployment(raw).pipe(
          Effect.mapError((error) => invalid(schemaReason(error), logical, describeRaw(raw, index)))
        )
        const name = deployment.name ?? `${deployment.provider}/${deployment.model}`
        const other = seen.get(name)
        if (other !== undefined) {
          return yield* invalid(`the name is taken by a deployment of model ${JSON.stringify(other)}`, logical, name)
        }
        seen.set(name, logical)
        if (deployment.maxQueued !== undefined && deployment.maxConcurrent === undefined) {
          return yield* invalid("maxQueued needs maxConcurrent: a queue is for a bulkhead", logical, name)
        }
        if (model.strategy === "cheapest" && deployment.price === undefined) {
          return yield* invalid("the strategy is cheapest, but it has no price", logical, name)
        }
        deployments.push({ ...deployment, name })
      }
      if (deployments.every((d) => (d.weight ?? 1) === 0)) {
        return yield* invalid("every deployment has weight 0, so none would get traffic", logical)
      }
      models[logical] = { ...model, deployments }
    }
    return top.budget === undefined ? { models } : { models, budget: top.budget }
  })

/** @internal */
export const make = (
  input: Deployments.Config,
  options: Deployments.Options = {}
): Effect.Effect<
  Deployments.Service,
  Deployments.DeploymentsConfigError,
  | Deployments.ProviderClients
  | RateLimiter.RateLimiter
  | RateLimit.AdaptiveStore
  | Budget.BudgetStore
  | Scope.Scope
> =>
  Effect.gen(function*() {
    const clients = yield* Deployments.ProviderClients
    const config = yield* decode(input)
    const names = Object.keys(config.models)
    const decoded = names.map((logical) => ({ logical, model: config.models[logical] }))
    for (const { logical, model } of decoded) {
      for (const deployment of model.deployments) {
        if (clients.get(deployment.provider) === undefined) {
          return yield* invalid(
            `its provider ${JSON.stringify(deployment.provider)} is not configured (providers: ${
              clients.names.join(", ") || "none"
            })`,
            logical,
            deployment.name
          )
        }
      }
    }

    const breaker = options.breaker === false
      ? undefined
      : yield* CircuitBreaker.make(options.breaker ?? DEFAULT_BREAKER).pipe(
        Effect.mapError((error) => invalid(error.reason))
      )
    const budget = config.budget === undefined ? undefined : yield* Budget.make(config.budget)
    const estimateTokens = options.estimateTokens ?? RateLimit.estimateTokens

    const groups = new Map<string, Group>()
    for (const { logical, model } of decoded) {
      const runtimes: Array<Runtime> = []
      for (const d of model.deployments) {
        const name = d.name ?? `${d.provider}/${d.model}`
        const limiter = yield* RateLimit.make({
          model: logical,
          deployment: name,
          key: `deployment:${name}`,
          ...(d.rpm === undefined ? {} : { rpm: d.rpm }),
          ...(d.tpm === undefined ? {} : { tpm: d.tpm }),
          ...(d.adaptive === undefined ? {} : { adaptive: d.adaptive })
        }).pipe(Effect.mapError((error) => invalid(error.reason, logical, name)))
        const labels = { model: logical, deployment: name }
        runtimes.push({
          logical,
          name,
          provider: d.provider,
          providerModel: d.model,
          weight: d.weight ?? 1,
          priority: d.priority ?? 0,
          price: d.price,
          timeout: d.timeout === undefined ? undefined : durationOf(d.timeout),
          // checked above: every provider named has a client
          client: clients.get(d.provider) ?? unreachableClient,
          limiter,
          bulkhead: d.maxConcurrent === undefined
            ? undefined
            : new BulkheadImpl({
              model: logical,
              deployment: name,
              maxConcurrent: d.maxConcurrent,
              maxQueued: d.maxQueued ?? 0
            }),
          inFlight: 0,
          latency: undefined,
          labels,
          ...labelledSeries(labels)
        })
      }
      groups.set(logical, {
        logical,
        strategy: model.strategy ?? "weighted",
        maxWaitMs: model.maxWait === undefined ? 0 : Duration.toMillis(durationOf(model.maxWait)),
        failover: model.failover ?? true,
        deployments: runtimes
      })
    }

    const router = new Router(groups, breaker, budget, estimateTokens)
    const service: Deployments.Service = {
      config,
      models: names,
      create: (request) => router.create(request),
      stream: (request) => router.stream(request),
      snapshot: router.snapshot,
      breaker,
      budget
    }
    return service
  })

const unreachableClient: ChatClient.Service = {
  create: (request) => Effect.fail(new LlmError.ModelNotFoundError({ model: request.model })),
  stream: (request) => Stream.fail(new LlmError.ModelNotFoundError({ model: request.model }))
}

// --- the router ----------------------------------------------------------------------------------

interface Admission {
  readonly permit: RateLimit.Permit
  readonly reservation: Budget.Reservation | undefined
  readonly estimate: { readonly input: number; readonly output: number }
  /** The caller's `CallObserver`, read when the call was routed: a stream's call ends elsewhere. */
  readonly observer: ((call: Deployments.CallEnd) => void) | undefined
}

/** @internal */
export const CallObserver = Context.Reference<((call: Deployments.CallEnd) => void) | undefined>(
  "@resilient-llm/core/Deployments/CallObserver",
  { defaultValue: () => undefined }
)

/** How a deployment's call ended, for its bookkeeping. */
interface Ending {
  readonly exit: Exit.Exit<unknown, LlmError.LlmError>
  readonly usage: Option.Option<Cost.Tokens>
}

const refusalReason = (error: LlmError.LlmError): string => {
  switch (error._tag) {
    case "ThrottledError":
      return error.limit
    case "BulkheadFullError":
      return "bulkhead"
    case "CircuitOpenError":
      return "circuit-open"
    case "BudgetExceededError":
      return "budget"
    default:
      return error._tag
  }
}

class Router {
  constructor(
    readonly groups: ReadonlyMap<string, Group>,
    readonly breaker: CircuitBreaker.Service | undefined,
    readonly budget: Budget.Budget | undefined,
    readonly estimateTokens: NonNullable<Deployments.Options["estimateTokens"]>
  ) {}

  private notServed(model: string): LlmError.ModelNotFoundError {
    return new LlmError.ModelNotFoundError({
      model,
      detail: `no deployments serve it (models: ${[...this.groups.keys()].join(", ")})`
    })
  }

  readonly snapshot: Effect.Effect<ReadonlyArray<Deployments.DeploymentStatus>> = Effect.suspend(() =>
    Effect.forEach(
      [...this.groups.values()].flatMap((group) => group.deployments),
      (d) =>
        Effect.gen({ self: this }, function*() {
          const now = yield* Effect.clockWith((clock) => Effect.succeed(clock.currentTimeMillisUnsafe()))
          return {
            model: d.logical,
            deployment: d.name,
            provider: d.provider,
            providerModel: d.providerModel,
            weight: d.weight,
            priority: d.priority,
            inFlight: d.inFlight,
            queued: d.bulkhead?.queued ?? 0,
            latencyMs: d.latency !== undefined && now - d.latency.at <= LATENCY_STALE_MS ? d.latency.ms : undefined,
            circuit: this.breaker === undefined ? "closed" : yield* this.breaker.state(d.name),
            limits: yield* d.limiter.status
          }
        })
    )
  )

  private candidates(group: Group, estimate: Admission["estimate"], now: number) {
    return group.deployments.map((runtime) => ({
      runtime,
      name: runtime.name,
      weight: runtime.weight,
      priority: runtime.priority,
      inFlight: runtime.inFlight,
      latencyMs: runtime.latency !== undefined && now - runtime.latency.at <= LATENCY_STALE_MS
        ? runtime.latency.ms
        : undefined,
      costUsd: runtime.price === undefined
        ? undefined
        : Cost.of(runtime.price, { input: estimate.input, cachedInput: 0, output: estimate.output, reasoning: 0 })
    }))
  }

  /** The refusal of an open or isolated circuit, with the time left in its break. */
  private circuitRefusal(d: Runtime, clock: Clock.Clock): Effect.Effect<LlmError.CircuitOpenError | undefined> {
    const breaker = this.breaker
    if (breaker === undefined) return Effect.succeed(undefined)
    return Effect.flatMap(breaker.state(d.name), (state) => {
      if (state === "closed" || state === "half-open") return Effect.succeed(undefined)
      return Effect.map(breaker.snapshot, (circuits) => {
        const openUntil = circuits.find((c) => c.key === d.name)?.openUntil
        const retryAfter = state === "isolated" || openUntil === undefined
          ? Duration.infinity
          : Duration.millis(Math.max(0, openUntil - clock.currentTimeMillisUnsafe()))
        return new LlmError.CircuitOpenError({ model: d.name, retryAfter })
      })
    })
  }

  /** Records a deployment skipped without a call: a hop, a span, a metric, a debug line. */
  private skipped(d: Runtime, error: LlmError.LlmError, now: number): Effect.Effect<void> {
    const reason = refusalReason(error)
    return Effect.andThen(
      AttemptDetails.update((details) =>
        details.hops.push({
          deployment: d.name,
          outcome: "failure",
          error,
          startedAt: now,
          durationMs: 0,
          costUsd: undefined
        })
      ),
      Effect.all([
        Metric.update(Metric.withAttributes(skips, { ...d.labels, reason }), 1),
        Effect.logDebug("deployment skipped").pipe(
          Effect.annotateLogs({ "llm.model": d.logical, "llm.deployment": d.name, reason })
        )
      ], { discard: true }).pipe(
        Effect.withSpan("resilient-llm.deployment.refused", {
          attributes: {
            "llm.model": d.logical,
            "llm.deployment": d.name,
            "llm.refusal": reason,
            "llm.refusal.message": error.message
          }
        }, { captureStackTrace: false })
      )
    )
  }

  /** After a call: the limiter, the budget, the moving latency, the metrics, the hop. */
  private settle(
    d: Runtime,
    admission: Admission,
    span: Tracer.Span | undefined,
    start: number,
    ending: Ending,
    clock: Clock.Clock
  ): Effect.Effect<void> {
    const now = clock.currentTimeMillisUnsafe()
    const durationMs = now - start
    const exit = ending.exit
    const outcome = Observability.outcomeOf(exit)
    d.inFlight -= 1
    const failure = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : Option.none()
    const usage = ending.usage
    const costUsd = Option.isSome(usage) && d.price !== undefined ? Cost.of(d.price, usage.value) : undefined
    if (span !== undefined) {
      span.attribute("llm.outcome", outcome)
      span.attribute("llm.latency_ms", durationMs)
      if (Option.isSome(usage)) {
        span.attribute("llm.tokens.input", usage.value.input)
        span.attribute("llm.tokens.output", usage.value.output)
      }
      if (costUsd !== undefined) span.attribute("llm.cost_usd", costUsd)
    }
    const effects: Array<Effect.Effect<void>> = [
      Metric.update(d.inFlightGauge, d.inFlight),
      Metric.update(requestsSeries(d, outcome), 1)
    ]
    if (outcome !== "interrupted") effects.push(Metric.update(d.latencyHistogram, durationMs))
    if (Option.isSome(usage)) {
      effects.push(
        Metric.update(d.inputTokens, usage.value.input),
        Metric.update(d.outputTokens, usage.value.output),
        d.limiter.settle(admission.permit, usage.value.input + usage.value.output)
      )
    }
    if (costUsd !== undefined) effects.push(Metric.update(d.costCounter, costUsd))
    admission.observer?.({
      model: d.logical,
      deployment: d.name,
      outcome,
      durationMs,
      tokens: Option.getOrUndefined(usage),
      costUsd
    })
    const reservation = admission.reservation
    if (Exit.isSuccess(exit)) {
      d.latency = d.latency === undefined || now - d.latency.at > LATENCY_STALE_MS
        ? { ms: durationMs, at: now }
        : { ms: d.latency.ms * (1 - LATENCY_WEIGHT) + durationMs * LATENCY_WEIGHT, at: now }
      effects.push(d.limiter.succeeded)
      if (reservation !== undefined && this.budget !== undefined) {
        // without a reported usage the estimate stands
        effects.push(this.budget.settle(reservation, costUsd ?? reservation.amountUsd))
      }
      effects.push(
        AttemptDetails.update((details) =>
          details.hops.push({
            deployment: d.name,
            outcome: "success",
            error: undefined,
            startedAt: start,
            durationMs,
            costUsd
          })
        ),
        Effect.logDebug("deployment served").pipe(
          Effect.annotateLogs({
            "llm.model": d.logical,
            "llm.deployment": d.name,
            latencyMs: durationMs,
            costUsd: costUsd ?? 0
          })
        )
      )
    } else if (Option.isSome(failure)) {
      const error = failure.value
      if (error._tag === "RateLimitError") effects.push(d.limiter.rateLimited(error.retryAfter))
      // a failed call is rarely billed: its estimate goes back to the budget
      if (reservation !== undefined && this.budget !== undefined) {
        effects.push(this.budget.settle(reservation, costUsd ?? 0))
      }
      effects.push(
        AttemptDetails.update((details) =>
          details.hops.push({ deployment: d.name, outcome: "failure", error, startedAt: start, durationMs, costUsd })
        ),
        Effect.logWarning("deployment failed").pipe(
          Effect.annotateLogs({
            "llm.model": d.logical,
            "llm.deployment": d.name,
            outcome,
            latencyMs: durationMs
          })
        )
      )
    }
    // an interrupted call may still be billed: its estimate stays in the budget and the limits
    return Effect.all(effects, { discard: true })
  }

  private spanAttributes(d: Runtime) {
    return {
      "llm.model": d.logical,
      "llm.deployment": d.name,
      "llm.provider": d.provider,
      "llm.provider_model": d.providerModel
    }
  }

  /** Guards a call the way every deployment call is guarded: timeout, then breaker. */
  private guard<A, R>(
    d: Runtime,
    call: Effect.Effect<A, LlmError.LlmError, R>
  ): Effect.Effect<A, LlmError.LlmError, R> {
    const bounded = d.timeout === undefined ? call : retry.timeout(call, d.providerModel, d.timeout)
    return this.breaker === undefined ? bounded : this.breaker.protect(d.name)(bounded)
  }

  private createOn(
    d: Runtime,
    request: ChatCompletion.ChatRequest,
    admission: Admission
  ): Effect.Effect<ChatCompletion.ChatCompletion, LlmError.LlmError> {
    const run = (span: Tracer.Span | undefined) =>
      Effect.clockWith((clock) => {
        const start = clock.currentTimeMillisUnsafe()
        d.inFlight += 1
        const call = this.guard(d, d.client.create({ ...request, model: d.providerModel }))
        const settled = (d.bulkhead === undefined ? call : d.bulkhead.run(call)).pipe(
          Effect.onExit((exit) =>
            this.settle(d, admission, span, start, {
              exit,
              usage: Exit.isSuccess(exit) ? Cost.tokensOf(exit.value) : Option.none()
            }, clock)
          )
        )
        return Effect.andThen(
          Effect.andThen(
            Metric.update(d.inFlightGauge, d.inFlight),
            AttemptDetails.update((details) => {
              details.current = d.name
            })
          ),
          span === undefined ? settled : Effect.withParentSpan(settled, span, { captureStackTrace: false })
        )
      })
    // as the patterns do (`Observability.tracing`): no span where no tracer can see it
    return Effect.withFiber((fiber) =>
      Observability.tracing(fiber)
        ? Effect.useSpan("resilient-llm.deployment", { attributes: this.spanAttributes(d) }, run)
        : run(undefined)
    )
  }

  private streamOn(
    d: Runtime,
    request: ChatCompletion.ChatRequest,
    admission: Admission
  ): Effect.Effect<
    Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError>,
    LlmError.LlmError,
    Scope.Scope
  > {
    // The call has a scope of its own, forked from the caller's: it holds the bulkhead slot and
    // the span, and closing it (the stream ended, or the call failed before its first chunk, or
    // the caller's scope closed first) settles the call once.
    return Effect.flatMap(
      Effect.scope,
      (parent) =>
        Effect.flatMap(
          Scope.fork(parent, "sequential"),
          (scope) =>
            Effect.clockWith((clock) =>
              Effect.gen({ self: this }, function*() {
                const start = clock.currentTimeMillisUnsafe()
                let usage = Option.none<Cost.Tokens>()
                const span = yield* Effect.makeSpanScoped("resilient-llm.deployment", {
                  attributes: this.spanAttributes(d)
                }).pipe(Scope.provide(scope))
                d.inFlight += 1
                yield* Scope.addFinalizerExit(
                  scope,
                  (exit) => this.settle(d, admission, span, start, { exit, usage }, clock)
                )
                yield* Metric.update(d.inFlightGauge, d.inFlight)
                yield* AttemptDetails.update((details) => {
                  details.current = d.name
                })
                const opened = Effect.gen({ self: this }, function*() {
                  if (d.bulkhead !== undefined) {
                    yield* d.bulkhead.slot
                  }
                  return yield* this.guard(
                    d,
                    firstChunk(d.providerModel, d.client.stream({ ...request, model: d.providerModel }))
                  )
                }).pipe(Scope.provide(scope), Effect.withParentSpan(span, { captureStackTrace: false }))
                const stream = yield* opened.pipe(
                  Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit))
                )
                return stream.pipe(
                  Stream.tap((chunk) =>
                    Effect.sync(() => {
                      const tokens = Cost.tokensOf(chunk)
                      if (Option.isSome(tokens)) usage = tokens
                    })
                  ),
                  Stream.onExit((exit) => Scope.close(scope, exit))
                )
              })
            )
        )
    )
  }

  /**
   * Walks the deployments of `request.model` in the strategy's order and runs `call` on the first
   * with room, handing over to the next on a failure another deployment could get past. When none
   * has room, waits for the soonest rate limit to have some, up to the model's `maxWait`.
   */
  private route<A, R>(
    request: ChatCompletion.ChatRequest,
    call: (d: Runtime, admission: Admission) => Effect.Effect<A, LlmError.LlmError, R>
  ): Effect.Effect<A, LlmError.LlmError, R> {
    const group = this.groups.get(request.model)
    if (group === undefined) return Effect.fail(this.notServed(request.model))
    return Effect.clockWith((clock) =>
      Effect.gen({ self: this }, function*() {
        const key = yield* Budget.CurrentKey
        const observer = yield* CallObserver
        const estimate = this.estimateTokens(request)
        const ordered = (yield* routing.order(
          group.strategy,
          this.candidates(group, estimate, clock.currentTimeMillisUnsafe())
        )).map((candidate) => candidate.runtime)
        const deadline = clock.currentTimeMillisUnsafe() + group.maxWaitMs
        const failed = new Set<Runtime>()
        const reported = new Set<Runtime>()
        let lastFailure: LlmError.LlmError | undefined

        const report = (refusals: ReadonlyArray<readonly [Runtime, LlmError.LlmError]>, except?: Runtime) =>
          Effect.forEach(refusals, ([d, error]) => {
            if (d === except || reported.has(d)) return Effect.void
            reported.add(d)
            return this.skipped(d, error, clock.currentTimeMillisUnsafe())
          }, { discard: true })

        /** The budget, then the limits: an admission, a refusal, or the budget's end of the call. */
        const admit = (d: Runtime) =>
          Effect.gen({ self: this }, function*() {
            const budget = this.budget
            const reservation = budget === undefined || key === undefined ? undefined : yield* budget.reserve({
              key,
              model: group.logical,
              estimateUsd: d.price === undefined
                ? 0
                : Cost.of(d.price, { input: estimate.input, cachedInput: 0, output: estimate.output, reasoning: 0 })
            }).pipe(
              Effect.tapError((error) =>
                Effect.andThen(
                  Metric.update(Metric.withAttributes(budgetRefusals, { model: group.logical }), 1),
                  this.skipped(d, error, clock.currentTimeMillisUnsafe())
                )
              )
            )
            const permit = yield* Effect.result(d.limiter.tryAcquire(estimate.input + estimate.output))
            if (Result.isFailure(permit)) {
              if (reservation !== undefined && budget !== undefined) yield* budget.settle(reservation, 0)
              return Result.fail(permit.failure)
            }
            return Result.succeed<Admission>({ permit: permit.success, reservation, estimate, observer })
          })

        /** Calls `d`; a failure another deployment could get past goes on to the next one. */
        const attempt = (d: Runtime, admission: Admission) =>
          Effect.flatMap(Effect.result(call(d, admission)), (result) => {
            if (Result.isSuccess(result)) return Effect.succeed(Option.some(result.success))
            const error = result.failure
            failed.add(d)
            lastFailure = error
            return group.failover && LlmError.isFallbackable(error)
              ? Effect.succeed(Option.none<A>())
              : Effect.fail(error)
          })

        while (true) {
          const refusals: Array<readonly [Runtime, LlmError.LlmError]> = []
          let queue: Runtime | undefined
          for (const d of ordered) {
            if (failed.has(d)) continue
            const open = yield* this.circuitRefusal(d, clock)
            if (open !== undefined) {
              refusals.push([d, open])
              continue
            }
            if (d.bulkhead !== undefined && !d.bulkhead.hasFreeSlot) {
              if (queue === undefined && d.bulkhead.admits) queue = d
              refusals.push([d, bulkheadFull(d)])
              continue
            }
            const admission = yield* admit(d)
            if (Result.isFailure(admission)) {
              refusals.push([d, admission.failure])
              continue
            }
            yield* report(refusals)
            const served = yield* attempt(d, admission.success)
            if (Option.isSome(served)) return served.value
          }
          // nobody could take the call at once: a bulkhead with room in its queue, then a wait for
          // the soonest rate limit, then a refusal
          if (queue !== undefined) {
            const admission = yield* admit(queue)
            if (Result.isSuccess(admission)) {
              yield* report(refusals, queue)
              const served = yield* attempt(queue, admission.success)
              if (Option.isSome(served)) return served.value
              continue
            }
            refusals.push([queue, admission.failure])
          }
          const now = clock.currentTimeMillisUnsafe()
          let soonest: number | undefined
          for (const [, error] of refusals) {
            if (error._tag !== "ThrottledError" || !Duration.isFinite(error.retryAfter)) continue
            const wait = Duration.toMillis(error.retryAfter)
            if (now + wait <= deadline && (soonest === undefined || wait < soonest)) soonest = wait
          }
          if (soonest !== undefined) {
            yield* Effect.sleep(Duration.millis(Math.max(1, soonest)))
            continue
          }
          yield* report(refusals)
          return yield* Effect.fail(lastFailure ?? bestRefusal(refusals) ?? this.notServed(group.logical))
        }
      })
    )
  }

  create(request: ChatCompletion.ChatRequest): Effect.Effect<ChatCompletion.ChatCompletion, LlmError.LlmError> {
    return this.route(request, (d, admission) => this.createOn(d, request, admission))
  }

  stream(request: ChatCompletion.ChatRequest): Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError> {
    return Stream.unwrap(this.route(request, (d, admission) => this.streamOn(d, request, admission)))
  }
}

const bulkheadFull = (d: Runtime): LlmError.BulkheadFullError =>
  new LlmError.BulkheadFullError({
    model: d.logical,
    deployment: d.name,
    maxConcurrent: d.bulkhead?.maxConcurrent ?? 0,
    maxQueued: d.bulkhead?.maxQueued ?? 0
  })

/** The refusal that says most: the soonest rate limit, then a full bulkhead, then the soonest circuit. */
const bestRefusal = (refusals: ReadonlyArray<readonly [Runtime, LlmError.LlmError]>): LlmError.LlmError | undefined => {
  const soonest = <E extends { readonly retryAfter: Duration.Duration }>(errors: ReadonlyArray<E>): E | undefined =>
    errors.reduce<E | undefined>(
      (best, e) => best === undefined || Duration.isLessThan(e.retryAfter, best.retryAfter) ? e : best,
      undefined
    )
  const errors = refusals.map(([, error]) => error)
  return soonest(errors.filter((e): e is LlmError.ThrottledError => e._tag === "ThrottledError")) ??
    errors.find((e) => e._tag === "BulkheadFullError") ??
    soonest(errors.filter((e): e is LlmError.CircuitOpenError => e._tag === "CircuitOpenError")) ??
    errors[0]
}
