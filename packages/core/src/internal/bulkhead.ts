/**
 * The bulkhead: a semaphore of `maxConcurrent` permits and a count of the calls waiting for one,
 * refused beyond `maxQueued`. The counts are plain fields, changed only inside effects that run
 * without yielding in between, so the router can read them synchronously when it ranks
 * deployments.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import type * as Bulkhead from "../Bulkhead.js"
import * as LlmError from "../LlmError.js"

/** @internal */
export const inFlightGauge = Metric.gauge("resilient_llm_bulkhead_in_flight", {
  description: "Calls running through a bulkhead, by model and deployment"
})

/** @internal */
export const queuedGauge = Metric.gauge("resilient_llm_bulkhead_queued", {
  description: "Calls waiting for a bulkhead slot, by model and deployment"
})

/** @internal */
export const refusals = Metric.counter("resilient_llm_bulkhead_refusals_total", {
  description: "Calls a full bulkhead refused, by model and deployment",
  incremental: true
})

/** @internal */
export class BulkheadImpl implements Bulkhead.Bulkhead {
  inFlight = 0
  queued = 0
  private readonly semaphore: Semaphore.Semaphore
  private readonly labels: Readonly<Record<string, string>>
  private readonly gauges: () => Effect.Effect<void>

  constructor(readonly options: Bulkhead.Options & { readonly maxQueued: number }) {
    this.semaphore = Semaphore.makeUnsafe(options.maxConcurrent)
    this.labels = { model: options.model, deployment: options.deployment ?? "" }
    const inFlight = Metric.withAttributes(inFlightGauge, this.labels)
    const queued = Metric.withAttributes(queuedGauge, this.labels)
    this.gauges = () => Effect.andThen(Metric.update(inFlight, this.inFlight), Metric.update(queued, this.queued))
  }

  get maxConcurrent(): number {
    return this.options.maxConcurrent
  }

  get maxQueued(): number {
    return this.options.maxQueued
  }

  /** Whether a call would get a slot at once. */
  get hasFreeSlot(): boolean {
    return this.inFlight < this.options.maxConcurrent
  }

  /** Whether a call would be admitted, at once or after waiting. */
  get admits(): boolean {
    return this.hasFreeSlot || this.queued < this.options.maxQueued
  }

  get stats(): Effect.Effect<Bulkhead.Stats> {
    return Effect.sync(() => ({ inFlight: this.inFlight, queued: this.queued }))
  }

  private refuse(): Effect.Effect<never, LlmError.BulkheadFullError> {
    return Effect.andThen(
      Metric.update(Metric.withAttributes(refusals, this.labels), 1),
      Effect.fail(
        new LlmError.BulkheadFullError({
          model: this.options.model,
          deployment: this.options.deployment,
          maxConcurrent: this.options.maxConcurrent,
          maxQueued: this.options.maxQueued
        })
      )
    )
  }

  /**
   * Takes a slot: at once if one is free, after waiting if fewer than `maxQueued` wait already,
   * or not at all. Run it uninterruptibly with `restore` for the wait, so a slot taken is always
   * counted and an interrupted wait always leaves the queue.
   */
  private acquire(restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>) {
    return Effect.flatMap(
      this.semaphore.takeIfAvailable(1),
      (taken): Effect.Effect<void, LlmError.BulkheadFullError> => {
        if (taken) {
          this.inFlight += 1
          return this.gauges()
        }
        if (this.queued >= this.options.maxQueued) return this.refuse()
        this.queued += 1
        return Effect.andThen(
          this.gauges(),
          restore(this.semaphore.take(1)).pipe(
            Effect.onExit(() =>
              Effect.suspend(() => {
                this.queued -= 1
                return this.gauges()
              })
            ),
            Effect.andThen(Effect.suspend(() => {
              this.inFlight += 1
              return this.gauges()
            }))
          )
        )
      }
    )
  }

  private readonly release = Effect.suspend(() => {
    this.inFlight -= 1
    return Effect.andThen(this.semaphore.release(1), this.gauges())
  })

  run<A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | LlmError.BulkheadFullError, R> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(this.acquire(restore), () => restore(self).pipe(Effect.ensuring(this.release)))
    )
  }

  get slot(): Effect.Effect<void, LlmError.BulkheadFullError, Scope.Scope> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(this.acquire(restore), () => Effect.addFinalizer(() => this.release))
    )
  }
}
