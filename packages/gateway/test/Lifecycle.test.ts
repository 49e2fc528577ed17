import { assert, describe, it } from "@effect/vitest"
import { Gateway } from "@resilient-llm/gateway"
import { FakeProvider } from "@resilient-llm/testing"
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { GatewayDeps, gatewayKey, gatewayKeyHash, post, quiet, start } from "./support/start.js"

const keys = `keys:
  - name: test
    sha256: ${gatewayKeyHash}
    models: ["*"]
`

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** Waits until `condition` holds, checking every 20 ms, for at most `ms`; fails the test otherwise. */
const waitFor = (what: string, condition: Effect.Effect<boolean>, ms = 5_000) =>
  Effect.gen(function*() {
    for (let waited = 0; waited < ms; waited += 20) {
      if (yield* condition) return
      yield* sleep(20)
    }
    return yield* Effect.die(new Error(`${what} did not happen within ${ms} ms`))
  })

describe("Gateway: reload", () => {
  const fileConfig = (reply: string, latency: string) =>
    `server:
  reload: { interval: 50 millis }
providers:
  local:
    fake:
      models:
        m: { reply: "${reply}", latency: ${latency} }
models:
  chat: { fallback: [m] }
${keys}`

  it.live("a change of the file is applied; a request in flight finishes on the configuration it started with", () =>
    quiet(Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "gateway-reload-"))
      const path = join(dir, "gateway.yaml")
      writeFileSync(path, fileConfig("before", "600 millis"))
      const deps = yield* Layer.build(GatewayDeps)
      const gateway = yield* Gateway.make({ path, port: 0 }).pipe(Effect.provideContext(deps))
      const body = { model: "chat", messages: [{ role: "user", content: "Hi" }] }
      const inFlight = yield* Effect.forkChild(post(gateway, body))
      yield* waitFor("the request to start", gateway.inFlight.pipe(Effect.map((n) => n === 1)))
      // the provider's configuration changes: the new generation starts a new fake server, and the
      // old one must live until the request it serves has answered
      writeFileSync(path, fileConfig("after", "1 millis"))
      yield* waitFor("the reload", gateway.generation.pipe(Effect.map((n) => n === 2)))
      const after = yield* post(gateway, body)
      assert.strictEqual(
        (after.json as { choices: Array<{ message: { content: string } }> }).choices[0].message.content,
        "after"
      )
      const before = yield* Fiber.join(inFlight)
      assert.strictEqual(before.status, 200)
      assert.strictEqual(
        (before.json as { choices: Array<{ message: { content: string } }> }).choices[0].message.content,
        "before"
      )
    })))

  it.live("an invalid change is refused with its line and field, and the running configuration stays", () =>
    quiet(Effect.gen(function*() {
      const gateway = yield* start(fileConfig("first", "1 millis"))
      const error = yield* Effect.flip(gateway.apply(fileConfig("second", "soon")))
      assert.strictEqual(error.issues[0].field, "providers.local.fake.models.m.latency")
      assert.strictEqual(error.issues[0].line, 7)
      assert.strictEqual(yield* gateway.generation, 1)
      const response = yield* post(gateway, { model: "chat", messages: [{ role: "user", content: "Hi" }] })
      assert.strictEqual(
        (response.json as { choices: Array<{ message: { content: string } }> }).choices[0].message.content,
        "first"
      )
    })))

  it.live("an unchanged breaker keeps its state across a reload", () =>
    quiet(Effect.gen(function*() {
      const text = (description: string) =>
        `providers:
  local:
    fake:
      models:
        bad: { faults: { serverError: 1 } }
        good: { reply: "ok" }
breaker: { consecutiveFailures: 2, breakDuration: 1 minute }
models:
  chat:
    description: ${description}
    fallback: [bad, good]
${keys}`
      const gateway = yield* start(text("one"))
      const body = { model: "chat", messages: [{ role: "user", content: "Hi" }] }
      yield* post(gateway, body)
      yield* post(gateway, body)
      yield* gateway.apply(text("two"))
      const status = yield* gateway.status
      assert.strictEqual(status.generation, 2)
      const bad = status.models[0].models.find((m) => m.name === "bad")?.deployments[0]
      assert.strictEqual(bad?.name, "local/bad")
      assert.strictEqual(bad?.circuit?.state, "open")
      const served = yield* post(gateway, body)
      assert.strictEqual(served.headers.get("x-resilient-llm-attempts"), "2") // bad refused at once, good served
    })))
})

