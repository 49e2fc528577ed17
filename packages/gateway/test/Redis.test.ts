import { assert, describe, it } from "@effect/vitest"
import { Gateway, GatewayConfig } from "@resilient-llm/gateway"
import { FakeProvider, RedisServer } from "@resilient-llm/testing"
import { ConfigProvider, Effect, Layer } from "effect"
import * as Net from "node:net"
import { GatewayDeps, gatewayKeyHash, post, quiet, start } from "./support/start.js"

const hi = { messages: [{ role: "user" as const, content: "Hi" }] }

/** Two gateways of one fleet: the same file, one Redis, one prefix. */
const fleet = (text: string) => Effect.all([start(text), start(text)])

const configOver = (providerUrl: string, redisUrl: string, prefix: string, keyBudget = "") =>
  `redis:
  url: ${redisUrl}
  prefix: "${prefix}"
  timeout: 2 seconds
providers:
  upstream: { baseUrl: ${providerUrl}, models: [flaky, steady] }
breaker: { consecutiveFailures: 2, breakDuration: 1 minute }
models:
  chat: { fallback: [flaky, steady] }
keys:
  - name: team
    sha256: ${gatewayKeyHash}
    models: ["*"]
${keyBudget}`

/** A port nothing listens on: one the system handed out and that was closed again. */
const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
)

describe("Gateway: state shared through Redis", () => {
  it.live("a circuit opened by one instance is open in the other, which sends the model nothing", () =>
    quiet(Effect.gen(function*() {
      const redis = yield* RedisServer.make()
      const fake = yield* FakeProvider.make({
        models: { flaky: { faults: [{ rate: 1, fault: FakeProvider.serverError(503) }] }, steady: {} }
      })
      const [a, b] = yield* fleet(configOver(fake.url, redis.url, "gw-breaker:"))

      for (let i = 0; i < 2; i++) {
        const served = yield* post(a, { model: "chat", ...hi })
        assert.strictEqual(served.headers.get("x-resilient-llm-model"), "steady")
      }
      assert.strictEqual((yield* fake.requestsTo("flaky")).length, 2)

      const fromB = yield* post(b, { model: "chat", ...hi })
      assert.strictEqual(fromB.status, 200)
      assert.strictEqual(fromB.headers.get("x-resilient-llm-model"), "steady")
      // B never saw flaky fail, and still did not call it: A's two failures opened the circuit for both
      assert.strictEqual((yield* fake.requestsTo("flaky")).length, 2)

      const status = (yield* b.status).models.flatMap((m) => m.models).flatMap((m) => m.deployments).find((d) =>
        d.providerModel === "flaky"
      )
      assert.strictEqual(status?.circuit?.state, "open")

      const health = yield* Effect.promise(() => fetch(`${b.url}/health`).then((r) => r.json()))
      assert.deepStrictEqual(health.store, { kind: "redis", available: true, pendingWrites: 0 })
    })))

  it.live("a key's budget is spent across the fleet: the third request is refused by the other instance", () =>
    quiet(Effect.gen(function*() {
      const redis = yield* RedisServer.make()
      const fake = yield* FakeProvider.make({ models: { flaky: {}, steady: {} } })
      const [a, b] = yield* fleet(
        configOver(fake.url, redis.url, "gw-budget:", "    budget: { requests: 2, period: 1 day }\n")
      )
      const statuses = [
        (yield* post(a, { model: "chat", ...hi })).status,
        (yield* post(b, { model: "chat", ...hi })).status
      ]
      const refused = yield* post(a, { model: "chat", ...hi })
      statuses.push(refused.status)
      assert.deepStrictEqual(statuses, [200, 200, 429])
      const body = refused.json as { readonly error: { readonly code: string } }
      assert.strictEqual(body.error.code, "insufficient_quota")
      assert.strictEqual((yield* fake.requestsTo("flaky")).length, 2)
    })))

  it.live("when Redis goes away, requests are still served from the local view, and /health says so", () =>
    quiet(Effect.gen(function*() {
      const redis = yield* RedisServer.make()
      const fake = yield* FakeProvider.make({ models: { flaky: {}, steady: {} } })
      const gateway = yield* start(configOver(fake.url, redis.url, "gw-outage:"))
      assert.strictEqual((yield* post(gateway, { model: "chat", ...hi })).status, 200)
      yield* redis.stop
      const during = yield* post(gateway, { model: "chat", ...hi })
      assert.strictEqual(during.status, 200)
      assert.strictEqual(during.headers.get("x-resilient-llm-model"), "flaky")
      const health = yield* Effect.promise(() => fetch(`${gateway.url}/health`).then((r) => r.json()))
      assert.strictEqual(health.status, "ok")
      assert.strictEqual(health.store.available, false)
    })))

  it.live("without a redis entry, each instance keeps its own state in memory", () =>
    quiet(Effect.gen(function*() {
      const fake = yield* FakeProvider.make({ models: { m: {} } })
      const gateway = yield* start(`providers:
  upstream: { baseUrl: ${fake.url}, models: [m] }
models:
  chat: { fallback: [m] }
allowUnauthenticated: true
`)
      const health = yield* Effect.promise(() => fetch(`${gateway.url}/health`).then((r) => r.json()))
      assert.deepStrictEqual(health.store, { kind: "memory", available: true, pendingWrites: 0 })
    })))
})

