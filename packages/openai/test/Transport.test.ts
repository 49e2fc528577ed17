/**
 * What the client does with servers that misbehave at the HTTP level, on every documented
 * `HttpClient`: redirects, bodies that never end or drip, compressed bodies, 204s, and many calls
 * at once to one origin.
 */
import { assert, describe, it } from "@effect/vitest"
import { type ChatCompletion, LlmError } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { Cause, Duration, Effect, Exit, Fiber, Option, Redacted, Ref, Stream } from "effect"
import { TestClock } from "effect/testing"
import type * as Http from "node:http"
import * as Zlib from "node:zlib"
import * as TestServer from "./TestServer.js"
import { advanceUntilDone, realTick, transports } from "./Transports.js"

const key = "sk-transport-7Hq2Lw9Xc4Vb8Nm1Zp6Rt3Yk5"
const azureKey = "azure-key-0f1e2d3c4b5a69788796a5b4"
const anthropicKey = "sk-ant-api03-Qw7Er5Ty3Ui1Op9As"

const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "hi" }] }

const expectTag = <T extends LlmError.LlmError["_tag"]>(
  error: LlmError.LlmError,
  tag: T
): Extract<LlmError.LlmError, { _tag: T }> => {
  if (error._tag !== tag) return assert.fail(`expected ${tag}, got ${error._tag}: ${error.message}`)
  return error as Extract<LlmError.LlmError, { _tag: T }>
}

/** Waits, a turn of the event loop at a time, until `condition` holds. */
const until = (condition: () => boolean) =>
  Effect.gen(function*() {
    while (!condition()) yield* realTick
  })

/** Writes `data` and waits until it has left for the socket. */
const write = (res: Http.ServerResponse, data: string | Uint8Array) =>
  Effect.callback<void>((resume) => {
    res.write(data, () => resume(Effect.void))
  })

describe("redirects are never followed", () => {
  for (const [name, layer] of transports) {
    for (const status of [301, 302, 303, 307, 308]) {
      it.live(`${name}: a ${status} to another origin is a RedirectError, and nothing reaches that origin`, () =>
        Effect.gen(function*() {
          const elsewhere = yield* TestServer.make((_, res) =>
            TestServer.json(res, 200, TestServer.completion("m", "served by the other origin"))
          )
          const target = `http://127.0.0.1:${elsewhere.port}`
          const provider = yield* TestServer.make((_, res) => {
            res.writeHead(status, { location: `${target}/collect/v1/chat/completions?token=abc123#frag` })
            res.end("moved")
          })
          const chat = yield* OpenAiCompatible.make({
            baseUrl: provider.baseUrl,
            apiKey: Redacted.make(key),
            headers: { "api-key": Redacted.make(azureKey), "x-api-key": anthropicKey }
          })
          const errors = [
            yield* Effect.flip(chat.create(request)),
            yield* Effect.flip(Stream.runDrain(chat.stream(request)))
          ]
          for (const error of errors) {
            const redirect = expectTag(error, "RedirectError")
            assert.strictEqual(redirect.model, "m")
            assert.strictEqual(redirect.status, status)
            assert.deepStrictEqual(redirect.location, Option.some(target))
            assert.include(redirect.message, String(status))
            assert.include(redirect.message, target)
            for (const hidden of ["collect", "token", "abc123", "frag"]) assert.notInclude(redirect.message, hidden)
            assert.isFalse(LlmError.isRetryable(redirect))
            assert.isTrue(LlmError.isFallbackable(redirect))
          }
          // the provider got both calls with their headers; the other origin got nothing at all
          assert.strictEqual(provider.requests.length, 2)
          assert.strictEqual(provider.requests[0].headers["api-key"], azureKey)
          assert.strictEqual(elsewhere.totalConnections(), 0)
          assert.strictEqual(elsewhere.requests.length, 0)
        }).pipe(Effect.provide(layer)))
    }

    it.live(`${name}: a redirect within the endpoint's origin, or without a location, is not followed either`, () =>
      Effect.gen(function*() {
        const provider = yield* TestServer.make((req, res) => {
          if (req.url.startsWith("/v2")) return TestServer.json(res, 200, TestServer.completion("m", "moved here"))
          res.writeHead(req.json !== undefined && (req.json as { stream?: boolean }).stream ? 300 : 307, {
            ...(req.json !== undefined && (req.json as { stream?: boolean }).stream
              ? {}
              : { location: "/v2/chat/completions?k=1" })
          })
          res.end()
        })
        const chat = yield* OpenAiCompatible.make({ baseUrl: provider.baseUrl })
        const sameOrigin = expectTag(yield* Effect.flip(chat.create(request)), "RedirectError")
        assert.strictEqual(sameOrigin.status, 307)
        assert.deepStrictEqual(sameOrigin.location, Option.some(`http://127.0.0.1:${provider.port}`))
        assert.notInclude(sameOrigin.message, "/v2")
        const noLocation = expectTag(yield* Effect.flip(Stream.runDrain(chat.stream(request))), "RedirectError")
        assert.strictEqual(noLocation.status, 300)
        assert.deepStrictEqual(noLocation.location, Option.none())
        assert.deepStrictEqual(provider.requests.map((r) => r.url), ["/v1/chat/completions", "/v1/chat/completions"])
      }).pipe(Effect.provide(layer)))
  }
})

