import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { inline, megabytes, percent, table } from "./Figures.js"
import { full, profile } from "./Profile.js"
import * as Soak from "./Soak.js"

const heapBound = 0.1

const print = (report: Soak.Report, heapLine: string): void => {
  const { connections: c, heap, latencyMs, secrets } = report
  console.log(table(`soak (${profile.name}): ${Soak.models.join(" → ")}`, [
    ["requests", `${report.requests} (${report.concurrency} at once)`],
    ["duration", `${(report.durationMs / 1000).toFixed(1)} s`],
    ["served", `${report.served} (${percent(report.served, report.requests, 2)}): ${inline(report.servedBy)}`],
    ["failed (AllModelsFailed)", inline(report.failedBy)],
    ["defects / interrupted / hung", `${report.defects} / ${report.interrupted} / ${report.hung}`],
    ...Soak.models.map((model): readonly [string, string] => [`attempts ${model}`, inline(report.attempts[model])]),
    [
      "latency p50 / p99 / max",
      `${latencyMs.p50.toFixed(0)} / ${latencyMs.p99.toFixed(0)} / ${latencyMs.max.toFixed(0)} ms`
    ],
    ["deadline, overruns", `${report.deadlineMs} ms, ${report.overruns}`],
    [
      "timeouts ended late by p50 / p99 / max",
      `${report.timeoutLateMs.p50} / ${report.timeoutLateMs.p99} / ${report.timeoutLateMs.max} ms ` +
      `(${report.timeoutLateMs.count} timeouts)`
    ],
    [
      "event loop delay p50 / p99 / max",
      `${report.eventLoopDelayMs.p50.toFixed(0)} / ${report.eventLoopDelayMs.p99.toFixed(0)} / ${
        report.eventLoopDelayMs.max.toFixed(0)
      } ms`
    ],
    ["breaker transitions", inline(report.breakerTransitions)],
    ["connections", `peak ${c.peakOpen}, open at end ${c.openAtEnd} (idle keep-alive), active at end ${c.activeAtEnd}`],
    ["connections to zero", c.zeroAfterMs < 0 ? "never (10 s)" : `after ${c.zeroAfterMs} ms idle`],
    ["heap", heapLine],
    [
      heap.forced ? "heap after each batch" : "lowest heap during each batch",
      (heap.forced ? heap.afterBatch : heap.floorPerBatch).map(megabytes).join(", ")
    ],
    ["unhandled rejections / exceptions", `${report.unhandledRejections} / ${report.uncaughtExceptions}`],
    [
      "scanned for keys",
      `${secrets.logLines} log lines, ${secrets.spans} spans (${secrets.spanAttributes} attributes), ` +
      `${secrets.errorTexts} error texts: ${secrets.leaks.length} leaks`
    ],
    [
      "keys seen by each server",
      Object.entries(report.keysSeen).map(([name, seen]) =>
        `${name}: own ${seen.own}, other ${seen.other}, none/else ${seen.else}`
      ).join("; ")
    ],
    ["requests received", inline(report.received)]
  ]))
}

describe("soak", () => {
  it.live(
    `${profile.soakRequests} requests through a chain of three failing models, with breakers and retries`,
    () =>
      Effect.gen(function*() {
        const report = yield* Soak.run({
          requests: profile.soakRequests,
          concurrency: profile.soakConcurrency,
          batches: profile.soakBatches,
          timeout: profile.soakTimeout,
          seed: 7
        })

        // The heap: after the second batch of requests against after the last. With a
        // collector the readings are exact; without one, the lowest reading of each batch stands
        // for what survived, with a looser bound, and the output says so.
        const { heap } = report
        const [baseline, last] = heap.forced
          ? [heap.afterBatch[1], heap.afterBatch[heap.afterBatch.length - 1]]
          : [heap.floorPerBatch[1], heap.floorPerBatch[heap.floorPerBatch.length - 1]]
        const bound = heap.forced ? heapBound : 0.5
        const growth = (last - baseline) / baseline
        const heapLine =
          `${megabytes(baseline)} after batch 2, ${megabytes(last)} after batch ${heap.afterBatch.length}: ` +
          `${(100 * growth).toFixed(1)}% (bound ${100 * bound}%; collector: ${heap.collector}` +
          (heap.forced ? ")" : "; compared the lowest reading of each batch instead)")
        print(report, heapLine)

        assert.deepStrictEqual(report.problems, [])
        assert.strictEqual(report.defects, 0, "no request died")
        assert.strictEqual(report.interrupted, 0)
        assert.strictEqual(report.hung, 0, "every request ended")
        assert.strictEqual(report.untyped, 0, "every failure is an LlmError")
        assert.strictEqual(report.madeUp, 0, "every answer is what the serving model sent")
        assert.strictEqual(report.overruns, 0, "every request ended within its deadline")
        assert.isAtMost(report.latencyMs.max, report.deadlineMs + Duration.toMillis(Soak.settings.deadlineSlack))
        assert.isAtLeast(report.served / report.requests, 0.999)
        assert.strictEqual(report.unhandledRejections, 0)
        assert.strictEqual(report.uncaughtExceptions, 0)

        // the faults happened: the soak tested what it claims to (model-c, the last resort, is
        // needed only when both others fail, a few times in ten thousand)
        assert.isAbove(report.attempts["model-a"]["ServerError"] ?? 0, 0)
        assert.isAbove(report.attempts["model-a"]["RateLimitError"] ?? 0, 0)
        assert.isAbove(report.attempts["model-b"]["TimeoutError"] ?? 0, 0)

        assert.strictEqual(report.connections.activeAtEnd, 0, "no request is left running on a server")
        assert.isAtLeast(report.connections.zeroAfterMs, 0, "every connection closes once idle")

        assert.isAtMost(growth, bound, heapLine)

        assert.deepStrictEqual(report.secrets.leaks, [])
        assert.isAbove(report.secrets.logLines, report.requests)
        assert.isAbove(report.secrets.spanAttributes, report.requests)
        for (const model of Soak.models) {
          assert.strictEqual(report.attempts[model]["AuthenticationError"], undefined, `no key refused by ${model}`)
        }
        assert.deepStrictEqual(report.keysSeen, {
          primary: { own: Math.min(500, report.received.primary), other: 0, else: 0 },
          secondary: { own: Math.min(500, report.received.secondary), other: 0, else: 0 }
        })
      }),
    { timeout: Duration.toMillis(full ? Duration.minutes(20) : Duration.minutes(2)) }
  )
})
