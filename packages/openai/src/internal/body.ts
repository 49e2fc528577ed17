/**
 * Reading response bodies defensively: a byte limit checked against `content-length` and counted
 * as the body streams (so an oversized body is refused without being buffered), strict UTF-8,
 * and JSON parsing that can only end in a value or a description of what was wrong, including
 * nesting too deep for the code that later walks the value; and an idle bound for streams.
 *
 * @internal
 */
import * as LlmError from "@resilient-llm/core/LlmError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as HttpClientError from "effect/http/HttpClientError"
import type * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Predicate from "effect/Predicate"
import type * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Stream from "effect/Stream"
import { sanitize } from "./errors.js"

/**
 * The deepest nesting a decoded JSON value may have. Real completions nest less than ten levels;
 * schema error formatting and `JSON.stringify` recurse, and overflow the stack on values
 * thousands of levels deep, so deeper values are refused before anything walks them.
 *
 * @internal
 */
export const maxJsonDepth = 64

/**
 * Whether `value` nests deeper than `limit`, walked without recursion.
 *
 * @internal
 */
export const depthExceeds = (value: unknown, limit: number): boolean => {
  const stack: Array<readonly [unknown, number]> = [[value, 0]]
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!
    if (current === null || typeof current !== "object") continue
    if (depth >= limit) return true
    const children: ReadonlyArray<unknown> = Array.isArray(current) ? current : Object.values(current)
    for (const child of children) {
      if (child !== null && typeof child === "object") stack.push([child, depth + 1])
    }
  }
  return false
}

const describeThrown = (u: unknown): string =>
  u instanceof Error ? u.message : Predicate.isString(u) ? u : "unknown error"

/**
 * Parses JSON text; a failure says what was wrong, as a predicate ("is empty", "is not valid JSON
 * (...)", "nests deeper than 64 levels") for the caller to name its subject.
 *
 * @internal
 */
export const parseJson = (text: string): Result.Result<unknown, string> => {
  if (text.trim().length === 0) return Result.fail("is empty")
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    return Result.fail(`is not valid JSON (${describeThrown(e)})`)
  }
  return depthExceeds(value, maxJsonDepth)
    ? Result.fail(`nests deeper than ${maxJsonDepth} levels`)
    : Result.succeed(value)
}

// `decode` without `stream: true` keeps no state between calls, so one decoder serves every body.
const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * Decodes bytes as UTF-8, failing on any invalid sequence instead of replacing it.
 *
 * @internal
 */
export const decodeUtf8 = (bytes: Uint8Array): Result.Result<string, string> => {
  try {
    return Result.succeed(strictUtf8.decode(bytes))
  } catch {
    return Result.fail("is not valid UTF-8")
  }
}

const concat = (chunks: ReadonlyArray<Uint8Array>, size: number): Uint8Array => {
  const out = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}

/**
 * A `ConnectionError` for a body that could not be read to its end (reset, aborted).
 *
 * @internal
 */
export const bodyReadFailure = (
  model: string,
  error: HttpClientError.HttpClientError,
  secrets: ReadonlyArray<Redacted.Redacted<string>>
): LlmError.ConnectionError =>
  new LlmError.ConnectionError({
    model,
    detail: sanitize(
      `the connection broke while reading the response (${describeCause(error.reason.cause)})`,
      secrets
    )
  })

/**
 * The declared `content-length`, when there is a valid one.
 *
 * @internal
 */
export const contentLength = (response: HttpClientResponse.HttpClientResponse): number | undefined => {
  const value = response.headers["content-length"]
  return value !== undefined && /^\d{1,20}$/.test(value.trim()) ? Number(value.trim()) : undefined
}

const tooLarge = (model: string, maxBytes: number, declared?: number): LlmError.ResponseDecodeError =>
  new LlmError.ResponseDecodeError({
    model,
    detail: declared === undefined
      ? `the response body exceeds the limit of ${maxBytes} bytes`
      : `the response body of ${declared} bytes (content-length) exceeds the limit of ${maxBytes} bytes`
  })

/**
 * A stream that fails with `onIdle` when its next element takes longer than `idleTimeout` to come
 * (an infinite timeout leaves it as it is). Only the wait for the producer counts, not the time
 * the consumer takes between two pulls.
 *
 * Each pull is bounded with `Effect.timeoutOrElse`, which costs a few microseconds; `Stream.timeout`
 * does the same job for about fifty per stream, which doubled the client's CPU per request.
 *
 * @internal
 */