describe("the client's timeouts", () => {
  for (const [name, layer] of transports) {
    it.effect(`${name}: create gives up after the default 10 minutes without a response, and hangs up`, () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make(() => {}) // never answers
        const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl })
        const fiber = yield* Effect.forkChild(Effect.flip(chat.create(request)))
        yield* server.awaitRequests(1)
        const error = yield* advanceUntilDone(fiber, { step: "1 minute", limit: "1 hour" })
        const timeout = expectTag(Option.getOrThrow(error), "TimeoutError")
        assert.deepStrictEqual(timeout.timeout, Duration.minutes(10))
        assert.deepStrictEqual(OpenAiCompatible.defaultTimeout, Duration.minutes(10))
        yield* server.awaitConnections((open) => open === 0)
      }).pipe(Effect.provide(layer)))

    it.effect(`${name}: a stream gives up after its timeout without response headers, and hangs up`, () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make(() => {}) // never answers
        const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl, timeout: "1 minute" })
        const fiber = yield* Effect.forkChild(Effect.flip(Stream.runDrain(chat.stream(request))))
        yield* server.awaitRequests(1)
        const error = yield* advanceUntilDone(fiber, { step: "10 seconds", limit: "10 minutes" })
        const timeout = expectTag(Option.getOrThrow(error), "TimeoutError")
        assert.deepStrictEqual(timeout.timeout, Duration.minutes(1))
        assert.include(timeout.message, "timeout")
        yield* server.awaitConnections((open) => open === 0)
      }).pipe(Effect.provide(layer)))

    it.effect(`${name}: a body dripping a byte every 200 ms is cut at the whole-request timeout`, () =>
      Effect.gen(function*() {
        const responses: Array<Http.ServerResponse> = []
        const server = yield* TestServer.make((_, res) => {
          // chunked: every byte is progress, so only `timeout` can end it
          res.writeHead(200, { "content-type": "application/json" })
          res.flushHeaders()
          responses.push(res)
        })
        const chat = yield* OpenAiCompatible.make({
          baseUrl: server.baseUrl,
          timeout: "10 seconds",
          idleTimeout: "2 seconds"
        })
        const fiber = yield* Effect.forkChild(Effect.flip(chat.create(request)))
        yield* until(() => responses.length === 1)
        let dripped = 0
        // a byte every 200 ms of virtual time: the idle timeout never fires, the whole one does
        while (fiber.pollUnsafe() === undefined && dripped < 200) {
          if (!responses[0].destroyed) yield* write(responses[0], dripped === 0 ? "{" : " ")
          dripped++
          yield* realTick
          yield* realTick
          yield* TestClock.adjust("200 millis")
        }
        const error = yield* advanceUntilDone(fiber, { step: "200 millis", limit: "1 second" })
        const timeout = expectTag(Option.getOrThrow(error), "TimeoutError")
        assert.deepStrictEqual(timeout.timeout, Duration.seconds(10))
        assert.isAtLeast(dripped, 45)
        yield* server.awaitConnections((open) => open === 0)
      }).pipe(Effect.provide(layer)))

    it.effect(`${name}: a content-length longer than the body, the socket held open, ends at the idle timeout`, () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make((_, res) => {
          res.writeHead(200, { "content-type": "application/json", "content-length": "1000" })
          res.write("{\"id\":\"chatcmpl-1\",") // and the other 981 bytes never come
        })
        const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl })
        const fiber = yield* Effect.forkChild(Effect.flip(chat.create(request)))
        yield* server.awaitRequests(1)
        const error = yield* advanceUntilDone(fiber, { step: "30 seconds", limit: "1 hour" })
        const timeout = expectTag(Option.getOrThrow(error), "TimeoutError")
        assert.deepStrictEqual(timeout.timeout, OpenAiCompatible.defaultIdleTimeout)
        assert.include(timeout.message, "idle")
        yield* server.awaitConnections((open) => open === 0)
      }).pipe(Effect.provide(layer)))

    it.effect(`${name}: a stream that sends one chunk and then only keep-alive comments ends at the idle timeout`, () =>
      Effect.gen(function*() {
        const responses: Array<Http.ServerResponse> = []
        const server = yield* TestServer.make((_, res) => {
          TestServer.startEvents(res)
          res.write(TestServer.event(TestServer.chunk("m", "first")))
          responses.push(res)
        })
        const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl, idleTimeout: "1 minute" })
        const received = yield* Ref.make<ReadonlyArray<string>>([])
        const fiber = yield* chat.stream(request).pipe(
          Stream.runForEach((chunk) => Ref.update(received, (all) => [...all, chunk.choices[0]?.delta.content ?? ""])),
          Effect.flip,
          Effect.forkChild
        )
        yield* until(() => responses.length === 1)
        let comments = 0
        // a comment every 10 s of virtual time: bytes keep coming, but no event
        while (fiber.pollUnsafe() === undefined && comments < 100) {
          if (!responses[0].destroyed) yield* write(responses[0], ": keep-alive\n\n")
          comments++
          yield* realTick
          yield* realTick
          yield* TestClock.adjust("10 seconds")
        }
        const error = yield* advanceUntilDone(fiber, { step: "10 seconds", limit: "1 minute" })
        const timeout = expectTag(Option.getOrThrow(error), "TimeoutError")
        assert.deepStrictEqual(timeout.timeout, Duration.minutes(1))
        assert.include(timeout.message, "idle")
        assert.deepStrictEqual(yield* Ref.get(received), ["first"])
        assert.isAtMost(comments, 12)
        yield* server.awaitConnections((open) => open === 0)
      }).pipe(Effect.provide(layer)))
  }

  it.effect("events that keep coming reset the idle timeout, and a stream has no whole-request limit", () =>
    Effect.gen(function*() {
      const responses: Array<Http.ServerResponse> = []
      const server = yield* TestServer.make((_, res) => {
        TestServer.startEvents(res)
        responses.push(res)
      })
      const chat = yield* OpenAiCompatible.make({
        baseUrl: server.baseUrl,
        timeout: "1 minute",
        idleTimeout: "1 minute"
      })
      const received = yield* Ref.make(0)
      const fiber = yield* chat.stream(request).pipe(
        Stream.runForEach(() => Ref.update(received, (n) => n + 1)),
        Effect.forkChild
      )
      yield* until(() => responses.length === 1)
      // an event every 30 s for 10 minutes: ten times `timeout`, never `idleTimeout` apart
      for (let i = 0; i < 20; i++) {
        yield* write(responses[0], TestServer.event(TestServer.chunk("m", `${i}`)))
        yield* realTick
        yield* realTick
        yield* TestClock.adjust("30 seconds")
      }
      yield* write(responses[0], "data: [DONE]\n\n")
      responses[0].end()
      const done = yield* advanceUntilDone(fiber, { step: "1 second", limit: "10 seconds" })
      assert.isTrue(Option.isSome(done))
      assert.strictEqual(yield* Ref.get(received), 20)
    }).pipe(Effect.provide(transports[0][1])))

  it.effect("a timeout of Infinity is no timeout", () =>
    Effect.gen(function*() {
      const server = yield* TestServer.make((_, res) => {
        res.writeHead(200, { "content-type": "application/json", "content-length": "1000" })
        res.write("{")
      })
      const chat = yield* OpenAiCompatible.make({
        baseUrl: server.baseUrl,
        timeout: "Infinity",
        idleTimeout: "Infinity"
      })
      const fiber = yield* Effect.forkChild(chat.create(request))
      yield* server.awaitRequests(1)
      const result = yield* advanceUntilDone(fiber, { step: "1 day", limit: "30 days" })
      assert.isTrue(Option.isNone(result))
    }).pipe(Effect.provide(transports[0][1])))

  for (
    const [option, value] of [
      ["timeout", 0],
      ["timeout", -5],
      ["timeout", "soon"],
      ["idleTimeout", "0 millis"],
      ["idleTimeout", Number.NaN]
    ] as const
  ) {
    it.effect(`${option}: ${String(value)} is a ProviderConfigError`, () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(
          OpenAiCompatible.make({ baseUrl: "http://127.0.0.1:1/v1", [option]: value as Duration.Input })
        )
        assert.isTrue(Exit.isFailure(exit))
        assert.include(Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "", `${option} must be a positive duration`)
      }).pipe(Effect.provide(transports[0][1])))
  }
})

