/**
 * The fake's memory of the requests it received: the latest `capacity` of them in a ring, so a
 * soak of millions of calls holds a constant amount. Only ever touched inside `Effect.sync`,
 * which JavaScript runs to completion, so no two fibers see it half-updated.
 *
 * @internal
 */
import * as Effect from "effect/Effect"

/** @internal */
export interface RequestLog<A> {
  /** Takes the next sequence number (0 for the first ever); counted whether or not it is recorded. */
  readonly next: Effect.Effect<number>
  /** Keeps an entry, dropping the oldest once `capacity` are kept. */
  readonly record: (entry: A) => Effect.Effect<void>
  /** The recorded entries, oldest first. */
  readonly entries: Effect.Effect<ReadonlyArray<A>>
  readonly count: Effect.Effect<number>
  readonly clear: Effect.Effect<void>
}

/** @internal */
export const make = <A>(capacity: number): Effect.Effect<RequestLog<A>> =>
  Effect.sync(() => {
    let ring: Array<A> = []
    let start = 0
    let total = 0
    return {
      next: Effect.sync(() => total++),
      record: (entry) =>
        Effect.sync(() => {
          if (capacity === 0) return
          if (ring.length < capacity) {
            ring.push(entry)
          } else {
            ring[start] = entry
            start = (start + 1) % capacity
          }
        }),
      entries: Effect.sync(() => [...ring.slice(start), ...ring.slice(0, start)]),
      count: Effect.sync(() => total),
      clear: Effect.sync(() => {
        ring = []
        start = 0
      })
    }
  })
