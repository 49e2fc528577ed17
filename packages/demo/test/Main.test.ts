import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { fileURLToPath } from "node:url"
import type * as Tour from "../src/Tour.js"

// The command line end to end, in a process of its own. A file of its own too, so that the test
// runner can run it beside the in-process tour instead of after it.

const root = fileURLToPath(new URL("../../..", import.meta.url))

/** Every model of the story, as the metrics table must list them. */
const storyModels = ["backup", "gpt-nonexistent", "judge", "primary", "quick", "slow", "steady"]

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