/** `size` bytes of a valid completion padded with spaces, gzipped: a few kilobytes on the wire. */
const gzipBomb = (size: number): Uint8Array => {
  const json = JSON.stringify(TestServer.completion("m", "inflated"))
  return Zlib.gzipSync(Buffer.concat([Buffer.from(json), Buffer.alloc(size - json.length, 0x20)]), { level: 9 })
}

describe("compressed bodies", () => {
  const bomb = gzipBomb(64 * 1024 * 1024)

  for (const [name, layer] of transports) {
    it.live(`${name}: the client asks for no compression, and refuses a gzip body it did not ask for`, () =>
      Effect.gen(function*() {
        let closedEarly = 0
        const server = yield* TestServer.make((req, res) => {
          const streaming = (req.json as { stream?: boolean }).stream === true
          res.writeHead(200, {
            "content-type": streaming ? "text/event-stream" : "application/json",
            "content-encoding": "gzip",
            "content-length": String(bomb.length)
          })
          // a 64 MiB completion in 65 KB, sent slowly enough for the client to hang up first
          res.write(bomb.subarray(0, 1024))
          res.on("close", () => {
            if (!res.writableFinished) closedEarly++
          })
        })
        assert.isBelow(bomb.length, 128 * 1024)
        const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl })
        for (const call of [chat.create(request), Stream.runDrain(chat.stream(request))]) {
          const error = expectTag(yield* Effect.flip(call), "ResponseDecodeError")
          assert.include(error.detail, "gzip")
        }
        assert.deepStrictEqual(server.requests.map((r) => r.headers["accept-encoding"]), ["identity", "identity"])
        yield* until(() => closedEarly === 2)
      }).pipe(Effect.provide(layer)))

    it.live(`${name}: a compressed error body is classified by its status alone`, () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make((_, res) => {
          const body = Zlib.gzipSync(JSON.stringify({ error: { message: "slow down", type: "rate_limit_error" } }))
          res.writeHead(429, { "content-type": "application/json", "content-encoding": "gzip", "retry-after": "3" })
          res.end(body)
        })
        const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl })
        const error = expectTag(yield* Effect.flip(chat.create(request)), "RateLimitError")
        assert.deepStrictEqual(error.retryAfter, Option.some(Duration.seconds(3)))
        assert.isUndefined(error.detail)
      }).pipe(Effect.provide(layer)))
  }
})

