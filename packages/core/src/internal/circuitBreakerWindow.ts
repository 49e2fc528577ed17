/**
 * The sliding time window of the failure-rate trip: a ring of `buckets` slots, each counting the
 * calls and failures of `window / buckets` of time. Recording an outcome clears the slots that
 * time has moved past, so the window forgets old outcomes without a timer, and its size does not
 * grow with traffic: two arrays of `buckets` numbers per key, whatever the call rate.
 *
 * A window value is immutable (every record copies the two small arrays), so it can live in a
 * `Ref` and be replaced atomically with `Ref.modify`.
 *
 * @internal
 */

/** @internal */
export interface Window {
  /** The index (`floor(time / bucketMillis)`) of the newest slot written. */
  readonly head: number
  readonly calls: ReadonlyArray<number>
  readonly failures: ReadonlyArray<number>
}

/** @internal */
export interface Totals {
  readonly calls: number
  readonly failures: number
}

// indices before the first outcome can be negative; `%` keeps their sign, this does not
const slotOf = (index: number, buckets: number): number => ((index % buckets) + buckets) % buckets

/** @internal */
export const bucketIndex = (now: number, bucketMillis: number): number => Math.floor(now / bucketMillis)

/**
 * Adds one outcome at bucket `index`. A clock that went backwards (`index` before `head`) counts
 * the outcome in the newest slot rather than in one that may already hold newer outcomes.
 *
 * @internal
 */
export const record = (
  window: Window | undefined,
  index: number,
  buckets: number,
  failed: boolean
): Window => {
  const calls = window === undefined ? new Array<number>(buckets).fill(0) : window.calls.slice()
  const failures = window === undefined ? new Array<number>(buckets).fill(0) : window.failures.slice()
  let head = window === undefined ? index : window.head
  if (index > head) {
    const passed = Math.min(buckets, index - head)
    for (let step = 1; step <= passed; step++) {
      const slot = slotOf(head + step, buckets)
      calls[slot] = 0
      failures[slot] = 0
    }
    head = index
  }
  const slot = slotOf(head, buckets)
  calls[slot] += 1
  if (failed) failures[slot] += 1
  return { head, calls, failures }
}

/**
 * The calls and failures of the slots still inside the window at bucket `index`: those from
 * `index - buckets + 1` to `head`.
 *
 * @internal
 */
export const totals = (window: Window | undefined, index: number, buckets: number): Totals => {
  if (window === undefined) return { calls: 0, failures: 0 }
  let calls = 0
  let failures = 0
  for (let at = Math.max(window.head - buckets + 1, index - buckets + 1); at <= window.head; at++) {
    const slot = slotOf(at, buckets)
    calls += window.calls[slot]
    failures += window.failures[slot]
  }
  return { calls, failures }
}
