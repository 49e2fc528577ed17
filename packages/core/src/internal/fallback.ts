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
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as ChatCompletion from "../ChatCompletion.js"
import type * as Fallback from "../Fallback.js"
import * as LlmError from "../LlmError.js"
import * as Observability from "../Observability.js"
import * as AttemptDetails from "./attemptDetails.js"
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
export type Serve<B, A, Err, R> = (attempt: {
  readonly model: string
  readonly first: Effect.Effect<B, Err, R>
  readonly protect: Protect<Err>
  /** The chain's deadline in epoch milliseconds by `Clock`, and the deadline itself. */
  readonly deadlineAt: number | undefined
  readonly deadline: Duration.Duration | undefined
  /** A stream's `idleTimeout`. */
  readonly idleTimeout: Duration.Duration | undefined
  readonly clock: Clock.Clock
}) => Effect.Effect<A, Err, R>

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
  serve: ({ first, protect }) => protect(first),
  hopsAsAttempts
})

/**
 * A chain's options, checked; an infinite duration is no limit.
 *
 * @internal
 */
export interface Config<Err> {
  readonly shouldFallback: (error: Err) => boolean
  readonly timeout: Duration.Duration | undefined
  readonly deadline: Duration.Duration | undefined
  readonly idleTimeout: Duration.Duration | undefined
  readonly retry: retry.Config<Err> | undefined
  readonly breaker: Fallback.Breaker | undefined
}

const finiteOrNone = (
  name: string,
  input: Duration.Input | undefined
): Duration.Duration | undefined | string => {
  const checked = optionalDuration(name, input, { infinite: true })
  return typeof checked === "object" && !Duration.isFinite(checked) ? undefined : checked
}

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
  return {
    shouldFallback: given.shouldFallback ?? LlmError.isFallbackable,
    timeout,
    deadline,
    idleTimeout,
    retry: retryConfig,
    breaker: given.breaker
  }
}

const minimum = (
  a: Duration.Duration | undefined,
  b: Duration.Duration | undefined
): Duration.Duration | undefined => a === undefined ? b : b === undefined ? a : Duration.min(a, b)

/**
 * Runs the chain.
 *
 * @internal
 */
export const run = <B, A, E, R>(
  models: ReadonlyArray<string>,
  attempt: (model: string) => Effect.Effect<B, E, R>,
  config: Config<Fallback.AttemptError<E>>,
  kind: Kind<B, A, Fallback.AttemptError<E>, R>
): Effect.Effect<
  Fallback.Served<A, Fallback.AttemptError<E>>,
  Failure<Fallback.AttemptError<E>>,
  R
