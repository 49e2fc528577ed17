/**
 * Benchmark 4: the circuit breaker under contention and at scale. Contention: 1,000 concurrent
 * callers (fibers, or async loops for cockatiel and opossum) all calling through one key, each
 * call yielding once so that hundreds are in flight at the same time; reported as calls per
 * second and CPU per call, against the same callers without a breaker. Scale: the heap one more
 * key costs, measured over 100,000 keys (opossum over fewer: each of its breakers runs its own
 * interval timer) with garbage collected before and after.
 */
import { CircuitBreaker } from "@resilient-llm/core"
import type { CircuitBreakerPolicy } from "cockatiel"
import { Effect, Layer, ManagedRuntime } from "effect"
import OpossumBreaker from "opossum"
import { breakerOptions, cockatielBreaker, DiscardLogs, opossumBreakerOptions } from "./contenders.js"
import {
  collectGarbage,
  type Contender,
  effectWorkers,
  measureRounds,
  promiseWorkers,
  scaleStat,
  sink,
  timingOf
} from "./measure.js"
import { perRound, roundRatios, type Row, type Section, statCell, valueCell } from "./report.js"

export interface BreakerOptions {
  readonly callers: number
  readonly rounds: number
  /** Calls per round, shared by the callers. */
  readonly size: number
  readonly warmup: number
  readonly keys: number
  readonly opossumKeys: number
}

type Key = "effect" | "wrapper" | "ours" | "promise" | "cockatiel" | "opossum"

const labels: Record<Key, string> = {
  effect: "no breaker (fibers)",
  wrapper: "no breaker, Effect's lightest wrapper (fibers)",
  ours: "resilient-llm CircuitBreaker, one key",
  promise: "no breaker (async loops)",
  cockatiel: "cockatiel circuitBreaker, one policy",
  opossum: "opossum CircuitBreaker, one breaker"
}

const opossumBreaker = (): OpossumBreaker<[], number> =>
  new OpossumBreaker(() => Promise.resolve(1), { timeout: false, ...opossumBreakerOptions })

/** Heap bytes per item of `build(count)`, which must keep what it builds reachable until `release`. */
const heapPerItem = async (count: number, build: (count: number) => Promise<() => Promise<void>>): Promise<number> => {
  collectGarbage()
  const before = process.memoryUsage().heapUsed
  const release = await build(count)
  collectGarbage()
  const after = process.memoryUsage().heapUsed
  await release()
  return (after - before) / count
}

