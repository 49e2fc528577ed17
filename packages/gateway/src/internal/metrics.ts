/**
 * The gateway's own metrics, beside the library's per-attempt ones; re-exported by `Gateway`.
 *
 * @internal
 */
import * as Metric from "effect/Metric"

/** @internal */
export const requests = Metric.counter("resilient_llm_gateway_requests_total", {
  description: "Chat requests answered by the gateway, by virtual model, key and status",
  incremental: true
})

/** @internal */
export const duration = Metric.histogram("resilient_llm_gateway_request_duration_ms", {
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 18 }),
  description: "Gateway chat request latency in milliseconds (streams: to the first chunk), by virtual model"
})

/** @internal */
export const cost = Metric.counter("resilient_llm_gateway_cost_usd_total", {
  description: "What the gateway's requests cost in US dollars, at the deployments' prices, by virtual model and key",
  incremental: true
})

/** @internal */
export const inFlight = Metric.gauge("resilient_llm_gateway_requests_in_flight", {
  description: "Chat requests in flight"
})

/** @internal */
export const reloads = Metric.counter("resilient_llm_gateway_reloads_total", {
  description: "Configuration reloads by result",
  incremental: true
})

// One labelled metric per label set, reused: `withAttributes` recomputes a series key per new
// wrapper, and the label sets here are few (virtual models × keys × statuses).
const labelled = new Map<string, Metric.Metric<number, unknown>>()

/** @internal */
export const withLabels = <State>(
  metric: Metric.Metric<number, State>,
  labels: Readonly<Record<string, string>>
): Metric.Metric<number, unknown> => {
  let id = metric.id
  for (const key in labels) id += `\u0000${key}\u0000${labels[key]}`
  const cached = labelled.get(id)
  if (cached !== undefined) return cached
  const made = Metric.withAttributes(metric, labels)
  if (labelled.size < 4096) labelled.set(id, made)
  return made
}
