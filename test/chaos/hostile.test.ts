import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import type { ChatClient } from "@resilient-llm/core"
import { ChatCompletion, Fallback, LlmError } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { FakeProvider } from "@resilient-llm/testing"
import { Cause, Clock, Duration, Effect, Exit, FastCheck, Logger, LogLevel, Option, Runtime, Stream } from "effect"
import { megabytes, table, Tally } from "./Figures.js"
import * as Hostile from "./Hostile.js"
import { profile } from "./Profile.js"
import { waitFor } from "./Soak.js"

const request: ChatCompletion.ChatRequest = { model: "hostile", ...ChatCompletion.prompt("hi") }

/** The test's own bound on one call: a call still running past it is a hang, and fails the test. */
const bound = Duration.seconds(5)

interface Played {
  readonly outcome: string
  readonly ms: number
  readonly complaint: string | undefined
}

const play = (fake: FakeProvider.Service, client: ChatClient.Service, kase: Hostile.Case) =>
  Effect.gen(function*() {
    yield* fake.setModel("hostile", { script: [kase.outcome] })
    const start = yield* Clock.currentTimeMillis
    const call: Effect.Effect<unknown, LlmError.LlmError> = kase.stream
      ? Stream.runDrain(client.stream(request))
      : client.create(request)
    const exit = yield* call.pipe(
      Effect.timeoutFail({ duration: bound, onTimeout: () => "hung" as const }),
      Effect.exit
    )
    const ms = (yield* Clock.currentTimeMillis) - start
    const played = (outcome: string, complaint: string | undefined): Played => ({ outcome, ms, complaint })
    if (Exit.isSuccess(exit)) return played("success", "the call succeeded: a completion the provider never sent")
    const failure = Cause.failureOption(exit.cause)
    if (Option.isNone(failure)) return played("defect", `the call died: ${Cause.pretty(exit.cause)}`)
    const error = failure.value
    if (error === "hung") return played("hung", `no outcome within ${Duration.format(bound)}`)
    if (!LlmError.isLlmError(error)) return played("untyped", `not an LlmError: ${String(error)}`)
    return played(error._tag, kase.check(error))
  })

