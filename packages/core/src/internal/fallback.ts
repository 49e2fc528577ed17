/**
 * The fallback runner: models in order, each try timed out, observed, guarded by the breaker and
 * recorded, each model retried by the `Retry` policy, the whole chain bounded by its deadline.
 * It returns the served value or the plain facts of the failure; `Fallback` turns those into
 * `AllModelsFailed` and logs.
 *
 * @internal
 */
import type * as Arr from "effect/Array"
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import * as Pull from "effect/Pull"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as ChatCompletion from "../ChatCompletion.js"
import type * as Fallback from "../Fallback.js"
import * as LlmError from "../LlmError.js"
import * as Observability from "../Observability.js"
import * as AttemptDetails from "./attemptDetails.js"
import { check as checkHedge, type Hedging } from "./hedge.js"
import { optionalDuration, optionalFunction, show } from "./options.js"
import * as retry from "./retry.js"

/**
 * The fields of `AllModelsFailed`.
 *
 * @internal
 */
export interface Failure<E> {
  readonly models: ReadonlyArray<string>
  readonly attempts: ReadonlyArray<Fallback.Failed<E>>
  readonly reason: Fallback.Reason
  readonly stoppedBy: E | undefined
  readonly untried: ReadonlyArray<string>
  readonly deadline: Duration.Duration | undefined
}

const isFailed = <E>(attempt: Fallback.Attempt<E>): attempt is Fallback.Failed<E> => attempt.outcome === "failure"

/**
 * Guards one attempt with the chain's breaker (or with nothing, without one).
 *
 * @internal
 */
export type Protect<Err> = <X, R>(self: Effect.Effect<X, Err, R>) => Effect.Effect<X, Err, R>

/**
 * How one attempt is served, once its first phase (`first`: the model's call, already bounded by
 * the attempt's time limit and observed) is built: by default the breaker guards `first` and its
 * value is served. A stream keeps the breaker's admission until the stream ends (`serveStream`).
 *
 * @internal
 */
export type Serve<B, A, Err, R> = (
  first: Effect.Effect<B, Err, R>,
  protect: Protect<Err>,
  model: string,
  chain: Call
) => Effect.Effect<A, Err, R>

/**
 * What `serve` may need of the call it serves an attempt for.
 *
 * @internal
 */
export interface Call {
  /** The chain's deadline in epoch milliseconds by `Clock`. */
  readonly deadlineAt: number | undefined
  readonly config: {
    readonly deadline: Duration.Duration | undefined
    /** A stream's `idleTimeout`. */
    readonly idleTimeout: Duration.Duration | undefined
  }
  readonly clock: Clock.Clock
}

/**
 * Turns the error of a deployment the router tried into an error of the chain, for a chain whose
 * errors are `LlmError`s: each deployment then is an attempt of its own in the report.
 *
 * @internal
 */
export type HopsAsAttempts<E> = (error: LlmError.LlmError) => E

/**
 * What a kind of chain adds to the runner: attributes for every attempt's span, how an attempt is
 * served, and whether the deployments a router tried within one attempt become attempts of their
 * own in the report (only when every hop's error is one of the chain's: a `ChatClient` chain).
 *
 * @internal
 */
export interface Kind<B, A, Err, R> {
  readonly attributes: Record<string, unknown>
  readonly serve: Serve<B, A, Err, R>
  readonly hopsAsAttempts?: HopsAsAttempts<Err> | undefined
}

/**
 * A chain of effects: each attempt is protected as a whole and serves its value.
 *
 * @internal
 */
export const effects = <A, Err, R>(
  attributes: Record<string, unknown>,
  hopsAsAttempts?: HopsAsAttempts<Err>
): Kind<A, A, Err, R> => ({
  attributes,
  serve: (first, protect) => protect(first),
  hopsAsAttempts
})

/**
 * A chain's options, checked; an infinite duration is no limit.
 *
 * @internal
 */
