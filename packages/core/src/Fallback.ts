/**
 * Fallback chains: try models in order of preference and serve the first answer, with a report of
 * every attempt. Each attempt can have a timeout (it is then interrupted and fails with
 * `TimeoutError`), each model its own retries (`Retry` options), the whole chain a deadline (later
 * attempts get only the time that is left, and none starts after it), and every attempt can go
 * through a circuit breaker, so a model known to be down is skipped at once. An error that says
 * the request itself is wrong (`BadRequestError`) stops the chain instead of being sent to every
 * model. With `hedge`, a model that has not answered after a delay (fixed, or a percentile of
 * its recent latencies) gets the next one started alongside it, and the first answer wins. The
 * result says which model served and what happened before; the failure, `AllModelsFailed`, keeps
 * every attempt with its error, in order.
 *
 * @example
 * ```ts
 * import { ChatCompletion, Fallback } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const complete = Fallback.chain(["gpt-4o", "claude-sonnet", "llama-3.1-70b"], {
 *   timeout: "20 seconds",
 *   retry: { retries: 2 },
 *   deadline: "45 seconds"
 * })
 *
 * const program = complete(ChatCompletion.prompt("Summarise this ticket")).pipe(
 *   Effect.map((served) => `${served.model}: ${ChatCompletion.text(served.value)}`)
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Tracer from "effect/Tracer"
import * as Answer from "./Answer.js"
import * as ChatClient from "./ChatClient.js"
import * as ChatCompletion from "./ChatCompletion.js"
import * as internal from "./internal/fallback.js"
import * as internalHedge from "./internal/hedge.js"
import type * as LlmError from "./LlmError.js"
import * as Observability from "./Observability.js"
import type * as Retry from "./Retry.js"

/**
 * An attempt that succeeded: the one that served.
 *
 * @since 0.1.0
 * @category models
 */
export interface Succeeded {
  readonly outcome: "success"
  readonly model: string
  /** The deployment that answered, when `model` is a logical model served by `Deployments`. */
  readonly deployment: string | undefined
  /** 0 for the first try at this model, 1 for its first retry, and so on. */
  readonly retry: number
  /** When the attempt started, in epoch milliseconds by `Clock`. */
  readonly startedAt: number
  /** How long the attempt took; for `stream`, the time to the first chunk. */
  readonly durationMs: number
  /** What the call cost in US dollars, when its deployment has a price table. */
  readonly costUsd: number | undefined
  /** Whether the model was started as a hedge, while a model before it was still running. */
  readonly hedge: boolean
  readonly error: undefined
}

/**
 * An attempt that failed, with its error: the model's own, a `TimeoutError` from the attempt's
 * timeout, or a `CircuitOpenError` from the breaker (then nothing was sent).
 *
 * @since 0.1.0
 * @category models
 */
export interface Failed<E> {
  readonly outcome: "failure"
  readonly model: string
  /**
   * The deployment that failed or refused the call, when `model` is a logical model served by
   * `Deployments`.
   */
  readonly deployment: string | undefined
  /** 0 for the first try at this model, 1 for its first retry, and so on. */
  readonly retry: number
  /** When the attempt started, in epoch milliseconds by `Clock`. */
  readonly startedAt: number
  readonly durationMs: number
  /** What the call cost in US dollars, when its deployment has a price table (a failed call rarely costs). */
  readonly costUsd: number | undefined
  /** Whether the model was started as a hedge, while a model before it was still running. */
  readonly hedge: boolean
  readonly error: E
}

/**
 * An attempt a hedged chain stopped because another model served first: it was interrupted (its
 * request aborted) at the moment the other answered, which `durationMs` measures.
 *
 * @since 0.2.0
 * @category models
 */
export interface Cancelled {
  readonly outcome: "cancelled"
  readonly model: string
  /** The deployment it was calling, when `model` is a logical model served by `Deployments`. */
  readonly deployment: string | undefined
  readonly retry: number
  readonly startedAt: number
  readonly durationMs: number
  readonly costUsd: number | undefined
  /** Whether the model was started as a hedge, while a model before it was still running. */
  readonly hedge: boolean
  readonly error: undefined
}

