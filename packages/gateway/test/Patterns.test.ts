import { assert, describe, it } from "@effect/vitest"
import { Gateway } from "@resilient-llm/gateway"
import { FakeProvider } from "@resilient-llm/testing"
import { ConfigProvider, Effect, Layer, Metric } from "effect"
import OpenAI from "openai"
import { GatewayDeps, gatewayKeyHash, post, quiet, sdk, start } from "./support/start.js"

const keys = (extra = "") =>
  `keys:
  - name: test
    sha256: ${gatewayKeyHash}
    models: ["*"]
${extra}`

const hi = { messages: [{ role: "user" as const, content: "Hi" }] }
type ErrorBody = { readonly error: { readonly type: string; readonly code: string | null; readonly message: string } }
const errorOf = (json: unknown) => (json as ErrorBody).error

/** A gateway in front of a FakeProvider the test owns, so the test sees every call the gateway makes. */
const behind = (models: Record<string, FakeProvider.ModelBehaviour>, virtual: string, top = "") =>
  Effect.gen(function*() {
    const fake = yield* FakeProvider.make({ models })
    const gateway = yield* start(`providers:
  upstream:
    baseUrl: ${fake.url}
    models: ["*"]
${top}
models:
${virtual}
${keys()}`)
    return { fake, gateway }
  })

describe("Gateway: errors have the status the SDK expects", () => {
  it.live("every model rate limited: 429 with retry-after, which the SDK waits for and retries", () =>
    quiet(Effect.gen(function*() {
      const { fake, gateway } = yield* behind(
        {
          a: { script: [FakeProvider.rateLimited({ retryAfter: { millis: 30 } }), FakeProvider.reply("late")] },
          b: { script: [FakeProvider.rateLimited({ retryAfter: { millis: 60 } })] }
        },
        "  chat: { fallback: [a, b] }",
        "breaker: false"
      )
      const refused = yield* post(gateway, { model: "chat", ...hi })
      assert.strictEqual(refused.status, 429)
      assert.strictEqual(refused.headers.get("retry-after-ms"), "30")
      assert.strictEqual(errorOf(refused.json).code, "rate_limit_exceeded")
      // the SDK retries a 429 after its retry-after; the second try reaches a, which answers
      const completion = yield* Effect.promise(() =>
        sdk(gateway, { maxRetries: 1 }).chat.completions.create({ model: "chat", messages: hi.messages })
      )
      assert.strictEqual(completion.choices[0].message.content, "late")
      assert.strictEqual(completion.model, "a")
      assert.strictEqual((yield* fake.requestsTo("a")).length, 2)
    })))

  it.live("a request the provider rejects stops the chain and is the provider's 400, with its code", () =>
    quiet(Effect.gen(function*() {
      const { fake, gateway } = yield* behind(
        {
          a: { script: () => FakeProvider.badRequest({ code: "invalid_value", message: "temperature is too high" }) },
          b: {}
        },
        "  chat: { fallback: [a, b] }"
      )
      const error = yield* Effect.flip(Effect.tryPromise({
        try: () => sdk(gateway).chat.completions.create({ model: "chat", messages: hi.messages, temperature: 9 }),
        catch: (e) => e
      }))
      assert.instanceOf(error, OpenAI.BadRequestError)
      if (!(error instanceof OpenAI.BadRequestError)) return
      assert.strictEqual(error.code, "invalid_value")
      assert.include(error.message, "temperature is too high")
      assert.strictEqual((yield* fake.requestsTo("b")).length, 0)
    })))

  it.live("every model down: 502 naming each deployment and its failure, retried by the SDK", () =>
    quiet(Effect.gen(function*() {
      const { fake, gateway } = yield* behind(
        { a: { script: () => FakeProvider.serverError(503) }, b: { script: () => FakeProvider.serverError(500) } },
        "  chat: { fallback: [a, b] }",
        "breaker: false"
      )
      const error = yield* Effect.flip(Effect.tryPromise({
        try: () => sdk(gateway, { maxRetries: 1 }).chat.completions.create({ model: "chat", messages: hi.messages }),
        catch: (e) => e
      }))
      assert.instanceOf(error, OpenAI.InternalServerError)
      if (!(error instanceof OpenAI.APIError)) return
      assert.strictEqual(error.status, 502)
      assert.include(error.message, "a@upstream/a: ServerError (503); b@upstream/b: ServerError (500)")
      assert.notInclude(error.message, fake.url)
      assert.strictEqual((yield* fake.requestsTo("a")).length, 2)
    })))

  it.live("every circuit open: 503 with the time until a probe", () =>
    quiet(Effect.gen(function*() {
      const { fake, gateway } = yield* behind(
        { a: { script: () => FakeProvider.serverError(503) } },
        "  chat: { fallback: [a] }",
        "breaker: { consecutiveFailures: 1, breakDuration: 30 seconds }"
      )
      assert.strictEqual((yield* post(gateway, { model: "chat", ...hi })).status, 502)
      const refused = yield* post(gateway, { model: "chat", ...hi })
      assert.strictEqual(refused.status, 503)
      assert.strictEqual(errorOf(refused.json).code, "circuit_open")
      const after = Number(refused.headers.get("retry-after"))
      assert.isAtLeast(after, 29)
      assert.isAtMost(after, 30)
      assert.strictEqual((yield* fake.requestsTo("a")).length, 1)
    })))

  it.live("every attempt timed out: 504", () =>
    quiet(Effect.gen(function*() {
      const { gateway } = yield* behind(
        { a: { script: [FakeProvider.hang()] } },
        "  chat: { fallback: [a], timeout: 100 millis }"
      )
      const response = yield* post(gateway, { model: "chat", ...hi })
      assert.strictEqual(response.status, 504)
      assert.strictEqual(errorOf(response.json).type, "timeout")
    })))

  it.live("a stream that breaks after its first chunk ends with an error event, which the SDK raises", () =>
    quiet(Effect.gen(function*() {
      const { gateway } = yield* behind(
        { a: { reply: "one two three four", script: [FakeProvider.truncatedStream({ afterChunks: 2 })] }, b: {} },
        "  chat: { fallback: [a, b] }"
      )
      const outcome = yield* Effect.promise(async () => {
        const stream = await sdk(gateway).chat.completions.create({
          model: "chat",
          messages: hi.messages,
          stream: true
        })
        let text = ""
        try {
          for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ""
          return { text, error: undefined }
        } catch (error) {
          return { text, error }
        }
      })
      assert.isAbove(outcome.text.length, 0)
      assert.instanceOf(outcome.error, OpenAI.APIError)
    })))
})