export interface Config<Err> {
  readonly shouldFallback: (error: Err) => boolean
  readonly deadline: Duration.Duration | undefined
  readonly idleTimeout: Duration.Duration | undefined
  readonly retry: retry.Config<Err> | undefined
  readonly breaker: Fallback.Breaker | undefined
  readonly hedge: Hedging | undefined
  /** The smaller of `timeout` and `idleTimeout`: every attempt's limit, before the deadline's. */
  readonly limit: Duration.Duration | undefined
}

const finiteOrNone = (
  name: string,
  input: Duration.Input | undefined
): Duration.Duration | undefined | string => {
  const checked = optionalDuration(name, input, { infinite: true })
  return typeof checked === "object" && !Duration.isFinite(checked) ? undefined : checked
}

const minimum = (
  a: Duration.Duration | undefined,
  b: Duration.Duration | undefined
): Duration.Duration | undefined => a === undefined ? b : b === undefined ? a : Duration.min(a, b)

/**
 * Checks a chain's models and options (`idleTimeout` only for a stream). Returns why they
 * describe no chain, or the config. An empty list of models is a chain: it fails with
 * `NoModels` when it runs.
 *
 * @internal
 */
export const check = <Err>(
  models: ReadonlyArray<string>,
  options: (Fallback.Options<Err> & { readonly idleTimeout?: Duration.Input }) | undefined,
  stream: boolean
): Config<Err> | string => {
  const list: unknown = models
  if (!Array.isArray(list)) return `models must be a list of model names, got ${show(list)}`
  const unnamed = list.findIndex((model) => typeof model !== "string" || model.trim() === "")
  if (unnamed >= 0) return `model ${unnamed + 1} of ${list.length} has no name`
  const given = options ?? {}
  const raw: unknown = given
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return `options must be an object, got ${show(raw)}`
  }
  const notAFunction = optionalFunction("shouldFallback", given.shouldFallback)
  if (notAFunction !== undefined) return notAFunction
  const timeout = finiteOrNone("timeout", given.timeout)
  if (typeof timeout === "string") return timeout
  const deadline = finiteOrNone("deadline", given.deadline)
  if (typeof deadline === "string") return deadline
  const idleTimeout = stream ? finiteOrNone("idleTimeout", given.idleTimeout) : undefined
  if (typeof idleTimeout === "string") return idleTimeout
  const retryConfig = given.retry === undefined ? undefined : retry.check(given.retry, "retry.")
  if (typeof retryConfig === "string") return retryConfig
  const breaker: unknown = given.breaker
  if (
    breaker !== undefined &&
    !(typeof breaker === "object" && breaker !== null && "protect" in breaker && typeof breaker.protect === "function")
  ) {
    return `breaker must have a protect function, got ${show(breaker)}`
  }
  const hedge = given.hedge === undefined ? undefined : checkHedge(given.hedge)
  if (typeof hedge === "string") return hedge
  return {
    shouldFallback: given.shouldFallback ?? LlmError.isFallbackable,
    deadline,
    idleTimeout,
    retry: retryConfig,
    breaker: given.breaker,
    hedge,
    limit: minimum(timeout, idleTimeout)
  }
}

/**
 * One try at a model (its attempts, retries included), as the hedged runner follows it: the
 * attempt in flight, so that a try cancelled because another model answered first is reported
 * as `cancelled` with the attempt it was on.
 */
class Try {
  retry = 0
  startedAt = 0
  /** Set before the runner interrupts the try because another model served. */
  cancelled = false
  constructor(readonly model: string, readonly hedge: boolean) {}
}

type HedgeEvent<A, Err> =
  | { readonly _tag: "Finished"; readonly index: number; readonly exit: Exit.Exit<A, Err> }
  | { readonly _tag: "HedgeDue"; readonly index: number }

