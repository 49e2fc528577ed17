import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result, Schema, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { fileURLToPath } from "node:url"
import * as Cli from "../src/Cli.js"
import * as Render from "../src/Render.js"
import type * as Tour from "../src/Tour.js"

const root = fileURLToPath(new URL("../../..", import.meta.url))

const parsed = (...argv: Array<string>) => Result.getOrThrow(Cli.parse(argv))
const refused = (...argv: Array<string>) => Result.flip(Cli.parse(argv)).pipe(Result.getOrThrow).reason

describe("Cli.parse", () => {
  it("runs the fake tour by default", () => {
    assert.deepStrictEqual(parsed(), {
      help: false,
      json: false,
      verbose: false,
      seed: Cli.defaultSeed,
      requests: undefined,
      models: undefined,
      judge: undefined,
      redis: undefined
    })
  })

  it("takes a Redis URL for the shared act, and refuses what is not one", () => {
    assert.strictEqual(parsed("--redis", "redis://127.0.0.1:6379").redis, "redis://127.0.0.1:6379")
    assert.strictEqual(parsed("--redis=rediss://user:pw@cache:6380/0").redis, "rediss://user:pw@cache:6380/0")
    assert.include(refused("--redis", "127.0.0.1:6379"), "--redis takes a URL such as redis://127.0.0.1:6379")
    assert.include(refused("--redis"), "--redis needs a value")
  })

  it("reads switches, and values after a space or an equals sign", () => {
    const options = parsed("--json", "--verbose", "--seed=7", "--requests", "50")
    assert.deepStrictEqual([options.json, options.verbose, options.seed, options.requests], [true, true, 7, 50])
    assert.isTrue(parsed("-h").help)
    assert.isTrue(parsed("--help").help)
  })

  it("takes a real endpoint's models and judge", () => {
    const options = parsed("--models", "gpt-4o-mini, gpt-4.1-nano,llama3", "--judge", "gpt-4o")
    assert.deepStrictEqual(options.models, ["gpt-4o-mini", "gpt-4.1-nano", "llama3"])
    assert.strictEqual(options.judge, "gpt-4o")
  })

  it("refuses what it cannot do, saying why", () => {
    assert.strictEqual(refused("--colour"), `unknown argument "--colour"`)
    assert.strictEqual(refused("demo"), `unknown argument "demo"`)
    assert.strictEqual(refused("--json=yes"), `unknown argument "--json=yes"`)
    assert.strictEqual(refused("--seed"), "--seed needs a value")
    assert.strictEqual(refused("--models", "--json"), "--models needs a value")
    assert.strictEqual(refused("--seed", "1", "--seed", "2"), "--seed is given twice")
    assert.strictEqual(refused("--requests", "0"), `--requests takes a whole number from 1 to 10000, got "0"`)
    assert.strictEqual(refused("--requests", "1e3"), `--requests takes a whole number from 1 to 10000, got "1e3"`)
    assert.strictEqual(refused("--seed", "-1"), `--seed takes a whole number from 0 to 2147483647, got "-1"`)
    assert.strictEqual(refused("--models", "a"), "--models needs at least two different models")
    assert.strictEqual(refused("--models", "a,a"), "--models needs at least two different models")
    assert.strictEqual(refused("--models", "a,,b"), "--models has an empty name")
    assert.strictEqual(refused("--judge", "j"), "--judge goes with --models (the fake has its own judge)")
    assert.strictEqual(
      refused("--models", "a,b", "--seed", "3"),
      "--seed is for the fake provider; it has no effect with --models"
    )
  })

  it.prop("reads back any request count in range, and refuses any out of it", [Schema.Int], ([n]) => {
    const result = Cli.parse(["--requests", String(n)])
    if (n >= 1 && n <= 10_000) return Result.isSuccess(result) && result.success.requests === n
    return Result.isFailure(result)
  })
})

describe("Render.colorEnabled", () => {
  it("colours a terminal, unless NO_COLOR; FORCE_COLOR forces it", () => {
    assert.isTrue(Render.colorEnabled(true, {}))
    assert.isFalse(Render.colorEnabled(false, {}))
    assert.isFalse(Render.colorEnabled(true, { TERM: "dumb" }))
    assert.isFalse(Render.colorEnabled(true, { NO_COLOR: "1" }))
    assert.isTrue(Render.colorEnabled(true, { NO_COLOR: "" }))
    assert.isTrue(Render.colorEnabled(false, { FORCE_COLOR: "1" }))
    assert.isFalse(Render.colorEnabled(true, { FORCE_COLOR: "0" }))
    assert.isFalse(Render.colorEnabled(false, { FORCE_COLOR: "1", NO_COLOR: "1" }))
  })
})

describe("Render.table", () => {
  it("aligns columns by their visible width, colour codes left out", () => {
    const s = Render.style(true)
    const lines = Render.table(["model", "n"], [[s.green("a"), "1"], ["bbb", "100"]], { right: [1] })
    assert.include(lines[1], "\x1b[32ma\x1b[39m")
    assert.deepStrictEqual(lines.map(Render.strip), [
      "model    n",
      "a        1",
      "bbb    100"
    ])
  })
})

describe("pnpm demo --json", () => {
  // The real program in a child process, over a socket and on the real clock: what it checks is the
  // command's contract (exit code 0, one JSON document with every act), not the story's timing,
  // which Tour.test.ts checks in virtual time. Nothing here depends on how fast the machine is.
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
      assert.strictEqual(report.fallback.requests.length, 4)
      assert.isTrue(report.fallback.requests.every((r) => r.servedBy !== undefined))
      // the hedged request: the primary hangs, so the backup, started as a hedge, serves
      assert.deepStrictEqual(report.fallback.requests[3].attempts.map((a) => [a.model, a.outcome, a.hedge]), [
        ["primary", "cancelled", false],
        ["backup", "success", true]
      ])
      assert.strictEqual(report.breaker.status, "ran")
      if (report.experiment.status !== "ran") return assert.fail("the A/B act did not run")
      assert.strictEqual(report.experiment.summary.variants.reduce((sum, v) => sum + v.calls, 0), 20)
      assert.include(["quick", "steady", "slow"], report.bestOfN.best)
      assert.strictEqual(report.deployments.status, "ran")
      assert.deepStrictEqual(report.metrics.map((m) => m.model), [
        "backup",
        "gpt-nonexistent",
        "judge",
        "primary",
        "quick",
        "slow",
        "steady",
        "support"
      ])
    }).pipe(
      Effect.scoped,
      Effect.provide(NodeServices.layer)
    ), { timeout: 90_000 })
})
