/**
 * What every Redis-backed store shares: the checked options, the key names, and the guard that
 * lets calls go on without Redis.
 *
 * The guard runs each store operation against Redis with a timeout. When Redis fails or is slow,
 * the operation is answered by the store's local view instead (fail open), the outage is logged
 * once (a warning), counted on every operation it touches (a metric) and marked on the caller's
 * span (an event). For `retryAfter` after a failure, operations go straight to the local view
 * (nobody waits for a Redis that just failed); then one operation at a time tries Redis again, and
 * the first that succeeds ends the outage: the writes queued in the meantime are replayed in
 * order, and the stores use Redis again. Nothing waits on Redis longer than `timeout`.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import { count, duration, show } from "./options.js"

/** @internal */
export interface Settings {
  readonly prefix: string
  readonly timeoutMillis: number
  readonly retryAfterMillis: number
  readonly idleMillis: number
  readonly maxPendingWrites: number
}

/** @internal */
export interface Options {
  readonly prefix: string
  readonly timeout?: Duration.Input | undefined
  readonly retryAfter?: Duration.Input | undefined
  readonly expireAfterIdle?: Duration.Input | undefined
  readonly maxPendingWrites?: number | undefined
}

const DEFAULT_TIMEOUT = Duration.millis(100)
const DEFAULT_RETRY_AFTER = Duration.seconds(1)
const DEFAULT_IDLE = Duration.days(7)
const DEFAULT_MAX_PENDING = 10_000

/** @internal */
export const validate = (options: Options): Settings | string => {
  if (typeof options.prefix !== "string" || options.prefix.trim().length === 0) {
    return `prefix must name the application and environment (such as "my-app:prod:"), got ${show(options.prefix)}`
  }
  const timeout = duration("timeout", options.timeout ?? DEFAULT_TIMEOUT)
  if (typeof timeout === "string") return timeout
  const retryAfter = duration("retryAfter", options.retryAfter ?? DEFAULT_RETRY_AFTER)
  if (typeof retryAfter === "string") return retryAfter
  const idle = duration("expireAfterIdle", options.expireAfterIdle ?? DEFAULT_IDLE)
  if (typeof idle === "string") return idle
  const maxPendingWrites = count("maxPendingWrites", options.maxPendingWrites ?? DEFAULT_MAX_PENDING)
  if (typeof maxPendingWrites === "string") return maxPendingWrites
  return {
    prefix: options.prefix,
    timeoutMillis: Duration.toMillis(timeout),
    retryAfterMillis: Duration.toMillis(retryAfter),
    idleMillis: Math.max(1, Math.round(Duration.toMillis(idle))),
    maxPendingWrites
  }
}

/**
 * A key segment from a name (a model, a deployment, a budget key): escaped, so that a name holding
 * the separator cannot reach another name's keys.
 *
 * @internal
 */
export const segment = (name: string): string => encodeURIComponent(name)

/** @internal */
export const localOperations = Metric.counter("resilient_llm_store_local_total", {
  description:
    "Store operations answered by the local view because Redis failed, was slow or was away, by operation and reason",
  incremental: true
})

/** @internal */
export const available = Metric.gauge("resilient_llm_store_available", {
  description: "1 while the shared store (Redis) answers, 0 during an outage"
})

/** @internal */
export const replayed = Metric.counter("resilient_llm_store_replayed_total", {
  description: "Writes made during a Redis outage and written to Redis once it was back",
  incremental: true
})

/** @internal */
export const dropped = Metric.counter("resilient_llm_store_dropped_total", {
  description: "Writes made during a Redis outage that did not fit in the queue and were kept only locally",
  incremental: true
})

type Reason = "timeout" | "error" | "away"

/** @internal */
export interface Guard {
  readonly settings: Settings
  /**
   * `remote` within the timeout, or `local` when it fails, is too slow, or Redis is known to be
   * away. A command that timed out may still be carried out by Redis (each is one atomic script):
   * the caller has gone on without its answer.
   */
  readonly run: <A, E, E2>(
    operation: string,
    remote: Effect.Effect<A, E>,
    local: Effect.Effect<A, E2>
  ) => Effect.Effect<A, E2>
  /** Queues a write for when Redis is back (made while it was away, and answered locally). */
  readonly enqueue: (operation: string, write: Effect.Effect<unknown, unknown>) => Effect.Effect<void>
  /** Whether the last operation reached Redis. */
  readonly available: Effect.Effect<boolean>
  /** Writes waiting for Redis to come back. */
  readonly pendingWrites: Effect.Effect<number>
  /** Operations answered by the local view so far. */
  readonly localAnswers: Effect.Effect<number>
  /** Operations sent to Redis and not answered yet. */
  readonly inFlight: Effect.Effect<number>
}

class Timeout {
  readonly _tag = "Timeout"
}

