/**
 * How every figure is taken: each contender is warmed up, then measured in several rounds, the
 * contenders taking turns round by round (so a burst of load from another process on this shared
 * machine hits all of them rather than one), and reported as the median round with the spread of
 * the rounds. Every measured call feeds its result into a sink that is checked at the end, so no
 * engine can drop the work as dead code. Garbage is collected on demand only to measure memory.
 */
import { Effect } from "effect"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

/** A figure over several rounds. */
export interface Stat {
  readonly median: number
  readonly min: number
  readonly max: number
  /** `(max - min) / median`: how far apart the rounds were. */
  readonly spread: number
  readonly rounds: ReadonlyArray<number>
}

export const stat = (values: ReadonlyArray<number>): Stat => {
  if (values.length === 0) throw new Error("no rounds were measured")
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  const median = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
  const min = sorted[0]
  const max = sorted[sorted.length - 1]
  return { median, min, max, spread: median === 0 ? 0 : (max - min) / median, rounds: values }
}

/** The same figure in another unit: every round multiplied by `factor`. */
export const scaleStat = (figure: Stat, factor: number): Stat => stat(figure.rounds.map((value) => value * factor))

/** The value at quantile `q` (0 to 1) of `values`, nearest rank. */
export const quantile = (values: ReadonlyArray<number>, q: number): number => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]
}

let sunk = 0

/** Keeps a measured result alive: every call's result goes through here. */
export const sink = (value: number): void => {
  sunk = (sunk + value) % 1_000_000_007
}

/** What the sink holds; printed in the JSON so nothing could be proven unused. */
export const sinkValue = (): number => sunk

type Gc = () => void

const findGc = (): Gc | undefined => {
  const existing: unknown = Reflect.get(globalThis, "gc")
  if (typeof existing === "function") return () => Reflect.apply(existing, undefined, [])
  try {
    // Without --expose-gc: turn the flag on and take `gc` from a fresh context, where it now exists.
    setFlagsFromString("--expose-gc")
    const fresh: unknown = runInNewContext("gc")
    if (typeof fresh === "function") return () => Reflect.apply(fresh, undefined, [])
  } catch {
    // no way to collect on demand: rounds then include whatever garbage the previous one left
  }
  return undefined
}

const gcFunction = findGc()

/** Collects garbage now, when the runtime allows it; says whether it could. */
export const collectGarbage = (): boolean => {
  if (gcFunction === undefined) return false
  gcFunction()
  gcFunction()
  return true
}

/** A contender: runs its measured work once per call of `run`, with the size of a round. */
export interface Contender<K extends string = string> {
  readonly key: K
  /** Runs `size` units of work (calls, requests) and returns how many it did. */
  readonly run: (size: number) => Promise<number>
}

export interface RoundsOptions {
  /** Rounds measured per contender. */
  readonly rounds: number
  /** Units of work per round. */
  readonly size: number
  /** Units of work run once, unmeasured, before the rounds. */
  readonly warmup: number
}

/** One contender's rounds: the wall time per unit (ns) and the CPU time per unit (ns). */
export interface Timing {
  readonly wallNsPerUnit: Stat
  readonly cpuNsPerUnit: Stat
  readonly unitsPerSecond: Stat
}

/**
 * Warms every contender up, then measures `rounds` rounds of `size` units, the contenders in turn
 * within each round. Garbage is not collected by force between rounds: every forced full
 * collection ages V8's bytecode, and code that sat through a few of them (another contender's
 * rounds) is flushed and runs cold again, which measured the JIT rather than the code.
 */
export const measureRounds = async <K extends string>(
  contenders: ReadonlyArray<Contender<K>>,
  options: RoundsOptions
): Promise<ReadonlyMap<K, Timing>> => {
  for (const contender of contenders) {
    if (options.warmup > 0) await contender.run(options.warmup)
  }
  const wall = new Map<K, Array<number>>()
  const cpu = new Map<K, Array<number>>()
  const rate = new Map<K, Array<number>>()
  for (let round = 0; round < options.rounds; round++) {
    // alternate the order, so that no contender always runs right after the same other one
    const order = round % 2 === 0 ? contenders : [...contenders].reverse()
    for (const contender of order) {
      const cpuBefore = process.cpuUsage()
      const start = process.hrtime.bigint()
      const units = await contender.run(options.size)
      const elapsed = Number(process.hrtime.bigint() - start)
      const cpuUsed = process.cpuUsage(cpuBefore)
      if (units <= 0) throw new Error(`${contender.key} did no work`)
      push(wall, contender.key, elapsed / units)
      push(cpu, contender.key, ((cpuUsed.user + cpuUsed.system) * 1000) / units)
      push(rate, contender.key, units / (elapsed / 1e9))
    }
  }
  const result = new Map<K, Timing>()
  for (const contender of contenders) {
    result.set(contender.key, {
      wallNsPerUnit: stat(wall.get(contender.key) ?? []),
      cpuNsPerUnit: stat(cpu.get(contender.key) ?? []),
      unitsPerSecond: stat(rate.get(contender.key) ?? [])
    })
  }
  return result
}

/** Runs `once` `total` times from `concurrency` loops that share the count. */
export const promiseWorkers = async (
  total: number,
  concurrency: number,
  once: () => Promise<number>
): Promise<number> => {
  let started = 0
  const worker = async () => {
    while (started < total) {
      started++
      sink(await once())
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker))
  return total
}

/** The same for an effect: `concurrency` fibers that share the count. */
export const effectWorkers = <E, R>(
  total: number,
  concurrency: number,
  once: Effect.Effect<number, E, R>
): Effect.Effect<number, E, R> =>
  Effect.suspend(() => {
    let started = 0
    const worker = Effect.whileLoop({
      while: () => started < total,
      body: () => {
        started++
        return once
      },
      step: sink
    })
    return Effect.as(
      Effect.all(Array.from({ length: Math.min(concurrency, total) }, () => worker), {
        concurrency: "unbounded",
        discard: true
      }),
      total
    )
  })

/** The timing of `key`, which `measureRounds` measured. */
export const timingOf = <K>(timings: ReadonlyMap<K, Timing>, key: K): Timing => {
  const timing = timings.get(key)
  if (timing === undefined) throw new Error(`no timing for ${String(key)}`)
  return timing
}

const push = <K>(map: Map<K, Array<number>>, key: K, value: number): void => {
  const values = map.get(key)
  if (values === undefined) map.set(key, [value])
  else values.push(value)
}