/**
 * One try at one model, retries included. Every variant has every field (`error` is `undefined`
 * on success and when cancelled), so a list of attempts reads as a table. `cancelled` appears only
 * with hedging. With `Deployments` behind the
 * `ChatClient`, `Fallback.chain` reports each deployment the router tried as an attempt of its
 * own (the same `model` and `retry`, each with its `deployment`), refusals included.
 *
 * @since 0.1.0
 * @category models
 */
export type Attempt<E = LlmError.LlmError> = Succeeded | Failed<E> | Cancelled

/**
 * A value served by a chain: the value, the model that produced it, and every attempt in the
 * order it was made, the serving one last (with hedging, the others in the order they started,
 * those cancelled when the serving one answered included).
 *
 * @since 0.1.0
 * @category models
 */
export interface Served<A, E = LlmError.LlmError> {
  readonly value: A
  readonly model: string
  /** The deployment that served, when `model` is a logical model served by `Deployments`. */
  readonly deployment: string | undefined
  readonly attempts: ReadonlyArray<Attempt<E>>
}

/**
 * Why a chain ended without a value.
 *
 * - `Exhausted`: every model was tried and failed.
 * - `NotFallbackable`: an error that must not fall back (`shouldFallback` said no) stopped it.
 * - `DeadlineReached`: the chain's `deadline` passed (or left no time for a retry) before a model
 *   served.
 * - `NoModels`: the list of models was empty.
 *
 * @since 0.1.0
 * @category models
 */
export type Reason = "Exhausted" | "NotFallbackable" | "DeadlineReached" | "NoModels"