> =>
  // The clock is read synchronously from here on: one service lookup per chain, not one effect per
  // reading. It is the fiber's `Clock`, so `TestClock` still drives every time below.
  Effect.clockWith((clock) =>
    Effect.gen(function*() {
      type Err = Fallback.AttemptError<E>
      const { deadline, idleTimeout, shouldFallback, timeout } = config
      const startedAt = clock.currentTimeMillisUnsafe()
      const deadlineAt = deadline === undefined ? undefined : startedAt + Duration.toMillis(deadline)
      const attempts: Array<Fallback.Attempt<Err>> = []
      // Set when the deadline cut a retry short, so an exhausted chain still says the deadline ended it.
      let retryCutByDeadline = false

      const end = (reason: Fallback.Reason, stoppedBy: Err | undefined, untried: ReadonlyArray<string>) =>
        Effect.suspend((): Effect.Effect<never, Failure<Err>> => {
          const now = clock.currentTimeMillisUnsafe()
          const pastDeadline = deadlineAt !== undefined && now >= deadlineAt
          return Effect.fail({
            models,
            attempts: attempts.filter(isFailed),
            reason: reason === "Exhausted" && (pastDeadline || retryCutByDeadline) ? "DeadlineReached" : reason,
            stoppedBy,
            untried,
            deadline
          })
        })

      const hopsAsAttempts = kind.hopsAsAttempts
      const record =
        (model: string, retryNumber: number, start: number, details: AttemptDetails.Details) =>
        (exit: Exit.Exit<A, Err>) =>
          Effect.sync(() => {
            const failure = Exit.isSuccess(exit) ? Option.none() : Cause.findErrorOption(exit.cause)
            // Interruption and defects end the chain itself; only failures are attempts to report.
            if (Exit.isFailure(exit) && Option.isNone(failure)) return
            const error = Option.getOrUndefined(failure)
            const hops = details.hops
            const last = hops.length === 0 ? undefined : hops[hops.length - 1]
            // the last deployment's call is this attempt's outcome when it answered (the answer may
            // still be rejected above it) or failed with the very error the attempt failed with
            const merged = last !== undefined && (last.outcome === "success" || last.error === error) ? last : undefined
            if (hopsAsAttempts !== undefined) {
              for (const hop of merged === undefined ? hops : hops.slice(0, -1)) {
                const facts = {
                  model,
                  deployment: hop.deployment,
                  retry: retryNumber,
                  startedAt: hop.startedAt,
                  durationMs: hop.durationMs,
                  costUsd: hop.costUsd
                }
                if (hop.error === undefined) attempts.push({ ...facts, outcome: "success", error: undefined })
                else attempts.push({ ...facts, outcome: "failure", error: hopsAsAttempts(hop.error) })
              }
            }
            const facts = {
              model,
              deployment: merged?.deployment ?? details.current,
              retry: retryNumber,
              startedAt: merged?.startedAt ?? start,
              durationMs: merged === undefined ? clock.currentTimeMillisUnsafe() - start : merged.durationMs,
              costUsd: hopsAsAttempts === undefined ? AttemptDetails.costOf(details) : merged?.costUsd
            }
            if (error === undefined) attempts.push({ ...facts, outcome: "success", error: undefined })
            else attempts.push({ ...facts, outcome: "failure", error })
          })

      const tryModel = (model: string): Effect.Effect<A, Err, R> => {
        let tries = 0
        const once = Effect.suspend(() => {
          const retryNumber = tries++
          const start = clock.currentTimeMillisUnsafe()
          const remaining = deadlineAt === undefined ? undefined : Duration.millis(Math.max(0, deadlineAt - start))
          const limit = minimum(minimum(timeout, idleTimeout), remaining)
          const call = attempt(model)
          const bounded: Effect.Effect<B, Err, R> = limit === undefined ? call : retry.timeout(call, model, limit)
          const observed = Observability.attempt({
            pattern: "fallback",
            model,
            attributes: { ...kind.attributes, "llm.retry": retryNumber, "llm.attempt": attempts.length + 1 }
          })(bounded)
          const breaker = config.breaker
          const protect: Protect<Err> = breaker === undefined ? identity : (self) => breaker.protect(model)(self)
          const served = kind.serve({ model, first: observed, protect, deadlineAt, deadline, idleTimeout, clock })
          const details = AttemptDetails.make()
          return served.pipe(
            Effect.provideService(AttemptDetails.CurrentDetails, details),
            Effect.onExit(record(model, retryNumber, start, details))
          )
        })
        const retryConfig = config.retry
        if (retryConfig === undefined) return once
        return retry.retrying(once, () =>
          retry.policy<Err>(
            retryConfig,
            deadlineAt === undefined ? undefined : {
              at: deadlineAt,
              onStop: Effect.sync(() => {
                retryCutByDeadline = true
              })
            }
          ))
      }

      if (models.length === 0) return yield* end("NoModels", undefined, [])
      for (let index = 0; index < models.length; index++) {
        const model = models[index]
        if (deadlineAt !== undefined && clock.currentTimeMillisUnsafe() >= deadlineAt) {
          return yield* end("DeadlineReached", undefined, models.slice(index))
        }
        const result = yield* Effect.result(tryModel(model))
        if (Result.isSuccess(result)) {
          const served = attempts[attempts.length - 1]
          return { value: result.success, model, deployment: served?.deployment, attempts: [...attempts] }
        }
        if (!shouldFallback(result.failure)) {
          return yield* end("NotFallbackable", result.failure, models.slice(index + 1))
        }
      }
      return yield* end("Exhausted", undefined, [])
    })
  )

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
  { clock, deadline, deadlineAt, first, idleTimeout, model, protect }
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
    const fiber = yield* Effect.forkIn(life, parent)
    return yield* Deferred.await(handoff).pipe(Effect.onInterrupt(() => Fiber.interrupt(fiber)))
  })
