import { HttpClient, HttpClientResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, LlmError } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { Cause, Chunk, Effect, Exit, FastCheck as fc, Stream } from "effect"
import { decodeEventStream } from "../src/internal/client.js"
import { type Frame, makeFrameReader } from "../src/internal/sse.js"
import * as TestServer from "./TestServer.js"

const model = "m"

interface StreamShape {
  readonly contents: ReadonlyArray<string>
  readonly crlf: boolean
  readonly pretty: boolean
  readonly comments: boolean
  readonly cuts: ReadonlyArray<number>
}

const shape: fc.Arbitrary<StreamShape> = fc.record({
  contents: fc.array(fc.fullUnicodeString({ maxLength: 12 }), { minLength: 1, maxLength: 6 }),
  crlf: fc.boolean(),
  pretty: fc.boolean(),
  comments: fc.boolean(),
  cuts: fc.array(fc.nat(), { maxLength: 48 })
})

/** The SSE text of a stream of `contents`, in one of the line-ending and layout styles. */
const render = (s: StreamShape): string => {
  const nl = s.crlf ? "\r\n" : "\n"
  let text = ""
  for (const content of s.contents) {
    if (s.comments) text += `: keep-alive${nl}${nl}`
    const json = JSON.stringify(TestServer.chunk(model, content), null, s.pretty ? 1 : undefined)
    text += json.split("\n").map((line) => `data: ${line}`).join(nl) + nl + nl
  }
  return `${text}data: [DONE]${nl}${nl}`
}

/** Splits `bytes` at the given offsets (taken modulo its length). */
const split = (bytes: Uint8Array, cuts: ReadonlyArray<number>): ReadonlyArray<Uint8Array> => {
  const offsets = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const pieces: Array<Uint8Array> = []
  let start = 0
  for (const offset of [...offsets, bytes.length]) {
    pieces.push(bytes.subarray(start, offset))
    start = offset
  }
  return pieces
}

const decode = (pieces: ReadonlyArray<Uint8Array>, maxEventSize = 1 << 20) =>
  decodeEventStream(Stream.fromIterable(pieces), {
    model,
    maxEventSize,
    secrets: [],
    onErrorEvent: () => Effect.succeed(new LlmError.ServerError({ model, status: 500 }))
  }).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))

/** The frames of `pieces`, read synchronously. */
const framesOf = (pieces: ReadonlyArray<Uint8Array>): ReadonlyArray<Frame> => {
  const reader = makeFrameReader(1 << 20)
  return [...pieces.flatMap((piece) => reader.feed(piece)), ...reader.end()]
}

describe("makeFrameReader", () => {
  it.prop(
    "any split of a valid event stream yields the same events",
    { s: shape },
    ({ s }) => {
      const bytes = new TextEncoder().encode(render(s))
      const frames = framesOf(split(bytes, s.cuts))
      assert.deepStrictEqual(frames, framesOf([bytes]))
      const data = frames.flatMap((frame) => frame._tag === "Data" ? [JSON.parse(frame.data)] : [])
      assert.deepStrictEqual(data, s.contents.map((content) => TestServer.chunk(model, content)))
      assert.deepStrictEqual(frames.slice(-2), [{ _tag: "Done" }, { _tag: "End" }])
    },
    { fastCheck: { numRuns: 1000 } }
  )
})

describe("decodeEventStream", () => {
  it.live.prop(
    "any split of a valid event stream yields the same chunks",
    { s: shape },
    ({ s }) =>
      Effect.gen(function*() {
        const bytes = new TextEncoder().encode(render(s))
        const whole = yield* decode([bytes])
        const pieces = yield* decode(split(bytes, s.cuts))
        const expected = yield* Effect.forEach(
          s.contents,
          (c) => ChatCompletion.decodeChunk(TestServer.chunk(model, c))
        )
        assert.deepStrictEqual(whole, expected)
        assert.deepStrictEqual(pieces, expected)
      }),
    { fastCheck: { numRuns: 100 } }
  )

  it.live.prop(
    "arbitrary bytes end in chunks or a typed error, never a defect",
    { pieces: fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), prefix: fc.boolean() },
    ({ pieces, prefix }) =>
      Effect.gen(function*() {
        const head = prefix ? [new TextEncoder().encode("data: ")] : []
        const exit = yield* Effect.exit(decode([...head, ...pieces], 256))
        if (Exit.isFailure(exit)) {
          assert.isTrue(Cause.isFailType(exit.cause), Cause.pretty(exit.cause))
          assert.isTrue(LlmError.isLlmError(Cause.squash(exit.cause)))
        }
      }),
    { fastCheck: { numRuns: 150 } }
  )
})

describe("create over arbitrary bodies", () => {
  /** An `HttpClient` that answers every request with `body` and `status`, without a network. */
  const answering = (status: number, body: Uint8Array | string) =>
    HttpClient.make((request) =>
      Effect.succeed(
        HttpClientResponse.fromWeb(
          request,
          new Response(typeof body === "string" ? body : new Uint8Array(body), { status })
        )
      )
    )

  const create = (status: number, body: Uint8Array | string) =>
    OpenAiCompatible.make({ baseUrl: "http://provider.test/v1", maxResponseBytes: 4096 }).pipe(
      Effect.flatMap((chat) => chat.create({ model, messages: [{ role: "user", content: "hi" }] })),
      Effect.provideService(HttpClient.HttpClient, answering(status, body)),
      Effect.exit
    )

  const typedOrSuccess = (exit: Exit.Exit<unknown, LlmError.LlmError>) => {
    if (Exit.isFailure(exit)) {
      assert.isTrue(Cause.isFailType(exit.cause), Cause.pretty(exit.cause))
      assert.isTrue(LlmError.isLlmError(Cause.squash(exit.cause)))
    }
  }

  it.live.prop(
    "any JSON value as a body, under any status, is a completion or a typed error",
    { json: fc.jsonValue({ maxDepth: 6 }), status: fc.constantFrom(200, 400, 401, 404, 429, 500, 529) },
    ({ json, status }) => Effect.map(create(status, JSON.stringify(json)), typedOrSuccess),
    { fastCheck: { numRuns: 150 } }
  )

  it.live.prop(
    "any bytes as a body are a completion or a typed error",
    { bytes: fc.uint8Array({ maxLength: 8192 }), status: fc.constantFrom(200, 422, 503) },
    ({ bytes, status }) => Effect.map(create(status, bytes), typedOrSuccess),
    { fastCheck: { numRuns: 100 } }
  )
})
