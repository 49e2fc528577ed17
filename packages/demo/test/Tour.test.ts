import { assert, describe, it } from "@effect/vitest"
import { FakeProvider } from "@resilient-llm/testing"
import { ConfigProvider, Duration, Effect, Fiber, Ref, References, Scheduler } from "effect"
import { FetchHttpClient } from "effect/http"
import { TestClock } from "effect/testing"
import * as Render from "../src/Render.js"
import * as Tour from "../src/Tour.js"

/** Every model of the story, as the metrics table must list them. */
const storyModels = ["backup", "gpt-nonexistent", "judge", "primary", "quick", "slow", "steady", "support"]

const attemptsOf = (request: Tour.Request) => request.attempts.map((a) => [a.model, a.retry, a.outcome])

/**
 * Runs `program` in virtual time: the tour reaches its fake in-process (no socket, no I/O), so
 * every delay in it is a `TestClock` sleep, and the clock moves 1 ms at a time, but only once the
 * program has settled: once a whole turn of the event loop has passed without any of its fibers
 * (the fake's handlers included) being scheduled. Promises (the in-process HTTP messages) settle
 * within such turns, so each exchange takes no virtual time, and a run is the same on an idle
 * machine and a loaded one.
 */
const inVirtualTime = <A, E, R>(program: Effect.Effect<A, E, R>, limit: Duration.Input = "2 minutes") =>
  Effect.gen(function*() {
    const inner = yield* Scheduler.Scheduler
    let scheduled = 0
    const counting: Scheduler.Scheduler = {
      executionMode: inner.executionMode,
      shouldYield: (fiber) => inner.shouldYield(fiber),
      makeDispatcher: () => {
        const dispatcher = inner.makeDispatcher()
        return {
          scheduleTask: (task, priority) => {
            scheduled++
            dispatcher.scheduleTask(task, priority)
          },
          flush: () => dispatcher.flush()
        }
      }
    }
    const fiber = yield* Effect.forkChild(Effect.provideService(program, Scheduler.Scheduler, counting))
    const turn = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
    const settled = Effect.gen(function*() {
      for (;;) {
        const before = scheduled
        yield* turn
        if (scheduled === before) return
      }
    })
    const steps = Duration.toMillis(Duration.fromInputUnsafe(limit))
    for (let step = 0; step < steps && fiber.pollUnsafe() === undefined; step++) {
      yield* settled
      if (fiber.pollUnsafe() === undefined) yield* TestClock.adjust("1 millis")
    }
    if (fiber.pollUnsafe() === undefined) {
      yield* Fiber.interrupt(fiber)
      return yield* Effect.die(new Error(`still running after ${Duration.format(Duration.fromInputUnsafe(limit))}`))
    }
    return yield* Fiber.join(fiber)
  })

