/**
 * The order in which a logical model's deployments are tried: by priority, then by the strategy,
 * ties and the `weighted` strategy broken by a weighted random draw (Efraimidis and Spirakis: each
 * deployment draws `u ^ (1 / weight)` and the largest goes first, so a deployment comes first with
 * probability weight / total, and so on down the list).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import type * as Routing from "../Routing.js"

interface Ranked<C extends Routing.Candidate> {
  readonly candidate: C
  readonly index: number
  readonly draw: number
}

const metric = (strategy: Routing.Strategy, candidate: Routing.Candidate): number => {
  switch (strategy) {
    case "weighted":
      return 0
    case "least-busy":
      return candidate.inFlight
    case "lowest-latency":
      // no recent success yet: try it first, to learn its latency
      return candidate.latencyMs ?? -1
    case "cheapest":
      return candidate.costUsd ?? Number.POSITIVE_INFINITY
  }
}

const compare = (strategy: Routing.Strategy) => <C extends Routing.Candidate>(a: Ranked<C>, b: Ranked<C>): number => {
  if (a.candidate.priority !== b.candidate.priority) return a.candidate.priority - b.candidate.priority
  // a weight of 0 is a standby: after every deployment with a weight, whatever the strategy
  const standbyA = a.candidate.weight > 0 ? 0 : 1
  const standbyB = b.candidate.weight > 0 ? 0 : 1
  if (standbyA !== standbyB) return standbyA - standbyB
  const byMetric = metric(strategy, a.candidate) - metric(strategy, b.candidate)
  if (byMetric !== 0 && !Number.isNaN(byMetric)) return byMetric
  if (a.draw !== b.draw) return b.draw - a.draw
  return a.index - b.index
}

/** @internal */
export const order = <C extends Routing.Candidate>(
  strategy: Routing.Strategy,
  candidates: ReadonlyArray<C>
): Effect.Effect<ReadonlyArray<C>> => {
  if (candidates.length <= 1) return Effect.succeed(candidates)
  return Effect.map(
    Effect.forEach(candidates, () => Random.next),
    (draws) =>
      candidates
        .map((candidate, index): Ranked<C> => ({
          candidate,
          index,
          draw: candidate.weight > 0 ? Math.pow(draws[index], 1 / candidate.weight) : draws[index]
        }))
        .sort(compare(strategy))
        .map((ranked) => ranked.candidate)
  )
}
