import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, CircuitBreaker, Fallback } from "@resilient-llm/core"
import { FakeProvider, TestLogs } from "@resilient-llm/testing"
import { Effect, Layer } from "effect"
import * as Collector from "../support/Collector.js"
import * as Fake from "../support/Fake.js"
import { BreakerAlerts } from "./Alerts.js"

describe("alerts from CircuitBreaker.changes", () => {
  it.scopedLive("a circuit opening is a warning log line and a webhook alert; closing again is another alert", () =>
    Effect.gen(function*() {
      const webhook = yield* Collector.make
      const fake = yield* Fake.start({
        models: { primary: { script: () => FakeProvider.serverError(503) }, backup: {} }
      })
      const logs = TestLogs.make()
      const BreakerLive = CircuitBreaker.layer({
        trip: CircuitBreaker.consecutiveFailures(2),
        breakDuration: "150 millis"
      })
      const Live = BreakerAlerts(`${webhook.url}/alerts`).pipe(
        Layer.provideMerge(BreakerLive),
        Layer.provide(NodeHttpClient.layerUndici),
        Layer.merge(Fake.client(fake.url)),
        Layer.orDie
      )

      yield* Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.CircuitBreaker
        const complete = Fallback.chain(["primary", "backup"], { breaker })
        const ask = complete(ChatCompletion.prompt("hi"))

        // two failures in a row open the primary's circuit; the third call does not reach it
        const served = yield* Effect.forEach([1, 2, 3], () => ask)
        assert.deepStrictEqual(served.map((s) => s.model), ["backup", "backup", "backup"])
        assert.deepStrictEqual(served[2].attempts.map((a) => [a.model, a.error?._tag]), [
          ["primary", "CircuitOpenError"],
          ["backup", undefined]
        ])
        assert.strictEqual((yield* fake.requestsTo("primary")).length, 2)

        const [opened] = yield* webhook.awaitRequests(1)
        assert.strictEqual(opened.path, "/alerts")
        assert.deepInclude(JSON.parse(opened.body), {
          text: "primary is out of rotation (consecutive-failures)",
          model: "primary",
          state: "open",
          reason: "consecutive-failures",
          nextProbeInMs: 150
        })
        const warnings = logs.lines.filter((line) => line.level === "WARN" && line.message === "circuit opened")
        assert.strictEqual(warnings.length, 1)
        assert.deepInclude(warnings[0].annotations, {
          "llm.model": "primary",
          "llm.pattern": "breaker",
          "breaker.from": "closed",
          "breaker.to": "open",
          "breaker.reason": "consecutive-failures",
          "breaker.break_ms": 150
        })

        // the outage ends; after the break a probe reaches the primary, succeeds and closes the circuit
        yield* fake.setModel("primary", {})
        yield* Fake.eventually(breaker.state("primary"), (state) => state === "half-open")
        const recovered = yield* ask
        assert.strictEqual(recovered.model, "primary")
        const alerts = yield* webhook.awaitRequests(2)
        assert.deepInclude(JSON.parse(alerts[1].body), {
          text: "primary is back in rotation",
          state: "closed",
          reason: "probes-succeeded",
          nextProbeInMs: null
        })
        assert.strictEqual(alerts.length, 2, "half-open is not worth an alert")
      }).pipe(Effect.provide(Live), Effect.provide(logs.layer))
    }))
})
