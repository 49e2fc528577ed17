/**
 * Hedging's state and checks: the delay before a chain starts the next model alongside one that
 * has not answered (fixed, or a percentile of that model's recent successful latencies), the
 * number of hedges one call may start, and the number in flight across every call sharing the
 * state. The runner (`fallback.ts`) asks `delayOf` when it starts a model, `admit` when a hedge
 * is due, and reports each successful latency with `observe`.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import type * as Fallback from "../Fallback.js"
import { count, duration, finite, show } from "./options.js"

const DEFAULT_SAMPLES = 100
const DEFAULT_MIN_SAMPLES = 20

/** The delay, checked, in milliseconds. @internal */
export type Delay =
  | { readonly _tag: "Fixed"; readonly millis: number }
  | {
    readonly _tag: "Latency"
    readonly percentile: number
    readonly initialMillis: number
    readonly samples: number
    readonly minSamples: number
    readonly minMillis: number
    readonly maxMillis: number
  }

/** @internal */
export interface Settings {
  readonly delay: Delay
  readonly maxHedges: number
  readonly maxInFlight: number
}

/** One model's recent successful latencies: a ring of the last `samples`, and its percentile. */
class Window {
  readonly values: Float64Array
  size = 0
  next = 0
  /** The percentile of the window as it is, until the next sample. */
  cached: number | undefined = undefined
  constructor(samples: number) {
    this.values = new Float64Array(samples)
  }
}

/**
 * The state hedging keeps across calls. `TypeId` marks it, so options can tell it from a plain
 * object of options.
 *
 * @internal
 */
export const TypeId: unique symbol = Symbol.for("@resilient-llm/core/Fallback/Hedge")

/** @internal */
export class Hedging implements Fallback.Hedge {
  readonly [TypeId] = TypeId
  private readonly windows = new Map<string, Window>()
  private running = 0
  constructor(readonly settings: Settings) {}

  get inFlight(): number {
    return this.running
  }

  /** How long to wait for `model` before hedging it, in milliseconds. */
  delayOf(model: string): number {
    const delay = this.settings.delay
    if (delay._tag === "Fixed") return delay.millis
    const window = this.windows.get(model)
    if (window === undefined || window.size < delay.minSamples) return delay.initialMillis
    if (window.cached === undefined) {
      const sorted = window.values.slice(0, window.size).sort()
      // nearest rank: the smallest value with at least `percentile` percent of the samples at or below it
      const rank = Math.min(window.size, Math.max(1, Math.ceil((delay.percentile / 100) * window.size)))
      window.cached = Math.min(delay.maxMillis, Math.max(delay.minMillis, sorted[rank - 1]))
    }
    return window.cached
  }

  /** Records a successful attempt's latency for the percentile of its model. */
  observe(model: string, millis: number): void {
    const delay = this.settings.delay
    if (delay._tag === "Fixed") return
    let window = this.windows.get(model)
    if (window === undefined) {
      window = new Window(delay.samples)
      this.windows.set(model, window)
    }
    window.values[window.next] = millis
    window.next = (window.next + 1) % delay.samples
    if (window.size < delay.samples) window.size++
    window.cached = undefined
  }

  /** Takes a place for one more hedge in flight, when there is one. */
  admit(): boolean {
    if (this.running >= this.settings.maxInFlight) return false
    this.running++
    return true
  }

  /** Gives back the place of a hedge that ended. */
  release(): void {
    this.running--
  }
}

/** Options that describe no hedging, made into a `Hedge`: every chain given it fails with `reason`. @internal */
export class InvalidHedge implements Fallback.Hedge {
  readonly [TypeId] = TypeId
  readonly inFlight = 0
  constructor(readonly reason: string) {}
}

const isHedge = (u: unknown): u is Hedging | InvalidHedge => typeof u === "object" && u !== null && TypeId in u

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const millisOf = (name: string, input: unknown, zero: boolean): number | string => {
  const checked = duration(name, input, { zero })
  return typeof checked === "string" ? checked : Duration.toMillis(checked)
}

const checkDelay = (input: unknown): Delay | string => {
  if (!isRecord(input) || Duration.isDuration(input)) {
    const millis = millisOf("hedge.delay", input, true)
    return typeof millis === "string" ? millis : { _tag: "Fixed", millis }
  }
  const percentile = finite("hedge.delay.percentile", input.percentile, { min: 0, max: 100 })
  if (typeof percentile === "string") return percentile
  if (percentile === 0) return `hedge.delay.percentile must be above 0, got 0`
  const initialMillis = millisOf("hedge.delay.initial", input.initial, true)
  if (typeof initialMillis === "string") return initialMillis
  const samples = count("hedge.delay.samples", input.samples ?? DEFAULT_SAMPLES)
  if (typeof samples === "string") return samples
  const minSamples = count("hedge.delay.minSamples", input.minSamples ?? Math.min(DEFAULT_MIN_SAMPLES, samples))
  if (typeof minSamples === "string") return minSamples
  if (minSamples > samples) {
    return `hedge.delay.minSamples (${minSamples}) must be at most hedge.delay.samples (${samples})`
  }
  const minMillis = input.min === undefined ? 0 : millisOf("hedge.delay.min", input.min, true)
  if (typeof minMillis === "string") return minMillis
  const maxMillis = input.max === undefined ? Infinity : millisOf("hedge.delay.max", input.max, true)
  if (typeof maxMillis === "string") return maxMillis
  if (minMillis > maxMillis) {
    return `hedge.delay.min (${show(input.min)}) must be at most hedge.delay.max (${show(input.max)})`
  }
  return { _tag: "Latency", percentile, initialMillis, samples, minSamples, minMillis, maxMillis }
}

/**
 * Checks hedging's options and makes its state; a `Hedge` already made is used as it is.
 *
 * @internal
 */
export const check = (input: unknown): Hedging | string => {
  if (isHedge(input)) return input instanceof InvalidHedge ? input.reason : input
  if (!isRecord(input)) return `hedge must be an object with a delay, got ${show(input)}`
  if (input.delay === undefined) return "hedge.delay is required: a duration, or { percentile, initial }"
  const delay = checkDelay(input.delay)
  if (typeof delay === "string") return delay
  const maxHedges = count("hedge.maxHedges", input.maxHedges ?? 1)
  if (typeof maxHedges === "string") return maxHedges
  const maxInFlight = input.maxInFlight === undefined || input.maxInFlight === Infinity
    ? Infinity
    : count("hedge.maxInFlight", input.maxInFlight)
  if (typeof maxInFlight === "string") return maxInFlight
  return new Hedging({ delay, maxHedges, maxInFlight })
}

/**
 * `Fallback.hedge`: the state, or options that describe none kept as an `InvalidHedge`.
 *
 * @internal
 */
export const make = (options: Fallback.HedgeOptions): Fallback.Hedge => {
  const checked = check(options)
  return typeof checked === "string" ? new InvalidHedge(checked) : checked
}
