import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, CircuitBreaker, Fallback } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { FakeProvider } from "@resilient-llm/testing"
import { Clock, Effect, References, Stream } from "effect"
import { table } from "./Figures.js"

const latency = { min: "1 millis", max: "3 millis" } as const
const breakMillis = 300

describe("recovery", () => {
  it.live("a model that goes down and comes back: its breaker opens, probes, closes, and traffic returns", () =>
    Effect.gen(function*() {
      const fake = yield* FakeProvider.make({ models: { "model-a": { latency }, "model-b": { latency } } })
      const breaker = yield* CircuitBreaker.make({
        trip: CircuitBreaker.consecutiveFailures(3),
        breakDuration: `${breakMillis} millis`,
        maxProbeDuration: "2 seconds"
      })
      const transitions: Array<CircuitBreaker.Transition> = []
      yield* Effect.forkScoped(Stream.runForEach(breaker.changes, (t) => Effect.sync(() => transitions.push(t))))
      const complete = Fallback.chain(["model-a", "model-b"], {
        timeout: "1 second",
        retry: { retries: 2, base: "5 millis", jitter: false },
        deadline: "5 seconds",
        breaker
      })
      const ChatLive = OpenAiCompatible.layer({ baseUrl: fake.url })
      const served: Array<string> = []
      let refusedWithoutCall = 0
      const one = Effect.suspend(() => complete(ChatCompletion.prompt(`request #${served.length}`))).pipe(
        Effect.map((result) => {
          served.push(result.model)
          refusedWithoutCall += result.attempts.filter((a) => a.error?._tag === "CircuitOpenError").length
        }),
        Effect.provide(ChatLive)
      )
      const reasonsOfA = () => transitions.filter((t) => t.key === "model-a").map((t) => t.reason)
      /** Sends requests one after another until `done` holds; the test's timeout bounds it. */
      const until = (done: () => boolean) =>
        Effect.gen(function*() {
          const before = served.length
          while (!done()) yield* one
          return served.length - before
        })
      const start = yield* Clock.currentTimeMillis

      // 1. healthy: model-a serves everything
      yield* until(() => served.length === 10)
      assert.deepStrictEqual(served, Array(10).fill("model-a"))

      // 2. model-a goes down; keep sending until its breaker has failed two probes
      yield* fake.setModel("model-a", { latency, script: () => FakeProvider.serverError(503) })
      const outageStart = served.length
      const refusedBefore = refusedWithoutCall
      yield* until(() => reasonsOfA().filter((reason) => reason === "probe-failed").length === 2)
      const refusedDuringOutage = refusedWithoutCall - refusedBefore
      const duringOutage = served.slice(outageStart)
      const failedCalls = (yield* fake.requestsTo("model-a")).filter((r) => r.status === 503).length

      // 3. model-a comes back; keep sending until its breaker has closed, then ten more
      yield* fake.setModel("model-a", { latency })
      const recoveryStart = served.length
      yield* until(() => reasonsOfA().includes("probes-succeeded"))
      const closedAt = served.length
      yield* until(() => served.length === closedAt + 10)
      const end = yield* Clock.currentTimeMillis

      const ofA = transitions.filter((t) => t.key === "model-a")
      console.log(table(`recovery of model-a (trip: 3 consecutive failures, break ${breakMillis} ms)`, [
        ["healthy", `10 requests, all served by model-a`],
        [
          "outage",
          `${duringOutage.length} requests, all served by model-b; ${failedCalls} calls reached model-a ` +
          `(3 to trip it, ${failedCalls - 3} probes); ${refusedDuringOutage} attempts refused without a call`
        ],
        ["recovery", `${closedAt - recoveryStart} request(s) until the probe closed it, then 10 served by model-a`],
        ...ofA.map((t): readonly [string, string] => [
          `+${t.at - start} ms`,
          `${t.from} → ${t.to} (${t.reason}${t.breakDuration ? `, break ${breakMillis} ms` : ""})`
        ]),
        ["total", `${served.length} requests in ${end - start} ms`]
      ]))

      // the transitions, in order: trip, at least two failed probes, a successful one
      assert.match(
        reasonsOfA().join(" "),
        /^consecutive-failures (break-elapsed probe-failed ){2}break-elapsed probes-succeeded$/
      )
      assert.deepStrictEqual(
        ofA.map((t) => `${t.from}→${t.to}`),
        [
          "closed→open",
          "open→half-open",
          "half-open→open",
          "open→half-open",
          "half-open→open",
          "open→half-open",
          "half-open→closed"
        ]
      )
      // each break lasted at least its duration
      for (let i = 0; i + 1 < ofA.length; i++) {
        if (ofA[i].to === "open") assert.isAtLeast(ofA[i + 1].at - ofA[i].at, breakMillis)
      }
      // while it was down, model-a saw only the three calls that tripped it and one call per probe
      assert.strictEqual(failedCalls, 3 + 2)
      assert.deepStrictEqual(duringOutage, Array(duringOutage.length).fill("model-b"))
      assert.isAbove(refusedDuringOutage, 0, "while open, the breaker refused model-a without calling it")
      // traffic returned: the probe and everything after it went to model-a
      assert.deepStrictEqual(served.slice(closedAt - 1), Array(11).fill("model-a"))
      assert.strictEqual(yield* breaker.state("model-a"), "closed")
      assert.strictEqual(yield* breaker.state("model-b"), "closed")
    }).pipe(
      Effect.provide(NodeHttpClient.layerUndici),
      Effect.provideService(References.MinimumLogLevel, "None")
    ))
})
