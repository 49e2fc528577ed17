/**
 * Hostile responses, generated with fast-check: what a broken proxy, a buggy local server or an
 * attacker might send back, each as a `FakeProvider` outcome with what the client must make of it.
 * The expectation is always a typed `LlmError` (usually `ResponseDecodeError`); a complaint, when
 * there is one, says what was wrong in words.
 */
import type { LlmError } from "@resilient-llm/core"
import { FakeProvider } from "@resilient-llm/testing"
import { Duration, Option, Predicate } from "effect"
import * as fc from "fast-check"

export interface Case {
  readonly kind: string
  readonly outcome: FakeProvider.Outcome
  /** Call `stream` (and read it to the end) instead of `create`. */
  readonly stream: boolean
  /** What is wrong with the error the call failed with, if anything. */
  readonly check: (error: LlmError.LlmError) => string | undefined
  /** A short description for fast-check's counterexample. */
  readonly label: string
}

const encoder = new TextEncoder()

const expectTag = (tag: LlmError.LlmError["_tag"]) => (error: LlmError.LlmError): string | undefined =>
  error._tag === tag ? undefined : `expected ${tag}, got ${error._tag}: ${error.message}`

export const completion = (content: string, model = "hostile"): Record<string, unknown> => ({
  id: "chatcmpl-hostile",
  object: "chat.completion",
  created: 1_700_000_000,
  model,
  choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }
})

const chunk = (content: string): string =>
  JSON.stringify({
    id: "chatcmpl-hostile",
    object: "chat.completion.chunk",
    created: 1_700_000_000,
    model: "hostile",
    choices: [{ index: 0, delta: { content }, finish_reason: null }]
  })

/** A whole, valid event stream for `pieces`, `[DONE]` included. */
export const eventStream = (pieces: ReadonlyArray<string>): string =>
  `${pieces.map((piece) => `data: ${chunk(piece)}\n\n`).join("")}data: [DONE]\n\n`

const json = (status: number, body: string | Uint8Array, headers: Record<string, string> = {}) =>
  FakeProvider.raw({ status, body, headers: { "content-type": "application/json", ...headers } })

const events = (body: string | Uint8Array) =>
  FakeProvider.raw({ status: 200, body, headers: { "content-type": "text/event-stream" } })

const preview = (bytes: Uint8Array): string =>
  `${bytes.length} bytes ${Buffer.from(bytes.subarray(0, 24)).toString("hex")}${bytes.length > 24 ? "…" : ""}`

/** Random bytes as a 200 body, for `create` or as an event stream. */
const randomBytes: fc.Arbitrary<Case> = fc.record({
  bytes: fc.uint8Array({ maxLength: 4096 }),
  stream: fc.boolean()
}).map(({ bytes, stream }) => ({
  kind: "random bytes",
  outcome: stream ? events(bytes) : json(200, bytes),
  stream,
  check: expectTag("ResponseDecodeError"),
  label: `${stream ? "stream" : "create"}: ${preview(bytes)}`
}))

/** Places in a completion, and the JSON values each accepts; anything else there is the wrong type. */
const slots: ReadonlyArray<readonly [path: ReadonlyArray<string | number>, accepts: (u: unknown) => boolean]> = [
  [["model"], Predicate.isString],
  [["id"], Predicate.isString],
  [["choices"], (u) => Array.isArray(u) && u.length > 0 && Predicate.isObject(u[0])],
  [["choices", 0], Predicate.isObject],
  [["choices", 0, "index"], Predicate.isNumber],
  [["choices", 0, "message"], Predicate.isObject],
  [["choices", 0, "message", "content"], (u) => u === null || Predicate.isString(u)],
  [["choices", 0, "message", "role"], Predicate.isString],
  // optional: null reads as absent, as the spec's optional fields do
  [["choices", 0, "message", "tool_calls"], (u) => u === null || Array.isArray(u)],
  [["choices", 0, "finish_reason"], (u) => u === null || Predicate.isString(u)],
  [["usage"], (u) => u === null || Predicate.isObject(u)],
  [["usage", "prompt_tokens"], Predicate.isNumber],
  [["usage", "completion_tokens"], Predicate.isNumber]
]