describe("Tour.fake", () => {
  it.effect("plays the whole story over HTTP, in virtual time, and reports what each pattern did", () =>
    Effect.gen(function*() {
      const events = yield* Ref.make<ReadonlyArray<Tour.Event>>([])
      const report = yield* inVirtualTime(
        Tour.fake({
          seed: 42,
          requests: 100,
          inProcess: true,
          onEvent: (event) => Ref.update(events, (all) => [...all, event])
        }).pipe(Effect.scoped)
      )
      assert.strictEqual(report.mode, "fake")
      assert.strictEqual(report.seed, 42)
      assert.match(report.endpoint, /^http:\/\/127\.0\.0\.1:\d+\/v1$/)

      // 1. Fallback: the invalid model falls back at once, the 503 is retried, the hangs time out;
      // the last request hedges the hanging primary with the backup, which serves.
      const fallback = report.fallback.requests
      assert.deepStrictEqual(fallback.map((r) => r.servedBy), ["primary", "primary", "backup", "backup"])
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
      // no attempt of the first three requests was a hedge: their chain does not hedge
      assert.isTrue(fallback.slice(0, 3).every((r) => r.attempts.every((a) => !a.hedge)))
      // the hedged request: the primary hangs, the backup is started alongside it as a hedge (its first
      // try, not a retry) and serves; the primary's request is cancelled when the backup answers
      const hedged = fallback[3]
      assert.deepStrictEqual(hedged.attempts.map((a) => [a.model, a.retry, a.outcome, a.hedge]), [
        ["primary", 0, "cancelled", false],
        ["backup", 0, "success", true]
      ])
      assert.deepStrictEqual([hedged.servedBy, hedged.error], ["backup", undefined])
      // the primary is cancelled at the instant the backup answers, which ends the request; the backup
      // started at the hedge delay, well before the primary's timeout. This test moves the clock 1 ms
      // at a time, and the hedge's timer and the backup's answer each resume within the step that
      // reaches them: the start is known to 2 ms here (FallbackHedging.test.ts checks the exact instants)
      const [primary, backup] = hedged.attempts
      const delay = report.fallback.config.hedgeDelayMs
      assert.strictEqual(delay, Tour.fakeTiming.hedgeDelayMs)
      assert.strictEqual(primary.durationMs, hedged.durationMs)
      const backupStartedAfter = primary.durationMs - backup.durationMs
      assert.isAtLeast(backupStartedAfter, delay)
      assert.isBelow(backupStartedAfter, delay + 2)
      assert.isBelow(hedged.durationMs, report.fallback.config.timeoutMs)
      assert.isTrue(fallback.every((r) => r.reply !== undefined && r.reply.includes(r.prompt.match(/#\d+/)![0])))

      // 2. Breaker: the transitions, in order, as `changes` reported them (and as the events showed them).
      const breaker = report.breaker
      assert.strictEqual(breaker.status, "ran")
      if (breaker.status !== "ran") return
      // in virtual time the breaks last exactly their durations, 600 ms then 1200 ms
      const at = breaker.transitions.map((t) => t.atMs)
      assert.deepStrictEqual([at[1] - at[0], at[3] - at[2]], [600, 1200])
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
      // every other user streams: 50 requests, each answered unless it failed
      assert.isAbove(experiment.streamed, 0)
      assert.isAtMost(experiment.streamed, 50)
      assert.isAtLeast(experiment.streamed, 50 - experiment.failed)
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

      // 5. Deployments: east's rate limit fills after 4 requests and the rest spill over to west; every call
      // is priced; team-b's budget refuses it before any provider is asked.
      const deployments = report.deployments
      assert.strictEqual(deployments.status, "ran")
      if (deployments.status !== "ran") return
      const burst = deployments.requests.filter((r) => r.key === "team-a")
      assert.deepStrictEqual(burst.map((r) => r.deployment), ["east", "east", "east", "east", "west", "west"])
      assert.deepStrictEqual(burst[4].attempts.map((a) => [a.model, a.deployment, a.outcome]), [
        ["support", "east", "ThrottledError"],
        ["support", "west", "success"]
      ])
      assert.isTrue(burst.every((r) => r.costUsd !== undefined && r.costUsd > 0))
      const budgeted = deployments.requests.filter((r) => r.key === "team-b")
      const refused = budgeted.at(-1)
      assert.strictEqual(deployments.budget.refused, refused?.number)
      assert.deepStrictEqual(refused?.attempts.map((a) => a.outcome), ["BudgetExceededError"])
      assert.isAtLeast(deployments.budget.spentUsd, deployments.budget.limitUsd)
      assert.isTrue(budgeted.slice(0, -1).every((r) => r.servedBy === "support"))
      assert.strictEqual(deployments.served["east"], 4)
      assert.isTrue(
        Math.abs(
          Object.values(deployments.costUsd).reduce((a, b) => a + b, 0) -
            deployments.requests.reduce((sum, r) => sum + (r.costUsd ?? 0), 0)
        ) < 1e-12
      )

      // Metrics: every model of the story, with what happened to it.
      assert.deepStrictEqual(report.metrics.map((m) => m.model), storyModels)
      const metrics = new Map(report.metrics.map((m) => [m.model, m]))
      assert.deepStrictEqual(metrics.get("gpt-nonexistent")?.outcomes, { ModelNotFoundError: 3 })
      assert.isAbove(metrics.get("primary")?.outcomes["TimeoutError"] ?? 0, 0)
      assert.strictEqual(metrics.get("slow")?.successes, 1)

      // The human report says the same, without colour codes when colour is off.
      const text = Render.report(report, Render.plain).join("\n")
      assert.notInclude(text, "\x1b[")
      for (
        const line of [
          "served by backup",
          "backup (hedge)",
          "another model answered first: interrupted, request aborted",
          "primary's circuit closed → open",
          "best: slow",
          "served by support@west",
          "team-b's budget refused request",
          "Per-model metrics"
        ]
      ) {
        assert.include(text, line)
      }
    }).pipe(
      // the tour reaches its fake in-process: this client is never used, and no socket is opened
      Effect.provide(FetchHttpClient.layer),
      Effect.provideService(References.MinimumLogLevel, "None")
    ))
})

describe("Tour.live", () => {
  it.effect("runs the tour against the endpoint in OPENAI_BASE_URL, without the outage act", () =>
    Effect.gen(function*() {
      const { endpoint, report } = yield* inVirtualTime(Effect.gen(function*() {
        const endpoint = yield* FakeProvider.make({
          apiKey: "sk-endpoint",
          models: { "model-a": {}, "model-b": {}, "judge-x": { reply: "7" } }
        })
        const report = yield* Tour.live({ models: ["model-a", "model-b"], judge: "judge-x", requests: 6 }).pipe(
          Effect.provideService(
            ConfigProvider.ConfigProvider,
            ConfigProvider.fromUnknown({ OPENAI_BASE_URL: endpoint.url, OPENAI_API_KEY: "sk-endpoint" })
          ),
          // the endpoint reached in-process, so the tour runs in virtual time
          Effect.provide(FetchHttpClient.layer),
          Effect.provideService(FetchHttpClient.Fetch, endpoint.fetch)
        )
        return { endpoint, report }
      }))
      assert.strictEqual(report.mode, "live")
      assert.strictEqual(report.endpoint, endpoint.url)
      assert.deepStrictEqual(report.fallback.requests.map((r) => r.servedBy), [
        "model-a",
        "model-a",
        "model-a",
        "model-a"
      ])
      assert.deepStrictEqual(report.fallback.requests[0].attempts.map((a) => a.outcome), [
        "ModelNotFoundError",
        "success"
      ])
      // the hedged request: model-a answers well within the hedge delay, so no hedge is started
      assert.deepStrictEqual(report.fallback.config.hedgedModels, ["model-a", "model-b"])
      assert.deepStrictEqual(
        report.fallback.requests[3].attempts.map((a) => [a.model, a.retry, a.outcome, a.hedge]),
        [["model-a", 0, "success", false]]
      )
      assert.strictEqual(report.breaker.status, "skipped")
      assert.strictEqual(report.deployments.status, "skipped")
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
      Effect.provideService(References.MinimumLogLevel, "None")
    ))
})