/** One call of a chain: its clock, deadline and report. */
class ChainRun<B, A, E, R, F> {
  readonly attempts: Array<Fallback.Attempt<Fallback.AttemptError<E>>> = []
  readonly startedAt: number
  readonly deadlineAt: number | undefined
  /** Set when the deadline cut a retry short, so an exhausted chain still says the deadline ended it. */
  retryCutByDeadline = false

  constructor(
    readonly models: ReadonlyArray<string>,
    readonly attempt: (model: string) => Effect.Effect<B, E, R>,
    readonly config: Config<Fallback.AttemptError<E>>,
    readonly kind: Kind<B, A, Fallback.AttemptError<E>, R>,
    readonly clock: Clock.Clock,
    readonly toFailure: (failure: Failure<Fallback.AttemptError<E>>) => F
  ) {
    this.startedAt = clock.currentTimeMillisUnsafe()
    this.deadlineAt = config.deadline === undefined ? undefined : this.startedAt + Duration.toMillis(config.deadline)
  }

  pastDeadline(): boolean {
    return this.deadlineAt !== undefined && this.clock.currentTimeMillisUnsafe() >= this.deadlineAt
  }

  end(
    reason: Fallback.Reason,
    stoppedBy: Fallback.AttemptError<E> | undefined,
    untried: ReadonlyArray<string>
  ): Effect.Effect<never, F> {
    return Effect.suspend(() =>
      Effect.fail(this.toFailure({
        models: this.models,
        attempts: this.attempts.filter(isFailed),
        reason: reason === "Exhausted" && (this.pastDeadline() || this.retryCutByDeadline) ? "DeadlineReached" : reason,
        stoppedBy,
        untried,
        deadline: this.config.deadline
      }))
    )
  }

  served(value: A, model: string): Fallback.Served<A, Fallback.AttemptError<E>> {
    const served = this.attempts[this.attempts.length - 1]
    // nothing is added to the report once a sequential chain is served: it is handed over as it is
    return { value, model, deployment: served?.deployment, attempts: this.attempts }
  }

  /**
   * Adds one attempt to the report: a failure when it has an error, else a success, or a try
   * another model's answer cancelled.
   */
  private push(
    model: string,
    deployment: string | undefined,
    retry: number,
    startedAt: number,
    durationMs: number,
    costUsd: number | undefined,
    hedge: boolean,
    error: Fallback.AttemptError<E> | undefined,
    cancelled = false
  ): void {
    // every attempt has every field, in the same order (one shape for V8)
    if (cancelled) {
      this.attempts.push({
        outcome: "cancelled",
        model,
        deployment,
        retry,
        startedAt,
        durationMs,
        costUsd,
        hedge,
        error: undefined
      })
    } else if (error !== undefined) {
      this.attempts.push({ outcome: "failure", model, deployment, retry, startedAt, durationMs, costUsd, hedge, error })
    } else {
      this.attempts.push({
        outcome: "success",
        model,
        deployment,
        retry,
        startedAt,
        durationMs,
        costUsd,
        hedge,
        error: undefined
      })
    }
  }

