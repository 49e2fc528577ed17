/**
 * How the deployments router (`Deployments`) orders the deployments of a logical model for a
 * call. Deployments are grouped by `priority` (lower first: a priority-1 deployment is tried only
 * when every priority-0 one failed or had no room); within a group, a deployment with weight 0 is
 * a standby, tried after the others; the rest are ordered by the strategy:
 *
 * | strategy | first | ties |
 * | --- | --- | --- |
 * | `weighted` | a random draw in proportion to the weights | |
 * | `least-busy` | the fewest calls in flight | weighted draw |
 * | `lowest-latency` | the lowest moving average of recent successes' latency; a deployment without a recent success goes first, to learn it | weighted draw |
 * | `cheapest` | the lowest price for this request (its estimated tokens at the deployment's prices) | weighted draw |
 *
 * The router then walks the order, skipping a deployment whose circuit is open, whose rate limit
 * has no room, or whose bulkhead is full, so every strategy only ever picks among the healthy.
 * Draws come from Effect's `Random`: seed it, and a test replays the same choices.
 *
 * @example
 * ```ts
 * import { Routing } from "@resilient-llm/core"
 * import { Effect } from "effect"
 *
 * const ordered = Routing.order("least-busy", [
 *   { name: "azure-east", weight: 1, priority: 0, inFlight: 4, latencyMs: 900, costUsd: 0.002 },
 *   { name: "openai", weight: 1, priority: 0, inFlight: 1, latencyMs: 1200, costUsd: 0.003 }
 * ]) // Effect of [openai, azure-east]
 * ```
 *
 * @since 0.2.0
 */
import type * as Effect from "effect/Effect"
import * as internal from "./internal/routing.js"

/**
 * How the deployments of a priority group are ordered: `weighted` (a random draw by weight, the
 * default), `least-busy` (fewest calls in flight), `lowest-latency` (fastest recent successes),
 * or `cheapest` (lowest estimated cost of the request; every deployment needs a `price`).
 *
 * @since 0.2.0
 * @category models
 */
export type Strategy = "weighted" | "least-busy" | "lowest-latency" | "cheapest"

/**
 * Every strategy.
 *
 * @since 0.2.0
 * @category models
 */
export const strategies: ReadonlyArray<Strategy> = ["weighted", "least-busy", "lowest-latency", "cheapest"]

/**
 * What a strategy knows of a deployment.
 *
 * @since 0.2.0
 * @category models
 */
export interface Candidate {
  readonly name: string
  /** Relative share of traffic; 0 for a standby. */
  readonly weight: number
  /** Lower goes first. */
  readonly priority: number
  readonly inFlight: number
  /** Moving average of recent successes' latency; `undefined` without a recent success. */
  readonly latencyMs: number | undefined
  /** This request's estimated cost; `undefined` without a price. */
  readonly costUsd: number | undefined
}

/**
 * The candidates in the order they are to be tried.
 *
 * @since 0.2.0
 * @category constructors
 */
export const order: <C extends Candidate>(
  strategy: Strategy,
  candidates: ReadonlyArray<C>
) => Effect.Effect<ReadonlyArray<C>> = internal.order