const describeError = (error: unknown): string => {
  if (Predicate.hasProperty(error, "message") && typeof error.message === "string" && error.message !== "") {
    return error.message
  }
  if (Predicate.hasProperty(error, "_tag") && typeof error._tag === "string") return error._tag
  return String(error)
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`

/**
 * No model served. `attempts` holds every attempt in order with its error; `reason` says why the
 * chain ended; `stoppedBy` is the error that must not fall back, when one stopped it; `untried`
 * the models never called.
 *
 * @since 0.1.0
 * @category errors
 */
export class AllModelsFailed<E = LlmError.LlmError> extends Data.TaggedError("AllModelsFailed")<{
  readonly models: ReadonlyArray<string>
  readonly attempts: ReadonlyArray<Failed<E>>
  readonly reason: Reason
  /** The error that stopped the chain early, when `reason` is `NotFallbackable`. */
  readonly stoppedBy: E | undefined
  readonly untried: ReadonlyArray<string>
  /** The chain's deadline, when it had one. */
  readonly deadline: Duration.Duration | undefined
}> {
  /** Whether an error that must not fall back ended the chain before every model was tried. */
  get stoppedEarly(): boolean {
    return this.reason === "NotFallbackable"
  }

  /** Every attempt's error, in order. */
  get errors(): ReadonlyArray<E> {
    return this.attempts.map((attempt) => attempt.error)
  }

  override get message(): string {
    const tried = this.attempts.map((attempt) => {
      const target = attempt.deployment === undefined ? attempt.model : `${attempt.model}@${attempt.deployment}`
      return `${attempt.retry === 0 ? target : `${target} [retry ${attempt.retry}]`}: ${describeError(attempt.error)}`
    }).join("; ")
    const untried = this.untried.length === 0 ? "" : `; not tried: ${this.untried.join(", ")}`
    const after = `after ${plural(this.attempts.length, "attempt")}`
    switch (this.reason) {
      case "NoModels":
        return "Fallback chain has no models to try"
      case "NotFallbackable":
        return `Fallback chain stopped on an error that must not fall back, ${after}: ${tried}${untried}`
      case "DeadlineReached": {
        const deadline = this.deadline === undefined ? "" : ` of ${Duration.format(this.deadline)}`
        return `Fallback chain reached its deadline${deadline} ${after}: ${tried}${untried}`
      }
      case "Exhausted":
        return `All ${plural(this.models.length, "model")} of the fallback chain failed, ${after}: ${tried}`
    }
  }
}

/**
 * The models or options describe no chain: a model without a name, a `timeout`, `deadline` or
 * `idleTimeout` that is not a positive duration (`"soon"`, `-1000`, `NaN`), `retry` options that
 * `Retry` refuses (their names prefixed `retry.`), a `shouldFallback` that is not a function, a
 * `breaker` without `protect`. `reason` says which and what it got. The options are checked once,
 * when the chain is built, and every call of a misconfigured chain fails with this error at once,
 * before any model is called; it is not an `AllModelsFailed`, since no model was at fault.
 *
 * @since 0.1.0
 * @category errors
 */
export class FallbackConfigError extends Data.TaggedError("FallbackConfigError")<{
  readonly reason: string
}> {
  override get message(): string {
    return `The fallback chain is misconfigured: ${this.reason}`
  }
}

/**
 * What `Fallback` needs of a circuit breaker: a way to guard one attempt at a model. A guarded
 * attempt fails with `CircuitOpenError`, without running, while the model's circuit is open. The
 * `CircuitBreaker` service satisfies it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Breaker {
  readonly protect: (
    key: string
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | LlmError.CircuitOpenError, R>
}

/**
 * The errors an attempt can end with: its own, a timeout, or an open circuit.
 *
 * @since 0.1.0
 * @category models
 */
export type AttemptError<E> = E | LlmError.TimeoutError | LlmError.CircuitOpenError

/**
 * How a chain treats each attempt and the whole call. Each try at a model runs as
 * `retry(breaker.protect(model)(observed(timeout(attempt(model)))))`: every single attempt,
 * retries included, goes through the breaker and counts for it, and a timeout is a failure like
 * any other. (For `stream`, the breaker's `protect` lasts until the stream ends.)
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E = LlmError.LlmError> {
  /**
   * Whether an error moves the chain to the next model; default `LlmError.isFallbackable` (every
   * `LlmError` but `BadRequestError`). An error it rejects ends the chain with `NotFallbackable`.
   */
  readonly shouldFallback?: (error: E) => boolean
  /**
   * The time limit of each attempt (for `stream`, the time to the first chunk). An attempt past
   * it is interrupted and fails with `TimeoutError`, which is retryable and falls back.
   */
  readonly timeout?: Duration.Input
  /**
   * Retries per model, with `Retry.policy`'s options (`{}` for the defaults: 3 retries from
   * 250 ms). None by default: a failure moves straight to the next model.
   */
  readonly retry?: Retry.Options<E>
  /**
   * A budget for the whole chain, from its start. An attempt's time limit is the smaller of
   * `timeout` and what is left; no attempt or retry starts once it has passed (a retry whose
   * delay would end past it is skipped, and the next model goes at once). For `stream` it bounds
   * the stream's life too: at the deadline a stream still open fails with `TimeoutError` and its
   * connection is closed.
   */
  readonly deadline?: Duration.Input
  /** Guards every attempt; an open circuit fails it with `CircuitOpenError` and the chain moves on. */
  readonly breaker?: Breaker
  /**
   * Hedged requests: when a model has not answered after a delay, start the next one alongside
   * it and serve whichever answers first, cancelling the other. The delay is fixed or a
   * percentile of the model's recent successful latencies. Off by default. Options, or a `Hedge`
   * made with `Fallback.hedge` to share what it learns and its limit across chains and calls.
   */
  readonly hedge?: HedgeOptions | Hedge
}

/**
 * A hedge delay taken from the model's observed latency: the `percentile` (above 0, at most 100)
 * of its last `samples` successful attempts (default 100), within `min` and `max`; `initial` until
 * it has `minSamples` of them (default 20, or `samples` if fewer). For a stream, the latency is
 * the time to the first chunk.
 *
 * @since 0.2.0
 * @category models
 */
export interface HedgeLatency {
  readonly percentile: number
  readonly initial: Duration.Input
  readonly samples?: number
  readonly minSamples?: number
  readonly min?: Duration.Input
  readonly max?: Duration.Input
}

/**
 * The options of hedging.
 *
 * @since 0.2.0
 * @category models
 */
export interface HedgeOptions {
  /**
   * How long a model may run without answering before the next one is started alongside it: a
   * duration (`0` starts them together), or a percentile of the model's recent latencies.
   */
  readonly delay: Duration.Input | HedgeLatency
  /** How many models one call may start as hedges; default 1. */
  readonly maxHedges?: number
  /**
   * How many hedges may run at once across every call sharing this hedging (a chain's calls, or
   * every chain given the same `Hedge`); default no limit. At the limit a call does not hedge:
   * its next model waits for the running one to fail, as without hedging.
   */
  readonly maxInFlight?: number
}

/**
 * Hedging's state: each model's recent latencies and the hedges in flight. `Fallback.chain` and
 * `Fallback.stream` make one from `HedgeOptions` when they are built; make one yourself to share
 * it across chains, or to let `firstSuccess` (which checks its options at every call) learn
 * across calls.
 *
 * @since 0.2.0
 * @category models
 */
export interface Hedge {
  /** Hedges running now. */
  readonly inFlight: number
}

/**
 * Makes hedging's state from its options, to pass as the `hedge` option of any number of chains.
 * Options that describe no hedging make every chain given it fail with `FallbackConfigError`.
 *
 * @example
 * ```ts
 * import { Fallback } from "@resilient-llm/core"
 *
 * const hedge = Fallback.hedge({ delay: { percentile: 95, initial: "2 seconds" }, maxInFlight: 50 })
 * const fast = Fallback.chain(["gpt-4o", "claude-sonnet"], { timeout: "20 seconds", hedge })
 * const careful = Fallback.chain(["gpt-4o", "o3"], { timeout: "60 seconds", hedge })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const hedge = (options: HedgeOptions): Hedge => internalHedge.make(options)

/**
 * The options of `Fallback.stream`: those of a chain, and a bound on the silence of a stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamOptions extends Options {
  /**
   * The longest wait for a chunk, the first included. Before the first chunk it is one more
   * limit on the attempt (with `timeout` and the deadline), and the chain falls back; after it,
   * a stream that sends nothing for this long fails with `TimeoutError` and its connection is
   * closed. Keep-alive comments a provider sends while it thinks are not chunks. None by default.
   */
  readonly idleTimeout?: Duration.Input
}