describe("hostile responses", () => {
  it.scopedLive(
    `${profile.hostileRuns} generated hostile responses each end as a typed LlmError, never a hang or a completion`,
    () =>
      Effect.gen(function*() {
        const fake = yield* FakeProvider.make({ models: { hostile: {} } })
        const client = yield* OpenAiCompatible.make({ baseUrl: fake.url })
        const runtime = yield* Effect.runtime<never>()
        const outcomes = new Map<string, Tally>()
        let slowest = 0

        // the harness can tell a success from a failure: a valid body is served as it was sent
        const control = yield* play(fake, client, {
          kind: "control",
          outcome: FakeProvider.raw({ status: 200, body: JSON.stringify(Hostile.completion("fine")) }),
          stream: false,
          check: () => undefined,
          label: "a valid completion"
        })
        assert.strictEqual(control.outcome, "success")

        const property = FastCheck.asyncProperty(Hostile.hostileResponse, async (kase) => {
          const played = await Runtime.runPromise(runtime)(play(fake, client, kase))
          const tally = outcomes.get(kase.kind) ?? new Tally()
          tally.add(played.outcome)
          outcomes.set(kase.kind, tally)
          slowest = Math.max(slowest, played.ms)
          if (played.complaint !== undefined) {
            throw new Error(`${kase.kind} (${kase.label}): ${played.complaint}`)
          }
        })
        yield* Effect.promise(() => FastCheck.assert(property, { numRuns: profile.hostileRuns }))

        const idle = yield* waitFor(Effect.map(fake.activeRequests, (n) => n === 0), "5 seconds")
        console.log(table(`hostile responses (${profile.name}): ${profile.hostileRuns} runs, each bounded by 5 s`, [
          ...[...outcomes.entries()].sort(([a], [b]) => a.localeCompare(b)).map((
            [kind, tally]
          ): readonly [string, string] => [
            kind,
            Object.entries(tally.toRecord()).map(([outcome, n]) => `${outcome} ${n}`).join(", ")
          ]),
          ["slowest call", `${slowest} ms`],
          ["server idle after the last", idle < 0 ? "no (5 s)" : `${idle} ms`]
        ]))
        assert.isAtLeast(idle, 0, "no response is still being written")
      }).pipe(Effect.provide(NodeHttpClient.layerUndici)),
    { timeout: 5 * 60_000 }
  )

  const twentyMegabytes = 20 * 1024 * 1024

  const hugeBody = (options: { readonly declareLength: boolean; readonly maxResponseBytes?: number }) =>
    Effect.gen(function*() {
      let produced = 0
      const body = FakeProvider.repeatBytes(twentyMegabytes).pipe(
        Stream.tap((chunk) =>
          Effect.sync(() => {
            produced += chunk.byteLength
          })
        )
      )
      const fake = yield* FakeProvider.make({
        models: {
          huge: {
            script: () =>
              FakeProvider.raw({
                status: 200,
                body,
                headers: {
                  "content-type": "application/json",
                  ...(options.declareLength ? { "content-length": String(twentyMegabytes) } : {})
                }
              })
          }
        }
      })
      const client = yield* OpenAiCompatible.make({
        baseUrl: fake.url,
        ...(options.maxResponseBytes === undefined ? {} : { maxResponseBytes: options.maxResponseBytes })
      })
      const limit = options.maxResponseBytes ?? OpenAiCompatible.defaultMaxResponseBytes
      const start = yield* Clock.currentTimeMillis
      const error = yield* client.create({ ...request, model: "huge" }).pipe(
        Effect.timeoutFail({ duration: bound, onTimeout: () => "hung" as const }),
        Effect.flip
      )
      const ms = (yield* Clock.currentTimeMillis) - start
      // the server stops writing and the connection closes: nobody reads the rest
      const closedAfter = yield* waitFor(
        Effect.zipWith(fake.activeRequests, fake.openConnections, (active, open) => active === 0 && open === 0),
        "5 seconds"
      )
      console.log(table(`a 20 MiB body, ${options.declareLength ? "content-length declared" : "chunked"}`, [
        ["client limit", megabytes(limit)],
        ["outcome", LlmError.isLlmError(error) ? `${error._tag} after ${ms} ms: ${error.message}` : String(error)],
        ["bytes the server produced", `${megabytes(produced)} of ${megabytes(twentyMegabytes)}`],
        ["connection closed", closedAfter < 0 ? "no (5 s)" : `${closedAfter} ms after the error`]
      ]))
      assert.isTrue(LlmError.isLlmError(error) && error._tag === "ResponseDecodeError", String(error))
      assert.include(LlmError.isLlmError(error) ? error.message : "", `exceeds the limit of ${limit} bytes`)
      assert.isAtLeast(closedAfter, 0, "the server stopped writing and the connection closed")
      return { produced, limit }
    }).pipe(Effect.provide(NodeHttpClient.layerUndici))

  it.scopedLive("a 20 MiB body over the default limit is refused after reading a fraction of it", () =>
    Effect.gen(function*() {
      const { limit, produced } = yield* hugeBody({ declareLength: false })
      // the client reads up to its limit; the rest of what was produced sat in socket buffers
      assert.isBelow(produced, limit + 6 * 1024 * 1024)
      assert.isBelow(produced, twentyMegabytes * 0.75)
    }))

  it.scopedLive("a 20 MiB body over a 1 MiB limit: refused after about a megabyte", () =>
    Effect.gen(function*() {
      const { limit, produced } = yield* hugeBody({ declareLength: false, maxResponseBytes: 1024 * 1024 })
      assert.isBelow(produced, limit + 6 * 1024 * 1024)
    }))

  it.scopedLive("a declared content-length of 20 MiB is refused before the body is read", () =>
    Effect.gen(function*() {
      const { produced } = yield* hugeBody({ declareLength: true })
      assert.isBelow(produced, twentyMegabytes / 2)
    }))

  it.scopedLive("in a chain, a retry-after a year ahead moves on at once; -1 and NaN leave the backoff in charge", () =>
    Effect.gen(function*() {
      const fake = yield* FakeProvider.make({ models: { healthy: {} } })
      const ChatLive = OpenAiCompatible.layer({ baseUrl: fake.url })
      const complete = Fallback.chain(["limited", "healthy"], {
        timeout: "2 seconds",
        retry: { retries: 2, base: "20 millis", jitter: false, maxWait: "1 second" },
        deadline: "10 seconds"
      })
      const rows: Array<readonly [string, string]> = []
      for (
        const [value, expectedCalls] of [
          ["-1", 3],
          ["NaN", 3],
          ["31536000", 1],
          [Hostile.yearFromNow(), 1]
        ] as const
      ) {
        yield* fake.setModel("limited", {
          script: () =>
            FakeProvider.raw({
              status: 429,
              body: JSON.stringify({ error: { message: "slow down", type: "rate_limit_error" } }),
              headers: { "content-type": "application/json", "retry-after": value }
            })
        })
        const start = yield* Clock.currentTimeMillis
        const served = yield* complete(ChatCompletion.prompt("hi")).pipe(
          Effect.timeoutFail({ duration: bound, onTimeout: () => "hung" }),
          Effect.provide(ChatLive)
        )
        const ms = (yield* Clock.currentTimeMillis) - start
        const calls = (yield* fake.requestsTo("limited")).length
        yield* fake.clearRequests
        const hints = served.attempts.flatMap((attempt) =>
          attempt.error?._tag === "RateLimitError"
            ? [Option.match(attempt.error.retryAfter, { onNone: () => "none", onSome: Duration.format })]
            : []
        )
        rows.push([
          `retry-after: ${value}`,
          `${calls} calls to the limited model, hint ${hints[0]}, served in ${ms} ms`
        ])
        assert.strictEqual(served.model, "healthy")
        assert.strictEqual(calls, expectedCalls)
        if (expectedCalls === 1) {
          assert.deepStrictEqual(hints, ["1d"], "clamped to 24 hours")
          assert.isBelow(ms, 1000, "nobody waited for it")
        } else {
          assert.deepStrictEqual(hints, ["none", "none", "none"])
        }
      }
      console.log(table("odd retry-after values through a chain (retries 2, maxWait 1 s)", rows))
    }).pipe(Effect.provide(NodeHttpClient.layerUndici), Logger.withMinimumLogLevel(LogLevel.None)))
})
