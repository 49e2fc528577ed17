import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, CircuitBreaker, Fallback } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { FakeProvider } from "@resilient-llm/testing"
import { Clock, Effect, Fiber, References } from "effect"
import { table } from "./Figures.js"
import { profile } from "./Profile.js"
import { waitFor } from "./Soak.js"

const probes = 2

describe("interruption", () => {
  it.live(
    `${profile.interruptedRequests} requests in flight, two of them half-open probes, are interrupted: ` +
      "every connection closes, no attempt starts afterwards, no probe slot stays taken",
    () =>
      Effect.gen(function*() {
        const n = profile.interruptedRequests
        const fake = yield* FakeProvider.make({ models: { "model-a": {}, "model-b": {} } })
        const breaker = yield* CircuitBreaker.make({
          trip: CircuitBreaker.consecutiveFailures(3),
          breakDuration: "100 millis",
          halfOpenProbes: probes,
          // longer than the test: the hanging probes must be freed by the interruption, not by this
          maxProbeDuration: "10 minutes"
        })
        const complete = Fallback.chain(["model-a", "model-b"], {
          timeout: "1 minute",
          retry: { retries: 2, base: "10 millis", jitter: false },
          deadline: "2 minutes",
          breaker
        })
        const ChatLive = OpenAiCompatible.layer({ baseUrl: fake.url })
        const request = (i: number) => complete(ChatCompletion.prompt(`request #${i}`)).pipe(Effect.provide(ChatLive))

        // model-a fails three times: its circuit opens, and after the break it is half-open
        yield* fake.setModel("model-a", { script: () => FakeProvider.serverError(503) })
        const tripped = yield* request(-1)
        assert.strictEqual(tripped.model, "model-b")
        assert.isAtLeast(yield* waitFor(Effect.map(breaker.state("model-a"), (s) => s === "half-open"), "5 seconds"), 0)

        // now both models hang: the first requests take model-a's two probe slots, the rest go to model-b
        yield* fake.setModel("model-a", { script: () => FakeProvider.hang() })
        yield* fake.setModel("model-b", { script: () => FakeProvider.hang() })
        const before = yield* fake.requestCount
        const fibers = yield* Effect.forEach(
          Array.from({ length: n }, (_, i) => i),
          (i) => Effect.forkChild(request(i))
        )
        const allInFlight = yield* waitFor(Effect.map(fake.activeRequests, (active) => active === n), "60 seconds")
        const inFlight = yield* fake.activeRequests
        const openBefore = yield* fake.openConnections
        const [statusA] = (yield* breaker.snapshot).filter((status) => status.key === "model-a")
        assert.isAtLeast(allInFlight, 0, `all ${n} requests reached the server (${inFlight} did)`)
        assert.strictEqual(statusA.state, "half-open")
        assert.strictEqual(statusA.probesRunning, probes)

        // interrupt them all
        const interruptStart = yield* Clock.currentTimeMillis
        yield* Fiber.interruptAll(fibers)
        const interruptMs = (yield* Clock.currentTimeMillis) - interruptStart
        const countAtInterrupt = yield* fake.requestCount
        const closedAfter = yield* waitFor(
          Effect.zipWith(fake.openConnections, fake.activeRequests, (open, active) => open === 0 && active === 0),
          "10 seconds"
        )
        // longer than any retry delay (10, 20 ms) and the break (100 ms): an attempt scheduled by
        // a request that survived would have started by now
        yield* Effect.sleep("500 millis")
        const countLater = yield* fake.requestCount
        const [statusAfter] = (yield* breaker.snapshot).filter((status) => status.key === "model-a")

        // the slots are free: calls are admitted as probes, succeed, and close the circuit
        yield* fake.setModel("model-a", {})
        const probesServed = yield* Effect.forEach(Array.from({ length: probes }, (_, i) => n + i), request)
        const stateAfterProbe = yield* breaker.state("model-a")

        console.log(table(`interruption (${profile.name}): ${n} requests in flight`, [
          ["in flight at the server", `${inFlight} requests on ${openBefore} connections`],
          ["model-a breaker before", `${statusA.state}, ${statusA.probesRunning} of ${probes} probe slots taken`],
          ["interruptAll took", `${interruptMs} ms`],
          ["connections and requests at zero", closedAfter < 0 ? "never (10 s)" : `${closedAfter} ms later`],
          ["requests received", `${countAtInterrupt - before} before, ${countLater - countAtInterrupt} after`],
          ["model-a breaker after", `${statusAfter.state}, ${statusAfter.probesRunning} probe slots taken`],
          [
            "next requests",
            `served by ${probesServed.map((served) => served.model).join(", ")}; model-a is ${stateAfterProbe}`
          ]
        ]))

        assert.strictEqual(inFlight, n)
        assert.isAtLeast(closedAfter, 0, "the server saw every connection close")
        assert.strictEqual(countAtInterrupt - before, n, "one call per request, no retry")
        assert.strictEqual(countLater, countAtInterrupt, "no attempt started after the interruption")
        assert.strictEqual(statusAfter.state, "half-open")
        assert.strictEqual(statusAfter.probesRunning, 0, "the interrupted probes freed their slots")
        for (const served of probesServed) {
          assert.strictEqual(served.model, "model-a")
          assert.strictEqual(served.attempts.length, 1, "served by the probe itself")
        }
        assert.strictEqual(stateAfterProbe, "closed")
      }).pipe(
        Effect.provide(NodeHttpClient.layerUndici),
        Effect.provideService(References.MinimumLogLevel, "None")
      ),
    { timeout: 3 * 60_000 }
  )
})
