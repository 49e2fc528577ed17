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
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
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
 * Turns the error of a deployment the router tried into an error of the chain, for a chain whose
 * errors are `LlmError`s: each deployment then is an attempt of its own in the report.
 *
 * @internal
 */
export type HopsAsAttempts<E> = (error: LlmError.LlmError) => E

/**
 * Runs the chain. `attributes` are added to every attempt's span.
 *
 * @internal
 */
export const run = <A, E, R>(
  models: ReadonlyArray<string>,
  attempt: (model: string) => Effect.Effect<A, E, R>,
  options: Fallback.Options<Fallback.AttemptError<NoInfer<E>>>,
  attributes: Record<string, unknown>,
  /**
   * Whether the deployments a router tried within one attempt become attempts of their own in
   * the report: only when every hop's error is one of the chain's (a `ChatClient` chain).
   */
  hopsAsAttempts: HopsAsAttempts<Fallback.AttemptError<E>> | undefined = undefined
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
      const shouldFallback: (error: Err) => boolean = options.shouldFallback ?? LlmError.isFallbackable
      const timeout = options.timeout === undefined ? undefined : Duration.fromInputUnsafe(options.timeout)
      const deadline = options.deadline === undefined ? undefined : Duration.fromInputUnsafe(options.deadline)
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
          const limit = timeout === undefined
            ? remaining
            : remaining === undefined
            ? timeout
            : Duration.min(timeout, remaining)
          const call = attempt(model)
          const bounded: Effect.Effect<A, Err, R> = limit === undefined ? call : retry.timeout(call, model, limit)
          const observed = Observability.attempt({
            pattern: "fallback",
            model,
            attributes: { ...attributes, "llm.retry": retryNumber, "llm.attempt": attempts.length + 1 }
          })(bounded)
          const guarded: Effect.Effect<A, Err, R> = options.breaker === undefined
            ? observed
            : options.breaker.protect(model)(observed)
          const details = AttemptDetails.make()
          return guarded.pipe(
            Effect.provideService(AttemptDetails.CurrentDetails, details),
            Effect.onExit(record(model, retryNumber, start, details))
          )
        })
        const retryOptions = options.retry
        if (retryOptions === undefined) return once
        return retry.retrying(once, () =>
          retry.policy<Err>(
            retryOptions,
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

/**
 * Opens `stream` in a scope of its own and waits for its first chunk. On success the returned
 * stream replays that chunk and goes on reading the open one; the stream's scope closes as soon
 * as the returned stream ends, fails or is interrupted (or with the caller's scope, if it is never
 * read). On failure or interruption (a timeout) the scope is closed at once, so a model that was
 * given up on is not left streaming. A stream that ends without a single chunk is no answer: it
 * fails with `ResponseDecodeError`, and a chain moves on, as it would for a completion without
 * choices.
 *
 * @internal
 */
export const firstChunk = (
  model: string,
  stream: Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError>
): Effect.Effect<
  Stream.Stream<ChatCompletion.ChatCompletionChunk, LlmError.LlmError>,
  LlmError.LlmError,
  Scope.Scope
> =>
  Effect.flatMap(
    Effect.scope,
    (parent) =>
      Effect.flatMap(Scope.fork(parent, "sequential"), (scope) =>
        Effect.flatMap(Stream.toPull(stream), (pull) =>
          Pull.matchEffect(pull, {
            onSuccess: (chunk: Arr.NonEmptyReadonlyArray<ChatCompletion.ChatCompletionChunk>) =>
              Effect.succeed(
                Stream.concat(Stream.fromArray(chunk), Stream.fromPull(Effect.succeed(pull))).pipe(
                  Stream.onExit((exit) =>
                    Scope.close(scope, exit)
                  )
                )
              ),
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
