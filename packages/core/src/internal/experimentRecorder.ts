/**
 * The memory of an experiment, bounded whatever the traffic: per variant, running aggregates
 * (counts and Welford moments) over every call, and a fixed-size uniform reservoir of raw calls
 * for percentiles and export; beside them, a window of the most recent call ids that may still
 * receive a score. Nothing here grows with the number of calls.
 *
 * The state is mutable and is only touched inside `Effect.sync` blocks by the experiment, so each
 * update is atomic with respect to other fibers (JavaScript runs one at a time) while costing no
 * copy: an immutable `Ref` of a 1,000-entry reservoir would copy it on every call.
 *
 * @internal
 */
import { addMoment, emptyMoments, type Moments } from "./experimentStats.js"

/**
 * One finished call, as sampled and exported.
 *
 * @internal
 */
export interface CallRecord {
  readonly seq: number
  readonly callId: string
  readonly variant: string
  readonly model: string
  readonly shadow: boolean
  readonly startedAt: number
  readonly latencyMs: number
  /** `success`, or the tag of the error. */
  readonly outcome: string
  readonly inputTokens: number | undefined
  readonly outputTokens: number | undefined
  readonly costUsd: number | undefined
  score: number | undefined
}

/**
 * The most distinct outcome labels counted per variant; later new ones count as `OTHER_OUTCOME`.
 *
 * @internal
 */
export const MAX_OUTCOMES = 64

/** @internal */
export const OTHER_OUTCOME = "other"

/** @internal */
export interface VariantState {
  /** Calls that finished (success or error); interrupted calls are not in it. */
  calls: number
  errors: number
  interrupted: number
  shadowDropped: number
  readonly outcomes: Map<string, number>
  /** Latency of successful calls, in milliseconds. */
  readonly latency: Moments
  readonly inputTokens: Moments
  readonly outputTokens: Moments
  /** Cost of every finished call whose cost is known, in US dollars. */
  readonly costUsd: Moments
  costTotalUsd: number
  readonly score: Moments
  /** How many records were offered to the reservoir. */
  offered: number
  readonly reservoir: Array<CallRecord>
}

interface PendingScore {
  readonly variant: number
  readonly record: CallRecord
  scored: boolean
}

/** @internal */
export type ScoreResult = "scored" | "unknown" | "already-scored" | "failed-call"

/** @internal */
export interface Finished {
  readonly callId: string
  readonly shadow: boolean
  readonly startedAt: number
  readonly latencyMs: number
  readonly outcome: string
  readonly inputTokens: number | undefined
  readonly outputTokens: number | undefined
  readonly costUsd?: number | undefined
}

/** @internal */
export class Recorder {
  readonly variants: ReadonlyArray<VariantState>
  private readonly pending = new Map<string, PendingScore>()
  /**
   * The call ids in `pending`, oldest first from `windowStart`, as a ring: evicting the oldest is
   * an index step, where taking the first key of the map would walk its deleted entries.
   */
  private readonly window: Array<string> = []
  private windowStart = 0
  private seq = 0
  private nextCall = 0
  unkeyed = 0

  constructor(
    readonly experiment: string,
    private readonly names: ReadonlyArray<{ readonly name: string; readonly model: string }>,
    private readonly sampleSize: number,
    private readonly scoreWindow: number
  ) {
    this.variants = names.map((): VariantState => ({
      calls: 0,
      errors: 0,
      interrupted: 0,
      shadowDropped: 0,
      outcomes: new Map(),
      latency: emptyMoments(),
      inputTokens: emptyMoments(),
      outputTokens: emptyMoments(),
      costUsd: emptyMoments(),
      costTotalUsd: 0,
      score: emptyMoments(),
      offered: 0,
      reservoir: []
    }))
  }

  /** A fresh call id: the experiment's name and a counter, unique within this experiment. */
  nextCallId(): string {
    this.nextCall += 1
    return `${this.experiment}-${this.nextCall}`
  }