// The chain's own line and span attributes: who served after how many attempts, or why no model
// did. The span is the pattern's; the line is written only when a logger will read it.
const logOutcome = <A, E>(
  fiber: Fiber.Fiber<unknown, unknown>,
  span: Tracer.Span | undefined,
  exit: Exit.Exit<Served<A, E>, AllModelsFailed<E> | FallbackConfigError>
): void => {
  if (Exit.isSuccess(exit)) {
    const served = exit.value
    const attempts = served.attempts.length
    if (span !== undefined) {
      span.attribute("llm.served_model", served.model)
      if (served.deployment !== undefined) span.attribute("llm.served_deployment", served.deployment)
      span.attribute("llm.attempts", attempts)
    }
    if (!Observability.logsAt(fiber, "Info")) return
    const by = served.deployment === undefined ? served.model : `${served.model}@${served.deployment}`
    Observability.logNow(
      fiber,
      "Info",
      `served by ${by} after ${plural(attempts, "attempt")}`,
      served.deployment === undefined
        ? { "llm.model": served.model, "llm.attempts": attempts }
        : { "llm.model": served.model, "llm.deployment": served.deployment, "llm.attempts": attempts }
    )
    return
  }
  const failure = Cause.findErrorOption(exit.cause)
  if (Option.isNone(failure)) return
  const error = failure.value
  const annotations = error._tag === "AllModelsFailed"
    ? { "llm.reason": error.reason, "llm.attempts": error.attempts.length }
    : { "llm.reason": "Misconfigured", "llm.attempts": 0 }
  if (span !== undefined) {
    span.attribute("llm.reason", annotations["llm.reason"])
    span.attribute("llm.attempts", annotations["llm.attempts"])
  }
  if (Observability.logsAt(fiber, "Warn")) Observability.logNow(fiber, "Warn", error.message, annotations)
}

