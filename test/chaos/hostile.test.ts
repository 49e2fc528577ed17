import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Undici from "@effect/platform-node/Undici"
import { assert, describe, it } from "@effect/vitest"
import type { ChatClient } from "@resilient-llm/core"
import { ChatCompletion, Fallback, LlmError } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { FakeProvider } from "@resilient-llm/testing"
import { Cause, Clock, Duration, Effect, Exit, Layer, Option, References, Schedule, Stream } from "effect"
import * as fc from "fast-check"
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
      Effect.timeoutOrElse({ duration: bound, orElse: () => Effect.fail("hung" as const) }),
      Effect.exit
    )
    const ms = (yield* Clock.currentTimeMillis) - start
    const played = (outcome: string, complaint: string | undefined): Played => ({ outcome, ms, complaint })
    if (Exit.isSuccess(exit)) return played("success", "the call succeeded: a completion the provider never sent")
    const failure = Cause.findErrorOption(exit.cause)
    if (Option.isNone(failure)) return played("defect", `the call died: ${Cause.pretty(exit.cause)}`)
    const error = failure.value
    if (error === "hung") return played("hung", `no outcome within ${Duration.format(bound)}`)
    if (!LlmError.isLlmError(error)) return played("untyped", `not an LlmError: ${String(error)}`)
    return played(error._tag, kase.check(error))
  })

describe("hostile responses", () => {
  it.live(
    `${profile.hostileRuns} generated hostile responses each end as a typed LlmError, never a hang or a completion`,
    () =>
      Effect.gen(function*() {
        const fake = yield* FakeProvider.make({ models: { hostile: {} } })
        const client = yield* OpenAiCompatible.make({ baseUrl: fake.url })
        const context = yield* Effect.context<never>()
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

        const property = fc.asyncProperty(Hostile.hostileResponse, async (kase) => {
          const played = await Effect.runPromiseWith(context)(play(fake, client, kase))
          const tally = outcomes.get(kase.kind) ?? new Tally()
          tally.add(played.outcome)
          outcomes.set(kase.kind, tally)
          slowest = Math.max(slowest, played.ms)
          if (played.complaint !== undefined) {
            throw new Error(`${kase.kind} (${kase.label}): ${played.complaint}`)
          }
        })
        yield* Effect.promise(() => fc.assert(property, { numRuns: profile.hostileRuns }))

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
  const mebibyte = 1024 * 1024

  /**
   * The bytes undici takes off the socket for the client, counted as it hands them over. What the
   * server wrote is no measure of what the client read: the kernels' socket buffers hold several
   * MiB between the two (their size depends on the machine and its load), so the client's side is
   * counted here, where backpressure bounds it.
   */
  const countingDispatcher = (taken: { bytes: number }) =>
    Layer.effect(
      NodeHttpClient.Dispatcher,
      Effect.map(
        Effect.acquireRelease(Effect.sync(() => new Undici.Agent()), (agent) => Effect.promise(() => agent.destroy())),
        (agent) =>
          agent.compose((dispatch) => (options, handler) =>
            dispatch(options, {
              onRequestStart: (controller, context) => handler.onRequestStart?.(controller, context),
              onRequestUpgrade: (controller, status, headers, socket) =>
                handler.onRequestUpgrade?.(controller, status, headers, socket),
              onResponseStart: (controller, status, headers, message) =>
                handler.onResponseStart?.(controller, status, headers, message),
              onResponseData: (controller, chunk) => {
                taken.bytes += chunk.byteLength
                return handler.onResponseData?.(controller, chunk)
              },
              onResponseEnd: (controller, trailers) => handler.onResponseEnd?.(controller, trailers),
              onResponseError: (controller, error) => handler.onResponseError?.(controller, error)
            })
          )
      )
    )

  /**
   * A body past the client's limit, played to `create`: 20 MiB with its `content-length`, or an
   * endless chunked body, which the server writes until the connection closes. Returns the error,
   * the bytes the client took, what the server wrote, and when the connection closed.
   */
  const hugeBody = (options: { readonly declareLength: boolean; readonly maxResponseBytes?: number }) => {
    const taken = { bytes: 0 }
    return Effect.gen(function*() {
      let produced = 0
      const chunk = new Uint8Array(64 * 1024).fill(0x61)
      const source = options.declareLength
        ? FakeProvider.repeatBytes(twentyMegabytes)
        : Stream.repeat(Stream.make(chunk), Schedule.forever)
      const body = source.pipe(
        Stream.tap((bytes) =>
          Effect.sync(() => {
            produced += bytes.byteLength
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
        Effect.timeoutOrElse({ duration: bound, orElse: () => Effect.fail("hung" as const) }),
        Effect.flip
      )
      const ms = (yield* Clock.currentTimeMillis) - start
      // the connection closes, so the server stops writing: an endless body ends only that way
      const closedAfter = yield* waitFor(
        Effect.zipWith(fake.activeRequests, fake.openConnections, (active, open) => active === 0 && open === 0),
        "5 seconds"
      )
      const message = LlmError.isLlmError(error) ? error.message : String(error)
      assert.isTrue(LlmError.isLlmError(error) && error._tag === "ResponseDecodeError", message)
      assert.include(message, `exceeds the limit of ${limit} bytes`)
      assert.isAtLeast(closedAfter, 0, "the server stopped writing and the connection closed")
      return {
        limit,
        taken: taken.bytes,
        produced,
        closedAfter,
        outcome: `${LlmError.isLlmError(error) ? error._tag : ""} in ${ms} ms`
      }
    }).pipe(
      Effect.scoped,
      Effect.provide(NodeHttpClient.layerUndiciNoDispatcher.pipe(Layer.provide(countingDispatcher(taken))))
    )
  }

  it.live("a 20 MiB or endless body is refused at the client's limit, read no further, and the server stops", () =>
    Effect.gen(function*() {
      const declared = yield* hugeBody({ declareLength: true })
      const chunkedSmall = yield* hugeBody({ declareLength: false, maxResponseBytes: mebibyte })
      const chunkedDefault = yield* hugeBody({ declareLength: false })
      const row = (name: string, result: typeof declared): readonly [string, string] => [
        name,
        `limit ${megabytes(result.limit)}: ${result.outcome}; the client took ${megabytes(result.taken)}, ` +
        `the server wrote ${megabytes(result.produced)}; connection closed ${result.closedAfter} ms later`
      ]
      console.log(table("a body past the limit", [
        row("20 MiB, content-length declared", declared),
        row("endless, chunked, 1 MiB limit", chunkedSmall),
        row("endless, chunked, default limit", chunkedDefault)
      ]))
      // Refused on its content-length, before reading: at most what undici buffers ahead of a
      // reader (a read or two of 64 KiB) was taken. Chunked: read up to the limit, then stopped,
      // with the same slack. Undici's backpressure bounds these, whatever the machine's buffers.
      const slack = mebibyte
      assert.isAtMost(declared.taken, slack)
      assert.isAtMost(chunkedSmall.taken, chunkedSmall.limit + slack)
      assert.isAtMost(chunkedDefault.taken, chunkedDefault.limit + slack)
      assert.isAtLeast(chunkedDefault.taken, chunkedDefault.limit, "the limit is what was read, not less")
    }))

  it.live("in a chain, a retry-after a year ahead moves on at once; -1 and NaN leave the backoff in charge", () =>
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
          Effect.timeoutOrElse({ duration: bound, orElse: () => Effect.fail("hung") }),
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
    }).pipe(Effect.provide(NodeHttpClient.layerUndici), Effect.provideService(References.MinimumLogLevel, "None")))
})