  /**
   * Records a finished call. `u` is a uniform draw in [0, 1) from `Random`, used for the
   * reservoir's replacement decision (Vitter's algorithm R). A call that is not `scorable` (a
   * shadow call of `complete`, whose id nobody receives) takes no place in the score window, so a
   * burst of shadow traffic cannot push the callers' calls out of it.
   */
  record(variant: number, call: Finished, u: number, scorable = true): void {
    const state = this.variants[variant]
    state.calls += 1
    // `record` takes outcomes from the caller: past MAX_OUTCOMES distinct labels (an id pasted
    // into an error tag, say) the rest share one, so the counts stay bounded too
    const label = state.outcomes.has(call.outcome) || state.outcomes.size < MAX_OUTCOMES ? call.outcome : OTHER_OUTCOME
    state.outcomes.set(label, (state.outcomes.get(label) ?? 0) + 1)
    const success = call.outcome === "success"
    if (success) {
      addMoment(state.latency, call.latencyMs)
      if (call.inputTokens !== undefined) addMoment(state.inputTokens, call.inputTokens)
      if (call.outputTokens !== undefined) addMoment(state.outputTokens, call.outputTokens)
    } else {
      state.errors += 1
    }
    if (call.costUsd !== undefined) {
      addMoment(state.costUsd, call.costUsd)
      state.costTotalUsd += call.costUsd
    }
    this.seq += 1
    const record: CallRecord = {
      seq: this.seq,
      callId: call.callId,
      variant: this.names[variant].name,
      model: this.names[variant].model,
      shadow: call.shadow,
      startedAt: call.startedAt,
      latencyMs: call.latencyMs,
      outcome: call.outcome,
      inputTokens: call.inputTokens,
      outputTokens: call.outputTokens,
      costUsd: call.costUsd,
      score: undefined
    }
    state.offered += 1
    if (state.reservoir.length < this.sampleSize) {
      state.reservoir.push(record)
    } else {
      const slot = Math.floor(u * state.offered)
      if (slot < this.sampleSize) state.reservoir[slot] = record
    }
    if (!scorable) return
    if (this.window.length < this.scoreWindow) {
      this.window.push(call.callId)
    } else {
      // the ring is full: the slot at `windowStart` holds the oldest call, which leaves the window
      this.pending.delete(this.window[this.windowStart])
      this.window[this.windowStart] = call.callId
      this.windowStart = (this.windowStart + 1) % this.scoreWindow
    }
    this.pending.set(call.callId, { variant, record, scored: false })
  }

  interrupted(variant: number): void {
    this.variants[variant].interrupted += 1
  }

  dropped(variant: number): void {
    this.variants[variant].shadowDropped += 1
  }

  score(callId: string, score: number): ScoreResult {
    const entry = this.pending.get(callId)
    if (entry === undefined) return "unknown"
    if (entry.record.outcome !== "success") return "failed-call"
    if (entry.scored) return "already-scored"
    entry.scored = true
    entry.record.score = score
    addMoment(this.variants[entry.variant].score, score)
    return "scored"
  }

  /** Raw records retained: every reservoir plus the pending-score window. */
  get size(): number {
    let total = this.pending.size
    for (const state of this.variants) total += state.reservoir.length
    return total
  }

  get pendingScores(): number {
    return this.pending.size
  }

  /** The sampled calls of every variant, variant by variant, each in the order they were recorded. */
  sample(): ReadonlyArray<CallRecord> {
    return sampleOf(this.variants)
  }
}

/**
 * The sampled calls of `variants`, variant by variant, each in the order they were recorded: a
 * recorder's, or a shared store's as read back.
 *
 * @internal
 */
export const sampleOf = (variants: ReadonlyArray<VariantState>): ReadonlyArray<CallRecord> =>
  variants.flatMap((state) => [...state.reservoir].sort((a, b) => a.seq - b.seq))