  /** Reports how an attempt ended: its outcome and, with deployments, each deployment it tried. */
  record(
    model: string,
    retryNumber: number,
    start: number,
    details: AttemptDetails.Details,
    attempt: Try | undefined,
    exit: Exit.Exit<unknown, Fallback.AttemptError<E>>
  ): void {
    const hedge = attempt !== undefined && attempt.hedge
    const now = this.clock.currentTimeMillisUnsafe()
    let error: Fallback.AttemptError<E> | undefined
    if (Exit.isFailure(exit)) {
      const failure = Cause.findErrorOption(exit.cause)
      if (Option.isNone(failure)) {
        // Interruption and defects end the chain itself: only failures are attempts to report,
        // and the tries a hedged chain cancels because another model served.
        if (attempt !== undefined && attempt.cancelled && Cause.hasInterruptsOnly(exit.cause)) {
          const costUsd = AttemptDetails.costOf(details)
          this.push(model, details.current, retryNumber, start, now - start, costUsd, hedge, undefined, true)
        }
        return
      }
      error = failure.value
    }
    const hops = details.hops
    const hopsAsAttempts = this.kind.hopsAsAttempts
    const last = hops.length === 0 ? undefined : hops[hops.length - 1]
    // the last deployment's call is this attempt's outcome when it answered (the answer may
    // still be rejected above it) or failed with the very error the attempt failed with
    const merged = last !== undefined && (last.outcome === "success" || last.error === error) ? last : undefined
    if (hopsAsAttempts !== undefined) {
      const before = merged === undefined ? hops.length : hops.length - 1
      for (let i = 0; i < before; i++) {
        const hop = hops[i]
        this.push(
          model,
          hop.deployment,
          retryNumber,
          hop.startedAt,
          hop.durationMs,
          hop.costUsd,
          hedge,
          hop.error === undefined ? undefined : hopsAsAttempts(hop.error)
        )
      }
    }
    this.settled(
      model,
      merged?.deployment ?? details.current,
      retryNumber,
      merged?.startedAt ?? start,
      merged === undefined ? now - start : merged.durationMs,
      hopsAsAttempts === undefined ? AttemptDetails.costOf(details) : merged?.costUsd,
      hedge,
      error
    )
  }

  private settled(
    model: string,
    deployment: string | undefined,
    retry: number,
    startedAt: number,
    durationMs: number,
    costUsd: number | undefined,
    hedge: boolean,
    error: Fallback.AttemptError<E> | undefined
  ): void {
    this.push(model, deployment, retry, startedAt, durationMs, costUsd, hedge, error)
    if (error === undefined) this.config.hedge?.observe(model, durationMs)
  }

  /** One attempt at `model`: bounded by its time limit, observed, guarded by the breaker, reported. */
  once(model: string, retryNumber: number, attempt: Try | undefined): Effect.Effect<A, Fallback.AttemptError<E>, R> {
    type Err = Fallback.AttemptError<E>
    const { config, kind, clock, deadlineAt } = this
    const start = clock.currentTimeMillisUnsafe()
    if (attempt !== undefined) {
      attempt.retry = retryNumber
      attempt.startedAt = start
    }
    const limit = deadlineAt === undefined
      ? config.limit
      : minimum(config.limit, Duration.millis(Math.max(0, deadlineAt - start)))
    const call = this.attempt(model)
    const bounded: Effect.Effect<B, Err, R> = limit === undefined ? call : retry.timeout(call, model, limit)
    const number = this.attempts.length + 1
    const attributes = () => {
      const all: Record<string, unknown> = {
        "llm.pattern": "fallback",
        "llm.model": model,
        ...kind.attributes,
        "llm.retry": retryNumber,
        "llm.attempt": number
      }
      if (attempt !== undefined && attempt.hedge) all["llm.hedge"] = true
      return all
    }
    // the attempt's record of deployments is this report's, read when the attempt ends
    const details = AttemptDetails.make()
    const observed = Observability.observeAttempt(bounded, "fallback", model, attributes, details)
    const breaker = config.breaker
    const protect: Protect<Err> = breaker === undefined ? identity : breaker.protect(model)
    const served = kind.serve(observed, protect, model, this)
    return Effect.onExitPrimitive(served, (exit) => {
      this.record(model, retryNumber, start, details, attempt, exit)
      return undefined
    })
  }

  /** Every attempt at `model`, retries included, until one succeeds or the retries end. */
  tryModel(model: string, attempt?: Try): Effect.Effect<A, Fallback.AttemptError<E>, R> {
    const retryConfig = this.config.retry
    if (retryConfig === undefined) return Effect.suspend(() => this.once(model, 0, attempt))
    let tries = 0
    const once = Effect.suspend(() => this.once(model, tries++, attempt))
    const deadlineAt = this.deadlineAt
    return retry.retrying(once, () =>
      retry.policy<Fallback.AttemptError<E>>(
        retryConfig,
        deadlineAt === undefined ? undefined : {
          at: deadlineAt,
          onStop: Effect.sync(() => {
            this.retryCutByDeadline = true
          })
        }
      ))
  }