// Every public chain: the runner, its failure as `AllModelsFailed`, the outcome logged, all inside
// the pattern's span. The kind's attributes go on that span and on every attempt's. Built once per
// chain; the result runs one call.
const chainRunner = <B, A, E, R>(
  models: ReadonlyArray<string>,
  config: internal.Config<AttemptError<E>> | string,
  kind: internal.Kind<B, A, AttemptError<E>, R>
): (
  attempt: (model: string) => Effect.Effect<B, E, R>
) => Effect.Effect<Served<A, AttemptError<E>>, AllModelsFailed<AttemptError<E>> | FallbackConfigError, R> => {
  const observed = Observability.observePattern<
    Served<A, AttemptError<E>>,
    AllModelsFailed<AttemptError<E>> | FallbackConfigError
  >("fallback", { "llm.models": String(models), ...kind.attributes }, logOutcome)
  if (typeof config === "string") {
    const misconfigured = observed(Effect.fail(new FallbackConfigError({ reason: config })))
    return () => misconfigured
  }
  const toFailure = (failure: internal.Failure<AttemptError<E>>) => new AllModelsFailed(failure)
  return (attempt) => observed(internal.run(models, attempt, config, kind, toFailure))
}

// A chain over `ChatClient` fails with `LlmError`s: a deployment's error is one of its own.
const sameError = (error: LlmError.LlmError): LlmError.LlmError => error

/**
 * The generic chain: calls `attempt` for each model in order until one succeeds, and returns its
 * value with the model and every attempt. A failure moves to the next model when
 * `shouldFallback` allows it and ends the chain otherwise. Fails with `AllModelsFailed`, which
 * holds every attempt; an empty `models` fails with reason `NoModels`. Models or options that
 * describe no chain fail it with `FallbackConfigError` before any attempt.
 *
 * The defaults of `shouldFallback` and `retry.while` read `LlmError`s: an error of another kind
 * neither falls back nor is retried unless those options say so.
 *
 * Runs inside `Observability.pattern("fallback")`, each try inside an `Observability.attempt` of
 * pattern `"fallback"` (a span, one log line, metrics); a served call logs one line naming the
 * model and the number of attempts, and a failed chain logs its message. Interrupting the chain
 * interrupts the attempt in flight, and no attempt starts after it.
 *
 * @example
 * ```ts
 * import { Fallback } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const embed = (model: string) => Effect.succeed([0.1, 0.2])
 * const program = Fallback.firstSuccess(["text-embedding-3-large", "text-embedding-3-small"], embed, {
 *   timeout: "5 seconds"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const firstSuccess = <A, E, R>(
  models: ReadonlyArray<string>,
  attempt: (model: string) => Effect.Effect<A, E, R>,
  options?: Options<AttemptError<NoInfer<E>>>
): Effect.Effect<Served<A, AttemptError<E>>, AllModelsFailed<AttemptError<E>> | FallbackConfigError, R> =>
  chainRunner<A, A, E, R>(models, internal.check(models, options, false), internal.effects({}))(attempt)

/**
 * The options of `chain`: those of every chain, and `accept`, a check every answer must pass
 * (`Answer`): an answer it rejects fails its attempt with `AnswerRejectedError`, which is retried
 * and falls back like any error. The check may itself call a model through the `ChatClient`.
 *
 * @since 0.2.0
 * @category models
 */
export interface ChainOptions extends Options {
  readonly accept?: Answer.Check<ChatClient.ChatClient>
}