const setAt = (value: unknown, path: ReadonlyArray<string | number>, replacement: unknown): unknown => {
  if (path.length === 0) return replacement
  const [head, ...rest] = path
  if (Array.isArray(value) && typeof head === "number") {
    return value.map((item, i) => i === head ? setAt(item, rest, replacement) : item)
  }
  if (Predicate.isObject(value) && typeof head === "string") {
    return { ...value, [head]: setAt(value[head], rest, replacement) }
  }
  return value
}

/** A valid completion with one field of the wrong JSON type. */
const wrongType: fc.Arbitrary<Case> = fc.constantFrom(...slots).chain(([path, accepts]) =>
  fc.jsonValue({ maxDepth: 3 }).filter((value) => !accepts(value)).map((value): Case => {
    const body = JSON.stringify(setAt(completion("fine"), path, value))
    return {
      kind: "wrong JSON type",
      outcome: json(200, body),
      stream: false,
      check: expectTag("ResponseDecodeError"),
      label: `${path.join(".")} = ${JSON.stringify(value).slice(0, 80)}`
    }
  })
)

/** JSON nested deeper than the client walks: as the whole body, or in an extra field of a completion. */
const deeplyNested: fc.Arbitrary<Case> = fc.record({
  depth: fc.integer({ min: 65, max: 100_000 }),
  whole: fc.boolean()
}).map(({ depth, whole }) => ({
  kind: "deeply nested JSON",
  outcome: whole
    ? FakeProvider.raw({
      status: 200,
      body: FakeProvider.nestedJson(depth),
      headers: { "content-type": "application/json" }
    })
    : json(200, JSON.stringify(completion("fine")).replace(/}$/, `,"extra":${"[".repeat(depth)}${"]".repeat(depth)}}`)),
  stream: false,
  check: expectTag("ResponseDecodeError"),
  label: `${depth} levels${whole ? "" : " inside a completion"}`
}))

