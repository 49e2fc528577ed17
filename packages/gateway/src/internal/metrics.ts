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

const durationBoundaries = Metric.exponentialBoundaries({ start: 1, factor: 2, count: 18 })

/** @internal */
export const duration = Metric.histogram("resilient_llm_gateway_request_duration_ms", {
  boundaries: durationBoundaries,
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

// One metric per label set, built with its labels as attributes and reused, as the library builds
// its own series: `Metric.withAttributes` would put the labels in a new context and serialize the
// series key again on every update. The label sets are few (virtual models × keys × statuses).
const labelled = new Map<string, Metric.Metric<number, unknown>>()

const seriesOf = (
  id: string,
  labels: Readonly<Record<string, string>>,
  make: (attributes: Readonly<Record<string, string>>) => Metric.Metric<number, unknown>
): Metric.Metric<number, unknown> => {
  let key = id
  for (const name in labels) key += `\u0000${name}\u0000${labels[name]}`
  const cached = labelled.get(key)
  if (cached !== undefined) return cached
  const made = make(labels)
  if (labelled.size < 4096) labelled.set(key, made)
  return made
}

const labelledCounter = (metric: typeof requests) => (labels: Readonly<Record<string, string>>) =>
  seriesOf(
    metric.id,
    labels,
    (attributes) => Metric.counter(metric.id, { description: metric.description, incremental: true, attributes })
  )

/** `requests`, by virtual model, key and status. @internal */
export const requestsWith = labelledCounter(requests)

/** `cost`, by virtual model and key. @internal */
export const costWith = labelledCounter(cost)

/** `reloads`, by result. @internal */
export const reloadsWith = labelledCounter(reloads)

/** `duration`, by virtual model. @internal */
export const durationWith = (labels: Readonly<Record<string, string>>): Metric.Metric<number, unknown> =>
  seriesOf(duration.id, labels, (attributes) =>
    Metric.histogram(duration.id, {
      boundaries: durationBoundaries,
      description: duration.description,
      attributes
    }))
