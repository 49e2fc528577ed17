/**
 * The benchmarks, their sizes in each mode, and the runner the command line and the smoke test
 * share. `quick` is for the smoke test and a first look (a few seconds each); `full` is what the
 * committed figures come from.
 */
import { breaker, type BreakerOptions } from "./breaker.js"
import { gateway, type GatewayOptions } from "./gateway.js"
import { currentLoad, type Machine, machine } from "./machine.js"
import { sinkValue } from "./measure.js"
import { outage, type OutageOptions } from "./outage.js"
import { overhead, type OverheadOptions } from "./overhead.js"
import type { Section } from "./report.js"
import { sse, type SseOptions } from "./sse.js"
import { stores, type StoresOptions } from "./stores.js"
import { streaming, type StreamingOptions } from "./streaming.js"
import { throughput, type ThroughputOptions } from "./throughput.js"

export const benchmarkIds = [
  "overhead",
  "throughput",
  "streaming",
  "breaker",
  "outage",
  "gateway",
  "sse",
  "stores"
] as const

export type BenchmarkId = (typeof benchmarkIds)[number]

export type Mode = "quick" | "full" | "smoke"

export interface Plan {
  readonly mode: Mode
  readonly benchmarks: ReadonlyArray<BenchmarkId>
  readonly overhead: OverheadOptions
  readonly throughput: ThroughputOptions
  readonly streaming: StreamingOptions
  readonly breaker: BreakerOptions
  readonly outage: OutageOptions
  readonly gateway: GatewayOptions
  readonly sse: SseOptions
  readonly stores: StoresOptions
}

const sizes: Record<Mode, Omit<Plan, "mode" | "benchmarks">> = {
  smoke: {
    overhead: { rounds: 2, size: 50, warmup: 20 },
    throughput: { concurrency: [1, 4], rounds: 2, size: 20, warmup: 10 },
    streaming: { chunksPerStream: 50, rounds: 2, size: 100, warmup: 50 },
    breaker: { callers: 50, rounds: 2, size: 500, warmup: 200, keys: 5_000, opossumKeys: 200 },
    outage: { requests: 500, bestOfNModels: 3 },
    gateway: { concurrency: [1, 64], rounds: 2, size: 64, warmup: 64 },
    sse: { limitsMiB: [1, 4], events: 1_000, rounds: 2, warmup: 1 },
    stores: { rounds: 2, size: 50, warmup: 20 }
  },
  quick: {
    overhead: { rounds: 5, size: 2_000, warmup: 2_000 },
    throughput: { concurrency: [1, 16, 64], rounds: 3, size: 500, warmup: 300 },
    streaming: { chunksPerStream: 1_000, rounds: 3, size: 20_000, warmup: 10_000 },
    breaker: { callers: 1_000, rounds: 3, size: 50_000, warmup: 20_000, keys: 20_000, opossumKeys: 2_000 },
    outage: { requests: 1_000, bestOfNModels: 4 },
    gateway: { concurrency: [1, 64], rounds: 5, size: 1_000, warmup: 1_000 },
    sse: { limitsMiB: [1, 2, 4, 8], events: 20_000, rounds: 3, warmup: 1 },
    stores: { rounds: 3, size: 2_000, warmup: 1_000 }
  },
  full: {
    overhead: { rounds: 9, size: 10_000, warmup: 20_000 },
    throughput: { concurrency: [1, 16, 64], rounds: 5, size: 2_000, warmup: 2_000 },
    streaming: { chunksPerStream: 1_000, rounds: 7, size: 50_000, warmup: 30_000 },
    breaker: { callers: 1_000, rounds: 7, size: 200_000, warmup: 100_000, keys: 100_000, opossumKeys: 10_000 },
    outage: { requests: 1_000, bestOfNModels: 4 },
    gateway: { concurrency: [1, 64], rounds: 9, size: 3_000, warmup: 3_000 },
    sse: { limitsMiB: [1, 2, 4, 8], events: 20_000, rounds: 7, warmup: 2 },
    stores: { rounds: 7, size: 5_000, warmup: 5_000 }
  }
}

export const plan = (mode: Mode, benchmarks: ReadonlyArray<BenchmarkId> = benchmarkIds): Plan => ({
  mode,
  benchmarks,
  ...sizes[mode]
})

export interface Run {
  readonly mode: Mode
  readonly machine: Machine
  readonly loadAfter: readonly [number, number, number]
  readonly durationSeconds: number
  readonly sections: ReadonlyArray<Section>
  readonly sink: number
}

const runOne = (id: BenchmarkId, chosen: Plan): Promise<Section> => {
  switch (id) {
    case "overhead":
      return overhead(chosen.overhead)
    case "throughput":
      return throughput(chosen.throughput)
    case "streaming":
      return streaming(chosen.streaming)
    case "breaker":
      return breaker(chosen.breaker)
    case "outage":
      return outage(chosen.outage)
    case "gateway":
      return gateway(chosen.gateway)
    case "sse":
      return sse(chosen.sse)
    case "stores":
      return stores(chosen.stores)
  }
}

/** Runs the benchmarks of `chosen` in order, saying which one is running through `progress`. */
export const runBenchmarks = async (chosen: Plan, progress: (line: string) => void = () => {}): Promise<Run> => {
  const started = process.hrtime.bigint()
  const host = machine()
  progress(
    `node ${host.node}, ${host.cpu}, ${host.cores} cores, load ${host.loadAverage.map((n) => n.toFixed(2)).join(" ")}`
  )
  const sections: Array<Section> = []
  for (const id of chosen.benchmarks) {
    progress(`running ${id} (${chosen.mode})...`)
    sections.push(await runOne(id, chosen))
  }
  return {
    mode: chosen.mode,
    machine: host,
    loadAfter: currentLoad(),
    durationSeconds: Number(process.hrtime.bigint() - started) / 1e9,
    sections,
    sink: sinkValue()
  }
}
