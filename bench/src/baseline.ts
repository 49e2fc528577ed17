/**
 * The "before" of the Effect 3 → Effect 4 comparison: the per-call figures of the last full
 * `pnpm bench` run on Effect 3, committed in RESULTS.md on 2026-11-25 (commit 921746f). They cannot
 * be measured again (the workspace no longer installs Effect 3), so they are kept here as data,
 * as that run printed them: the median of the rounds with its `±` (half the range of the rounds,
 * relative to the median). `compare.ts` puts them beside the same rows of a new run.
 */
import type { Column } from "./report.js"
import type { BenchmarkId } from "./suite.js"

/** One figure as the Effect 3 run printed it. */
export interface BaselineFigure {
  readonly median: number
  readonly unit: string
  /** The printed `±`, in percent; absent for a figure measured once (heap per key). */
  readonly plusMinus?: number
}

export interface BaselineRow {
  /** The key of the same row in a new run (`Row.key`). */
  readonly key: string
  readonly label: string
  /** By column key, as in the new run's section. */
  readonly cells: Readonly<Record<string, BaselineFigure>>
  /** How the row's code differed from what a new run measures, when it did. */
  readonly note?: string
}

export interface BaselineSection {
  readonly id: BenchmarkId
  readonly title: string
  /** The columns compared, in order. */
  readonly columns: ReadonlyArray<Column>
  readonly rows: ReadonlyArray<BaselineRow>
}

export interface Baseline {
  /** The Effect version the figures measured. */
  readonly effect: string
  /** When the figures were committed, and in which commit. */
  readonly date: string
  readonly commit: string
  readonly command: string
  readonly mode: "full"
  readonly node: string
  readonly machine: string
  readonly versions: Readonly<Record<string, string>>
  readonly loadBefore: readonly [number, number, number]
  readonly loadAfter: readonly [number, number, number]
  readonly durationSeconds: number
  readonly sections: ReadonlyArray<BaselineSection>
}

const ns = (median: number, plusMinus: number): BaselineFigure => ({ median, unit: "ns", plusMinus })
const us = (median: number, plusMinus: number): BaselineFigure => ({ median, unit: "µs", plusMinus })
const rate = (unit: string) => (median: number, plusMinus: number): BaselineFigure => ({ median, unit, plusMinus })
const requests = rate("req/s")
const chunks = rate("chunks/s")
const calls = rate("calls/s")
const bytes = (median: number): BaselineFigure => ({ median, unit: "B" })

const chainBuiltPerRequest = "Effect 3 run: the chain (and the breaker it reads) was built inside every measured " +
  "request; it is built once since commit 69f32e3, as in the overhead benchmark."

const throughputRows = (
  concurrency: number,
  figures: Readonly<
    Record<
      "undici" | "openai" | "oursUndici" | "oursFetch" | "oursChain",
      readonly [
        rps: BaselineFigure,
        cpu: BaselineFigure
      ]
    >
  >
): ReadonlyArray<BaselineRow> => {
  const row = (key: keyof typeof figures, label: string, note?: string): BaselineRow => {
    const [rps, cpu] = figures[key]
    const found = { key: `${key}.c${concurrency}`, label: `c=${concurrency} ${label}`, cells: { rps, cpu } }
    return note === undefined ? found : { ...found, note }
  }
  return [
    row("undici", "undici.request + JSON.parse (floor)"),
    row("openai", "openai SDK (fetch)"),
    row("oursUndici", "resilient-llm OpenAiCompatible (undici)"),
    row("oursFetch", "resilient-llm OpenAiCompatible (fetch)"),
    row("oursChain", "  + Fallback.chain(timeout, retry, breaker)", chainBuiltPerRequest)
  ]
}