  /** Models one after another: the next starts when the one before has failed. */
  sequential(): Effect.Effect<Fallback.Served<A, Fallback.AttemptError<E>>, F, R> {
    const { models } = this
    const from = (index: number): Effect.Effect<
      Fallback.Served<A, Fallback.AttemptError<E>>,
      F,
      R
    > => {
      if (index >= models.length) return this.end("Exhausted", undefined, [])
      if (this.pastDeadline()) return this.end("DeadlineReached", undefined, models.slice(index))
      const model = models[index]
      return Effect.matchEffect(this.tryModel(model), {
        onSuccess: (value) => Effect.succeed(this.served(value, model)),
        onFailure: (error) =>
          this.config.shouldFallback(error)
            ? from(index + 1)
            : this.end("NotFallbackable", error, models.slice(index + 1))
      })
    }
    if (models.length === 0) return this.end("NoModels", undefined, [])
    return from(0)
  }

  /** The served value of a hedged call: the serving attempt last, the others in the order they started. */
  servedFirst(value: A, model: string): Fallback.Served<A, Fallback.AttemptError<E>> {
    const all = this.attempts
    let servingIndex = -1
    for (let i = all.length - 1; i >= 0; i--) {
      if (all[i].outcome === "success" && all[i].model === model) {
        servingIndex = i
        break
      }
    }
    const serving = all[servingIndex]
    const others = all.filter((_, i) => i !== servingIndex).sort((a, b) => a.startedAt - b.startedAt)
    const attempts = serving === undefined ? others : [...others, serving]
    return { value, model, deployment: serving?.deployment, attempts }
  }
}

/**
 * Models with hedging: a model that has not answered once its delay has passed gets the next
 * model started alongside it (a hedge), and the first success wins; the others are interrupted
 * and reported as cancelled. A failure of the model started last starts the next at once (a
 * hedge when others still run, a plain fallback when none does). An error that must not fall
 * back ends the chain and cancels the rest. Hedges are limited per call (`maxHedges`) and in
 * flight across calls (`maxInFlight`): past either, the next model waits for the ones running
 * to fail, as without hedging.
 */
