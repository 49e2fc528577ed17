/**
 * A bulkhead keeps one slow or overloaded model from taking every fiber of the application with
 * it: at most `maxConcurrent` calls run through it at once, at most `maxQueued` more wait for a
 * slot (first come, first served), and any call beyond that is refused at once with
 * `BulkheadFullError`, so a fallback chain moves on to the next model instead of piling up behind
 * this one. Interrupting a waiting call frees its place in the queue; a call's slot is freed
 * however it ends.
 *
 * The deployments router (`Deployments`) puts one in front of every deployment with
 * `maxConcurrent` in its config, and prefers deployments with a free slot. Each bulkhead reports
 * `resilient_llm_bulkhead_in_flight` and `resilient_llm_bulkhead_queued` (gauges) and
 * `resilient_llm_bulkhead_refusals_total`, labelled with `model` and `deployment`.
 *
 * @example
 * ```ts
 * import { Bulkhead, ChatClient, ChatCompletion } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const bulkhead = yield* Bulkhead.make({ model: "llama-3.1-70b", maxConcurrent: 4, maxQueued: 8 })
 *   // the 13th concurrent call fails at once with BulkheadFullError
 *   return yield* ChatClient.create(ChatCompletion.withModel(ChatCompletion.prompt("Hi"), "llama-3.1-70b")).pipe(
 *     bulkhead.run
 *   )
 * })
 * ```
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { BulkheadImpl } from "./internal/bulkhead.js"
import { isPositiveInteger } from "./internal/options.js"
import type * as LlmError from "./LlmError.js"

/**
 * What `Bulkhead.make` takes: the model (and deployment) it guards, which name it in
 * `BulkheadFullError` and in the metrics' labels, how many calls may run at once
 * (`maxConcurrent`), and how many may wait for a slot (`maxQueued`, default 0: a call finding
 * every slot taken is refused at once).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Named in the refusal and in the metrics' labels. */
  readonly model: string
  /** The deployment it guards, when the model has several; also named in refusals and labels. */
  readonly deployment?: string | undefined
  /** Calls running at once; a whole number of at least 1. */
  readonly maxConcurrent: number
  /** Calls waiting for a slot; a whole number of at least 0 (default 0: no queue). */
  readonly maxQueued?: number | undefined
}

/**
 * A bulkhead now: the calls running in it (`inFlight`, at most `maxConcurrent`) and those waiting
 * for a slot (`queued`, at most `maxQueued`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Stats {
  /** Calls holding a slot. */
  readonly inFlight: number
  /** Calls waiting for one. */
  readonly queued: number
}

/**
 * A bulkhead built by `make`: `run` puts an effect through it, `slot` holds a slot for the life
 * of a scope (a stream read inside it), and `stats` reads how full it is. A call refused because
 * every slot and every place in the queue is taken fails with `BulkheadFullError`.
 *
 * @example
 * ```ts
 * import { Bulkhead } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const bulkhead = yield* Bulkhead.make({ model: "gpt-4o", maxConcurrent: 2 })
 *   yield* bulkhead.run(Effect.sleep("10 millis"))
 *   return yield* bulkhead.stats // { inFlight: 0, queued: 0 }
 * })
 * ```
 *
 * @since 0.2.0
 * @category models
 */
export interface Bulkhead {
  readonly maxConcurrent: number
  readonly maxQueued: number
  /** Runs the effect in a slot, after waiting for one if need be, or refuses it. */
  readonly run: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | LlmError.BulkheadFullError, R>
  /** Takes a slot until the scope closes (for a stream read inside it), or refuses. */
  readonly slot: Effect.Effect<void, LlmError.BulkheadFullError, Scope.Scope>
  readonly stats: Effect.Effect<Stats>
}

/**
 * The options describe no bulkhead.
 *
 * @since 0.2.0
 * @category errors
 */
export class BulkheadConfigError extends Data.TaggedError("BulkheadConfigError")<{
  readonly reason: string
}> {
  override get message(): string {
    return `The bulkhead is misconfigured: ${this.reason}`
  }
}

/**
 * Builds a bulkhead. Fails with `BulkheadConfigError` when `maxConcurrent` is not a whole number
 * of at least 1 or `maxQueued` not one of at least 0.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Bulkhead, BulkheadConfigError> =>
  Effect.suspend(() => {
    const maxQueued = options.maxQueued ?? 0
    if (!isPositiveInteger(options.maxConcurrent)) {
      return Effect.fail(
        new BulkheadConfigError({
          reason: `maxConcurrent must be a whole number of at least 1, got ${String(options.maxConcurrent)}`
        })
      )
    }
    if (!(Number.isSafeInteger(maxQueued) && maxQueued >= 0)) {
      return Effect.fail(
        new BulkheadConfigError({ reason: `maxQueued must be a whole number of at least 0, got ${String(maxQueued)}` })
      )
    }
    const bulkhead = new BulkheadImpl({ ...options, maxQueued })
    return Effect.succeed<Bulkhead>({
      maxConcurrent: bulkhead.maxConcurrent,
      maxQueued: bulkhead.maxQueued,
      run: (self) => bulkhead.run(self),
      slot: bulkhead.slot,
      stats: bulkhead.stats
    })
  })
