import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { Effect, Fiber, Stream } from "effect"
import { FetchHttpClient } from "effect/http"
import * as TestServer from "./TestServer.js"

const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "hi" }] }

const clients = [
  ["undici", NodeHttpClient.layerUndici],
  ["node:http", NodeHttpClient.layerNodeHttp],
  ["fetch", FetchHttpClient.layer]
] as const

describe("interruption aborts the HTTP request", () => {
  for (const [name, layer] of clients) {
    it.live(`interrupting create while waiting for the response closes the connection (${name})`, () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make(() => {}) // never answers
        const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl })
        const fiber = yield* Effect.forkChild(chat.create(request))
        yield* server.awaitRequests(1)
        assert.strictEqual(server.openConnections(), 1)
        yield* Fiber.interrupt(fiber)
        yield* server.awaitConnections((open) => open === 0)
        assert.strictEqual(server.openConnections(), 0)
      }).pipe(Effect.provide(layer)))

    it.live(`interrupting create while the body arrives closes the connection (${name})`, () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make((_, res) => {
          res.writeHead(200, { "content-type": "application/json" })
          res.write("{\"id\":\"slow\",") // and the rest never comes
        })
        const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl })
        const fiber = yield* Effect.forkChild(chat.create(request))
        yield* server.awaitRequests(1)
        yield* Fiber.interrupt(fiber)
        yield* server.awaitConnections((open) => open === 0)
        assert.strictEqual(server.openConnections(), 0)
      }).pipe(Effect.provide(layer)))

    it.live(`a stream consumer that stops early closes the connection (${name})`, () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make((_, res) => {
          TestServer.startEvents(res)
          res.write(TestServer.event(TestServer.chunk("m", "first")))
          res.write(TestServer.event(TestServer.chunk("m", "second"))) // and then the stream stalls
        })
        const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl })
        const taken = yield* chat.stream(request).pipe(Stream.take(1), Stream.runCollect)
        assert.deepStrictEqual(taken.map(ChatCompletion.chunkText), ["first"])
        yield* server.awaitConnections((open) => open === 0)
        assert.strictEqual(server.openConnections(), 0)
      }).pipe(Effect.provide(layer)))

    it.live(`interrupting a stream's consumer closes the connection (${name})`, () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make((_, res) => {
          TestServer.startEvents(res)
          res.write(TestServer.event(TestServer.chunk("m", "first")))
        })
        const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl })
        const fiber = yield* chat.stream(request).pipe(Stream.runDrain, Effect.forkChild)
        yield* server.awaitRequests(1)
        yield* Fiber.interrupt(fiber)
        yield* server.awaitConnections((open) => open === 0)
        assert.strictEqual(server.openConnections(), 0)
      }).pipe(Effect.provide(layer)))
  }
})

describe("finished calls release their connection for reuse", () => {
  it.live("sequential creates and streams reuse keep-alive connections (undici)", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make((req, res) => {
        if (typeof req.json === "object" && req.json !== null && "stream" in req.json) {
          TestServer.startEvents(res)
          res.end(`${TestServer.event(TestServer.chunk("m", "x"))}data: [DONE]\n\n`)
        } else {
          TestServer.json(res, 200, TestServer.completion("m", "ok"))
        }
      })
      const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl })
      for (let i = 0; i < 10; i++) {
        yield* chat.create(request)
        yield* Stream.runDrain(chat.stream(request))
      }
      assert.strictEqual(server.requests.length, 20)
      // aborting at the end of a finished call does not cost the connection: 20 calls, a few sockets
      assert.isAtMost(server.totalConnections(), 4)
    }).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