/** @internal */
export const makeGuard = (settings: Settings): Effect.Effect<Guard, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    let up = true
    let retryAt = 0
    let probing = false
    let flushing = false
    let localAnswers = 0
    let inFlight = 0
    const pending: Array<{ readonly operation: string; readonly write: Effect.Effect<unknown, unknown> }> = []

    const labels = { store: "redis", prefix: settings.prefix }
    const availability = Metric.withAttributes(available, labels)
    yield* Metric.update(availability, 1)

    const event = (operation: string, reason: Reason, detail: string | undefined) =>
      Effect.flatMap(Effect.exit(Effect.currentSpan), (span) =>
        Exit.isFailure(span) ?
          Effect.void :
          Effect.clockWith((clock) =>
            Effect.sync(() =>
              span.value.event("resilient-llm.store.unavailable", clock.currentTimeNanosUnsafe(), {
                "store.operation": operation,
                "store.reason": reason,
                ...(detail === undefined ? {} : { "store.error": detail })
              })
            )
          ))

    const mark = (operation: string, reason: Reason, detail: string | undefined) =>
      Effect.suspend(() => {
        localAnswers += 1
        return Effect.andThen(
          Metric.update(Metric.withAttributes(localOperations, { ...labels, operation, reason }), 1),
          event(operation, reason, detail)
        )
      })

    const wentDown = (operation: string, reason: Reason, detail: string) =>
      Effect.clockWith((clock) => {
        retryAt = clock.currentTimeMillisUnsafe() + settings.retryAfterMillis
        if (!up) {
          return Effect.void
        }
        up = false
        return Effect.andThen(
          Metric.update(availability, 0),
          Effect.logWarning(
            `the shared store (Redis) did not answer ${operation}: ${detail}; calls go on with this process's ` +
              `local view, and Redis is tried again in ${settings.retryAfterMillis} ms`
          ).pipe(
            Effect.annotateLogs({
              "store.prefix": settings.prefix,
              "store.operation": operation,
              "store.reason": reason
            })
          )
        )
      })

    const flush: Effect.Effect<void> = Effect.suspend(() => {
      const next = pending[0]
      if (next === undefined || !up) {
        flushing = false
        return Effect.void
      }
      return Effect.flatMap(attempt(next.write), (result) => {
        if (result._tag === "Failed") {
          flushing = false
          return wentDown(next.operation, result.reason, result.detail)
        }
        pending.shift()
        return Effect.andThen(Metric.update(Metric.withAttributes(replayed, labels), 1), flush)
      })
    })

    const cameBack = Effect.suspend(() => {
      if (up) return Effect.void
      up = true
      const queued = pending.length
      const log = Effect.logInfo(
        `the shared store (Redis) answers again; ${queued} write(s) made meanwhile are replayed`
      ).pipe(Effect.annotateLogs({ "store.prefix": settings.prefix }))
      const replay = flushing || queued === 0 ? Effect.void : Effect.suspend(() => {
        flushing = true
        return Effect.asVoid(Effect.forkIn(flush, scope))
      })
      return Effect.all([Metric.update(availability, 1), log, replay], { discard: true })
    })

    type Attempt<A> =
      | { readonly _tag: "Done"; readonly value: A }
      | { readonly _tag: "Failed"; readonly reason: Reason; readonly detail: string }

    const attempt = <A, E>(remote: Effect.Effect<A, E>): Effect.Effect<Attempt<A>> =>
      Effect.suspend(() => {
        inFlight += 1
        return remote
      }).pipe(
        Effect.ensuring(Effect.sync(() => {
          inFlight -= 1
        })),
        Effect.timeoutOrElse({
          duration: Duration.millis(settings.timeoutMillis),
          orElse: () => Effect.fail(new Timeout())
        }),
        Effect.matchCause({
          onSuccess: (value): Attempt<A> => ({ _tag: "Done", value }),
          onFailure: (cause): Attempt<A> => {
            const error = Cause.findErrorOption(cause)
            if (error._tag === "Some" && error.value instanceof Timeout) {
              return { _tag: "Failed", reason: "timeout", detail: `no answer within ${settings.timeoutMillis} ms` }
            }
            return { _tag: "Failed", reason: "error", detail: describe(cause) }
          }
        })
      )

    const run = <A, E, E2>(
      operation: string,
      remote: Effect.Effect<A, E>,
      local: Effect.Effect<A, E2>
    ): Effect.Effect<A, E2> =>
      Effect.clockWith((clock) => {
        if (!up && (probing || clock.currentTimeMillisUnsafe() < retryAt)) {
          return Effect.andThen(mark(operation, "away", undefined), local)
        }
        const probe = !up
        if (probe) probing = true
        return Effect.flatMap(
          Effect.ensuring(
            attempt(remote),
            Effect.sync(() => {
              if (probe) probing = false
            })
          ),
          (result) =>
            result._tag === "Done"
              ? (up ? Effect.succeed(result.value) : Effect.as(cameBack, result.value))
              : Effect.andThen(
                Effect.andThen(
                  wentDown(operation, result.reason, result.detail),
                  mark(operation, result.reason, result.detail)
                ),
                local
              )
        )
      })

    const enqueue = (operation: string, write: Effect.Effect<unknown, unknown>): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (pending.length >= settings.maxPendingWrites) {
          return Metric.update(Metric.withAttributes(dropped, { ...labels, operation }), 1)
        }
        pending.push({ operation, write })
        return Effect.void
      })

    const guard: Guard = {
      settings,
      run,
      enqueue,
      available: Effect.sync(() => up),
      pendingWrites: Effect.sync(() => pending.length),
      localAnswers: Effect.sync(() => localAnswers),
      inFlight: Effect.sync(() => inFlight)
    }
    return guard
  })

/** A Redis failure in a few words: its message, never the command's arguments. */
const describe = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.findErrorOption(cause)
  const value: unknown = error._tag === "Some" ? error.value : Cause.squash(cause)
  let inner = value
  // RedisError holds the client's error as its cause; RateLimiterError a reason holding it
  for (let depth = 0; depth < 3 && typeof inner === "object" && inner !== null && "cause" in inner; depth++) {
    if (inner.cause === undefined) break
    inner = inner.cause
  }
  const message = inner instanceof Error ? inner.message : String(inner)
  return message.length > 200 ? `${message.slice(0, 200)}...` : message
}
