import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, Fallback } from "@resilient-llm/core"
import { Providers } from "@resilient-llm/openai"
import { FakeProvider } from "@resilient-llm/testing"
import { Cause, Effect, Exit, Logger, Option, Redacted, References } from "effect"
import * as HttpClient from "effect/http/HttpClient"
import { inline, table, Tally } from "./Figures.js"
import { profile } from "./Profile.js"
import * as SecretScan from "./SecretScan.js"

const alphaKey = "sk-alpha-echo-T4kR8mW2qZ6xN1vB5cY9"
const betaKey = "sk-beta-quiet-J3fH7dL1sP5gK9aX2eU6"

const errorBody = (message: string, code: string | null = null) =>
  JSON.stringify({ error: { message, type: "invalid_request_error", param: null, code } })

/**
 * What a careless provider sends back: the caller's key, in every place a client might copy it
 * from. (OpenAI itself answers a wrong key with "Incorrect API key provided: sk-abc…xyz".)
 */
const echoes: ReadonlyArray<FakeProvider.Outcome> = [
  FakeProvider.raw({
    status: 401,
    body: errorBody(`Incorrect API key provided: ${alphaKey}`, "invalid_api_key")
  }),
  FakeProvider.raw({ status: 500, body: `upstream rejected Authorization: Bearer ${alphaKey}`, headers: {} }),
  FakeProvider.raw({
    status: 429,
    body: errorBody(`rate limit for key ${alphaKey}`, "rate_limit_exceeded"),
    headers: { "retry-after-ms": "5", "x-echo-key": alphaKey, "x-request-id": "req-1" }
  }),
  FakeProvider.raw({ status: 400, body: errorBody("bad request", alphaKey) }),
  FakeProvider.raw({ status: 200, body: JSON.stringify({ model: alphaKey, choices: alphaKey }) }),
  FakeProvider.raw({ status: 200, body: `{"model": "m", "choices": [${alphaKey}` }),
  FakeProvider.raw({ status: 403, body: `<html><body>Forbidden for ${alphaKey.slice(0, 20)}</body></html>` })
]

describe("secrets", () => {
  it.live(
    `two providers, one echoing its key back in every error: across ${profile.providerRequests} requests no key ` +
      "reaches a log line, a span or an error, and each server sees only its own key",
    () =>
      Effect.gen(function*() {
        const scan = SecretScan.make([alphaKey, betaKey])
        const alpha = yield* FakeProvider.make({
          apiKey: Redacted.make(alphaKey),
          models: { "model-x": { script: (index) => echoes[index % echoes.length] } }
        })
        const beta = yield* FakeProvider.make({ apiKey: Redacted.make(betaKey), models: { "model-y": {} } })
        const ChatLive = Providers.layer([
          { name: "alpha", baseUrl: alpha.url, apiKey: Redacted.make(alphaKey), models: ["model-x"] },
          { name: "beta", baseUrl: beta.url, apiKey: Redacted.make(betaKey), models: ["model-y"] }
        ])
        // no breaker: every request meets the echoing provider
        const complete = Fallback.chain(["model-x", "model-y"], {
          timeout: "2 seconds",
          retry: { retries: 1, base: "5 millis" },
          deadline: "5 seconds"
        })
        const outcomes = new Tally()
        const errorTags = new Tally()

        yield* Effect.forEach(
          Array.from({ length: profile.providerRequests }, (_, i) => i),
          (i) =>
            Effect.gen(function*() {
              const exit = yield* Effect.exit(
                complete(ChatCompletion.prompt(`question #${i}`)).pipe(
                  Effect.catchTag("FallbackConfigError", (error) => Effect.die(error))
                )
              )
              const attempts = Exit.isSuccess(exit)
                ? exit.value.attempts
                : Option.match(Cause.findErrorOption(exit.cause), { onNone: () => [], onSome: (e) => e.attempts })
              outcomes.add(Exit.isSuccess(exit) ? `served by ${exit.value.model}` : "failed")
              if (Exit.isFailure(exit)) {
                for (const text of SecretScan.renderings(Cause.squash(exit.cause))) scan.scanError("chain", text)
                scan.scanError("chain cause", Cause.pretty(exit.cause))
              }
              for (const attempt of attempts) {
                if (attempt.error === undefined) continue
                errorTags.add(attempt.error._tag)
                for (const text of SecretScan.renderings(attempt.error)) scan.scanError(attempt.model, text)
              }
            }),
          { concurrency: 4, discard: true }
        ).pipe(
          Effect.provide(ChatLive),
          Effect.withTracer(scan.tracer),
          // Effect 4 records no response header on a span unless asked; ask for all of them, so
          // that an echoed key would reach a span attribute if the client did not redact it
          Effect.provideService(HttpClient.TracerHeaderFilter, () => true),
          Effect.provideService(Logger.CurrentLoggers, new Set([scan.logger])),
          Effect.provideService(References.MinimumLogLevel, "All")
        )

        const authorizations = (fake: FakeProvider.Service) =>
          Effect.map(fake.requests, (requests) => {
            const seen = new Tally()
            for (const r of requests) {
              seen.add(
                r.authorization === `Bearer ${alphaKey}`
                  ? "alpha key"
                  : r.authorization === `Bearer ${betaKey}`
                  ? "beta key"
                  : "other"
              )
            }
            return seen.toRecord()
          })
        const seenByAlpha = yield* authorizations(alpha)
        const seenByBeta = yield* authorizations(beta)
        const counts = scan.counts()
        console.log(table(`secrets (${profile.name}): two providers, alpha echoes its key`, [
          ["requests", `${profile.providerRequests}: ${inline(outcomes.toRecord())}`],
          ["errors from alpha", inline(errorTags.toRecord())],
          ["alpha saw", inline(seenByAlpha)],
          ["beta saw", inline(seenByBeta)],
          [
            "scanned",
            `${counts.logLines} log lines, ${counts.spans} spans (${counts.spanAttributes} attributes, ` +
            `${counts.headerAttributes} of them response headers), ` +
            `${counts.errorTexts} error texts`
          ],
          ["leaks", counts.leaks.length === 0 ? "none" : counts.leaks.join("\n")]
        ]))

        assert.deepStrictEqual(counts.leaks, [])
        assert.isAbove(counts.logLines, profile.providerRequests)
        assert.isAbove(counts.spanAttributes, profile.providerRequests)
        assert.isAbove(counts.headerAttributes, profile.providerRequests, "response headers reach the spans")
        assert.isAbove(counts.errorTexts, profile.providerRequests)
        // every kind of echo was played and mapped
        for (const tag of ["AuthenticationError", "ServerError", "RateLimitError", "ResponseDecodeError"]) {
          assert.isAbove(errorTags.get(tag), 0, tag)
        }
        assert.deepStrictEqual(Object.keys(seenByAlpha), ["alpha key"])
        assert.deepStrictEqual(Object.keys(seenByBeta), ["beta key"])
      }).pipe(Effect.provide(NodeHttpClient.layerUndici)),
    { timeout: 5 * 60_000 }
  )
})
