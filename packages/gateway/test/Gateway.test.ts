import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import OpenAI from "openai"
import { gatewayKeyHash, post, quiet, sdk, start } from "./support/start.js"

const config = (extra = "") => `
server:
  history: { interval: 1 second }
providers:
  local:
    fake:
      seed: 1
      models:
        down: { faults: { serverError: 1 } }
        fast: { reply: "Hello from fast." }
        other: { reply: "Hello from other." }
deployments:
  primary: { provider: local, model: down }
  backup: { provider: local, model: fast }
models:
  chat:
    fallback: [primary, backup]
    timeout: 5 seconds
  direct:
    fallback: [other]
keys:
  - name: test
    sha256: ${gatewayKeyHash}
    models: ["*"]
  - name: narrow
    sha256: "${"0".repeat(63)}1"
    models: [direct]
${extra}`

describe("Gateway: chat completions", () => {
  it.live("the official SDK gets a fallback chain's answer, with the serving model in the body and a header", () =>
    quiet(Effect.gen(function*() {
      const gateway = yield* start(config())
      const { data, response } = yield* Effect.promise(() =>
        sdk(gateway).chat.completions.create({ model: "chat", messages: [{ role: "user", content: "Hi" }] })
          .withResponse()
      )
      assert.strictEqual(data.choices[0].message.content, "Hello from fast.")
      assert.strictEqual(data.model, "backup")
      assert.strictEqual(data.object, "chat.completion")
      assert.strictEqual(response.headers.get("x-resilient-llm-model"), "backup")
      assert.strictEqual(response.headers.get("x-resilient-llm-attempts"), "2")
      assert.isAbove(data.usage?.total_tokens ?? 0, 0)
    })))

  it.live("a stream through the SDK, served by the fallback", () =>
    quiet(Effect.gen(function*() {
      const gateway = yield* start(config())
      const { text, models } = yield* Effect.promise(async () => {
        const stream = await sdk(gateway).chat.completions.create({
          model: "chat",
          messages: [{ role: "user", content: "Hi" }],
          stream: true
        })
        let text = ""
        const models = new Set<string>()
        for await (const chunk of stream) {
          assert.strictEqual(chunk.object, "chat.completion.chunk")
          models.add(chunk.model)
          text += chunk.choices[0]?.delta.content ?? ""
        }
        return { text, models: [...models] }
      })
      assert.strictEqual(text, "Hello from fast.")
      assert.deepStrictEqual(models, ["backup"])
    })))

  it.live("a missing or wrong key is a 401 in OpenAI's shape, which the SDK raises as AuthenticationError", () =>
    quiet(Effect.gen(function*() {
      const gateway = yield* start(config())
      const missing = yield* post(gateway, { model: "chat", messages: [{ role: "user", content: "Hi" }] }, {
        authorization: ""
      })
      assert.strictEqual(missing.status, 401)
      assert.deepStrictEqual(Object.keys((missing.json as { error: object }).error).sort(), [
        "code",
        "message",
        "param",
        "type"
      ])
      const error = yield* Effect.flip(Effect.tryPromise({
        try: () =>
          sdk(gateway, { apiKey: "sk-wrong" }).chat.completions.create({
            model: "chat",
            messages: [{ role: "user", content: "Hi" }]
          }),
        catch: (e) => e
      }))
      assert.instanceOf(error, OpenAI.AuthenticationError)
      assert.notInclude(String(error), "sk-wrong")
    })))

  it.live("an unknown model, and one the key may not use, are both 404 model_not_found", () =>
    quiet(Effect.gen(function*() {
      const gateway = yield* start(config())
      const unknown = yield* post(gateway, { model: "nope", messages: [{ role: "user", content: "Hi" }] })
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual((unknown.json as { error: { code: string } }).error.code, "model_not_found")
    })))

  it.live("a malformed body is a 400 naming the field; bad JSON is a 400", () =>
    quiet(Effect.gen(function*() {
      const gateway = yield* start(config())
      const badJson = yield* post(gateway, "{not json")
      assert.strictEqual(badJson.status, 400)
      const noMessages = yield* post(gateway, { model: "chat" })
      assert.strictEqual(noMessages.status, 400)
      assert.strictEqual((noMessages.json as { error: { param: string } }).error.param, "messages")
    })))

  it.live("GET /v1/models lists the virtual models the key may use", () =>
    quiet(Effect.gen(function*() {
      const gateway = yield* start(config())
      const models = yield* Effect.promise(() => sdk(gateway).models.list())
      assert.deepStrictEqual(models.data.map((m) => m.id), ["chat", "direct"])
    })))
})
