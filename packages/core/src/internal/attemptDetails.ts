/**
 * What the layers under a pattern's attempt learned about it: the deployments the router tried
 * (each a hop: served, failed, or refused before sending), the one in flight, and what they cost.
 * `Observability.attempt` gives each attempt a fresh record in the context, puts its deployment
 * and cost on the attempt's span and log line, and hands it up to the record of the caller (a
 * fallback chain reads it into its report); the router writes to whichever record is in context,
 * and to none when called outside a pattern.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as LlmError from "../LlmError.js"

/**
 * One call the router made (or refused to make) on a deployment.
 *
 * @internal
 */
export interface Hop {
  readonly deployment: string
  readonly outcome: "success" | "failure"
  /** The failure, or the refusal (`ThrottledError`, `BulkheadFullError`, `CircuitOpenError`). */
  readonly error: LlmError.LlmError | undefined
  readonly startedAt: number
  readonly durationMs: number
  readonly costUsd: number | undefined
}

/** @internal */
export interface Details {
  readonly hops: Array<Hop>
  /** The deployment called last (in flight, or the last that answered). */
  current: string | undefined
}

/** @internal */
export const make = (): Details => ({ hops: [], current: undefined })

/** @internal */
export const CurrentDetails = Context.Reference<Details | undefined>("@resilient-llm/core/AttemptDetails", {
  defaultValue: () => undefined
})

/** The cost of every hop that has one, `undefined` when none has. @internal */
export const costOf = (details: Details): number | undefined => {
  let total: number | undefined
  for (const hop of details.hops) if (hop.costUsd !== undefined) total = (total ?? 0) + hop.costUsd
  return total
}

/** Adds an inner record's hops to an outer one. @internal */
export const merge = (outer: Details, inner: Details): void => {
  for (const hop of inner.hops) outer.hops.push(hop)
  if (inner.current !== undefined) outer.current = inner.current
}

/** Runs `f` on the record in context, if there is one. @internal */
export const update = (f: (details: Details) => void): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    const details = fiber.getRef(CurrentDetails)
    if (details !== undefined) f(details)
    return Effect.void
  })