const hedged = <B, A, E, R, F>(
  run: ChainRun<B, A, E, R, F>,
  hedging: Hedging
): Effect.Effect<Fallback.Served<A, Fallback.AttemptError<E>>, F, R> => {
  type Err = Fallback.AttemptError<E>
  type Result = Effect.Effect<Fallback.Served<A, Err>, F, R>
  const { models } = run
  const { maxHedges } = hedging.settings
  return Effect.gen(function*() {
    const events = yield* Queue.unbounded<HedgeEvent<A, Err>>()
    const tries: Array<Try> = []
    const running = new Map<number, Fiber.Fiber<void>>()
    let next = 0
    let latest = -1
    let hedges = 0
    let timer: Fiber.Fiber<void> | undefined

    const endHedge = (model: string, attempt: Try, exit: Exit.Exit<A, Err>) =>
      Effect.withFiber((fiber) => {
        hedging.release()
        Observability.recordHedge(
          fiber.context,
          model,
          Exit.isSuccess(exit)
            ? "served"
            : Cause.hasInterruptsOnly(exit.cause)
            ? attempt.cancelled ? "cancelled" : "interrupted"
            : "failed"
        )
        return Effect.void
      })

    const stopTimer = Effect.suspend(() => {
      const pending = timer
      timer = undefined
      return pending === undefined ? Effect.void : Fiber.interrupt(pending)
    })

    const start = (asHedge: boolean) =>
      Effect.gen(function*() {
        const index = next++
        const model = models[index]
        const attempt = new Try(model, asHedge)
        tries[index] = attempt
        latest = index
        yield* stopTimer
        const fiber = yield* run.tryModel(model, attempt).pipe(
          Effect.onExit((exit) =>
            Effect.andThen(
              asHedge ? endHedge(model, attempt, exit) : Effect.void,
              Queue.offer(events, { _tag: "Finished", index, exit })
            )
          ),
          Effect.ignore,
          // started at once: the model's request goes out now, not on the scheduler's next turn
          Effect.forkChild({ startImmediately: true })
        )
        running.set(index, fiber)
        if (next < models.length && hedges < maxHedges) {
          timer = yield* Effect.sleep(Duration.millis(hedging.delayOf(model))).pipe(
            Effect.andThen(Queue.offer(events, { _tag: "HedgeDue", index })),
            Effect.asVoid,
            Effect.forkChild
          )
        }
      })

    // starts the next model as a hedge, when the limits allow one
    const hedge = Effect.suspend(() => {
      if (next >= models.length || hedges >= maxHedges || run.pastDeadline() || !hedging.admit()) {
        return Effect.void
      }
      hedges++
      return start(true)
    })

    const cancelAll = Effect.suspend(() => {
      const fibers = Array.from(running.entries(), ([index, fiber]) => {
        tries[index].cancelled = true
        return fiber
      })
      running.clear()
      return Effect.andThen(stopTimer, Fiber.interruptAll(fibers))
    })

    const loop: Result = Effect.flatMap(Queue.take(events), (event): Result => {
      if (event._tag === "HedgeDue") {
        if (event.index !== latest || !running.has(event.index)) return loop
        timer = undefined
        return Effect.andThen(hedge, loop)
      }
      const { exit, index } = event
      running.delete(index)
      if (Exit.isSuccess(exit)) {
        const value = exit.value
        return Effect.andThen(cancelAll, Effect.sync(() => run.servedFirst(value, models[index])))
      }
      const failure = Cause.findErrorOption(exit.cause)
      if (Option.isNone(failure)) {
        // a defect or an interruption of the try: the chain ends with it
        const reasons = exit.cause.reasons.filter((reason): reason is Cause.Die | Cause.Interrupt =>
          !Cause.isFailReason(reason)
        )
        return Effect.andThen(cancelAll, Effect.failCause(Cause.fromReasons<never>(reasons)))
      }
      const error = failure.value
      if (!run.config.shouldFallback(error)) {
        return Effect.andThen(cancelAll, run.end("NotFallbackable", error, models.slice(next)))
      }
      const afterLatest = index === latest && running.size > 0 ? Effect.andThen(stopTimer, hedge) : Effect.void
      return Effect.andThen(
        afterLatest,
        Effect.suspend((): Result => {
          if (running.size > 0) return loop
          if (next >= models.length) return run.end("Exhausted", undefined, [])
          if (run.pastDeadline()) return run.end("DeadlineReached", undefined, models.slice(next))
          return Effect.andThen(start(false), loop)
        })
      )
    })

    if (models.length === 0) return yield* run.end("NoModels", undefined, [])
    return yield* Effect.andThen(start(false), loop).pipe(Effect.onExit(() => cancelAll))
  })
}

/**
 * Runs the chain. Its failure is `toFailure` of the facts (`AllModelsFailed`, which this module
 * cannot import), made where the chain ends rather than mapped afterwards.
 *
 * @internal
 */
export const run = <B, A, E, R, F>(
  models: ReadonlyArray<string>,
  attempt: (model: string) => Effect.Effect<B, E, R>,
  config: Config<Fallback.AttemptError<E>>,
  kind: Kind<B, A, Fallback.AttemptError<E>, R>,
  toFailure: (failure: Failure<Fallback.AttemptError<E>>) => F
): Effect.Effect<Fallback.Served<A, Fallback.AttemptError<E>>, F, R> =>
  // The clock is read synchronously from here on: one service lookup per chain, not one effect per
  // reading. It is the fiber's `Clock`, so `TestClock` still drives every time below.
  Effect.clockWith((clock) => {
    const chain = new ChainRun(models, attempt, config, kind, clock, toFailure)
    return config.hedge === undefined ? chain.sequential() : hedged(chain, config.hedge)
  })