describe("a 204", () => {
  for (const [name, layer] of transports) {
    it.live(`${name}: is the same ResponseDecodeError for create and stream`, () =>
      Effect.gen(function*() {
        const server = yield* TestServer.make((_, res) => {
          res.writeHead(204)
          res.end()
        })
        const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl })
        for (const call of [chat.create(request), Stream.runDrain(chat.stream(request))]) {
          const error = expectTag(yield* Effect.flip(call), "ResponseDecodeError")
          assert.strictEqual(error.detail, "HTTP 204 (no content): the provider sent no completion")
        }
      }).pipe(Effect.provide(layer)))
  }
})

describe("connections per endpoint", () => {
  for (const [name, layer] of transports) {
    it.live(`${name}: at most maxConnections calls are in flight; the others wait their turn, in order`, () =>
      Effect.gen(function*() {
        const held: Array<() => void> = []
        let inFlight = 0
        let peak = 0
        const server = yield* TestServer.make((req, res) => {
          inFlight++
          peak = Math.max(peak, inFlight)
          held.push(() => {
            inFlight--
            const call = (req.json as { user?: string }).user ?? ""
            TestServer.json(res, 200, TestServer.completion("m", call))
          })
        })
        const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl, maxConnections: 2 })
        const calls = yield* Effect.forEach(
          Array.from({ length: 6 }, (_, i) => i),
          (i) => Effect.forkChild(chat.create({ ...request, user: `call-${i}` }))
        )
        for (let answered = 0; answered < 6; answered++) {
          yield* until(() => held.length >= Math.min(answered + 2, 6))
          held[answered]()
        }
        const texts = yield* Effect.forEach(
          calls,
          (fiber) =>
            Effect.map(
              Fiber.await(fiber),
              (exit) => exit._tag === "Success" ? exit.value.choices[0].message.content : "failed"
            )
        )
        assert.deepStrictEqual(texts, ["call-0", "call-1", "call-2", "call-3", "call-4", "call-5"])
        assert.strictEqual(peak, 2)
        assert.deepStrictEqual(
          server.requests.map((r) => (r.json as { user: string }).user),
          ["call-0", "call-1", "call-2", "call-3", "call-4", "call-5"]
        )
      }).pipe(Effect.provide(layer)))
  }

  it.live("300 calls at once through 8 connections all succeed, never more than 8 in flight", () =>
    Effect.gen(function*() {
      let inFlight = 0
      let peak = 0
      const server = yield* TestServer.make((_, res) => {
        inFlight++
        peak = Math.max(peak, inFlight)
        setImmediate(() => {
          inFlight--
          TestServer.json(res, 200, TestServer.completion("m", "ok"))
        })
      })
      const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl, maxConnections: 8 })
      const results = yield* Effect.forEach(
        Array.from({ length: 300 }, () => chat.create(request)),
        Effect.exit,
        { concurrency: "unbounded" }
      )
      assert.strictEqual(results.filter(Exit.isSuccess).length, 300)
      assert.strictEqual(server.requests.length, 300)
      assert.isAtMost(peak, 8)
      assert.isAtLeast(peak, 2)
    }).pipe(Effect.provide(transports[0][1])))

  it.live("a stream holds its connection until it ends", () =>
    Effect.gen(function*() {
      const responses: Array<Http.ServerResponse> = []
      const server = yield* TestServer.make((_, res) => {
        TestServer.startEvents(res)
        res.write(TestServer.event(TestServer.chunk("m", `stream-${responses.length}`)))
        responses.push(res)
      })
      const chat = yield* OpenAiCompatible.make({ baseUrl: server.baseUrl, maxConnections: 1 })
      const first = yield* Effect.forkChild(Stream.runCollect(chat.stream(request)))
      const second = yield* Effect.forkChild(Stream.runCollect(chat.stream(request)))
      yield* until(() => responses.length === 1)
      for (let i = 0; i < 20; i++) yield* realTick
      assert.strictEqual(server.requests.length, 1)
      responses[0].end("data: [DONE]\n\n")
      yield* until(() => responses.length === 2)
      responses[1].end("data: [DONE]\n\n")
      assert.strictEqual((yield* Fiber.await(first))._tag, "Success")
      assert.strictEqual((yield* Fiber.await(second))._tag, "Success")
    }).pipe(Effect.provide(transports[0][1])))

  it.live("the default is bounded", () =>
    Effect.sync(() => {
      assert.strictEqual(OpenAiCompatible.defaultMaxConnections, 256)
    }))
})