/**
 * The chain over the `ChatClient` in context: a function from a request without a model to the
 * first completion served by one of `models`, tried in order. With `accept`, an answer must pass
 * the check to be served: an empty, cut-off or invalid answer is a failure of its model.
 *
 * The models and options are checked once, here. Since `chain` returns a function, not an
 * effect, a misconfigured chain cannot fail now: every call of it fails at once with
 * `FallbackConfigError`, before calling any model. That error is apart from `AllModelsFailed`,
 * so code that handles an outage (a cached answer, a 503) does not hide a configuration bug.
 *
 * @example
 * ```ts
 * import { ChatCompletion, Fallback } from "@resilient-llm/core"
 *
 * const complete = Fallback.chain(["gpt-4o", "claude-sonnet"], { timeout: "15 seconds", retry: {} })
 * const served = complete(ChatCompletion.prompt("Hello"))
 * // Effect<Served<ChatCompletion>, AllModelsFailed | FallbackConfigError, ChatClient>
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const chain = (
  models: ReadonlyArray<string>,
  options?: ChainOptions
) => {
  const accept = options?.accept
  const run = chainRunner<
    ChatCompletion.ChatCompletion,
    ChatCompletion.ChatCompletion,
    LlmError.LlmError,
    ChatClient.ChatClient
  >(
    models,
    internal.check<AttemptError<LlmError.LlmError>>(models, options, false),
    internal.effects({}, sameError)
  )
  return (
    request: ChatCompletion.PromptRequest
  ): Effect.Effect<
    Served<ChatCompletion.ChatCompletion>,
    AllModelsFailed | FallbackConfigError,
    ChatClient.ChatClient
  > =>
    Effect.flatMap(ChatClient.ChatClient, (client) =>
      run((model) => {
        const call = client.create(ChatCompletion.withModel(request, model))
        return accept === undefined ? call : Answer.verify(call, accept, model)
      }))
}

/**
 * The chain for streamed completions. It falls back only until the first chunk arrives: the
 * effect succeeds as soon as one model has sent its first chunk, with that model, the attempts so
 * far, and the whole stream (first chunk included) as `value`. From then on the stream belongs to
 * the caller, and a failure in it reaches the caller as it is, without falling back, since part
 * of an answer has already been seen.
 *
 * Time: `timeout` bounds the time to the first chunk; `idleTimeout` bounds every wait for a chunk,
 * the first included; `deadline` bounds the whole call, the stream's life included. Past a limit
 * before the first chunk the attempt fails with `TimeoutError` and the chain moves on; past one
 * after it, the stream fails with `TimeoutError`. Either way the model's connection is closed, at
 * the deadline even if nobody is reading.
 *
 * The report and the breaker. `attempts` is made when the first chunk arrives, so the serving
 * attempt is a `success` that says who served the first chunk, and its `durationMs` is the time
 * to it. The breaker judges the model on the whole stream: it admits the attempt when the stream
 * opens and counts its outcome when the stream ends, so a stream that fails after its first chunk
 * (a model error, `idleTimeout`, the deadline) is a failure of the model, though its attempt is
 * reported as served. A stream read to the end, or stopped early by its reader, is a success; one
 * never read before the scope closes counts for nothing. The stream ends once the breaker has
 * counted it. (A breaker's `slowCallThreshold` and `maxProbeDuration` therefore measure the whole
 * stream: keep them above the longest stream you expect.)
 *
 * With `hedge`, the models race for the first chunk: the first to send one serves, and the other
 * is interrupted and its connection closed.
 *
 * Knowing the model (and whether any model answered) before reading the stream is what an HTTP
 * handler needs to choose its status and headers. The stream lives in the `Scope` of the call:
 * read it once, inside that scope; the model's connection is released as soon as the stream ends
 * or its reader stops. For a plain stream, use
 * `Stream.unwrap(Effect.map(Fallback.stream(models)(request), (served) => served.value))`.
 *
 * @example
 * ```ts
 * import { ChatCompletion, Fallback } from "@resilient-llm/core"
 * import { Effect, Stream } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const served = yield* Fallback.stream(["gpt-4o", "claude-sonnet"], {
 *     timeout: "5 seconds", // to the first chunk
 *     idleTimeout: "20 seconds", // between chunks
 *     deadline: "2 minutes" // the whole call, streaming included
 *   })(ChatCompletion.prompt("Tell me a story"))
 *   yield* Effect.log(`streaming from ${served.model}`)
 *   yield* Stream.runForEach(served.value, (chunk) => Effect.log(ChatCompletion.chunkText(chunk)))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const stream = (
  models: ReadonlyArray<string>,
  options?: StreamOptions
) => {
  const run = chainRunner<
    internal.Opened,
    Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError>,
    LlmError.LlmError,
    Scope.Scope
  >(
    models,
    internal.check<AttemptError<LlmError.LlmError>>(models, options, true),
    { attributes: { "llm.stream": true }, serve: internal.serveStream, hopsAsAttempts: sameError }
  )
  return (
    request: ChatCompletion.PromptRequest
  ): Effect.Effect<
    Served<Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError>>,
    AllModelsFailed | FallbackConfigError,
    ChatClient.ChatClient | Scope.Scope
  > =>
    Effect.flatMap(
      ChatClient.ChatClient,
      (client) => run((model) => internal.openStream(model, client.stream(ChatCompletion.withModel(request, model))))
    )
}