describe("Gateway: hedging", () => {
  it.live("a hedged fallback chain starts the next model while the first hangs; its answer serves, whole or streamed", () =>
    quiet(Effect.gen(function*() {
      // without the hedge, each request would wait for a's 60 s timeout (longer than the SDK's 10 s)
      const { fake, gateway } = yield* behind(
        { a: { script: () => FakeProvider.hang() }, b: { reply: "hedged" } },
        "  chat: { fallback: [a, b], timeout: 60 seconds, hedge: { delay: 50 millis } }"
      )
      const response = yield* post(gateway, { model: "chat", ...hi })
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.headers.get("x-resilient-llm-model"), "b")
      assert.strictEqual(response.headers.get("x-resilient-llm-attempts"), "2") // a's, cancelled, and b's
      const completion = response.json as { readonly choices: ReadonlyArray<{ readonly message: { content: string } }> }
      assert.strictEqual(completion.choices[0].message.content, "hedged")
      const streamed = yield* Effect.promise(async () => {
        const stream = await sdk(gateway).chat.completions.create({
          model: "chat",
          messages: hi.messages,
          stream: true
        })
        let text = ""
        let model = ""
        for await (const chunk of stream) {
          text += chunk.choices[0]?.delta.content ?? ""
          model = chunk.model
        }
        return { text, model }
      })
      assert.deepStrictEqual(streamed, { text: "hedged", model: "b" })
      assert.strictEqual((yield* fake.requestsTo("a")).length, 2)
      assert.strictEqual((yield* fake.requestsTo("b")).length, 2)
    })))
})

