import { assert, describe, it } from "@effect/vitest"
import { FakeProvider } from "@resilient-llm/testing"
import { Duration, Effect, Exit, Fiber, Redacted, Result, Schedule, Scope } from "effect"

// Real HTTP on 127.0.0.1: every test runs live (the server's latencies are real sleeps).

const post = (
  url: string,
  model: string,
  options?: { readonly authorization?: string; readonly signal?: AbortSignal }
) =>
  Effect.tryPromise((signal) =>
    fetch(`${url}/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(options?.authorization === undefined ? {} : { authorization: options.authorization })
      },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "hello" }] }),
      signal: options?.signal ?? signal
    })
  )

/** Posts and reads the whole body, returning the status and the body text. */
const call = (url: string, model: string, options?: { readonly authorization?: string }) =>
  Effect.flatMap(
    post(url, model, options),
    (response) => Effect.map(Effect.tryPromise(() => response.text()), (body) => [response.status, body] as const)
  )

const eventually = <A>(effect: Effect.Effect<A>, predicate: (a: A) => boolean) =>
  effect.pipe(
    Effect.repeat({ until: predicate, schedule: Schedule.spaced("10 millis") }),
    Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.fail(new Error("condition never held")) })
  )

/** A model's recorded requests in call order (the order they drew their outcomes in). */
const inCallOrder = (fake: FakeProvider.Service, model: string) =>
  Effect.map(
    fake.requestsTo(model),
    (requests) => [...requests].sort((a, b) => (a.callIndex ?? 0) - (b.callIndex ?? 0))
  )

const outcomes = (fake: FakeProvider.Service, model: string) =>
  Effect.map(inCallOrder(fake, model), (requests) => requests.map((r) => r.outcome?._tag))

const noisy: FakeProvider.ModelBehaviour = {
  latency: { min: "0 millis", max: "3 millis" },
  faults: [
    { rate: 0.2, fault: FakeProvider.serverError(503) },
    { rate: 0.1, fault: FakeProvider.rateLimited({ retryAfter: { seconds: 1 } }) },
    { rate: 0.1, fault: FakeProvider.malformedJson() }
  ]
}

/** `n` calls to `model`, `concurrency` at a time (one after another by default). */
const calls = (url: string, model: string, n: number, concurrency = 1) =>
  Effect.forEach(Array.from({ length: n }), () => call(url, model), { discard: true, concurrency })

describe("FakeProvider seeded faults", () => {
  it.live("the same seed replays the same outcomes and latencies per model, in call order, even under concurrency", () =>
    Effect.gen(function*() {
      const config = (seed: number): FakeProvider.Config => ({ seed, models: { noisy, other: noisy } })
      const [first, second, third] = yield* Effect.all([
        FakeProvider.make(config(7)),
        FakeProvider.make(config(7)),
        FakeProvider.make(config(8))
      ])
      // a model's sequence does not depend on the traffic of another model
      yield* calls(first.url, "other", 25)
      yield* Effect.all([
        calls(first.url, "noisy", 400),
        calls(second.url, "noisy", 400),
        calls(third.url, "noisy", 400)
      ], {
        concurrency: "unbounded"
      })
      const [a, b, c] = yield* Effect.all([
        outcomes(first, "noisy"),
        outcomes(second, "noisy"),
        outcomes(third, "noisy")
      ])
      assert.deepStrictEqual(a, b)
      assert.notDeepEqual(a.slice(0, 30), c)
      const latencies = (fake: FakeProvider.Service) =>
        Effect.map(inCallOrder(fake, "noisy"), (rs) => rs.map((r) => Duration.toMillis(r.latency)))
      const [la, lb] = yield* Effect.all([latencies(first), latencies(second)])
      assert.deepStrictEqual(la, lb)
      assert.isTrue(la.every((ms) => ms >= 0 && ms <= 3))
      assert.isAbove(new Set(la).size, 100, "latencies are drawn, not fixed")

      // the rates hold roughly over 200 calls
      const share = (tag: string) => a.filter((t) => t === tag).length / a.length
      assert.approximately(share("ServerError"), 0.2, 0.06)
      assert.approximately(share("RateLimited"), 0.1, 0.05)
      assert.approximately(share("MalformedJson"), 0.1, 0.05)
      assert.approximately(share("Reply"), 0.6, 0.07)
      const statuses = (yield* inCallOrder(first, "noisy")).map((r) => r.status)
      assert.deepStrictEqual(
        statuses,
        a.map((tag) => (tag === "ServerError" ? 503 : tag === "RateLimited" ? 429 : 200))
      )
    }))

  it.live("a script plays in call order before the random faults; a function script is asked per call", () =>
    Effect.gen(function*() {
      const fake = yield* FakeProvider.make({
        models: {
          listed: {
            script: [FakeProvider.serverError(502), FakeProvider.rateLimited(), FakeProvider.reply("third")],
            faults: [{ rate: 1, fault: FakeProvider.authenticationError(403) }]
          },
          byIndex: {
            script: (index) => (index % 3 === 2 ? FakeProvider.serverError(500) : undefined),
            faults: [{ rate: 1, fault: FakeProvider.wrongShape() }]
          },
          throwing: {
            script: (index) => {
              if (index === 0) throw new Error("boom")
              if (index === 2) return FakeProvider.raw({ status: 42, body: "" })
              return FakeProvider.reply(`call ${index}`)
            }
          }
        }
      })
      const listed = []
      for (let i = 0; i < 5; i++) listed.push((yield* call(fake.url, "listed"))[0])
      assert.deepStrictEqual(listed, [502, 429, 200, 403, 403])
      assert.deepStrictEqual(yield* outcomes(fake, "listed"), [
        "ServerError",
        "RateLimited",
        "Reply",
        "AuthenticationError",
        "AuthenticationError"
      ])
      const [, fourth] = (yield* fake.requestsTo("listed")).slice(2)
      assert.strictEqual(fourth.callIndex, 3)

      yield* calls(fake.url, "byIndex", 6)
      assert.deepStrictEqual(yield* outcomes(fake, "byIndex"), [
        "WrongShape",
        "WrongShape",
        "ServerError",
        "WrongShape",
        "WrongShape",
        "ServerError"
      ])

      const [status, body] = yield* call(fake.url, "throwing")
      assert.strictEqual(status, 500)
      assert.include(JSON.parse(body).error.message, "boom")
      const [, second] = yield* call(fake.url, "throwing")
      assert.strictEqual(JSON.parse(second).choices[0].message.content, "call 1")
      const [invalidStatus, invalid] = yield* call(fake.url, "throwing")
      assert.strictEqual(invalidStatus, 500)
      assert.strictEqual(JSON.parse(invalid).error.type, "fake_provider_error")
      assert.include(JSON.parse(invalid).error.message, "status 42")
      assert.deepStrictEqual((yield* fake.requestsTo("throwing")).map((r) => [r.callIndex, r.status]), [
        [0, 500],
        [1, 200],
        [2, 500]
      ])
    }))

  it.live("the reply and usage can be computed from the request", () =>
    Effect.gen(function*() {
      const fake = yield* FakeProvider.make({
        models: {
          echo: {
            reply: (request, { index, model }) => `${model}#${index}: ${String(request.messages[0].content)}`,
            usage: (_request, reply) => ({ prompt_tokens: 1, completion_tokens: reply.length })
          },
          quiet: { usage: false }
        }
      })
      const [, body] = yield* call(fake.url, "echo")
      const completion = JSON.parse(body)
      assert.strictEqual(completion.choices[0].message.content, "echo#0: hello")
      assert.deepStrictEqual(completion.usage, { prompt_tokens: 1, completion_tokens: 13, total_tokens: 14 })
      const [, quiet] = yield* call(fake.url, "quiet")
      assert.isFalse("usage" in JSON.parse(quiet))
    }))

  it.live("a reply or usage function that throws is a 500, and recorded as one", () =>
    Effect.gen(function*() {
      const fake = yield* FakeProvider.make({
        models: {
          badReply: {
            reply: () => {
              throw new Error("reply boom")
            }
          },
          badUsage: {
            usage: () => {
              throw new Error("usage boom")
            }
          }
        }
      })
      for (const [model, message] of [["badReply", "reply boom"], ["badUsage", "usage boom"]] as const) {
        const [status, body] = yield* call(fake.url, model)
        assert.strictEqual(status, 500)
        assert.strictEqual(JSON.parse(body).error.type, "fake_provider_error")
        assert.include(JSON.parse(body).error.message, message)
        const [received] = yield* fake.requestsTo(model)
        assert.deepStrictEqual([received.callIndex, received.status, received.outcome], [0, 500, undefined])
      }
    }))
})