/** The Effect 3.22.4 run of bench/RESULTS.md (2026-11-25). */
export const effect3: Baseline = {
  effect: "3.22.4",
  date: "2026-11-25",
  commit: "921746f",
  command: "npx -y pnpm@10 bench --out results.json",
  mode: "full",
  node: "v20.20.2",
  machine: "AMD EPYC, 2 cores, 24 GiB, linux 6.18.44-fc-v782 x64",
  versions: {
    effect: "3.22.4",
    "@effect/platform": "0.97.2",
    "@effect/platform-node": "0.108.2",
    cockatiel: "3.2.1",
    opossum: "9.0.0",
    openai: "6.49.0",
    undici: "7.30.2"
  },
  loadBefore: [1.87, 1.64, 2.32],
  loadAfter: [1.19, 1.57, 2.11],
  durationSeconds: 302,
  sections: [
    {
      id: "overhead",
      title: "1. Policy overhead per call (a call that succeeds at once)",
      columns: [{ key: "cpu", header: "CPU per call" }, { key: "wall", header: "wall per call" }],
      rows: [
        { key: "promise", label: "bare call (promise)", cells: { cpu: ns(47.9, 40), wall: ns(46.8, 25) } },
        { key: "effect", label: "bare call (Effect)", cells: { cpu: ns(1501, 326), wall: ns(1042, 255) } },
        {
          key: "cockatiel",
          label: "cockatiel wrap(retry, breaker, timeout)",
          cells: { cpu: ns(27539, 47), wall: ns(24876, 33) }
        },
        {
          key: "opossum",
          label: "opossum breaker(timeout) + retry loop",
          cells: { cpu: ns(3290, 24), wall: ns(2381, 21) }
        },
        {
          key: "ours",
          label: "resilient-llm Fallback.chain (1 model)",
          cells: { cpu: ns(296_239, 23), wall: ns(244_921, 23) }
        },
        {
          key: "oursQuiet",
          label: "  same, logs below minimum level",
          cells: { cpu: ns(236_862, 18), wall: ns(192_365, 20) }
        },
        {
          key: "oursRunPromise",
          label: "  same, one runPromise per call",
          cells: { cpu: ns(299_906, 19), wall: ns(244_006, 19) }
        },
        {
          key: "effectPrimitives",
          label: "  Effect primitives only (no fallback/observability)",
          cells: { cpu: ns(90507, 46), wall: ns(77182, 39) }
        }
      ]
    },
    {
      id: "throughput",
      title: "2. HTTP client throughput over loopback (server in a child process)",
      columns: [{ key: "rps", header: "requests/s" }, { key: "cpu", header: "client CPU per request" }],
      rows: [
        ...throughputRows(1, {
          undici: [requests(7082, 30), us(110, 44)],
          openai: [requests(1361, 16), us(740, 13)],
          oursUndici: [requests(1574, 21), us(549, 28)],
          oursFetch: [requests(836, 14), us(1182, 10)],
          oursChain: [requests(830, 26), us(1208, 22)]
        }),
        ...throughputRows(16, {
          undici: [requests(14315, 25), us(70.8, 33)],
          openai: [requests(1863, 38), us(661, 39)],
          oursUndici: [requests(1640, 24), us(690, 21)],
          oursFetch: [requests(1112, 31), us(1048, 39)],
          oursChain: [requests(941, 28), us(1221, 22)]
        }),
        ...throughputRows(64, {
          undici: [requests(8221, 46), us(125, 27)],
          openai: [requests(1450, 27), us(816, 27)],
          oursUndici: [requests(1648, 29), us(660, 28)],
          oursFetch: [requests(847, 7), us(1382, 7)],
          oursChain: [requests(752, 8), us(1568, 7)]
        })
      ]
    },
    {
      id: "streaming",
      title: "3. Streaming: parsing the same SSE stream (1000 chunks per stream, one stream at a time)",
      columns: [{ key: "rate", header: "chunks/s" }, { key: "cpu", header: "CPU per chunk" }],
      rows: [
        {
          key: "undici",
          label: "undici.request + line split + JSON.parse (floor)",
          cells: { rate: chunks(453_771, 30), cpu: us(1.9, 50) }
        },
        { key: "openai", label: "openai SDK stream", cells: { rate: chunks(45053, 26), cpu: us(26.5, 29) } },
        {
          key: "ours",
          label: "resilient-llm ChatClient.stream (undici)",
          cells: { rate: chunks(61576, 29), cpu: us(19, 34) }
        }
      ]
    },
    {
      id: "breaker",
      title: "4. Breaker under contention (1000 concurrent callers, one key)",
      columns: [{ key: "rate", header: "calls/s" }, { key: "cpu", header: "CPU per call" }],
      rows: [
        { key: "effect", label: "no breaker (fibers)", cells: { rate: calls(744_606, 11), cpu: us(1.52, 11) } },
        {
          key: "ours",
          label: "resilient-llm CircuitBreaker, one key",
          cells: { rate: calls(89923, 9), cpu: us(13.3, 10) }
        },
        {
          key: "promise",
          label: "no breaker (async loops)",
          cells: { rate: calls(10_677_910, 40), cpu: us(0.12, 84) }
        },
        {
          key: "cockatiel",
          label: "cockatiel circuitBreaker, one policy",
          cells: { rate: calls(3_438_259, 9), cpu: us(0.31, 11) }
        },
        {
          key: "opossum",
          label: "opossum CircuitBreaker, one breaker",
          cells: { rate: calls(1_404_256, 19), cpu: us(0.75, 24) }
        }
      ]
    },
    {
      id: "breaker",
      title: "4. Memory per breaker key",
      columns: [{ key: "memory", header: "heap" }],
      rows: [
        { key: "oursHeapPerKey", label: "resilient-llm, heap per key (100000 keys)", cells: { memory: bytes(436) } },
        { key: "cockatielHeapPerKey", label: "cockatiel, heap per policy (100000)", cells: { memory: bytes(1189) } },
        { key: "opossumHeapPerKey", label: "opossum, heap per breaker (10000)", cells: { memory: bytes(7226) } }
      ]
    }
  ]
}