type Chunk = ChatCompletion.ChatCompletionChunk

/**
 * A stream that has sent its first chunk: the chunks of that first read, the pull for the rest,
 * and the scope that holds the model's connection.
 *
 * @internal
 */
export interface Opened {
  readonly chunks: Arr.NonEmptyReadonlyArray<Chunk>
  readonly pull: Pull.Pull<Arr.NonEmptyReadonlyArray<Chunk>, LlmError.LlmError, void>
  readonly scope: Scope.Closeable
}

/**
 * Opens `stream` in a scope of its own and waits for its first chunk. On failure or interruption
 * (a timeout) the scope is closed at once, so a model that was given up on is not left streaming;
 * on success it stays open for `serveStream`. A stream that ends without a single chunk is no
 * answer: it fails with `ResponseDecodeError`, and a chain moves on, as it would for a completion
 * without choices.
 *
 * @internal
 */
export const openStream = (
  model: string,
  stream: Stream.Stream<Chunk, LlmError.LlmError>
): Effect.Effect<Opened, LlmError.LlmError, Scope.Scope> =>
  Effect.flatMap(
    Effect.scope,
    (parent) =>
      Effect.flatMap(Scope.fork(parent, "sequential"), (scope) =>
        Effect.flatMap(Stream.toPull(stream), (pull) =>
          Pull.matchEffect(pull, {
            onSuccess: (chunks: Arr.NonEmptyReadonlyArray<Chunk>) =>
              Effect.succeed<Opened>({ chunks, pull, scope }),
            onFailure: Effect.failCause,
            onDone: () =>
              Effect.fail(
                new LlmError.ResponseDecodeError({ model, detail: "the stream ended before its first chunk" })
              )
          })).pipe(
            Scope.provide(scope),
            Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit))
          ))
  )

/**
 * Opens `stream` and waits for its first chunk, as `openStream` does, and returns the whole stream:
 * the first chunk, then the rest read from the open one; its scope closes when the returned
 * stream ends, fails or is interrupted (or with the caller's scope, if it is never read).
 *
 * @internal
 */
export const firstChunk = (
  model: string,
  stream: Stream.Stream<Chunk, LlmError.LlmError>
): Effect.Effect<Stream.Stream<Chunk, LlmError.LlmError>, LlmError.LlmError, Scope.Scope> =>
  Effect.map(
    openStream(model, stream),
    (opened) =>
      Stream.concat(Stream.fromArray(opened.chunks), Stream.fromPull(Effect.succeed(opened.pull))).pipe(
        Stream.onExit((exit) => Scope.close(opened.scope, exit))
      )
  )

/**
 * Serves an opened stream, keeping the breaker's admission for its whole life. The attempt runs in
 * a fiber of the caller's scope, inside `protect`: it opens the stream, hands the caller a stream
 * that replays the first chunk and reads on, then waits for that stream to end and ends the same
 * way, so the breaker counts the stream's outcome (a model error at any point, a timeout, or a
 * success when it was read to the end or its reader stopped). The caller gets the stream as soon
 * as the first chunk is in, or the attempt's failure before it.
 *
 * Time: each wait for a chunk is bounded by `idleTimeout` and by what is left of the deadline,
 * and at the deadline the stream's connection is closed even if nobody is reading; either way the
 * stream fails with `TimeoutError`. A stream never read until the caller's scope closes ends with
 * that scope, and its outcome is an interruption, which counts for nothing.
 *
 * @internal
 */
