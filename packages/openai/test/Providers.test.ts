import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ChatClient, ChatCompletion, Deployments } from "@resilient-llm/core"
import { OpenAiCompatible, Providers } from "@resilient-llm/openai"
import { Effect, Exit, Layer, Redacted, Stream } from "effect"
import { FetchHttpClient } from "effect/http"
import * as TestServer from "./TestServer.js"

const openAiKey = "sk-openai-1111111111111111"
const anthropicKey = "sk-ant-2222222222222222"

const request = (model: string): ChatCompletion.ChatRequest => ({ model, messages: [{ role: "user", content: "hi" }] })

/** A server that answers with the model it was asked for, streamed or not. */
const echoing = TestServer.make((req, res) => {
  const body = req.json
  const model = typeof body === "object" && body !== null && "model" in body ? String(body.model) : "?"
  if (typeof body === "object" && body !== null && "stream" in body) {
    TestServer.startEvents(res)
    res.end(`${TestServer.event(TestServer.chunk(model, `streamed by ${model}`))}data: [DONE]\n\n`)
  } else {
    TestServer.json(res, 200, TestServer.completion(model, `served ${model}`))
  }
})

const modelsSeen = (server: TestServer.TestServer) =>
  server.requests.map((r) => typeof r.json === "object" && r.json !== null && "model" in r.json ? r.json.model : "?")

