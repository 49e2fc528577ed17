/**
 * Several processes, one Redis: each process is an instance of an application with its own
 * stores, and they hammer the same keys at once (16 fibers each). What one Redis store promises
 * across processes is checked on what they were granted together.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { RedisServer } from "@resilient-llm/testing"
import { Effect, Schema, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../", import.meta.url))
const INSTANCES = 3
let runs = 0

const Hammered = Schema.Array(Schema.Struct({
  start: Schema.Number,
  end: Schema.Number,
  granted: Schema.Number,
  tried: Schema.Number
}))

const Probed = Schema.Array(Schema.Struct({
  stateWhileOpen: Schema.String,
  admitted: Schema.Number,
  refused: Schema.Number,
  stateAfter: Schema.String
}))

const Recorded = Schema.Array(Schema.Struct({
  calls: Schema.Number,
  summary: Schema.Struct({ variants: Schema.Array(Schema.Struct({ calls: Schema.Number })) })
}))

/** Runs `scenario` in `INSTANCES` processes at once against one Redis; what each printed. */
const run = (url: string, scenario: string) =>
  Effect.gen(function*() {
    const prefix = `multiprocess:${process.pid}:${++runs}:`
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const text = (stream: Stream.Stream<Uint8Array, unknown>) => stream.pipe(Stream.decodeText(), Stream.mkString)
    return yield* Effect.forEach(Array.from({ length: INSTANCES }, (_, i) => i), (index) =>
      Effect.gen(function*() {
        const child = yield* spawner.spawn(ChildProcess.make(
          process.execPath,
          [
            `${root}node_modules/tsx/dist/cli.mjs`,
            "test/stores/hammer.ts",
            scenario,
            url,
            prefix,
            String(INSTANCES),
            String(index)
          ],
          { cwd: root, extendEnv: true }
        ))
        const [stdout, stderr, exitCode] = yield* Effect.all([text(child.stdout), text(child.stderr), child.exitCode], {
          concurrency: "unbounded"
        })
        assert.strictEqual(exitCode, 0, stderr)
        const printed: { readonly result: unknown; readonly localAnswers: number } = JSON.parse(stdout)
        // every grant was Redis's, none a local view's
        assert.strictEqual(printed.localAnswers, 0)
        return printed.result
      }), { concurrency: "unbounded" })
  }).pipe(Effect.scoped)

describe("one Redis, several processes", () => {
  it.live(
    "a rate limit admits no more across processes than in one: the bucket and its refill, nothing more",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const results = yield* Schema.decodeUnknownEffect(Hammered)(yield* run(server.url, "rate"))
        const granted = results.reduce((n, r) => n + r.granted, 0)
        const tried = results.reduce((n, r) => n + r.tried, 0)
        const start = Math.min(...results.map((r) => r.start))
        const end = Math.max(...results.map((r) => r.end))
        // 600 a minute: a full bucket of 600, refilled at 10 a second while they hammered
        const bound = 600 + Math.floor(((end - start) / 60_000) * 600)
        console.log(
          `rate: ${INSTANCES} processes tried ${tried}, granted ${granted} of at most ${bound} (${end - start} ms)`
        )
        assert.isAbove(tried, bound, "the processes asked for more than the limit")
        assert.isAtMost(granted, bound)
        assert.isAtLeast(granted, 600)
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    { timeout: 120_000 }
  )

  it.live(
    "a budget admits exactly what one process would: 80 reservations of 0.125 under a limit of 10",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const results = yield* Schema.decodeUnknownEffect(Hammered)(yield* run(server.url, "budget"))
        const granted = results.reduce((n, r) => n + r.granted, 0)
        const tried = results.reduce((n, r) => n + r.tried, 0)
        console.log(`budget: ${INSTANCES} processes tried ${tried}, granted ${granted} (limit 10 / 0.125 = 80)`)
        assert.isAbove(tried, 80)
        assert.strictEqual(granted, 80)
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    { timeout: 120_000 }
  )

  it.live("an experiment's summary counts every process's calls", () =>
    Effect.gen(function*() {
      const server = yield* RedisServer.make()
      const results = yield* Schema.decodeUnknownEffect(Recorded)(yield* run(server.url, "experiment"))
      const total = results.reduce((n, r) => n + r.calls, 0)
      assert.strictEqual(total, INSTANCES * 16 * 25)
      // the last process to finish saw them all; every process saw at least its own
      const seen = results.map((r) => r.summary.variants.reduce((n, v) => n + v.calls, 0))
      assert.strictEqual(Math.max(...seen), total)
      results.forEach((r, i) => assert.isAtLeast(seen[i], r.calls))
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)), { timeout: 120_000 })

  it.live(
    "a circuit opened by one process is open in all, and half-open admits one probe across all of them",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const results = yield* Schema.decodeUnknownEffect(Probed)(yield* run(server.url, "breaker"))
        const admitted = results.reduce((n, r) => n + r.admitted, 0)
        const refused = results.reduce((n, r) => n + r.refused, 0)
        console.log(
          `breaker: ${INSTANCES} processes, ${
            INSTANCES * 16
          } calls at once in half-open: ${admitted} probe, ${refused} refused`
        )
        assert.deepStrictEqual(results.map((r) => r.stateWhileOpen), Array.from({ length: INSTANCES }, () => "open"))
        assert.strictEqual(admitted, 1)
        assert.strictEqual(refused, INSTANCES * 16 - 1)
        assert.deepStrictEqual(results.map((r) => r.stateAfter), Array.from({ length: INSTANCES }, () => "closed"))
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    { timeout: 120_000 }
  )
})