export const idleBounded = <A, E, E2>(
  stream: Stream.Stream<A, E>,
  idleTimeout: Duration.Duration,
  onIdle: () => E2
): Stream.Stream<A, E | E2> =>
  Duration.isFinite(idleTimeout)
    ? Stream.transformPull(stream, (pull) =>
      Effect.succeed(
        Effect.timeoutOrElse(pull, { duration: idleTimeout, orElse: () => Effect.fail(onIdle()) })
      ))
    : stream

/**
 * Reads a whole body of at most `maxBytes` bytes. A larger declared `content-length` fails before
 * reading. A body that declares its length within the limit is read in one piece (the transport
 * delivers exactly that many bytes, or fails). Any other body is read as a stream, its bytes
 * counted as they arrive, `onProgress` called for each read, and reading stopped (the request
 * aborted by the caller's scope) at the first chunk over the limit. Timing is the caller's.
 *
 * Reading in one piece is worth the difference: a stream per response cost about 130 µs of CPU
 * per call with undici, more than everything else the client does.
 *
 * @internal
 */
export const readLimited = (
  response: HttpClientResponse.HttpClientResponse,
  options: {
    readonly model: string
    readonly maxBytes: number
    readonly onProgress: () => void
    readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
  }
): Effect.Effect<Uint8Array, LlmError.ResponseDecodeError | LlmError.ConnectionError> =>
  Effect.suspend(() => {
    const { maxBytes, model } = options
    const declared = contentLength(response)
    if (declared !== undefined && declared > maxBytes) return Effect.fail(tooLarge(model, maxBytes, declared))
    if (declared !== undefined) {
      return Effect.mapBoth(response.arrayBuffer, {
        onFailure: (error) => bodyReadFailure(model, error, options.secrets),
        onSuccess: (buffer) => new Uint8Array(buffer)
      })
    }
    const chunks: Array<Uint8Array> = []
    return response.stream.pipe(
      Stream.mapError((error) => bodyReadFailure(model, error, options.secrets)),
      Stream.runFoldEffect(() => 0, (size, chunk): Effect.Effect<number, LlmError.ResponseDecodeError> => {
        options.onProgress()
        const next = size + chunk.byteLength
        if (next > maxBytes) return Effect.fail(tooLarge(model, maxBytes))
        chunks.push(chunk)
        return Effect.succeed(next)
      }),
      Effect.map((size) => concat(chunks, size))
    )
  })

/**
 * Reads at most `maxBytes` of a body and stops there, calling `onProgress` for each read; when a
 * read fails, what arrived until then, `undefined` when nothing did. For error bodies, whose size
 * says nothing about the error.
 *
 * @internal
 */
export const readPrefix = (
  response: HttpClientResponse.HttpClientResponse,
  maxBytes: number,
  onProgress: () => void
): Effect.Effect<Uint8Array | undefined> =>
  Effect.suspend(() => {
    const chunks: Array<Uint8Array> = []
    let size = 0
    return response.stream.pipe(
      // Nothing past the limit is waited for: the caller's scope then aborts the request.
      Stream.runForEachWhile((chunk) =>
        Effect.sync(() => {
          onProgress()
          const room = maxBytes - size
          const taken = chunk.byteLength > room ? chunk.subarray(0, room) : chunk
          chunks.push(taken)
          size += taken.byteLength
          return size < maxBytes
        })
      ),
      Effect.map((): Uint8Array | undefined => concat(chunks, size)),
      Effect.orElseSucceed(() => size === 0 ? undefined : concat(chunks, size))
    )
  })

/**
 * A short description of a transport failure's cause: the innermost error's message and its
 * system code (`ECONNREFUSED`), found along the `cause` chain (undici wraps the socket error in a
 * `TypeError: fetch failed`).
 *
 * @internal
 */
export const describeCause = (cause: unknown): string => {
  let current: unknown = cause
  let message: string | undefined
  let code: string | undefined
  for (let i = 0; i < 8 && current !== undefined && current !== null; i++) {
    if (Predicate.hasProperty(current, "code") && Predicate.isString(current.code)) code = current.code
    if (current instanceof Error && current.message.length > 0) message = current.message
    if (current instanceof AggregateError && current.errors.length > 0) {
      current = current.errors[0]
      continue
    }
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  if (message === undefined) return code ?? "transport failure"
  return code === undefined || message.includes(code) ? message : `${message} (${code})`
}
