import { assert, describe, it } from "@effect/vitest"
import { Gateway } from "@resilient-llm/gateway"
import { FakeProvider } from "@resilient-llm/testing"
import { ConfigProvider, Effect, Fiber, Layer, Metric } from "effect"
import { GatewayDeps, gatewayKeyHash, post, quiet, sdk, start } from "./support/start.js"

const hi = { messages: [{ role: "user" as const, content: "Hi" }] }
const usage = { prompt_tokens: 1000, completion_tokens: 200, total_tokens: 1200 }
type Body = {
  readonly model: string
  readonly usage?: { readonly cost_usd?: number }
  readonly error?: { readonly code: string | null; readonly message: string }
}
const bodyOf = (json: unknown) => json as Body

const keys = (budget = "") =>
  `keys:
  - name: test
    sha256: ${gatewayKeyHash}
    models: ["*"]
${budget}`

/** A gateway whose `text` is given the URL of a FakeProvider serving `models`. */
const over = (models: Record<string, FakeProvider.ModelBehaviour>, text: (url: string) => string) =>
  Effect.gen(function*() {
    const fake = yield* FakeProvider.make({ models })
    const gateway = yield* start(text(fake.url))
    return { fake, gateway }
  })

const metricValue = (text: string, name: string, labels: Record<string, string>): number | undefined => {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(" ").pop())
  }
  return undefined
}