describe("Gateway: keys and budgets", () => {
  it.live("a key from the environment, allowed some models only; a spent budget is a 429 the SDK does not retry", () =>
    quiet(Effect.gen(function*() {
      const deps = yield* Layer.build(GatewayDeps)
      const gateway = yield* Gateway.make({
        text: `providers:
  local:
    fake:
      models:
        m: { reply: "ok" }
models:
  chat: { fallback: [m] }
  other: { fallback: [m] }
keys:
  - name: team
    keyEnv: TEAM_KEY
    models: [chat]
    budget: { requests: 2, period: 1 hour }
`,
        port: 0
      }).pipe(
        Effect.provideContext(deps),
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown({ TEAM_KEY: "sk-team-1234" }))
      )
      const client = sdk(gateway, { apiKey: "sk-team-1234", maxRetries: 2 })
      const forbidden = yield* Effect.flip(Effect.tryPromise({
        try: () => client.chat.completions.create({ model: "other", messages: hi.messages }),
        catch: (e) => e
      }))
      assert.instanceOf(forbidden, OpenAI.NotFoundError)
      const models = yield* Effect.promise(() => client.models.list())
      assert.deepStrictEqual(models.data.map((m) => m.id), ["chat"])
      yield* Effect.promise(() => client.chat.completions.create({ model: "chat", messages: hi.messages }))
      yield* Effect.promise(() => client.chat.completions.create({ model: "chat", messages: hi.messages }))
      const started = Date.now()
      const spent = yield* Effect.flip(Effect.tryPromise({
        try: () => client.chat.completions.create({ model: "chat", messages: hi.messages }),
        catch: (e) => e
      }))
      assert.instanceOf(spent, OpenAI.RateLimitError)
      if (!(spent instanceof OpenAI.RateLimitError)) return
      assert.strictEqual(spent.code, "insufficient_quota")
      assert.strictEqual(spent.headers.get("x-should-retry"), "false")
      // no retry, so no backoff either
      assert.isBelow(Date.now() - started, 400)
    })))

  it.live("a missing environment variable is a configuration error naming the field", () =>
    quiet(Effect.gen(function*() {
      const deps = yield* Layer.build(GatewayDeps)
      const error = yield* Effect.flip(
        Gateway.make({
          text: `providers:
  openai:
    baseUrl: https://api.openai.com/v1
    apiKeyEnv: GATEWAY_TEST_UNSET_KEY
    models: ["gpt-*"]
models:
  chat: { fallback: [gpt-4o] }
${keys()}`,
          port: 0
        }).pipe(
          Effect.provideContext(deps),
          Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown({}))
        )
      )
      assert.strictEqual(error._tag, "GatewayConfigError")
      if (error._tag !== "GatewayConfigError") return
      assert.strictEqual(error.issues[0].field, "providers.openai.apiKeyEnv")
      assert.strictEqual(error.issues[0].line, 4)
      assert.include(error.issues[0].message, "GATEWAY_TEST_UNSET_KEY is not set")
    })))
})