describe("FakeProvider setModel", () => {
  it.live("an outage starts and ends while the server runs; models come and go", () =>
    Effect.gen(function*() {
      const fake = yield* FakeProvider.make({ models: { primary: { reply: "up" } } })
      assert.strictEqual((yield* call(fake.url, "primary"))[0], 200)
      yield* fake.setModel("primary", { script: () => FakeProvider.serverError(503) })
      assert.strictEqual((yield* call(fake.url, "primary"))[0], 503)
      assert.strictEqual((yield* call(fake.url, "primary"))[0], 503)
      yield* fake.setModel("primary", { reply: "back" })
      const [status, body] = yield* call(fake.url, "primary")
      assert.strictEqual(status, 200)
      assert.strictEqual(JSON.parse(body).choices[0].message.content, "back")
      // each new behaviour counts its calls from 0
      assert.deepStrictEqual((yield* fake.requestsTo("primary")).map((r) => r.callIndex), [0, 0, 1, 0])

      yield* fake.setModel("primary", undefined)
      assert.strictEqual((yield* call(fake.url, "primary"))[0], 404)
      yield* FakeProvider.setModel("added", {}).pipe(Effect.provideService(FakeProvider.FakeProvider, fake))
      assert.strictEqual((yield* call(fake.url, "added"))[0], 200)

      const invalid = yield* Effect.flip(fake.setModel("added", { faults: [{ rate: 2, fault: FakeProvider.hang() }] }))
      assert.strictEqual(invalid.reason, "InvalidConfig")
      assert.include(invalid.message, "faults[0].rate")
      assert.strictEqual((yield* call(fake.url, "added"))[0], 200, "a rejected behaviour changes nothing")
    }))
})