describe("Gateway: deployments", () => {
  it.live("a deployment at its rpm spills over to the next; the response names the deployment that served", () =>
    quiet(Effect.gen(function*() {
      const { fake, gateway } = yield* over({ east: {}, west: {} }, (url) =>
        `providers:
  upstream: { baseUrl: ${url} }
deployments:
  gpt-4o:
    deployments:
      - { name: east, provider: upstream, model: east, rpm: 1 }
      - { name: west, provider: upstream, model: west, priority: 1 }
models:
  chat: { fallback: [gpt-4o] }
${keys()}`)
      const first = yield* post(gateway, { model: "chat", ...hi })
      const second = yield* post(gateway, { model: "chat", ...hi })
      assert.deepStrictEqual(
        [first, second].map((r) => [r.status, bodyOf(r.json).model, r.headers.get("x-resilient-llm-deployment")]),
        [[200, "gpt-4o", "east"], [200, "gpt-4o", "west"]]
      )
      // the skip is an attempt of the chain: east had no room, west served
      assert.strictEqual(second.headers.get("x-resilient-llm-attempts"), "2")
      assert.strictEqual((yield* fake.requestsTo("east")).length, 1)
      assert.strictEqual((yield* fake.requestsTo("west")).length, 1)
    })))

  it.live("cheapest sends each request to the cheaper deployment", () =>
    quiet(Effect.gen(function*() {
      const { fake, gateway } = yield* over({ dear: { usage }, cheap: { usage } }, (url) =>
        `providers:
  upstream: { baseUrl: ${url} }
deployments:
  gpt-4o:
    strategy: cheapest
    deployments:
      - { name: dear, provider: upstream, model: dear, price: { input: 5, output: 15 } }
      - { name: cheap, provider: upstream, model: cheap, price: { input: 2.5, output: 10 } }
models:
  chat: { fallback: [gpt-4o] }
${keys()}`)
      for (let i = 0; i < 3; i++) {
        const response = yield* post(gateway, { model: "chat", ...hi })
        assert.strictEqual(response.headers.get("x-resilient-llm-deployment"), "cheap")
      }
      assert.strictEqual((yield* fake.requestsTo("dear")).length, 0)
    })))

  it.live("a provider's 429 cools its deployment down: the next requests go to the other one", () =>
    quiet(Effect.gen(function*() {
      const { fake, gateway } = yield* over({
        east: { script: [FakeProvider.rateLimited({ retryAfter: { seconds: 30 } }), FakeProvider.reply("east")] },
        west: { reply: "west" }
      }, (url) =>
        `providers:
  upstream: { baseUrl: ${url} }
deployments:
  gpt-4o:
    - { name: east, provider: upstream, model: east }
    - { name: west, provider: upstream, model: west, priority: 1 }
models:
  chat: { fallback: [gpt-4o] }
${keys()}`)
      const served = []
      for (let i = 0; i < 3; i++) {
        served.push((yield* post(gateway, { model: "chat", ...hi })).headers.get("x-resilient-llm-deployment"))
      }
      // the first request: east's 429, then west at once; then east rests for its retry-after
      assert.deepStrictEqual(served, ["west", "west", "west"])
      assert.strictEqual((yield* fake.requestsTo("east")).length, 1)
      const status = yield* gateway.status
      const east = status.models[0].models[0].deployments.find((d) => d.name === "east")
      assert.isAbove(east?.limits.cooldownMs ?? 0, 25_000)
    })))

  it.live("a bulkhead's full deployment is skipped at once; with none to take it, a 503 the SDK retries", () =>
    quiet(Effect.gen(function*() {
      const { gateway } = yield* over({ slow: { latency: "300 millis" } }, (url) =>
        `providers:
  upstream: { baseUrl: ${url} }
deployments:
  gpt-4o:
    - { name: only, provider: upstream, model: slow, maxConcurrent: 1 }
models:
  chat: { fallback: [gpt-4o] }
${keys()}`)
      const first = yield* Effect.forkChild(post(gateway, { model: "chat", ...hi }))
      yield* Effect.sleep("100 millis")
      const refused = yield* post(gateway, { model: "chat", ...hi })
      assert.strictEqual(refused.status, 503)
      assert.strictEqual(bodyOf(refused.json).error?.code, "overloaded")
      assert.include(bodyOf(refused.json).error?.message, "gpt-4o@only: BulkheadFullError")
      assert.strictEqual((yield* Fiber.join(first)).status, 200)
    })))

  it.live("each deployment has its own circuit: a failing one opens while its logical model keeps serving", () =>
    quiet(Effect.gen(function*() {
      const { fake, gateway } = yield* over({
        east: { script: () => FakeProvider.serverError(503) },
        west: { reply: "west" }
      }, (url) =>
        `providers:
  upstream: { baseUrl: ${url} }
deployments:
  gpt-4o:
    breaker: { consecutiveFailures: 2, breakDuration: 1 minute }
    deployments:
      - { name: east, provider: upstream, model: east }
      - { name: west, provider: upstream, model: west, priority: 1 }
models:
  chat: { fallback: [gpt-4o] }
${keys()}`)
      for (let i = 0; i < 4; i++) assert.strictEqual((yield* post(gateway, { model: "chat", ...hi })).status, 200)
      assert.strictEqual((yield* fake.requestsTo("east")).length, 2)
      const status = yield* gateway.status
      const [logical] = status.models[0].models
      assert.deepStrictEqual(
        logical.deployments.map((d) => [d.name, d.circuit?.state, d.totals.requests, d.totals.errors]),
        [["east", "open", 2, 2], ["west", "closed", 4, 0]]
      )
      assert.strictEqual(logical.deployments[0].transitions[0]?.to, "open")
    })))
})

