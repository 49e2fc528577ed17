/**
 * The status page's memory: per series (a virtual model, or one deployment of one), the requests
 * of the interval now running, closed every `interval` into a point (requests, errors, error rate,
 * latency p50/p95/p99 of that interval), with the last `points` points kept, and its totals since
 * the start (requests, errors, US dollars spent); and per circuit, its last transitions. Bounded whatever the traffic: an interval keeps at most `sampleCap` latencies.
 *
 * @internal
 */
import type * as Gateway from "../Gateway.js"

/** @internal */
export type Point = Gateway.Point

/** @internal */
export type TransitionRecord = Gateway.DeploymentStatus["transitions"][number]

interface Series {
  requests: number
  errors: number
  latencies: Array<number>
  seen: number
  totalRequests: number
  totalErrors: number
  totalCostUsd: number
  readonly points: Array<Point>
}

const sampleCap = 2048
const transitionsKept = 50

const quantile = (sorted: ReadonlyArray<number>, q: number): number | undefined => {
  if (sorted.length === 0) return undefined
  const position = (sorted.length - 1) * q
  const lower = Math.floor(position)
  const upper = Math.ceil(position)
  return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower)
}

/** @internal */
export class History {
  private readonly series = new Map<string, Series>()
  private readonly transitions = new Map<string, Array<TransitionRecord>>()

  constructor(readonly points: number) {}

  private seriesOf(name: string): Series {
    let series = this.series.get(name)
    if (series === undefined) {
      series = {
        requests: 0,
        errors: 0,
        latencies: [],
        seen: 0,
        totalRequests: 0,
        totalErrors: 0,
        totalCostUsd: 0,
        points: []
      }
      this.series.set(name, series)
    }
    return series
  }

  record(name: string, latencyMs: number, failed: boolean, costUsd?: number): void {
    const series = this.seriesOf(name)
    if (costUsd !== undefined) series.totalCostUsd += costUsd
    series.requests++
    series.totalRequests++
    if (failed) {
      series.errors++
      series.totalErrors++
    }
    // past the cap, later latencies overwrite earlier ones in turn: every part of the interval stays represented
    if (series.latencies.length < sampleCap) series.latencies.push(latencyMs)
    else series.latencies[series.seen % sampleCap] = latencyMs
    series.seen++
  }

  /** Adds to a series' cost what was spent after its request was recorded (a stream's calls end with it). */
  addCost(name: string, costUsd: number): void {
    this.seriesOf(name).totalCostUsd += costUsd
  }

  transition(key: string, record: TransitionRecord): void {
    let list = this.transitions.get(key)
    if (list === undefined) {
      list = []
      this.transitions.set(key, list)
    }
    list.push(record)
    if (list.length > transitionsKept) list.splice(0, list.length - transitionsKept)
  }

  /** Closes the running interval of every series into a point ending at `now`. */
  tick(now: number): void {
    for (const series of this.series.values()) {
      const sorted = series.latencies.sort((a, b) => a - b)
      series.points.push({
        at: now,
        requests: series.requests,
        errors: series.errors,
        errorRate: series.requests === 0 ? 0 : series.errors / series.requests,
        p50: quantile(sorted, 0.5),
        p95: quantile(sorted, 0.95),
        p99: quantile(sorted, 0.99)
      })
      if (series.points.length > this.points) series.points.splice(0, series.points.length - this.points)
      series.requests = 0
      series.errors = 0
      series.latencies = []
      series.seen = 0
    }
  }

  pointsOf(name: string): ReadonlyArray<Point> {
    return this.series.get(name)?.points ?? []
  }

  totalsOf(name: string): { readonly requests: number; readonly errors: number; readonly costUsd: number } {
    const series = this.series.get(name)
    return {
      requests: series?.totalRequests ?? 0,
      errors: series?.totalErrors ?? 0,
      costUsd: series?.totalCostUsd ?? 0
    }
  }

  transitionsOf(key: string): ReadonlyArray<TransitionRecord> {
    return this.transitions.get(key) ?? []
  }
}
