import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { FakeProvider } from "@resilient-llm/testing"
import { ConfigProvider, Effect, Ref, References, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { fileURLToPath } from "node:url"
import * as Render from "../src/Render.js"
import * as Tour from "../src/Tour.js"

const root = fileURLToPath(new URL("../../..", import.meta.url))

/** Every model of the story, as the metrics table must list them. */
const storyModels = ["backup", "gpt-nonexistent", "judge", "primary", "quick", "slow", "steady"]

const attemptsOf = (request: Tour.Request) => request.attempts.map((a) => [a.model, a.retry, a.outcome])

describe("Tour.fake", () => {
  it.live("plays the whole story over HTTP and reports what each pattern did", () =>
    Effect.gen(function*() {
      const events = yield* Ref.make<ReadonlyArray<Tour.Event>>([])
      const report = yield* Tour.fake({
        seed: 42,
        requests: 100,
        onEvent: (event) => Ref.update(events, (all) => [...all, event])
      }).pipe(Effect.scoped)
      assert.strictEqual(report.mode, "fake")
      assert.strictEqual(report.seed, 42)
      assert.match(report.endpoint, /^http:\/\/127\.0\.0\.1:\d+\/v1$/)

      // 1. Fallback: the invalid model falls back at once, the 503 is retried, the hangs time out.
      const fallback = report.fallback.requests
      assert.deepStrictEqual(fallback.map((r) => r.servedBy), ["primary", "primary", "backup"])
      assert.deepStrictEqual(attemptsOf(fallback[0]), [
        ["gpt-nonexistent", 0, "ModelNotFoundError"],
        ["primary", 0, "success"]
      ])
      assert.deepStrictEqual(attemptsOf(fallback[1]), [
        ["gpt-nonexistent", 0, "ModelNotFoundError"],
        ["primary", 0, "ServerError"],
        ["primary", 1, "success"]
      ])
      assert.deepStrictEqual(attemptsOf(fallback[2]), [
        ["gpt-nonexistent", 0, "ModelNotFoundError"],
        ["primary", 0, "TimeoutError"],
        ["primary", 1, "TimeoutError"],
        ["backup", 0, "success"]
      ])
      assert.isTrue(fallback.every((r) => r.reply !== undefined && r.reply.includes(r.prompt.match(/#\d+/)![0])))

      // 2. Breaker: the transitions, in order, as `changes` reported them (and as the events showed them).
      const breaker = report.breaker
      assert.strictEqual(breaker.status, "ran")
      if (breaker.status !== "ran") return
      const expected = [
        ["closed", "open", "consecutive-failures"],
        ["open", "half-open", "break-elapsed"],
        ["half-open", "open", "probe-failed"],
        ["open", "half-open", "break-elapsed"],
        ["half-open", "closed", "probes-succeeded"]
      ]
      assert.deepStrictEqual(breaker.transitions.map((t) => [t.from, t.to, t.reason]), expected)
      assert.deepStrictEqual(breaker.transitions.map((t) => t.key), Array(5).fill("primary"))
      assert.deepStrictEqual(breaker.transitions.map((t) => t.breakMs), [600, undefined, 1200, undefined, undefined])
      const seen = (yield* Ref.get(events)).flatMap((e) => e._tag === "Transition" ? [e.transition] : [])
      assert.deepStrictEqual(seen.map((t) => [t.from, t.to, t.reason]), expected)

      const requests = breaker.timeline.flatMap((step) => step.kind === "request" ? [step.request] : [])
      const primaryOutcome = (r: Tour.Request) => r.attempts.find((a) => a.model === "primary")?.outcome
      // the outage: three timeouts on the primary, the backup serves, and the third opens the circuit
      assert.deepStrictEqual(requests.slice(0, 3).map((r) => [primaryOutcome(r), r.servedBy]), [
        ["TimeoutError", "backup"],
        ["TimeoutError", "backup"],
        ["TimeoutError", "backup"]
      ])
      // while open: the primary is skipped without a call, and the backup serves at once
      const skipped = requests.filter((r) => primaryOutcome(r) === "CircuitOpenError")
      assert.isAtLeast(skipped.length, 2)
      assert.isTrue(skipped.every((r) => r.servedBy === "backup"))
      assert.isTrue(skipped.every((r) => r.attempts[0].durationMs < breaker.config.timeoutMs / 2))
      assert.strictEqual(breaker.skipped, skipped.length)
      assert.isAbove(breaker.savedMs, 0)
      // the successful probe and the request after it are served by the recovered primary
      assert.deepStrictEqual(requests.slice(-2).map((r) => [r.servedBy, r.attempts.length]), [
        ["primary", 1],
        ["primary", 1]
      ])

      // 3. A/B: both variants, sticky counts, every request accounted for, the score compared.
      const experiment = report.experiment
      assert.strictEqual(experiment.status, "ran")
      if (experiment.status !== "ran") return
      const { summary } = experiment
      assert.deepStrictEqual(summary.variants.map((v) => [v.name, v.model]), [
        ["control", "steady"],
        ["challenger", "quick"]
      ])
      assert.strictEqual(summary.variants.reduce((sum, v) => sum + v.calls, 0), 100)
      assert.isTrue(summary.variants.every((v) => v.calls >= summary.minSamples))
      assert.strictEqual(experiment.served + experiment.failed, 100)
      assert.strictEqual(summary.variants.reduce((sum, v) => sum + v.errors, 0), experiment.failed)
      assert.strictEqual(summary.variants.reduce((sum, v) => sum + v.score.count, 0), experiment.scored)
      assert.strictEqual(summary.comparisons.length, 1)
      const comparison = summary.comparisons[0]
      assert.strictEqual(comparison.variant, "challenger")
      for (const c of [comparison.latency, comparison.errorRate, comparison.score]) {
        assert.isDefined(c.lower)
        assert.isDefined(c.upper)
        assert.include(["better", "worse", "inconclusive"], c.verdict)
      }
      // the challenger's answers mention more key facts: the judge's scores say so
      assert.strictEqual(comparison.score.verdict, "better")
      const progress = (yield* Ref.get(events)).flatMap((e) => e._tag === "Progress" ? [e.done] : [])
      assert.strictEqual(progress.at(-1), 100)

      // 4. Best-of-n: three answers, ranked by the judge's scores, the most complete wins.
      const bestOfN = report.bestOfN
      assert.strictEqual(bestOfN.best, "slow")
      assert.deepStrictEqual(bestOfN.ranking, ["slow", "steady", "quick"])
      assert.deepStrictEqual(bestOfN.candidates.map((c) => [c.model, c.status, c.score]), [
        ["quick", "scored", 4],
        ["steady", "scored", 6],
        ["slow", "scored", 10]
      ])

      // Metrics: every model of the story, with what happened to it.
      assert.deepStrictEqual(report.metrics.map((m) => m.model), storyModels)
      const metrics = new Map(report.metrics.map((m) => [m.model, m]))
      assert.deepStrictEqual(metrics.get("gpt-nonexistent")?.outcomes, { ModelNotFoundError: 3 })
      assert.isAbove(metrics.get("primary")?.outcomes["TimeoutError"] ?? 0, 0)
      assert.strictEqual(metrics.get("slow")?.successes, 1)

      // The human report says the same, without colour codes when colour is off.
      const text = Render.report(report, Render.plain).join("\n")
      assert.notInclude(text, "\x1b[")
      for (const line of ["served by backup", "primary's circuit closed → open", "best: slow", "Per-model metrics"]) {
        assert.include(text, line)
      }
    }).pipe(Effect.provide(NodeHttpClient.layerUndici), Effect.provideService(References.MinimumLogLevel, "None")), {
    timeout: 60_000
  })
})

describe("Tour.live", () => {
  it.live("runs the tour against the endpoint in OPENAI_BASE_URL, without the outage act", () =>
    Effect.gen(function*() {
      const endpoint = yield* FakeProvider.make({
        apiKey: "sk-endpoint",
        models: { "model-a": {}, "model-b": {}, "judge-x": { reply: "7" } }
      })
      const report = yield* Tour.live({ models: ["model-a", "model-b"], judge: "judge-x", requests: 6 }).pipe(
        Effect.provideService(
          ConfigProvider.ConfigProvider,
          ConfigProvider.fromUnknown({ OPENAI_BASE_URL: endpoint.url, OPENAI_API_KEY: "sk-endpoint" })
        )
      )
      assert.strictEqual(report.mode, "live")
      assert.strictEqual(report.endpoint, endpoint.url)
      assert.deepStrictEqual(report.fallback.requests.map((r) => r.servedBy), ["model-a", "model-a", "model-a"])
      assert.deepStrictEqual(report.fallback.requests[0].attempts.map((a) => a.outcome), [
        "ModelNotFoundError",
        "success"
      ])
      assert.strictEqual(report.breaker.status, "skipped")
      if (report.experiment.status !== "ran") return assert.fail("the A/B act did not run")
      assert.deepStrictEqual(report.experiment.summary.variants.map((v) => v.model), ["model-a", "model-b"])
      assert.strictEqual(report.experiment.scored, 6)
      // equal scores: the tie goes to the model listed first
      assert.deepStrictEqual(report.bestOfN.ranking, ["model-a", "model-b"])
      assert.deepStrictEqual(report.metrics.map((m) => m.model), ["gpt-nonexistent", "judge-x", "model-a", "model-b"])
      // every call carried the key: none was turned away
      const received = yield* endpoint.requests
      assert.isAbove(received.length, 10)
      assert.isTrue(received.every((r) => r.rejection !== "unauthorized"))
    }).pipe(
      Effect.scoped,
      Effect.provide(NodeHttpClient.layerUndici),
      Effect.provideService(References.MinimumLogLevel, "None")
    ))
})

describe("pnpm demo --json", () => {
  it.live("prints one JSON document on stdout with the report", () =>
    Effect.gen(function*() {
      const command = ChildProcess.make(
        process.execPath,
        [`${root}node_modules/tsx/dist/cli.mjs`, "packages/demo/src/main.ts", "--json", "--requests", "20"],
        { cwd: root, env: { NO_COLOR: "1" }, extendEnv: true }
      )
      const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
      const child = yield* spawner.spawn(command)
      const text = (stream: Stream.Stream<Uint8Array, unknown>) => stream.pipe(Stream.decodeText(), Stream.mkString)
      const [stdout, , exitCode] = yield* Effect.all([text(child.stdout), text(child.stderr), child.exitCode], {
        concurrency: "unbounded"
      })
      assert.strictEqual(exitCode, 0)
      const report: Tour.Report = JSON.parse(stdout)
      assert.strictEqual(report.mode, "fake")
      assert.deepStrictEqual(report.fallback.requests.map((r) => r.servedBy), ["primary", "primary", "backup"])
      assert.strictEqual(report.breaker.status, "ran")
      if (report.experiment.status !== "ran") return assert.fail("the A/B act did not run")
      assert.strictEqual(report.experiment.summary.variants.reduce((sum, v) => sum + v.calls, 0), 20)
      assert.strictEqual(report.bestOfN.best, "slow")
      assert.deepStrictEqual(report.metrics.map((m) => m.model), storyModels)
    }).pipe(
      Effect.scoped,
      Effect.provide(NodeServices.layer)
    ), { timeout: 90_000 })
})