/** Runs benchmark 4. */
export const breaker = async (options: BreakerOptions): Promise<Section> => {
  // The breaker lives as long as the runtime: disposing it closes the breaker's scope.
  const runtime = ManagedRuntime.make(Layer.mergeAll(CircuitBreaker.layer(breakerOptions), DiscardLogs))
  const ours = await runtime.runPromise(CircuitBreaker.CircuitBreaker)
  const cockatiel = cockatielBreaker()
  const opossum = opossumBreaker()
  const yieldOnce = Effect.as(Effect.yieldNow, 1)
  // The least any per-call wrapper that decides when the call starts and sees how it ends costs
  // in Effect: a step that reads the fiber, and a finalizer on the call's exit. Ours is that shape.
  const wrapped = Effect.withFiber(() => Effect.onExitPrimitive(yieldOnce, () => undefined, true))
  const resolved = () => Promise.resolve(1)

  const contenders: ReadonlyArray<Contender<Key>> = [
    { key: "effect", run: (n) => runtime.runPromise(effectWorkers(n, options.callers, yieldOnce)) },
    { key: "wrapper", run: (n) => runtime.runPromise(effectWorkers(n, options.callers, wrapped)) },
    {
      key: "ours",
      run: (n) => runtime.runPromise(effectWorkers(n, options.callers, ours.protect("model")(yieldOnce)))
    },
    { key: "promise", run: (n) => promiseWorkers(n, options.callers, resolved) },
    { key: "cockatiel", run: (n) => promiseWorkers(n, options.callers, () => cockatiel.execute(resolved)) },
    { key: "opossum", run: (n) => promiseWorkers(n, options.callers, () => opossum.fire()) }
  ]

  try {
    const timings = await measureRounds(contenders, options)
    const rows: Array<Row> = contenders.map(({ key }) => ({
      key,
      label: labels[key],
      cells: {
        rate: statCell(timingOf(timings, key).unitsPerSecond, "calls/s"),
        cpu: statCell(scaleStat(timingOf(timings, key).cpuNsPerUnit, 1e-3), "µs")
      }
    }))
    const state = await runtime.runPromise(ours.state("model"))
    if (state !== "closed") throw new Error(`the contended circuit ended ${state}`)

    const oursPerKey = await heapPerItem(options.keys, async (count) => {
      // a breaker of its own, with the default options, for as long as its runtime
      const keyed = ManagedRuntime.make(Layer.mergeAll(CircuitBreaker.layer(), DiscardLogs))
      await keyed.runPromise(
        Effect.forEach(
          Array.from({ length: count }, (_, i) => `model-${i}`),
          (key) => CircuitBreaker.protect(Effect.void, key),
          { discard: true }
        )
      )
      return async () => {
        sink((await keyed.runPromise(CircuitBreaker.snapshot)).length)
        await keyed.dispose()
      }
    })
    const cockatielPerKey = await heapPerItem(options.keys, async (count) => {
      const policies = new Map<string, CircuitBreakerPolicy>()
      for (let i = 0; i < count; i++) {
        const policy = cockatielBreaker()
        policies.set(`model-${i}`, policy)
        sink(await policy.execute(resolved))
      }
      return () => {
        sink(policies.size)
        return Promise.resolve()
      }
    })
    const opossumPerKey = await heapPerItem(options.opossumKeys, async (count) => {
      const breakers = new Map<string, OpossumBreaker<[], number>>()
      for (let i = 0; i < count; i++) {
        const keyed = opossumBreaker()
        breakers.set(`model-${i}`, keyed)
        sink(await keyed.fire())
      }
      return () => {
        for (const keyed of breakers.values()) keyed.shutdown()
        return Promise.resolve()
      }
    })
    rows.push(
      {
        key: "oursHeapPerKey",
        label: `resilient-llm, heap per key (${options.keys} keys)`,
        cells: { memory: valueCell(oursPerKey, "B") }
      },
      {
        key: "cockatielHeapPerKey",
        label: `cockatiel, heap per policy (${options.keys})`,
        cells: { memory: valueCell(cockatielPerKey, "B") }
      },
      {
        key: "opossumHeapPerKey",
        label: `opossum, heap per breaker (${options.opossumKeys})`,
        cells: { memory: valueCell(opossumPerKey, "B") }
      }
    )
    const rate = (key: Key) => timingOf(timings, key).unitsPerSecond.median
    const oursRounds = timingOf(timings, "ours").unitsPerSecond.rounds
    return {
      id: "breaker",
      title: `4. Breaker under contention (${options.callers} concurrent callers, one key) and memory per key`,
      columns: [
        { key: "rate", header: "calls/s" },
        { key: "cpu", header: "CPU per call" },
        { key: "memory", header: "heap" }
      ],
      rows,
      ratios: [
        perRound(
          `P6: resilient-llm, one key, ${options.callers} concurrent fibers, millions of decisions per second (wall)`,
          oursRounds.map((perSecond) => perSecond / 1e6),
          { text: ">= 1 (median; every round listed)", met: (_, median) => median >= 1 }
        ),
        perRound(
          "  the same per second of this process's CPU (what the rate would be with a core to itself)",
          timingOf(timings, "ours").cpuNsPerUnit.rounds.map((ns) => 1e3 / ns)
        ),
        {
          name: `memory per breaker key at ${options.keys} keys, bytes`,
          value: oursPerKey,
          target: "<= 400",
          met: oursPerKey <= 400
        },
        {
          name: "resilient-llm / cockatiel, calls per second through one key",
          value: rate("ours") / rate("cockatiel")
        },
        { name: "resilient-llm / opossum, calls per second through one key", value: rate("ours") / rate("opossum") },
        { name: "resilient-llm breaker / the same fibers without it", value: rate("ours") / rate("effect") },
        perRound(
          "resilient-llm breaker / the same fibers through Effect's lightest wrapper, calls per second",
          roundRatios(oursRounds, timingOf(timings, "wrapper").unitsPerSecond.rounds)
        ),
        { name: "resilient-llm / cockatiel, heap per key", value: oursPerKey / cockatielPerKey }
      ],
      notes: [
        "Each call yields once (Effect.yieldNow; a resolved promise for the others), so the callers interleave and " +
        "hundreds of calls are in flight on the key at once. The circuit stays closed throughout (checked).",
        "A decision is one call's admission (each call's outcome is also recorded): decisions per second are calls " +
        "per second, in wall time, so they include the time this process waited for a core on a shared machine.",
        "Ours: admission and outcome are one synchronous step each on the key's cell (a closed circuit decides " +
        "both without building an event or reading the clock), the key's state machine is pure; no lock is taken " +
        "unless the state changes. cockatiel and opossum are single-threaded object updates with no effect system.",
        "Effect's lightest wrapper: Effect.withFiber around Effect.onExitPrimitive, with nothing decided and nothing " +
        "recorded; what any breaker built as an Effect wrapper costs at least.",
        "Heap per key: what one more key (a model name) keeps after one call through it. Ours keeps a cell with the " +
        "circuit per key in one breaker; cockatiel and opossum need one breaker object per key."
      ]
    }
  } finally {
    opossum.shutdown()
    await runtime.dispose()
  }
}