describe("FakeProvider api key", () => {
  it.live("requests without the right bearer key get a 401; the header is recorded as received", () =>
    Effect.gen(function*() {
      const fake = yield* FakeProvider.make({ apiKey: Redacted.make("sk-right"), models: { m: {} } })
      const [missing, missingBody] = yield* call(fake.url, "m")
      assert.strictEqual(missing, 401)
      assert.isNull(JSON.parse(missingBody).error.code)
      const [wrong, wrongBody] = yield* call(fake.url, "m", { authorization: "Bearer sk-wrong" })
      assert.strictEqual(wrong, 401)
      assert.strictEqual(JSON.parse(wrongBody).error.code, "invalid_api_key")
      assert.notInclude(wrongBody, "sk-wrong")
      assert.strictEqual((yield* call(fake.url, "m", { authorization: "Bearer sk-right" }))[0], 200)
      const models = yield* Effect.tryPromise(() => fetch(`${fake.url}/models`))
      assert.strictEqual(models.status, 401)
      const requests = yield* fake.requests
      assert.deepStrictEqual(requests.map((r) => [r.authorization, r.status, r.rejection]), [
        [undefined, 401, "unauthorized"],
        ["Bearer sk-wrong", 401, "unauthorized"],
        ["Bearer sk-right", 200, undefined]
      ])
    }))
})

describe("FakeProvider configuration", () => {
  it.effect("an invalid configuration fails make with a readable FakeProviderError", () =>
    Effect.gen(function*() {
      const invalid = (config: FakeProvider.Config) =>
        Effect.map(Effect.flip(Effect.scoped(FakeProvider.make(config))), (e) => [e.reason, e.message] as const)
      // what a caller without types (a config file) could pass
      const untypedDuration: Duration.Input = JSON.parse("\"forever\"")
      const cases: ReadonlyArray<readonly [FakeProvider.Config, string]> = [
        [{
          models: {
            m: { faults: [{ rate: 0.7, fault: FakeProvider.wrongShape() }, { rate: 0.4, fault: FakeProvider.hang() }] }
          }
        }, "add up to"],
        [{ models: { m: { faults: [{ rate: -0.1, fault: FakeProvider.hang() }] } } }, "faults[0].rate"],
        [{ models: { m: { latency: { min: "2 seconds", max: "1 second" } } } }, "above max"],
        [{ models: { m: { script: [FakeProvider.serverError(404)] } } }, "script[0]"],
        [{ models: { m: { script: [FakeProvider.raw({ status: 42, body: "" })] } } }, "status 42"],
        // Effect's Node server sends only final statuses: an informational or a 600 would become its own 500
        [{ models: { m: { script: [FakeProvider.raw({ status: 101, body: "" })] } } }, "status 101 is not in 200-599"],
        [{ models: { m: { script: [FakeProvider.raw({ status: 600, body: "" })] } } }, "status 600 is not in 200-599"],
        [
          { models: { m: { script: [FakeProvider.raw({ status: 200, headers: { "x-bad": "a\nb" }, body: "" })] } } },
          "x-bad"
        ],
        [{ models: { m: { chunkSize: 0 } } }, "chunkSize"],
        [{ models: { m: { latency: untypedDuration } } }, "not a duration"],
        [{ models: {}, maxRecordedRequests: -1 }, "maxRecordedRequests"]
      ]
      for (const [config, fragment] of cases) {
        const [reason, message] = yield* invalid(config)
        assert.strictEqual(reason, "InvalidConfig")
        assert.include(message, fragment)
      }
    }))

  it.live("a negative duration waits nothing: latencies and chunk delays below zero count as zero", () =>
    Effect.gen(function*() {
      const fake = yield* FakeProvider.make({
        models: {
          m: {
            latency: "-5 millis",
            chunkDelay: -20,
            script: [FakeProvider.ok, FakeProvider.withLatency(FakeProvider.ok, { min: -30, max: -10 })]
          }
        }
      })
      assert.strictEqual((yield* call(fake.url, "m"))[0], 200)
      assert.strictEqual((yield* call(fake.url, "m"))[0], 200)
      assert.deepStrictEqual((yield* inCallOrder(fake, "m")).map((r) => Duration.toMillis(r.latency)), [0, 0])
    }))

  it.live("a port already in use fails with reason Listen", () =>
    Effect.gen(function*() {
      const taken = yield* FakeProvider.make({ models: {} })
      const error = yield* Effect.flip(FakeProvider.make({ models: {}, port: taken.port }))
      assert.strictEqual(error.reason, "Listen")
      assert.include(error.message, String(taken.port))
    }))
})