describe("Gateway: client disconnects", () => {
  const patterns = [
    ["fallback chain", "{ fallback: [slow] }"],
    ["experiment", "{ experiment: { variants: [{ name: only, model: slow, weight: 1 }] } }"]
  ] as const
  for (const [pattern, virtual] of patterns) {
    it.live(`a client leaving a stream cancels the provider's call at once (${pattern})`, () =>
      quiet(Effect.gen(function*() {
        const fake = yield* FakeProvider.make({
          models: {
            slow: { reply: Array.from({ length: 200 }, (_, i) => `word${i}`).join(" "), chunkDelay: "100 millis" }
          }
        })
        const gateway = yield* start(`providers:
  upstream:
    baseUrl: ${fake.url}
    models: [slow]
models:
  chat: ${virtual}
${keys}`)
        const controller = new AbortController()
        const first = yield* Effect.promise(async () => {
          const response = await fetch(`${gateway.url}/v1/chat/completions`, {
            method: "POST",
            signal: controller.signal,
            headers: { "content-type": "application/json", authorization: `Bearer ${gatewayKey}` },
            body: JSON.stringify({ model: "chat", stream: true, messages: [{ role: "user", content: "Hi" }] })
          })
          const reader = response.body!.getReader()
          const { value } = await reader.read()
          return new TextDecoder().decode(value)
        })
        assert.include(first, "data: ")
        assert.strictEqual(yield* fake.activeRequests, 1)
        controller.abort()
        // 200 chunks 100 ms apart would take 20 s: the provider's request ends long before
        yield* waitFor("the provider's request to end", fake.activeRequests.pipe(Effect.map((n) => n === 0)), 2_000)
        yield* waitFor("the gateway's request to end", gateway.inFlight.pipe(Effect.map((n) => n === 0)), 2_000)
        if (pattern === "experiment") {
          // the stream its reader left is no outcome of the model's
          const [only] = (yield* gateway.status).models[0].experiment?.variants ?? []
          assert.deepStrictEqual([only?.calls, only?.interrupted], [0, 1])
        }
      })))
  }

  it.live("a client leaving a request that waits for a hanging provider cancels that call", () =>
    quiet(Effect.gen(function*() {
      const fake = yield* FakeProvider.make({ models: { stuck: { script: [FakeProvider.hang()] } } })
      const gateway = yield* start(`providers:
  upstream:
    baseUrl: ${fake.url}
    models: [stuck]
models:
  chat: { fallback: [stuck] }
${keys}`)
      const controller = new AbortController()
      const pending = fetch(`${gateway.url}/v1/chat/completions`, {
        method: "POST",
        signal: controller.signal,
        headers: { "content-type": "application/json", authorization: `Bearer ${gatewayKey}` },
        body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: "Hi" }] })
      }).catch(() => "aborted")
      yield* waitFor("the provider to receive it", fake.activeRequests.pipe(Effect.map((n) => n === 1)))
      controller.abort()
      assert.strictEqual(yield* Effect.promise(() => pending), "aborted")
      yield* waitFor("the provider's request to end", fake.activeRequests.pipe(Effect.map((n) => n === 0)), 2_000)
    })))
})

describe("Gateway: shutdown", () => {
  const config = (shutdownTimeout: string) =>
    `server:
  shutdownTimeout: ${shutdownTimeout}
providers:
  local:
    fake:
      models:
        slow: { reply: "finished", latency: 400 millis }
        stuck: { faults: { hang: 1 } }
models:
  slow: { fallback: [slow] }
  stuck: { fallback: [stuck] }
${keys}`

  it.live("stopping drains a request in flight, and accepts no new connection", () =>
    quiet(Effect.gen(function*() {
      const scope = yield* Scope.make()
      const deps = yield* Layer.build(GatewayDeps)
      const gateway = yield* Gateway.make({ text: config("5 seconds"), port: 0 }).pipe(
        Effect.provideContext(deps),
        Scope.provide(scope)
      )
      const inFlight = yield* Effect.forkChild(
        post(gateway, { model: "slow", messages: [{ role: "user", content: "Hi" }] })
      )
      yield* waitFor("the request to start", gateway.inFlight.pipe(Effect.map((n) => n === 1)))
      const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
      yield* sleep(50)
      const refused = yield* Effect.promise(() =>
        fetch(`${gateway.url}/health`).then(() => "answered", () => "refused")
      )
      assert.strictEqual(refused, "refused")
      const response = yield* Fiber.join(inFlight)
      assert.strictEqual(response.status, 200)
      assert.strictEqual(
        (response.json as { choices: Array<{ message: { content: string } }> }).choices[0].message.content,
        "finished"
      )
      yield* Fiber.join(closing)
    })))

  it.live("past shutdownTimeout, a request still running gets a 503 in OpenAI's shape and its provider call is cancelled", () =>
    quiet(Effect.gen(function*() {
      const fake = yield* FakeProvider.make({ models: { stuck: { script: [FakeProvider.hang()] } } })
      const scope = yield* Scope.make()
      const deps = yield* Layer.build(GatewayDeps)
      const gateway = yield* Gateway.make({
        text: `server:
  shutdownTimeout: 300 millis
providers:
  upstream:
    baseUrl: ${fake.url}
    models: [stuck]
models:
  stuck: { fallback: [stuck] }
${keys}`,
        port: 0
      }).pipe(Effect.provideContext(deps), Scope.provide(scope))
      const stuck = yield* Effect.forkChild(
        post(gateway, { model: "stuck", messages: [{ role: "user", content: "Hi" }] })
      )
      yield* waitFor("the provider to receive it", fake.activeRequests.pipe(Effect.map((n) => n === 1)))
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      const took = Date.now() - started
      assert.isAtLeast(took, 250)
      assert.isBelow(took, 3_000)
      const response = yield* Fiber.join(stuck)
      assert.strictEqual(response.status, 503)
      assert.strictEqual((response.json as { error: { type: string } }).error.type, "service_unavailable")
      yield* waitFor("the provider's request to end", fake.activeRequests.pipe(Effect.map((n) => n === 0)), 2_000)
      assert.strictEqual(yield* gateway.inFlight, 0)
    })))
})
