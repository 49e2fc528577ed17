import { assert, describe, it } from "@effect/vitest"
import { FakeProvider } from "@resilient-llm/testing"
import { Duration, Effect, Fiber, Schedule, Stream } from "effect"
import { TestClock } from "effect/testing"

// Real HTTP on 127.0.0.1: these tests run live (the server's latencies are real sleeps), but for
// the fake reached in-process, which runs on TestClock.

interface Sent {
  readonly model: string
  readonly stream?: boolean
  readonly includeUsage?: boolean
  readonly content?: string
  readonly authorization?: string
}

const post = (url: string, sent: Sent, signal?: AbortSignal) =>
  Effect.tryPromise((abort) =>
    fetch(`${url}/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(sent.authorization === undefined ? {} : { authorization: sent.authorization })
      },
      body: JSON.stringify({
        model: sent.model,
        messages: [{ role: "user", content: sent.content ?? "say something" }],
        ...(sent.stream ? { stream: true } : {}),
        ...(sent.includeUsage ? { stream_options: { include_usage: true } } : {})
      }),
      signal: signal ?? abort
    })
  )

const text = (response: Response) => Effect.tryPromise(() => response.text())

/** The `data` of each complete SSE event, and what follows the last complete event. */
const parseSse = (body: string): { readonly data: ReadonlyArray<string>; readonly rest: string } => {
  const parts = body.split("\n\n")
  const rest = parts.pop() ?? ""
  return {
    data: parts.map((event) => {
      assert.isTrue(event.startsWith("data: "), `not an SSE data event: ${event}`)
      return event.slice("data: ".length)
    }),
    rest
  }
}

/** The code of a fetch failure's cause (`ECONNRESET`, `ECONNREFUSED`, `UND_ERR_SOCKET`). */
const causeCode = (error: unknown): unknown =>
  error instanceof Error && error.cause instanceof Error && "code" in error.cause ? error.cause.code : undefined

const errorOf = (body: string) => {
  const parsed: { error: { message: string; type: string; param: string | null; code: string | null } } = JSON
    .parse(body)
  assert.deepStrictEqual(Object.keys(parsed.error).sort(), ["code", "message", "param", "type"])
  return parsed.error
}

/** Polls until `predicate` holds (for sockets closing asynchronously), failing after 5 s. */
const eventually = <A>(effect: Effect.Effect<A>, predicate: (a: A) => boolean) =>
  effect.pipe(
    Effect.repeat({ until: predicate, schedule: Schedule.spaced("10 millis") }),
    Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.fail(new Error("condition never held")) })
  )

const start = (config: FakeProvider.Config) => FakeProvider.make(config)

describe("FakeProvider protocol", () => {
  it.live("answers a chat completion in OpenAI's shape, with usage and the model that answered", () =>
    Effect.gen(function*() {
      const fake = yield* start({ models: { "gpt-4o": {} } })
      assert.match(fake.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/)
      assert.strictEqual(fake.url, `http://127.0.0.1:${fake.port}/v1`)
      const response = yield* post(fake.url, { model: "gpt-4o", content: "one two three" })
      assert.strictEqual(response.status, 200)
      assert.match(response.headers.get("content-type") ?? "", /^application\/json/)
      const body = JSON.parse(yield* text(response))
      assert.strictEqual(body.object, "chat.completion")
      assert.match(body.id, /^chatcmpl-/)
      assert.isNumber(body.created)
      assert.strictEqual(body.model, "gpt-4o")
      assert.deepStrictEqual(body.choices, [{
        index: 0,
        message: { role: "assistant", content: "Hello from gpt-4o.", refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: "stop"
      }])
      assert.deepStrictEqual(body.usage, { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 })
    }))

  it.live("streams well-formed SSE: role, pieces, finish reason, usage on request, then [DONE]", () =>
    Effect.gen(function*() {
      const fake = yield* start({
        models: {
          words: { reply: "the quick brown fox" },
          chars: { reply: "abcdefg", chunkSize: 3, usage: { prompt_tokens: 7, completion_tokens: 11 } }
        }
      })
      const response = yield* post(fake.url, { model: "words", stream: true })
      assert.strictEqual(response.status, 200)
      assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/)
      const { data, rest } = parseSse(yield* text(response))
      assert.strictEqual(rest, "")
      assert.strictEqual(data[data.length - 1], "[DONE]")
      const chunks = data.slice(0, -1).map((d) => JSON.parse(d))
      for (const chunk of chunks) {
        assert.strictEqual(chunk.object, "chat.completion.chunk")
        assert.strictEqual(chunk.model, "words")
        assert.strictEqual(chunk.id, chunks[0].id)
        assert.isFalse("usage" in chunk, "no usage without include_usage")
      }
      assert.deepStrictEqual(chunks[0].choices[0].delta, { role: "assistant", content: "", refusal: null })
      assert.deepStrictEqual(
        chunks.slice(1, -1).map((c) => c.choices[0].delta.content),
        ["the ", "quick ", "brown ", "fox"]
      )
      assert.deepStrictEqual(chunks.map((c) => c.choices[0].finish_reason), [null, null, null, null, null, "stop"])

      const withUsage = parseSse(
        yield* text(yield* post(fake.url, { model: "chars", stream: true, includeUsage: true }))
      )
      const usageChunks = withUsage.data.slice(0, -1).map((d) => JSON.parse(d))
      const last = usageChunks[usageChunks.length - 1]
      assert.deepStrictEqual(last.choices, [])
      assert.deepStrictEqual(last.usage, { prompt_tokens: 7, completion_tokens: 11, total_tokens: 18 })
      assert.isTrue(usageChunks.slice(0, -1).every((c) => c.usage === null))
      assert.deepStrictEqual(
        usageChunks.slice(1, -2).map((c) => c.choices[0].delta.content),
        ["abc", "def", "g"]
      )
    }))

  it.live("a reply function sees the request as sent, fields the schema does not know included", () =>
    Effect.gen(function*() {
      const fake = yield* start({
        models: { m: { reply: (request) => JSON.stringify([request.reasoning_effort, request.metadata]) } }
      })
      const response = yield* Effect.tryPromise(() =>
        fetch(`${fake.url}/chat/completions`, {
          method: "POST",
          body: JSON.stringify({
            model: "m",
            messages: [{ role: "user", content: "hi" }],
            reasoning_effort: "low",
            metadata: { team: "search" }
          })
        })
      )
      const body = JSON.parse(yield* text(response))
      assert.deepStrictEqual(JSON.parse(body.choices[0].message.content), ["low", { team: "search" }])
    }))

  it.live("lists its models, and answers unknown models and routes with OpenAI error bodies", () =>
    Effect.gen(function*() {
      const fake = yield* start({ models: { a: {}, b: {} } })
      const list = JSON.parse(yield* text(yield* Effect.tryPromise(() => fetch(`${fake.url}/models`))))
      assert.strictEqual(list.object, "list")
      assert.deepStrictEqual(list.data.map((m: { id: string; object: string }) => [m.id, m.object]), [
        ["a", "model"],
        ["b", "model"]
      ])
      const one = yield* Effect.tryPromise(() => fetch(`${fake.url}/models/b`))
      assert.strictEqual(JSON.parse(yield* text(one)).id, "b")

      const unknown = yield* post(fake.url, { model: "gpt-5" })
      assert.strictEqual(unknown.status, 404)
      const error = errorOf(yield* text(unknown))
      assert.strictEqual(error.code, "model_not_found")
      assert.include(error.message, "gpt-5")

      const route = yield* Effect.tryPromise(() => fetch(`${fake.url}/embeddings`, { method: "POST" }))
      assert.strictEqual(route.status, 404)
      assert.strictEqual(errorOf(yield* text(route)).type, "invalid_request_error")

      const [received] = yield* fake.requests
      assert.strictEqual(received.rejection, "model_not_found")
      assert.strictEqual(received.status, 404)
      assert.isUndefined(received.callIndex)
    }))

  it.live("rejects a body that is not JSON or not a chat request with a 400", () =>
    Effect.gen(function*() {
      const fake = yield* start({ models: { m: {} } })
      const send = (body: string) =>
        Effect.tryPromise(() => fetch(`${fake.url}/chat/completions`, { method: "POST", body }))
      const notJson = yield* send("{ nope")
      assert.strictEqual(notJson.status, 400)
      assert.strictEqual(errorOf(yield* text(notJson)).type, "invalid_request_error")
      const noMessages = yield* send(JSON.stringify({ model: "m" }))
      assert.strictEqual(noMessages.status, 400)
      assert.include(errorOf(yield* text(noMessages)).message, "messages")
      const requests = yield* fake.requests
      assert.deepStrictEqual(requests.map((r) => [r.rejection, r.model, r.body]), [
        ["invalid_request", undefined, undefined],
        ["invalid_request", "m", { model: "m" }]
      ])
    }))

  it.live("waits the model's latency before answering, or an outcome's own", () =>
    Effect.gen(function*() {
      const fake = yield* start({
        models: {
          slow: {
            latency: "150 millis",
            script: [FakeProvider.ok, FakeProvider.withLatency(FakeProvider.serverError(), "10 millis")]
          }
        }
      })
      const started = performance.now()
      yield* text(yield* post(fake.url, { model: "slow" }))
      // a lower bound with room: the server's timer starts from the event loop's time, taken when
      // its turn began, so on a busy machine the wait can measure shorter than 150 ms by the wall
      // clock (the latency itself is checked exactly below, as the server recorded it)
      assert.isAtLeast(performance.now() - started, 100)
      yield* text(yield* post(fake.url, { model: "slow" }))
      const requests = yield* fake.requests
      assert.deepStrictEqual(requests.map((r) => Duration.toMillis(r.latency)), [150, 10])
    }))

  it.live("spaces the events of a stream by chunkDelay", () =>
    Effect.gen(function*() {
      const fake = yield* start({ models: { m: { reply: "a b c", chunkDelay: "40 millis" } } })
      const sent = performance.now()
      const response = yield* post(fake.url, { model: "m", stream: true })
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      let received = ""
      for (;;) {
        const { done, value } = yield* Effect.promise(() => reader.read())
        if (done) break
        received += decoder.decode(value, { stream: true })
      }
      // role, three words, finish, [DONE]: five gaps of 40 ms. Only a lower bound holds on a busy
      // machine (reads may coalesce events, and each timer starts from the event loop's time, taken
      // when its turn began, so it can end early by the wall clock), measured from the request.
      assert.strictEqual(parseSse(received).data.length, 6)
      assert.isAtLeast(performance.now() - sent, 5 * 40 * 0.75)
    }))
})

