/**
 * How big the chaos suite runs. The normal test command runs it reduced, so CI stays fast;
 * `pnpm test:chaos` (`CHAOS=full`) runs it at full size. Every test prints the profile it ran.
 */
import { Duration } from "effect"

/** Whether `CHAOS=full` asked for the full-size run. */
export const full = process.env.CHAOS === "full"

export interface Profile {
  readonly name: "full" | "reduced"
  /** Requests in the soak, run in `soakBatches` equal batches. */
  readonly soakRequests: number
  /** Batches of the soak: the heap is read after each, and each waits for its slowest request. */
  readonly soakBatches: number
  /**
   * The soak's attempt timeout. A hung call costs this much, and a batch lasts as long as its
   * slowest request, so it sets the reduced run's length; it stays far above the fakes' 1-4 ms.
   */
  readonly soakTimeout: Duration.Duration
  /** Requests of the soak in flight at once. */
  readonly soakConcurrency: number
  /** Requests in flight when the interruption test interrupts them. */
  readonly interruptedRequests: number
  /** Runs of each fast-check property of the hostile-response tests. */
  readonly hostileRuns: number
  /** Requests through the two-provider chain of the secrets test. */
  readonly providerRequests: number
}

export const profile: Profile = full
  ? {
    name: "full",
    soakRequests: 10_000,
    soakBatches: 10,
    soakTimeout: Duration.seconds(1),
    soakConcurrency: 8,
    interruptedRequests: 1_000,
    hostileRuns: 300,
    providerRequests: 2_000
  }
  : {
    name: "reduced",
    soakRequests: 200,
    soakBatches: 5,
    soakTimeout: Duration.millis(400),
    soakConcurrency: 8,
    interruptedRequests: 100,
    hostileRuns: 30,
    providerRequests: 60
  }