describe("Gateway: cost", () => {
  const priced = (url: string, extra = "") =>
    `providers:
  upstream: { baseUrl: ${url} }
deployments:
  gpt-4o:
    - { name: east, provider: upstream, model: east, price: { input: 2.5, output: 10 } }
models:
  chat: { fallback: [gpt-4o] }
${extra}${keys()}`

  it.live("every response says what it cost, in a header and its usage; /metrics and the status page add it up", () =>
    quiet(
      Effect.gen(function*() {
        const { gateway } = yield* over({ east: { usage } }, (url) => priced(url))
        const response = yield* post(gateway, { model: "chat", ...hi })
        // 1000 × 2.5 + 200 × 10, per million
        assert.strictEqual(response.headers.get("x-resilient-llm-cost-usd"), "0.0045")
        assert.strictEqual(bodyOf(response.json).usage?.cost_usd, 0.0045)
        const sdkUsage = yield* Effect.promise(() =>
          sdk(gateway).chat.completions.create({ model: "chat", messages: hi.messages })
        )
        assert.strictEqual(sdkUsage.usage?.total_tokens, 1200)
        const metrics = yield* Effect.promise(() => fetch(`${gateway.url}/metrics`).then((r) => r.text()))
        assert.strictEqual(
          metricValue(metrics, "resilient_llm_gateway_cost_usd_total", { model: "chat", key: "test" }),
          0.009
        )
        assert.strictEqual(
          metricValue(metrics, "resilient_llm_cost_usd_total", { model: "gpt-4o", deployment: "east" }),
          0.009
        )
        assert.strictEqual(
          metricValue(metrics, "resilient_llm_deployment_requests_total", {
            model: "gpt-4o",
            deployment: "east",
            outcome: "success"
          }),
          2
        )
        const status = yield* gateway.status
        assert.strictEqual(status.models[0].totals.costUsd, 0.009)
        assert.strictEqual(status.models[0].models[0].deployments[0].totals.costUsd, 0.009)
      }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
    ))

  it.live("a stream's usage chunk carries its cost, for a client that asks for usage; others get no usage chunk", () =>
    quiet(Effect.gen(function*() {
      const { fake, gateway } = yield* over({ east: { usage, reply: "one two three" } }, (url) => priced(url))
      const read = (includeUsage: boolean) =>
        Effect.promise(async () => {
          const stream = await sdk(gateway).chat.completions.create({
            model: "chat",
            messages: hi.messages,
            stream: true,
            ...(includeUsage ? { stream_options: { include_usage: true } } : {})
          })
          let text = ""
          const usages: Array<unknown> = []
          for await (const chunk of stream) {
            text += chunk.choices[0]?.delta.content ?? ""
            if (chunk.usage != null) usages.push(chunk.usage)
          }
          return { text, usages }
        })
      const withUsage = yield* read(true)
      assert.strictEqual(withUsage.text, "one two three")
      assert.deepStrictEqual(withUsage.usages, [{ ...usage, cost_usd: 0.0045 }])
      const without = yield* read(false)
      assert.strictEqual(without.text, "one two three")
      assert.deepStrictEqual(without.usages, [])
      // the gateway asked for the usage anyway, to price the call
      const [, second] = yield* fake.requestsTo("east")
      assert.deepStrictEqual((second.body as { stream_options?: unknown }).stream_options, { include_usage: true })
      assert.strictEqual((yield* gateway.status).models[0].totals.costUsd, 0.009)
    })))

  it.live("an experiment's stream is priced as a chain's: its usage chunk, the totals and the A/B summary", () =>
    quiet(Effect.gen(function*() {
      const { gateway } = yield* over(
        { east: { usage, reply: "one two three" } },
        (url) =>
          priced(url).replace(
            "  chat: { fallback: [gpt-4o] }\n",
            "  chat:\n    experiment:\n      variants: [{ name: only, model: gpt-4o, weight: 1 }]\n"
          )
      )
      const read = yield* Effect.promise(async () => {
        const stream = await sdk(gateway).chat.completions.create({
          model: "chat",
          messages: hi.messages,
          stream: true,
          stream_options: { include_usage: true }
        })
        const pieces: Array<string> = []
        const usages: Array<unknown> = []
        for await (const chunk of stream) {
          const piece = chunk.choices[0]?.delta.content
          if (piece) pieces.push(piece)
          if (chunk.usage != null) usages.push(chunk.usage)
        }
        return { pieces, usages }
      })
      assert.isAbove(read.pieces.length, 1)
      assert.strictEqual(read.pieces.join(""), "one two three")
      assert.deepStrictEqual(read.usages, [{ ...usage, cost_usd: 0.0045 }])
      const status = yield* gateway.status
      assert.strictEqual(status.models[0].totals.costUsd, 0.0045)
      const [only] = status.models[0].experiment?.variants ?? []
      assert.deepStrictEqual([only?.calls, only?.costUsd.total, only?.inputTokens.mean], [1, 0.0045, 1000])
    })))

  it.live("a key's budget in US dollars refuses it once spent, with a 429 the SDK does not retry", () =>
    quiet(Effect.gen(function*() {
      const { fake, gateway } = yield* over({ east: { usage } }, (url) =>
        priced(url).replace(
          `    models: ["*"]\n`,
          `    models: ["*"]\n    budget: { usd: 0.01, period: 1 day }\n`
        ))
      const statuses = []
      for (let i = 0; i < 4; i++) statuses.push((yield* post(gateway, { model: "chat", ...hi })).status)
      // 0.0045 a request: the third crosses 0.01, the fourth is refused before any provider is asked
      assert.deepStrictEqual(statuses, [200, 200, 200, 429])
      assert.strictEqual((yield* fake.requestsTo("east")).length, 3)
      const refused = yield* post(gateway, { model: "chat", ...hi })
      assert.strictEqual(bodyOf(refused.json).error?.code, "insufficient_quota")
      assert.include(bodyOf(refused.json).error?.message, "US$0.0100")
      assert.strictEqual(refused.headers.get("x-should-retry"), "false")
      // a reload (here: the deployment's price changes, so its router is new) hands out no fresh budget
      yield* gateway.apply(
        priced(fake.url).replace("output: 10 }", "output: 12 }").replace(
          `    models: ["*"]\n`,
          `    models: ["*"]\n    budget: { usd: 0.01, period: 1 day }\n`
        )
      )
      assert.strictEqual(yield* gateway.generation, 2)
      assert.strictEqual((yield* post(gateway, { model: "chat", ...hi })).status, 429)
      assert.strictEqual((yield* fake.requestsTo("east")).length, 3)
    })))

  it.live("a key's budget in tokens counts what a stream reported, even for a client that asked for no usage", () =>
    quiet(Effect.gen(function*() {
      const deps = yield* Layer.build(GatewayDeps)
      const fake = yield* FakeProvider.make({ models: { east: { usage } } })
      const gateway = yield* Gateway.make({
        text: `providers:
  upstream: { baseUrl: ${fake.url}, models: [east] }
models:
  chat: { fallback: [east] }
keys:
  - name: team
    keyEnv: TEAM_KEY
    models: ["*"]
    budget: { tokens: 2000, period: 1 hour }
`,
        port: 0
      }).pipe(
        Effect.provideContext(deps),
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown({ TEAM_KEY: "sk-team-1234" }))
      )
      const streamOnce = Effect.promise(async () => {
        const stream = await sdk(gateway, { apiKey: "sk-team-1234" }).chat.completions.create({
          model: "chat",
          messages: hi.messages,
          stream: true
        })
        for await (const _ of stream) {
          // read it all
        }
      })
      yield* streamOnce
      yield* streamOnce
      // 1200 tokens a stream: the second crossed 2000
      const refused = yield* post(gateway, { model: "chat", ...hi }, { authorization: "Bearer sk-team-1234" })
      assert.strictEqual(refused.status, 429)
      assert.include(bodyOf(refused.json).error?.message, "2000 tokens")
    })))
})

describe("Gateway: a virtual model's rate limit", () => {
  it.live("past its rpm a request is a 429 with retry-after, before any provider is asked", () =>
    quiet(Effect.gen(function*() {
      const { fake, gateway } = yield* over({ m: {} }, (url) =>
        `providers:
  upstream: { baseUrl: ${url}, models: [m] }
models:
  chat:
    fallback: [m]
    rateLimit: { rpm: 2 }
${keys()}`)
      const statuses = []
      for (let i = 0; i < 3; i++) statuses.push(yield* post(gateway, { model: "chat", ...hi }))
      assert.deepStrictEqual(statuses.map((r) => r.status), [200, 200, 429])
      const refused = statuses[2]
      assert.strictEqual(bodyOf(refused.json).error?.code, "rate_limit_exceeded")
      assert.include(bodyOf(refused.json).error?.message, "chat is at its rate limit (rpm)")
      // a token bucket of 2 a minute refills one request every 30 seconds
      const after = Number(refused.headers.get("retry-after"))
      assert.isAtLeast(after, 29)
      assert.isAtMost(after, 30)
      assert.strictEqual((yield* fake.requestsTo("m")).length, 2)
    })))
})