describe("Gateway: provider keys", () => {
  it.live("a provider's key goes to that provider only, and never reaches a client, even when the provider refuses it", () =>
    quiet(Effect.gen(function*() {
      const providerKey = "sk-provider-secret-0123456789"
      const fake = yield* FakeProvider.make({ apiKey: providerKey, models: { m: { reply: "ok" } } })
      const config = (variable: string) =>
        `providers:
  upstream:
    baseUrl: ${fake.url}
    apiKeyEnv: ${variable}
    models: [m]
models:
  chat: { fallback: [m] }
${keys()}`
      const deps = yield* Layer.build(GatewayDeps)
      const env = ConfigProvider.fromUnknown({ RIGHT_KEY: providerKey, WRONG_KEY: "sk-provider-wrong-9876543210" })
      const gateway = yield* Gateway.make({ text: config("RIGHT_KEY"), port: 0 }).pipe(
        Effect.provideContext(deps),
        Effect.provideService(ConfigProvider.ConfigProvider, env)
      )
      const served = yield* post(gateway, { model: "chat", ...hi })
      assert.strictEqual(served.status, 200)
      const [received] = yield* fake.requests
      assert.strictEqual(received.authorization, `Bearer ${providerKey}`)
      const wrong = yield* Gateway.make({ text: config("WRONG_KEY"), port: 0 }).pipe(
        Effect.provideContext(deps),
        Effect.provideService(ConfigProvider.ConfigProvider, env)
      )
      const refused = yield* post(wrong, { model: "chat", ...hi })
      assert.strictEqual(refused.status, 502)
      assert.strictEqual(errorOf(refused.json).code, "upstream_misconfigured")
      assert.strictEqual(refused.headers.get("x-should-retry"), "false")
      for (const response of [served, refused]) {
        const seen = `${response.text} ${JSON.stringify([...response.headers])}`
        assert.notInclude(seen, "sk-provider")
        assert.notInclude(seen, "0123456789")
        assert.notInclude(seen, "9876543210")
      }
    })))
})

describe("Gateway: experiments and best-of-n", () => {
  const config = `providers:
  local:
    fake:
      models:
        gpt: { reply: "from gpt" }
        claude: { reply: "from claude" }
        judge: { reply: "7" }
deployments:
  gpt: { provider: local }
  claude: { provider: local }
  judge: { provider: local }
models:
  ab:
    experiment:
      assignment: sticky
      variants:
        - { name: control, model: gpt, weight: 1 }
        - { name: challenger, model: claude, weight: 1 }
  best:
    bestOfN:
      models: [gpt, claude]
      judge: { model: judge }
${keys()}`

  it.live("a sticky experiment keeps a user on one variant, reports who served, and counts in the A/B summary", () =>
    quiet(Effect.gen(function*() {
      const gateway = yield* start(config)
      const served = new Map<string, Set<string>>()
      for (const user of ["u1", "u2", "u3", "u4", "u5", "u6"]) {
        for (let i = 0; i < 3; i++) {
          const response = yield* post(gateway, { model: "ab", user, ...hi })
          const model = response.headers.get("x-resilient-llm-model") ?? ""
          const content =
            (response.json as { choices: Array<{ message: { content: string } }> }).choices[0].message.content
          assert.strictEqual(content, `from ${model}`)
          served.set(user, (served.get(user) ?? new Set()).add(model))
        }
      }
      for (const models of served.values()) assert.strictEqual(models.size, 1)
      const status = yield* gateway.status
      const summary = status.models.find((m) => m.name === "ab")?.experiment
      assert.strictEqual(summary?.variants.reduce((n, v) => n + v.calls, 0), 18)
    })))

  it.live("an experiment streams its variant's chunks as they come, keeps a user's variant, and records the stream", () =>
    quiet(Effect.gen(function*() {
      const gateway = yield* start(config)
      for (const user of ["u1", "u2", "u3", "u4"]) {
        const whole = yield* post(gateway, { model: "ab", user, ...hi })
        const model = whole.headers.get("x-resilient-llm-model")
        const streamed = yield* Effect.promise(async () => {
          const { data: stream, response } = await sdk(gateway).chat.completions.create({
            model: "ab",
            user,
            messages: hi.messages,
            stream: true
          }).withResponse()
          const pieces: Array<string> = []
          for await (const chunk of stream) {
            const piece = chunk.choices[0]?.delta.content
            if (piece) pieces.push(piece)
          }
          return { pieces, model: response.headers.get("x-resilient-llm-model") }
        })
        // the same pick for a user, whole or streamed; the provider's chunks, not one whole answer
        assert.strictEqual(streamed.model, model)
        assert.isAbove(streamed.pieces.length, 1)
        assert.strictEqual(streamed.pieces.join(""), `from ${model}`)
      }
      const status = yield* gateway.status
      const summary = status.models.find((m) => m.name === "ab")?.experiment
      assert.strictEqual(summary?.variants.reduce((n, v) => n + v.calls, 0), 8)
      assert.strictEqual(summary?.variants.reduce((n, v) => n + v.errors, 0), 0)
    })))

  it.live("an experiment's deadline is the whole request's: a stream still running then ends with an error event", () =>
    quiet(Effect.gen(function*() {
      const { gateway } = yield* behind(
        // six words 250 ms apart take 1.25 s; the first comes at once, well inside the deadline
        { slow: { reply: "one two three four five six", chunkDelay: "250 millis" } },
        `  timed:
    deadline: 600 millis
    experiment:
      variants: [{ name: only, model: slow, weight: 1 }]`
      )
      const outcome = yield* Effect.promise(async () => {
        const stream = await sdk(gateway).chat.completions.create({
          model: "timed",
          messages: hi.messages,
          stream: true
        })
        const pieces: Array<string> = []
        try {
          for await (const chunk of stream) pieces.push(chunk.choices[0]?.delta.content ?? "")
          return { pieces, error: undefined }
        } catch (error) {
          return { pieces, error }
        }
      })
      // the first chunks came, then the deadline cut the stream before its six words
      assert.isAbove(outcome.pieces.join("").length, 0)
      assert.notStrictEqual(outcome.pieces.join(""), "one two three four five six")
      assert.instanceOf(outcome.error, OpenAI.APIError)
      const status = yield* gateway.status
      // cut from outside, as a whole answer past the deadline is: counted apart, not as the model's failure
      const [only] = status.models.find((m) => m.name === "timed")?.experiment?.variants ?? []
      assert.deepStrictEqual([only?.calls, only?.interrupted], [0, 1])
    })))

  it.live("best-of-n answers with the best candidate, and a stream request gets it as chunks", () =>
    quiet(Effect.gen(function*() {
      const gateway = yield* start(config)
      const response = yield* post(gateway, { model: "best", ...hi })
      assert.strictEqual(response.status, 200)
      assert.strictEqual(response.headers.get("x-resilient-llm-model"), "gpt") // a tie goes to the first
      assert.strictEqual(response.headers.get("x-resilient-llm-attempts"), "2")
      const text = yield* Effect.promise(async () => {
        const stream = await sdk(gateway).chat.completions.create({
          model: "best",
          messages: hi.messages,
          stream: true
        })
        let text = ""
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ""
        return text
      })
      assert.strictEqual(text, "from gpt")
    })))
})

