import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, CircuitBreaker, Fallback } from "@resilient-llm/core"
import { FakeProvider, TestLogs } from "@resilient-llm/testing"
import { Context, Effect, Layer, Metric } from "effect"
import * as HttpRouter from "effect/http/HttpRouter"
import { readFileSync } from "node:fs"
import * as Collector from "../support/Collector.js"
import * as Fake from "../support/Fake.js"
import { BreakerAlerts } from "./Alerts.js"
import { StatusRoutes } from "./StatusPage.js"

// The README's observability examples: each is a type-checked file here (StatusPage.ts,
// OpenTelemetry.ts, Alerts.ts), run over real HTTP below (OpenTelemetry.ts in otel.test.ts), and
// the README's copies are checked against those files.

// Every line of code in the section's TypeScript blocks (imports and comment lines aside) must be a
// line of one of those files.

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8")

const section = (readme: string, name: string) => {
  const start = readme.indexOf(`<!-- section:${name}:start -->`)
  const end = readme.indexOf(`<!-- section:${name}:end -->`)
  assert.isAtLeast(start, 0)
  assert.isAbove(end, start)
  return readme.slice(start, end)
}

const codeLines = (code: string) =>
  code.split("\n").map((line) => line.trim()).filter((line) =>
    line !== "" && !line.startsWith("//") && !line.startsWith("import ")
  )

describe("README section observability", () => {
  it("every TypeScript example is the code of an example file that tsc checks and a test runs", () => {
    const blocks = [...section(read("../../README.md"), "observability").matchAll(/```ts\n([\s\S]*?)```/g)].map((
      match
    ) => match[1])
    assert.strictEqual(blocks.length, 4, "status page, OpenTelemetry SDK, OTLP, alerts")
    const sources = new Set(
      ["./StatusPage.ts", "./OpenTelemetry.ts", "./Alerts.ts"].flatMap((file) => codeLines(read(file)))
    )
    for (const block of blocks) {
      const lines = codeLines(block)
      assert.isAbove(lines.length, 3)
      for (const line of lines) assert.isTrue(sources.has(line), `README line not in an example file: ${line}`)
    }
  })
})

describe("Observability.snapshot as a status page", () => {
  it.live("serves per-model counts, error rates and latencies of real calls", () =>
    Effect.gen(function*() {
      const primary = "status-primary"
      const backup = "status-backup"
      const fake = yield* Fake.start({
        models: { [primary]: { script: [FakeProvider.serverError(503), FakeProvider.ok] }, [backup]: {} }
      })
      const complete = Fallback.chain([primary, backup])
      const served = yield* Effect.forEach(
        [1, 2, 3],
        () => Effect.map(complete(ChatCompletion.prompt("hi")), (s) => s.model)
      ).pipe(Effect.provide(Fake.client(fake.url)))
      // the first call fails over to the backup, then the primary serves
      assert.deepStrictEqual(served, [backup, primary, primary])

      // Effect 4 keeps the metric registry in the context: the route must run with the registry the
      // calls updated (this test's own), so the web handler is given it with each request.
      const registry = yield* Metric.MetricRegistry
      const { dispose, handler } = HttpRouter.toWebHandler(StatusRoutes, { disableLogger: true })
      yield* Effect.addFinalizer(() => Effect.promise(dispose))
      const statusPage = (context?: Context.Context<never>) =>
        Effect.promise(async () => {
          const response = await handler(new Request("http://status.local/status/models"), context)
          const rows: ReadonlyArray<Record<string, unknown>> = await response.json()
          return { status: response.status, rows }
        })
      const { rows, status } = yield* statusPage(Context.make(Metric.MetricRegistry, registry))
      assert.strictEqual(status, 200)
      const byModel = new Map(rows.map((row) => [row.model, row]))
      assert.deepInclude(byModel.get(primary), {
        requests: 3,
        errorRate: 1 / 3,
        outcomes: { ServerError: 1, success: 2 }
      })
      assert.deepInclude(byModel.get(backup), { requests: 1, errorRate: 0, outcomes: { success: 1 } })
      assert.isNumber(byModel.get(primary)?.p95Ms)

      // without it, the route reads the runtime's default registry, where these calls are not
      const elsewhere = yield* statusPage()
      assert.strictEqual(elsewhere.status, 200)
      assert.notInclude(elsewhere.rows.map((row) => row.model), primary)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map())))
})

describe("alerts from CircuitBreaker.subscribe", () => {
  it.live("a circuit opening is a warning log line and a webhook alert; closing again is another alert", () =>
    Effect.gen(function*() {
      const webhook = yield* Collector.make
      const fake = yield* Fake.start({
        models: { primary: { script: () => FakeProvider.serverError(503) }, backup: {} }
      })
      const logs = TestLogs.make()
      const BreakerLive = CircuitBreaker.layer({
        trip: CircuitBreaker.consecutiveFailures(2),
        // long enough that the third call still finds the circuit open on a busy machine (at 150 ms
        // the break once ended before it, and the call probed the primary instead)
        breakDuration: "1 second"
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
          nextProbeInMs: 1000
        })
        const warnings = logs.lines.filter((line) => line.level === "WARN" && line.message === "circuit opened")
        assert.strictEqual(warnings.length, 1)
        assert.deepInclude(warnings[0].annotations, {
          "llm.model": "primary",
          "llm.pattern": "breaker",
          "breaker.from": "closed",
          "breaker.to": "open",
          "breaker.reason": "consecutive-failures",
          "breaker.break_ms": 1000
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