export const serveStream: Serve<Opened, Stream.Stream<Chunk, LlmError.LlmError>, LlmError.LlmError, Scope.Scope> = (
  first,
  protect,
  model,
  { clock, config: { deadline, idleTimeout }, deadlineAt }
) =>
  Effect.gen(function*() {
    const parent = yield* Effect.scope
    const handoff = yield* Deferred.make<Stream.Stream<Chunk, LlmError.LlmError>, LlmError.LlmError>()
    const ended = yield* Deferred.make<Exit.Exit<unknown, LlmError.LlmError>>()
    // Completed once the breaker has counted the attempt: the served stream ends only then, so the
    // circuit's state is up to date when its reader is done with it.
    const counted = yield* Deferred.make<void>()
    const pastDeadline = deadline === undefined ? undefined : new LlmError.TimeoutError({ model, timeout: deadline })
    const tooQuiet = idleTimeout === undefined ? undefined : new LlmError.TimeoutError({ model, timeout: idleTimeout })
    // Set when the deadline closed the stream: whatever its reader sees next is that timeout.
    let expired = false

    const next = (pull: Opened["pull"]): Opened["pull"] =>
      Effect.suspend(() => {
        if (expired && pastDeadline !== undefined) return Effect.fail(pastDeadline)
        const left = deadlineAt === undefined ? undefined : deadlineAt - clock.currentTimeMillisUnsafe()
        if (left !== undefined && left <= 0 && pastDeadline !== undefined) return Effect.fail(pastDeadline)
        const byDeadline = left !== undefined && (idleTimeout === undefined || left <= Duration.toMillis(idleTimeout))
        const [limit, error] = byDeadline ? [Duration.millis(left), pastDeadline] : [idleTimeout, tooQuiet]
        const bounded = limit === undefined || error === undefined
          ? pull
          : Effect.timeoutOrElse(pull, { duration: limit, orElse: () => Effect.fail(error) })
        return pastDeadline === undefined ?
          bounded :
          Effect.catchCause(bounded, (cause) => expired ? Effect.fail(pastDeadline) : Effect.failCause(cause))
      })

    const serve = (opened: Opened): Stream.Stream<Chunk, LlmError.LlmError> =>
      Stream.concat(Stream.fromArray(opened.chunks), Stream.fromPull(Effect.succeed(next(opened.pull)))).pipe(
        Stream.onExit((exit) =>
          Scope.close(opened.scope, exit).pipe(
            Effect.andThen(Deferred.succeed(ended, exit)),
            Effect.andThen(Deferred.await(counted))
          )
        )
      )

    const untilEnd = (opened: Opened): Effect.Effect<void, LlmError.LlmError> => {
      const end = Effect.asVoid(Effect.flatten(Deferred.await(ended)))
      if (deadlineAt === undefined || pastDeadline === undefined) return end
      return Effect.timeoutOrElse(end, {
        duration: Duration.millis(Math.max(0, deadlineAt - clock.currentTimeMillisUnsafe())),
        orElse: () =>
          Effect.suspend(() => {
            expired = true
            return Effect.andThen(Scope.close(opened.scope, Exit.interrupt()), Effect.fail(pastDeadline))
          })
      })
    }

    const life = protect(
      Effect.flatMap(first, (opened) => Effect.andThen(Deferred.succeed(handoff, serve(opened)), untilEnd(opened)))
    ).pipe(
      // a failure before the first chunk is the attempt's; after it, it was the stream's and the
      // breaker has seen it
      Effect.onExit((exit) =>
        Effect.andThen(
          Exit.isFailure(exit) ? Deferred.failCause(handoff, exit.cause) : Effect.void,
          Deferred.succeed(counted, undefined)
        )
      ),
      Effect.exit
    )
    const fiber = yield* Effect.forkIn(life, parent, { startImmediately: true })
    return yield* Deferred.await(handoff).pipe(Effect.onInterrupt(() => Fiber.interrupt(fiber)))
  })