describe("Gateway: health and metrics", () => {
  it.live("/health answers, /metrics has the gateway's and the library's series in Prometheus text", () =>
    quiet(
      Effect.gen(function*() {
        const gateway = yield* start(`providers:
  local:
    fake:
      models:
        m: { reply: "ok" }
models:
  chat: { fallback: [m] }
${keys()}`)
        yield* post(gateway, { model: "chat", ...hi })
        const health = yield* Effect.promise(() => fetch(`${gateway.url}/health`).then((r) => r.json()))
        assert.deepStrictEqual(health, {
          status: "ok",
          generation: 1,
          models: 1,
          inFlight: 0,
          store: { kind: "memory", available: true, pendingWrites: 0 }
        })
        const metrics = yield* Effect.promise(() => fetch(`${gateway.url}/metrics`).then((r) => r.text()))
        assert.match(metrics, /resilient_llm_gateway_requests_total\{[^}]*model="chat"[^}]*status="200"[^}]*\} 1/)
        assert.match(metrics, /resilient_llm_requests_total\{[^}]*model="m"[^}]*outcome="success"/)
        const unknown = yield* Effect.promise(() =>
          fetch(`${gateway.url}/v2/nothing`).then(async (r) => [r.status, await r.json()] as const)
        )
        assert.strictEqual(unknown[0], 404)
        assert.strictEqual(errorOf(unknown[1]).code, "unknown_url")
      }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
    ))
})