describe("Gateway: the redis entry's mistakes", () => {
  const withRedis = (redis: string) =>
    `redis:
${redis}
providers:
  upstream: { baseUrl: "http://127.0.0.1:1", models: [m] }
models:
  chat: { fallback: [m] }
allowUnauthenticated: true
`
  const issuesOf = (text: string) => Effect.flip(GatewayConfig.parse(text)).pipe(Effect.map((error) => error.issues))

  it.effect("a password in the file is refused, and the message does not repeat it", () =>
    Effect.gen(function*() {
      const issues = yield* issuesOf(withRedis(`  url: "redis://:hunter2@127.0.0.1:6379"\n  prefix: gw`))
      assert.strictEqual(issues.length, 1)
      assert.strictEqual(issues[0].field, "redis.url")
      assert.strictEqual(issues[0].line, 2)
      assert.include(issues[0].message, "urlEnv")
      assert.notInclude(issues[0].message, "hunter2")
    }))

  it.effect("the URL is given once, as url or urlEnv; a blank prefix and an http URL are refused", () =>
    Effect.gen(function*() {
      const both = yield* issuesOf(withRedis(`  url: "redis://127.0.0.1:6379"\n  urlEnv: REDIS_URL\n  prefix: gw`))
      assert.deepStrictEqual(both.map((i) => i.field), ["redis"])
      const neither = yield* issuesOf(withRedis(`  prefix: gw`))
      assert.deepStrictEqual(neither.map((i) => i.field), ["redis"])
      const blank = yield* issuesOf(withRedis(`  url: "redis://127.0.0.1:6379"\n  prefix: ""`))
      assert.deepStrictEqual(blank.map((i) => i.field), ["redis.prefix"])
      const http = yield* issuesOf(withRedis(`  url: "http://127.0.0.1:6379"\n  prefix: gw`))
      assert.deepStrictEqual(http.map((i) => [i.field, i.message]), [[
        "redis.url",
        "expected a redis:// or rediss:// URL"
      ]])
    }))

  it.live("a urlEnv that is not set fails the start, naming the field", () =>
    Effect.gen(function*() {
      const deps = yield* Layer.build(GatewayDeps)
      const error = yield* Gateway.make({ text: withRedis(`  urlEnv: GATEWAY_REDIS_URL\n  prefix: gw`), port: 0 }).pipe(
        Effect.provideContext(deps),
        Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromUnknown({})),
        Effect.flip
      )
      assert.strictEqual(error._tag, "GatewayConfigError")
      assert.include(error.message, "redis.urlEnv")
    }))

  it.live("a Redis that cannot be reached at start is a start error that hides the password", () =>
    quiet(Effect.gen(function*() {
      const port = yield* closedPort
      const deps = yield* Layer.build(GatewayDeps)
      const error = yield* Gateway.make({ text: withRedis(`  urlEnv: GATEWAY_REDIS_URL\n  prefix: gw`), port: 0 }).pipe(
        Effect.provideContext(deps),
        Effect.provideService(
          ConfigProvider.ConfigProvider,
          ConfigProvider.fromUnknown({ GATEWAY_REDIS_URL: `redis://user:s3cret-pass@127.0.0.1:${port}` })
        ),
        Effect.flip
      )
      assert.strictEqual(error._tag, "GatewayStartError")
      assert.include(error.message, `redis://user:***@127.0.0.1:${port}`)
      assert.notInclude(error.message, "s3cret-pass")
    })))
})
