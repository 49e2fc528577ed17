/**
 * Heap measurements for leak checks. A fair reading needs a full collection first, and
 * `global.gc` only exists when node runs with `--expose-gc`, which the test runner's workers do
 * not. So the collector comes from one of two places:
 *
 * - `global.gc`, when node was started with `--expose-gc`;
 * - otherwise V8's `--expose-gc` flag set at runtime and read from a fresh `vm` context, the way
 *   `jest-leak-detector` does it; the flag is switched off again at once.
 *
 * When neither works (or `CHAOS_GC=off` says to act as if), readings are taken without a collection and `forced` says so; the caller
 * must then judge the heap by its lowest readings (what survives collections), not its last one.
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

export interface Collector {
  /** How the collector was obtained, for the test output. */
  readonly source: "global.gc (--expose-gc)" | "V8 flag set at runtime" | "none: readings are not collected first"
  readonly forced: boolean
  /** Heap used in bytes, after two full collections when `forced`. */
  readonly heapUsed: () => number
}

const reading = (gc: (() => void) | undefined): number => {
  if (gc !== undefined) {
    gc()
    gc()
  }
  return process.memoryUsage().heapUsed
}

const runtimeGc = (): (() => void) | undefined => {
  try {
    setFlagsFromString("--expose-gc")
    const found: unknown = runInNewContext("gc")
    setFlagsFromString("--no-expose-gc")
    if (typeof found !== "function") return undefined
    return () => {
      found()
    }
  } catch {
    return undefined
  }
}

/** `CHAOS_GC=off` takes the path of a runtime without a collector, to check that it still asserts. */
export const make = (): Collector => {
  if (process.env.CHAOS_GC === "off") {
    return { source: "none: readings are not collected first", forced: false, heapUsed: () => reading(undefined) }
  }
  const exposed = global.gc
  if (exposed !== undefined) {
    return { source: "global.gc (--expose-gc)", forced: true, heapUsed: () => reading(() => exposed()) }
  }
  const gc = runtimeGc()
  if (gc !== undefined) return { source: "V8 flag set at runtime", forced: true, heapUsed: () => reading(gc) }
  return { source: "none: readings are not collected first", forced: false, heapUsed: () => reading(undefined) }
}