const invalidSequences: ReadonlyArray<readonly [string, ReadonlyArray<number>]> = [
  ["0xff", [0xff]],
  ["0xfe", [0xfe]],
  ["lone continuation byte", [0x80]],
  ["overlong slash", [0xc0, 0xaf]],
  ["UTF-16 surrogate", [0xed, 0xa0, 0x80]],
  ["past U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
  ["cut three-byte character", [0xe2, 0x82]]
]

const splice = (text: string, marker: string, bytes: ReadonlyArray<number>): Uint8Array => {
  const [before, after] = text.split(marker)
  return new Uint8Array([...encoder.encode(before), ...bytes, ...encoder.encode(after)])
}

/**
 * Invalid UTF-8 inside the answer's text: a lenient decoder would turn it into U+FFFD and serve a
 * completion the model never sent.
 */
const invalidUtf8: fc.Arbitrary<Case> = fc.record({
  sequence: fc.constantFrom(...invalidSequences),
  before: fc.string({ maxLength: 20 }),
  stream: fc.boolean()
}).map(({ before, sequence: [name, bytes], stream }) => {
  const marker = "\u0000MARK\u0000"
  const content = `${before}${marker}`
  const body = stream
    ? splice(eventStream([content]), JSON.stringify(marker).slice(1, -1), bytes)
    : splice(JSON.stringify(completion(content)), JSON.stringify(marker).slice(1, -1), bytes)
  return {
    kind: "invalid UTF-8",
    outcome: stream ? events(body) : json(200, body),
    stream,
    check: expectTag("ResponseDecodeError"),
    label: `${name} in ${stream ? "an event" : "a completion"}`
  }
})

/**
 * A valid event stream cut at any byte before its `[DONE]` is complete: inside an event, between
 * two, inside a multi-byte character.
 */
const cutStream: fc.Arbitrary<Case> = fc.array(fc.string({ unit: "grapheme", minLength: 1, maxLength: 8 }), {
  minLength: 1,
  maxLength: 6
}).chain((pieces) => {
  const bytes = encoder.encode(eventStream(pieces))
  const doneEnd = bytes.length - 2 // "data: [DONE]" without its blank line still counts as the end
  return fc.integer({ min: 0, max: doneEnd - 1 }).map((cut): Case => ({
    kind: "stream cut before [DONE]",
    outcome: events(bytes.slice(0, cut)),
    stream: true,
    check: expectTag("ResponseDecodeError"),
    label: `cut at byte ${cut} of ${bytes.length}`
  }))
})

/** The fake's own cut: `afterChunks` whole events, then half of the next. */
const midEvent: fc.Arbitrary<Case> = fc.integer({ min: 0, max: 4 }).map((afterChunks) => ({
  kind: "stream stops mid-event",
  outcome: FakeProvider.truncatedStream({ afterChunks, midEvent: true }),
  stream: true,
  check: expectTag("ResponseDecodeError"),
  label: `after ${afterChunks} events`
}))

const day = Duration.toMillis(Duration.days(1))

/** A year from the moment the case is played, as an HTTP date. */
export const yearFromNow = (): string => new Date(Date.now() + 365 * day).toUTCString()

/**
 * `retry-after` values no client should take at face value: negative, `NaN`, a year ahead (as
 * seconds or as a date), exponents, units, and printable garbage.
 */
const oddRetryAfter: fc.Arbitrary<Case> = fc.oneof(
  fc.constantFrom("-1", "NaN", "31536000", "1e3", "5 seconds", "Infinity", "99999999999999999999999", "", "  "),
  fc.constant(yearFromNow()),
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength: 30 })
).map((value) => ({
  kind: "odd retry-after",
  outcome: json(429, JSON.stringify({ error: { message: "slow down", type: "rate_limit_error" } }), {
    "retry-after": value
  }),
  stream: false,
  check: (error: LlmError.LlmError) => {
    if (error._tag !== "RateLimitError") return `expected RateLimitError, got ${error._tag}: ${error.message}`
    return Option.match(error.retryAfter, {
      onNone: () => undefined,
      onSome: (after) => {
        const millis = Duration.toMillis(after)
        if (!(millis >= 0 && millis <= day)) return `retryAfter of ${millis} ms is outside [0, 24 h]`
        if (value === "-1" || value === "NaN") return `retry-after ${value} read as ${millis} ms`
        return undefined
      }
    })
  },
  label: JSON.stringify(value)
}))

/** A body over the client's default limit (8 MiB), up to 20 MiB, produced lazily as it is read. */
const hugeBody: fc.Arbitrary<Case> = fc.record({
  size: fc.integer({ min: 8 * 1024 * 1024 + 1, max: 20 * 1024 * 1024 }),
  pattern: fc.constantFrom("a", "{\"choices\":[", " ", "\u00e9")
}).map(({ pattern, size }) => ({
  kind: "huge body",
  outcome: FakeProvider.raw({
    status: 200,
    body: FakeProvider.repeatBytes(size, pattern),
    headers: { "content-type": "application/json" }
  }),
  stream: false,
  check: (error: LlmError.LlmError) =>
    error._tag === "ResponseDecodeError" && error.detail.includes("exceeds the limit")
      ? undefined
      : `expected a ResponseDecodeError for the size, got ${error._tag}: ${error.message}`,
  label: `${size} bytes of ${JSON.stringify(pattern)}`
}))

/** Any status from 200 to 599 with any body: the client must classify it, whatever it is. */
const anyStatus: fc.Arbitrary<Case> = fc.record({
  status: fc.integer({ min: 200, max: 599 }),
  body: fc.oneof(fc.uint8Array({ maxLength: 512 }), fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)))
}).map(({ body, status }) => ({
  kind: "any status, any body",
  outcome: json(status, body),
  stream: false,
  check: () => undefined,
  label: `${status} with ${typeof body === "string" ? body.slice(0, 60) : preview(body)}`
}))

/** Every kind above, about equally often. */
export const hostileResponse: fc.Arbitrary<Case> = fc.oneof(
  randomBytes,
  wrongType,
  deeplyNested,
  invalidUtf8,
  cutStream,
  midEvent,
  oddRetryAfter,
  anyStatus,
  hugeBody
)