describe("Providers.layer", () => {
  it.live("routes by exact name and glob, each key only to its own provider", () =>
    Effect.gen(function*() {
      const openai = yield* echoing
      const local = yield* echoing
      const anthropic = yield* echoing
      const providers = Providers.layer([
        { name: "openai", baseUrl: openai.baseUrl, apiKey: Redacted.make(openAiKey), models: ["gpt-*", "o3"] },
        { name: "local", baseUrl: local.baseUrl, models: ["llama3.1:8b", "qwen2.5:*"] },
        {
          name: "anthropic",
          baseUrl: anthropic.baseUrl,
          apiKey: Redacted.make(anthropicKey),
          headers: { "anthropic-version": "2023-06-01" },
          models: ["claude-*"]
        }
      ])
      const texts = yield* Effect.forEach(
        ["gpt-4o", "o3", "llama3.1:8b", "qwen2.5:7b", "claude-sonnet-4", "gpt-4o-mini"],
        (model) => Effect.map(ChatClient.create(request(model)), ChatCompletion.text)
      ).pipe(Effect.provide(providers))
      assert.deepStrictEqual(texts, [
        "served gpt-4o",
        "served o3",
        "served llama3.1:8b",
        "served qwen2.5:7b",
        "served claude-sonnet-4",
        "served gpt-4o-mini"
      ])
      assert.deepStrictEqual(modelsSeen(openai), ["gpt-4o", "o3", "gpt-4o-mini"])
      assert.deepStrictEqual(modelsSeen(local), ["llama3.1:8b", "qwen2.5:7b"])
      assert.deepStrictEqual(modelsSeen(anthropic), ["claude-sonnet-4"])

      assert.deepStrictEqual(openai.requests.map((r) => r.headers.authorization), Array(3).fill(`Bearer ${openAiKey}`))
      assert.deepStrictEqual(local.requests.map((r) => r.headers.authorization), [undefined, undefined])
      assert.deepStrictEqual(anthropic.requests.map((r) => r.headers.authorization), [`Bearer ${anthropicKey}`])
      assert.deepStrictEqual(anthropic.requests.map((r) => r.headers["anthropic-version"]), ["2023-06-01"])
      assert.isUndefined(openai.requests[0].headers["anthropic-version"])
      for (const server of [openai, local, anthropic]) {
        for (const r of server.requests) {
          const raw = JSON.stringify(r.headers) + r.body
          if (server !== openai) assert.notInclude(raw, openAiKey)
          if (server !== anthropic) assert.notInclude(raw, anthropicKey)
        }
      }
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("streams are routed the same way", () =>
    Effect.gen(function*() {
      const a = yield* echoing
      const b = yield* echoing
      const chat = yield* Providers.make([
        { name: "a", baseUrl: a.baseUrl, models: ["gpt-*"] },
        { name: "b", baseUrl: b.baseUrl, models: ["claude-*"] }
      ])
      const chunks = yield* chat.stream(request("claude-haiku")).pipe(Stream.runCollect)
      assert.deepStrictEqual(chunks.map(ChatCompletion.chunkText), ["streamed by claude-haiku"])
      assert.deepStrictEqual(modelsSeen(b), ["claude-haiku"])
      assert.strictEqual(a.requests.length, 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("the first provider that matches wins, so a catch-all goes last", () =>
    Effect.gen(function*() {
      const specific = yield* echoing
      const fallback = yield* echoing
      const chat = yield* Providers.make([
        { name: "specific", baseUrl: specific.baseUrl, models: ["gpt-*"] },
        { name: "everything-else", baseUrl: fallback.baseUrl, models: ["*"] }
      ])
      yield* chat.create(request("gpt-4o"))
      yield* chat.create(request("mistral-large"))
      assert.deepStrictEqual(modelsSeen(specific), ["gpt-4o"])
      assert.deepStrictEqual(modelsSeen(fallback), ["mistral-large"])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("a model no provider serves is a ModelNotFoundError, and nothing is sent", () =>
    Effect.gen(function*() {
      const a = yield* echoing
      const chat = yield* Providers.make([{ name: "a", baseUrl: a.baseUrl, models: ["gpt-*"] }])
      const error = yield* Effect.flip(chat.create(request("claude-opus")))
      assert.strictEqual(error._tag, "ModelNotFoundError")
      assert.strictEqual(error.model, "claude-opus")
      assert.include(error.message, "no configured provider serves it (providers: a)")
      const streamed = yield* Effect.flip(Stream.runDrain(chat.stream(request("gpt4"))))
      assert.strictEqual(streamed._tag, "ModelNotFoundError")
      assert.strictEqual(a.requests.length, 0)
      assert.strictEqual(a.openConnections(), 0)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})

describe("Providers validation", () => {
  const ok = { baseUrl: "http://127.0.0.1:1/v1", models: ["m"] }
  const cases: ReadonlyArray<readonly [string, ReadonlyArray<Providers.Provider>, string | undefined, string]> = [
    ["an empty list", [], undefined, "no providers are configured"],
    ["an empty name", [{ ...ok, name: " " }], undefined, "provider #1 has no name"],
    ["a duplicate name", [{ ...ok, name: "a" }, { ...ok, name: "a", models: ["n"] }], "a", "used by another provider"],
    ["no models", [{ ...ok, name: "a", models: [] }], "a", "serves no models"],
    ["an empty pattern", [{ ...ok, name: "a", models: ["m", ""] }], "a", "a model pattern is empty"],
    [
      "a bad base URL",
      [{ ...ok, name: "a" }, {
        name: "b",
        baseUrl: "api.example.com/v1",
        models: ["n"],
        apiKey: Redacted.make(openAiKey)
      }],
      "b",
      "not a valid absolute URL"
    ],
    [
      "an exact name an earlier glob already serves",
      [{ ...ok, name: "openai", models: ["gpt-*"] }, { ...ok, name: "azure", models: ["gpt-4o-special"] }],
      "azure",
      "model gpt-4o-special would never reach it: provider openai, earlier in the list, matches it with \"gpt-*\""
    ]
  ]
  for (const [name, providers, provider, reason] of cases) {
    it.effect(`${name} fails the layer with ProviderConfigError`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Layer.build(Providers.layer(providers)))
        assert.instanceOf(error, OpenAiCompatible.ProviderConfigError)
        assert.strictEqual(error.provider, provider)
        assert.include(error.reason, reason)
        assert.notInclude(error.message, openAiKey)
      }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))
  }

  it.effect("a glob after an exact name, or the same name within one provider, is fine", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Providers.make([
        { ...ok, name: "a", models: ["gpt-4o", "gpt-4o"] },
        { ...ok, name: "b", models: ["gpt-*"] }
      ]))
      assert.isTrue(Exit.isSuccess(exit))
    }).pipe(Effect.provide(FetchHttpClient.layer)))
})

describe("Providers.clients", () => {
  it.live("routes by provider name: the same model name reaches two endpoints, each with its own key", () =>
    Effect.gen(function*() {
      const azure = yield* echoing
      const openai = yield* echoing
      const clients = yield* Deployments.ProviderClients.pipe(
        Effect.provide(Providers.clients([
          { name: "azure", baseUrl: azure.baseUrl, headers: { "api-key": Redacted.make(anthropicKey) } },
          { name: "openai", baseUrl: openai.baseUrl, apiKey: Redacted.make(openAiKey) }
        ]))
      )
      assert.deepStrictEqual(clients.names, ["azure", "openai"])
      assert.isUndefined(clients.get("bedrock"))
      const texts = yield* Effect.forEach(
        ["azure", "openai"],
        (name) => Effect.map(clients.get(name)!.create(request("gpt-4o")), ChatCompletion.text)
      )
      assert.deepStrictEqual(texts, ["served gpt-4o", "served gpt-4o"])
      assert.deepStrictEqual(azure.requests.map((r) => [r.headers["api-key"], r.headers.authorization]), [[
        anthropicKey,
        undefined
      ]])
      assert.deepStrictEqual(openai.requests.map((r) => [r.headers["api-key"], r.headers.authorization]), [[
        undefined,
        `Bearer ${openAiKey}`
      ]])
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  const ok = { baseUrl: "http://127.0.0.1:1/v1" }
  const cases: ReadonlyArray<readonly [string, ReadonlyArray<Providers.Endpoint>, string | undefined, string]> = [
    ["an empty list", [], undefined, "no providers are configured"],
    ["an empty name", [{ ...ok, name: "" }], undefined, "provider #1 has no name"],
    ["a duplicate name", [{ ...ok, name: "a" }, { ...ok, name: "a" }], "a", "used by another provider"],
    ["a bad base URL", [{ name: "b", baseUrl: "ftp://example.com" }], "b", "http"]
  ]
  for (const [name, endpoints, provider, reason] of cases) {
    it.effect(`${name} fails the layer with ProviderConfigError`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Layer.build(Providers.clients(endpoints)))
        assert.instanceOf(error, OpenAiCompatible.ProviderConfigError)
        assert.strictEqual(error.provider, provider)
        assert.include(error.reason, reason)
      }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer)))
  }
})