describe("FakeProvider in-process", () => {
  const postTo = (fake: FakeProvider.Service, model: string) =>
    Effect.tryPromise(() =>
      fake.fetch(`${fake.url}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] })
      }).then((response) => response.json())
    )

  it.effect("fake.fetch serves the same answers without a socket, its latency on TestClock", () =>
    Effect.gen(function*() {
      const fake = yield* start({ models: { slow: { latency: "10 minutes", reply: "at last" } } })
      const answer = yield* Effect.forkChild(postTo(fake, "slow"))
      // the exchange settles through promises, which the clock does not wait for: let them run
      for (let i = 0; i < 20 && (yield* fake.requestCount) === 0; i++) yield* TestClock.adjust("0 millis")
      yield* TestClock.adjust("9 minutes")
      assert.isUndefined(answer.pollUnsafe())
      yield* TestClock.adjust("1 minute")
      const body: unknown = yield* Fiber.join(answer)
      assert.deepInclude(body, { object: "chat.completion", model: "slow" })
      assert.strictEqual(yield* fake.openConnections, 0)
      assert.deepStrictEqual((yield* fake.requests).map((r) => [r.model, r.status]), [["slow", 200]])
    }))
})

describe("FakeProvider faults", () => {
  it.live("server errors carry their status and an OpenAI error body", () =>
    Effect.gen(function*() {
      const statuses = [500, 502, 503, 529] as const
      const fake = yield* start({
        models: { m: { script: statuses.map((status) => FakeProvider.serverError(status)) } }
      })
      for (const status of statuses) {
        const response = yield* post(fake.url, { model: "m" })
        assert.strictEqual(response.status, status)
        const error = errorOf(yield* text(response))
        assert.strictEqual(error.type, status === 529 ? "overloaded_error" : "server_error")
        assert.isNull(error.code)
      }
      const requests = yield* fake.requests
      assert.deepStrictEqual(requests.map((r) => r.status), [500, 502, 503, 529])
      assert.deepStrictEqual(requests.map((r) => r.outcome?._tag), Array(4).fill("ServerError"))
    }))

  it.live("429 carries retry-after in seconds, as an HTTP date, as retry-after-ms, verbatim, or not at all", () =>
    Effect.gen(function*() {
      const fake = yield* start({
        models: {
          m: {
            script: [
              FakeProvider.rateLimited({ retryAfter: { seconds: 7 } }),
              FakeProvider.rateLimited({ retryAfter: { date: "30 seconds" } }),
              FakeProvider.rateLimited({ retryAfter: { millis: 1500 } }),
              FakeProvider.rateLimited({ retryAfter: { header: "retry-after", value: "NaN" } }),
              FakeProvider.rateLimited()
            ]
          }
        }
      })
      const responses = []
      for (let i = 0; i < 5; i++) {
        const response = yield* post(fake.url, { model: "m" })
        assert.strictEqual(response.status, 429)
        assert.strictEqual(errorOf(yield* text(response)).code, "rate_limit_exceeded")
        responses.push(response.headers)
      }
      assert.strictEqual(responses[0].get("retry-after"), "7")
      const date = Date.parse(responses[1].get("retry-after") ?? "")
      // an HTTP date has whole seconds
      assert.isTrue(
        Math.abs(date - (Date.now() + 30_000)) < 2_000,
        `retry-after date ${responses[1].get("retry-after")}`
      )
      assert.strictEqual(responses[2].get("retry-after-ms"), "1500")
      assert.isNull(responses[2].get("retry-after"))
      assert.strictEqual(responses[3].get("retry-after"), "NaN")
      assert.isNull(responses[4].get("retry-after"))
      assert.isNull(responses[4].get("retry-after-ms"))
    }))

  it.live("client errors: 401, 403, context length, content filter, other 400s", () =>
    Effect.gen(function*() {
      const fake = yield* start({
        models: {
          m: {
            script: [
              FakeProvider.authenticationError(401),
              FakeProvider.authenticationError(403),
              FakeProvider.contextLengthExceeded(),
              FakeProvider.contentFilter(),
              FakeProvider.badRequest({ code: "invalid_temperature", param: "temperature", message: "bad temp" }),
              FakeProvider.badRequest({ status: 422, code: null })
            ]
          }
        }
      })
      const seen: Array<readonly [number, string | null, string | null]> = []
      for (let i = 0; i < 6; i++) {
        const response = yield* post(fake.url, { model: "m" })
        const error = errorOf(yield* text(response))
        seen.push([response.status, error.code, error.param])
      }
      assert.deepStrictEqual(seen, [
        [401, "invalid_api_key", null],
        [403, "forbidden", null],
        [400, "context_length_exceeded", "messages"],
        [400, "content_filter", "prompt"],
        [400, "invalid_temperature", "temperature"],
        [422, null, null]
      ])
    }))

  it.live("a content filter refusal can also come as a 200 with finish_reason content_filter", () =>
    Effect.gen(function*() {
      const fake = yield* start({ models: { m: { script: () => FakeProvider.contentFilter("finish_reason") } } })
      const body = JSON.parse(yield* text(yield* post(fake.url, { model: "m" })))
      assert.strictEqual(body.choices[0].finish_reason, "content_filter")
      assert.isNull(body.choices[0].message.content)
      const { data } = parseSse(yield* text(yield* post(fake.url, { model: "m", stream: true })))
      const chunks = data.slice(0, -1).map((d) => JSON.parse(d))
      assert.strictEqual(chunks[chunks.length - 1].choices[0].finish_reason, "content_filter")
      assert.strictEqual(data[data.length - 1], "[DONE]")
    }))

  it.live("malformed JSON and wrong shape, as JSON and as SSE", () =>
    Effect.gen(function*() {
      const fake = yield* start({
        models: {
          bad: { script: () => FakeProvider.malformedJson() },
          shape: { script: () => FakeProvider.wrongShape() }
        }
      })
      const malformed = yield* post(fake.url, { model: "bad" })
      assert.strictEqual(malformed.status, 200)
      const malformedText = yield* text(malformed)
      assert.throws(() => JSON.parse(malformedText))
      const malformedSse = parseSse(yield* text(yield* post(fake.url, { model: "bad", stream: true })))
      assert.throws(() => JSON.parse(malformedSse.data[0]))
      assert.strictEqual(malformedSse.data[1], "[DONE]")

      const shape = JSON.parse(yield* text(yield* post(fake.url, { model: "shape" })))
      assert.strictEqual(shape.object, "chat.completion")
      assert.isFalse("choices" in shape)
      const shapeSse = parseSse(yield* text(yield* post(fake.url, { model: "shape", stream: true })))
      assert.isFalse("choices" in JSON.parse(shapeSse.data[0]))
    }))

  it.live("a truncated stream stops without [DONE], after n events or in the middle of one", () =>
    Effect.gen(function*() {
      const fake = yield* start({
        models: {
          m: {
            reply: "a b c d e f",
            script: [
              FakeProvider.truncatedStream({ afterChunks: 3 }),
              FakeProvider.truncatedStream({ afterChunks: 2, midEvent: true }),
              FakeProvider.truncatedStream({ afterChunks: 100 }),
              FakeProvider.truncatedStream()
            ]
          }
        }
      })
      const clean = parseSse(yield* text(yield* post(fake.url, { model: "m", stream: true })))
      assert.strictEqual(clean.data.length, 3)
      assert.strictEqual(clean.rest, "")
      assert.notInclude(clean.data, "[DONE]")
      for (const data of clean.data) JSON.parse(data)

      const mid = parseSse(yield* text(yield* post(fake.url, { model: "m", stream: true })))
      assert.strictEqual(mid.data.length, 2)
      assert.isTrue(mid.rest.startsWith("data: {"))
      assert.throws(() => JSON.parse(mid.rest.slice("data: ".length)))

      const all = parseSse(yield* text(yield* post(fake.url, { model: "m", stream: true })))
      assert.strictEqual(all.data.length, 8) // role, six words, finish; never [DONE]
      assert.notInclude(all.data, "[DONE]")

      // without stream: true, the JSON body is cut short
      const json = yield* text(yield* post(fake.url, { model: "m" }))
      assert.isTrue(json.startsWith("{\"id\":"))
      assert.throws(() => JSON.parse(json))
    }))

  it.live("a reset connection fails the request; mid-stream, after the events already sent", () =>
    Effect.gen(function*() {
      const fake = yield* start({
        models: {
          m: {
            reply: "one two three",
            script: [FakeProvider.resetConnection(), FakeProvider.resetConnection({ afterChunks: 2 })]
          }
        }
      })
      const before = yield* Effect.flip(post(fake.url, { model: "m" }))
      assert.strictEqual(causeCode(before.cause), "ECONNRESET")

      const response = yield* post(fake.url, { model: "m", stream: true })
      assert.strictEqual(response.status, 200)
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      let received = ""
      const failure = yield* Effect.flip(Effect.tryPromise(async () => {
        for (;;) {
          const { done, value } = await reader.read()
          if (done) return received
          received += decoder.decode(value, { stream: true })
        }
      }))
      assert.oneOf(causeCode(failure.cause), ["ECONNRESET", "UND_ERR_SOCKET"])
      const { data } = parseSse(received)
      assert.strictEqual(data.length, 2)
      const requests = yield* fake.requests
      assert.deepStrictEqual(requests.map((r) => r.status), [undefined, 200])
      yield* eventually(fake.openConnections, (n) => n === 0)
    }))

  it.live("a hang never answers, and releases everything when the client aborts", () =>
    Effect.gen(function*() {
      const fake = yield* start({
        models: {
          m: { script: [FakeProvider.hang(), FakeProvider.hang({ afterChunks: 2 })] }
        }
      })
      const controller = new AbortController()
      const pending = yield* Effect.forkChild(Effect.result(post(fake.url, { model: "m" }, controller.signal)))
      yield* eventually(fake.activeRequests, (n) => n === 1)
      assert.strictEqual(yield* fake.openConnections, 1)
      controller.abort()
      const result = yield* Fiber.await(pending)
      assert.strictEqual(result._tag, "Success")
      yield* eventually(Effect.zip(fake.openConnections, fake.activeRequests), ([c, a]) => c === 0 && a === 0)

      // streamed: the headers and two events, then nothing
      const streamed = new AbortController()
      const response = yield* post(fake.url, { model: "m", stream: true }, streamed.signal)
      assert.strictEqual(response.status, 200)
      const reader = response.body!.getReader()
      let received = ""
      while (parseSse(received).data.length < 2) {
        const { value } = yield* Effect.promise(() => reader.read())
        received += new TextDecoder().decode(value)
      }
      assert.strictEqual(parseSse(received).data.length, 2)
      streamed.abort()
      yield* eventually(Effect.zip(fake.openConnections, fake.activeRequests), ([c, a]) => c === 0 && a === 0)
      const requests = yield* fake.requests
      assert.deepStrictEqual(requests.map((r) => [r.outcome?._tag, r.status]), [["Hang", undefined], ["Hang", 200]])
    }))

  it.live("raw responses: exact status, headers and bytes, invalid UTF-8 and odd headers included", () =>
    Effect.gen(function*() {
      const bytes = new Uint8Array([0x7b, 0xff, 0xfe, 0x22, 0xc3, 0x28, 0x7d])
      const fake = yield* start({
        models: {
          m: {
            script: [
              FakeProvider.raw({ status: 429, headers: { "retry-after": "-1" }, body: "{}" }),
              FakeProvider.raw({ status: 200, headers: { "content-type": "text/plain" }, body: bytes }),
              FakeProvider.raw({ status: 200, body: FakeProvider.nestedJson(5) })
            ]
          }
        }
      })
      const odd = yield* post(fake.url, { model: "m" })
      assert.strictEqual(odd.status, 429)
      assert.strictEqual(odd.headers.get("retry-after"), "-1")
      assert.strictEqual(odd.headers.get("content-type"), "application/json")
      assert.strictEqual(yield* text(odd), "{}")
      const invalid = yield* post(fake.url, { model: "m" })
      assert.strictEqual(invalid.headers.get("content-type"), "text/plain")
      assert.deepStrictEqual(new Uint8Array(yield* Effect.promise(() => invalid.arrayBuffer())), bytes)
      assert.strictEqual(yield* text(yield* post(fake.url, { model: "m" })), "[[[[[]]]]]")
    }))

  it.live("a 20 MB raw body arrives whole; a gigabyte one is produced only as fast as the client reads", () =>
    Effect.gen(function*() {
      let produced = 0
      const counted = FakeProvider.repeatBytes(1024 * 1024 * 1024, "xyz").pipe(
        Stream.tap((chunk) => Effect.sync(() => (produced += chunk.length)))
      )
      const fake = yield* start({
        models: {
          m: {
            script: [
              FakeProvider.raw({ status: 200, body: FakeProvider.repeatBytes(20 * 1024 * 1024, "ab", 1000) }),
              FakeProvider.raw({ status: 200, body: counted })
            ]
          }
        }
      })
      const full = yield* post(fake.url, { model: "m" })
      const whole = new Uint8Array(yield* Effect.promise(() => full.arrayBuffer()))
      assert.strictEqual(whole.length, 20 * 1024 * 1024)
      let inPhase = true
      for (let i = 0; i < whole.length; i++) if (whole[i] !== (i % 2 === 0 ? 97 : 98)) inPhase = false
      assert.isTrue(inPhase, "the pattern runs unbroken across chunk boundaries")

      const response = yield* post(fake.url, { model: "m" })
      const reader = response.body!.getReader()
      let read = 0
      while (read < 1024 * 1024) {
        const { value } = yield* Effect.promise(() => reader.read())
        read += value?.length ?? 0
      }
      yield* Effect.promise(() => reader.cancel())
      yield* eventually(fake.activeRequests, (n) => n === 0)
      // what the socket buffers hold on loopback, far below the gigabyte asked for
      assert.isBelow(produced, 128 * 1024 * 1024)
    }))
})