describe("FakeProvider lifecycle", () => {
  it.live("connections close once clients finish and keep-alive idles out", () =>
    Effect.gen(function*() {
      const fake = yield* FakeProvider.make({ keepAliveTimeout: "50 millis", models: { m: { latency: "5 millis" } } })
      yield* Effect.all(Array.from({ length: 50 }, () => call(fake.url, "m")), { concurrency: 50 })
      assert.strictEqual(yield* fake.requestCount, 50)
      yield* eventually(Effect.zip(fake.openConnections, fake.activeRequests), ([c, a]) => c === 0 && a === 0)
    }))

  it.live("closing the scope stops the server and ends the connections of hanging requests", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const fake = yield* FakeProvider.make({ models: { m: { script: () => FakeProvider.hang() } } }).pipe(
        Scope.provide(scope)
      )
      const hanging = yield* Effect.forkChild(Effect.result(post(fake.url, "m")))
      yield* eventually(fake.activeRequests, (n) => n === 1)
      const closing = performance.now()
      yield* Scope.close(scope, Exit.void)
      // Effect's Node server alone would wait for the hanging request to end, for up to 20 s
      assert.isBelow(performance.now() - closing, 1_000, "the scope closes without waiting for open requests")
      const result = yield* Fiber.await(hanging)
      assert.isTrue(Exit.isSuccess(result) && Result.isFailure(result.value), "the client sees its connection end")
      assert.strictEqual(yield* fake.openConnections, 0)
      yield* eventually(fake.activeRequests, (n) => n === 0)
      const refused = yield* Effect.flip(post(fake.url, "m"))
      assert.include(String(refused.cause instanceof Error ? refused.cause.cause : refused.cause), "ECONNREFUSED")
    }))

  it.live("keeps only the latest requests, counts them all, and forgets on demand", () =>
    Effect.gen(function*() {
      const fake = yield* FakeProvider.make({ maxRecordedRequests: 5, models: { m: {} } })
      yield* calls(fake.url, "m", 12)
      const kept = yield* FakeProvider.requests.pipe(Effect.provideService(FakeProvider.FakeProvider, fake))
      assert.deepStrictEqual(kept.map((r) => r.seq), [7, 8, 9, 10, 11])
      assert.deepStrictEqual(kept.map((r) => r.callIndex), [7, 8, 9, 10, 11])
      assert.strictEqual(yield* fake.requestCount, 12)
      yield* fake.clearRequests
      assert.deepStrictEqual(yield* fake.requests, [])
      yield* calls(fake.url, "m", 1)
      assert.deepStrictEqual((yield* fake.requests).map((r) => r.seq), [12])
    }))

  it.live("holds up under 300 concurrent requests and lets every connection go", () =>
    Effect.gen(function*() {
      const fake = yield* FakeProvider.make({
        keepAliveTimeout: "50 millis",
        maxRecordedRequests: 100,
        models: {
          m: {
            latency: { min: "1 millis", max: "20 millis" },
            faults: [{ rate: 0.3, fault: FakeProvider.serverError() }]
          }
        }
      })
      const statuses = yield* Effect.all(
        Array.from({ length: 300 }, () => Effect.map(call(fake.url, "m"), ([status]) => status)),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(statuses.length, 300)
      assert.isTrue(statuses.every((s) => s === 200 || s === 500))
      assert.strictEqual(yield* fake.requestCount, 300)
      assert.strictEqual((yield* fake.requests).length, 100)
      yield* eventually(Effect.zip(fake.openConnections, fake.activeRequests), ([c, a]) => c === 0 && a === 0)
    }))
})
