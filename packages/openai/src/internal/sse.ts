/**
 * Server-sent events from raw bytes, as an OpenAI-compatible stream uses them: strict UTF-8 decoded
 * incrementally (a character split across network reads is kept whole), cut into complete lines
 * here, parsed by Effect's SSE parser (`effect/encoding/Sse`), and each event reduced to a
 * `Frame`. The work is linear in the bytes received, however the reads cut them and whatever the
 * line endings (LF, CRLF, CR).
 *
 * @internal
 */
import * as Sse from "effect/encoding/Sse"

/**
 * What an event means to a chat stream:
 * - `Data`: a payload to decode (a chunk, or an error object);
 * - `Done`: the `[DONE]` sentinel, the only proper end of a stream;
 * - `End`: the body ended (always the last frame `end` yields; reaching it means no `[DONE]`);
 * - `Invalid`: the stream broke a rule (UTF-8, event size); nothing after it can be trusted.
 *
 * @internal
 */
export type Frame =
  | { readonly _tag: "Data"; readonly event: string; readonly data: string }
  | { readonly _tag: "Done" }
  | { readonly _tag: "End" }
  | { readonly _tag: "Invalid"; readonly detail: string }

/**
 * @internal
 */
export interface FrameReader {
  /** Frames completed by these bytes, the events before a fault included. */
  readonly feed: (bytes: Uint8Array) => ReadonlyArray<Frame>
  /** Frames left when the body ends, then `End`. */
  readonly end: () => ReadonlyArray<Frame>
}

const done: Frame = { _tag: "Done" }
const end: Frame = { _tag: "End" }

/**
 * Keeps the unterminated end of a stream's text and hands on the rest, complete lines only.
 *
 * @internal
 */
export interface LineSplitter {
  /**
   * The text that `text` completes: what was pending and `text` up to its last line break,
   * included; `""` when `text` has no line break (it is kept, pending).
   */
  readonly push: (text: string) => string
  /** The length of the unterminated line pending. */
  readonly pendingLength: () => number
  /** The unterminated line pending, at the end of the body. */
  readonly rest: () => string
  /** Characters examined or copied so far: at most twice the characters pushed. */
  readonly work: () => number
}

/**
 * Cuts text at its last line break (LF or CR) per push. Each character is examined at most once
 * (the search for the last line break runs backwards and stops there) and copied at most once
 * (when its line is complete), whatever the pushes: one long line arriving in many small reads
 * costs what it would in one.
 *
 * @internal
 */
export const makeLineSplitter = (): LineSplitter => {
  let pending: Array<string> = []
  let pendingLength = 0
  let work = 0
  return {
    push: (text) => {
      let last = text.length - 1
      while (last >= 0) {
        const code = text.charCodeAt(last)
        if (code === LF || code === CR) break
        last--
      }
      // examined: the characters after the last line break, and the line break itself
      work += last < 0 ? text.length : text.length - last
      if (last < 0) {
        if (text.length > 0) pending.push(text)
        pendingLength += text.length
        return ""
      }
      const head = text.slice(0, last + 1)
      const complete = pendingLength === 0 ? head : pending.join("") + head
      work += complete.length
      const tail = text.slice(last + 1)
      pending = tail.length === 0 ? [] : [tail]
      pendingLength = tail.length
      return complete
    },
    pendingLength: () => pendingLength,
    rest: () => {
      const rest = pending.join("")
      pending = []
      pendingLength = 0
      return rest
    },
    work: () => work
  }
}

const LF = 10
const CR = 13

/**
 * A stateful reader for one stream.
 *
 * - Comments (`: keep-alive`) and blank keep-alive lines produce nothing; events whose data is
 *   empty are skipped too, except an `error` event: it is an error whatever its data.
 * - Multi-line `data:` fields are joined with `\n`, as the SSE standard says (JSON allows the
 *   newline between tokens).
 * - Only unnamed (`message`) and `error` events are kept: named events are extensions of other
 *   protocols (`ping`), not part of an OpenAI stream.
 * - `retry:` fields are ignored: a chat completion is not resumable, so reconnecting would start
 *   a new generation.
 * - When the body ends, a last event not followed by a blank line is still dispatched (so a final
 *   `data: [DONE]` without its newline counts); a half-received event then fails to decode.
 * - An event or a line longer than `maxEventSize` characters, or bytes that are not UTF-8, yield
 *   `Invalid` (after the events completed before it in the same read, for an oversized event). A
 *   line without its end is refused as soon as it passes the limit: nothing past the limit and
 *   one read is kept.
 *
 * The parser is used directly rather than through `Sse.decode`: that channel fails the stream
 * with a `Retry` at the first `retry:` field, which a chat stream must ignore, and it would cost a
 * channel step per read where this reader is a plain function. It is handed complete lines only
 * (see `makeLineSplitter`), so it never holds a partial line between two reads: the work on a line
 * that arrives in many reads is this module's, counted and linear, and does not depend on how the
 * parser buffers (Effect 3's rescanned its buffer for every line).
 *
 * @internal
 */
export const makeFrameReader = (maxEventSize: number): FrameReader => {
  const decoder = new TextDecoder("utf-8", { fatal: true })
  const lines = makeLineSplitter()
  let events: Array<Sse.Event> = []
  // Effect 4's parser keeps a CRLF split across two feeds whole (a CR ending one feed, its LF
  // starting the next). It checks `maxEventSize` only against what is pending when a feed ends,
  // though: an event that starts and ends within one feed is dispatched whatever its size, so the
  // limit is enforced here as well, on every event dispatched.
  let oversized = false
  const parser = Sse.makeParser((event) => {
    if (event._tag !== "Event" || oversized) return
    if (event.data.length > maxEventSize) oversized = true
    else events.push(event)
  }, { maxEventSize, dispatchEmptyNamedEvents: true })

  const invalid = (detail: string): Frame => ({ _tag: "Invalid", detail })
  const tooLarge = () => invalid(`a server-sent event exceeds the limit of ${maxEventSize} characters`)

  /** The frames of complete lines. */
  const feedLines = (text: string): ReadonlyArray<Frame> => {
    if (text.length === 0) return []
    const error = parser.feed(text)
    const frames: Array<Frame> = []
    for (const event of events) {
      if (event.event === "error") {
        frames.push({ _tag: "Data", event: event.event, data: event.data })
        continue
      }
      if (event.event !== "message") continue
      const data = event.data.trim()
      if (data.length === 0) continue
      frames.push(data === "[DONE]" ? done : { _tag: "Data", event: event.event, data: event.data })
    }
    events = []
    if (oversized || error !== undefined) frames.push(tooLarge())
    return frames
  }

  return {
    feed: (bytes) => {
      let text: string
      try {
        text = decoder.decode(bytes, { stream: true })
      } catch {
        return [invalid("the event stream is not valid UTF-8")]
      }
      const frames = feedLines(lines.push(text))
      // a line without its end, past the limit: refused now, not when (if ever) it ends
      const refused = frames.length > 0 && frames[frames.length - 1]._tag === "Invalid"
      return lines.pendingLength() > maxEventSize && !refused ? [...frames, tooLarge()] : frames
    },
    end: () => {
      let text: string
      try {
        text = decoder.decode()
      } catch {
        return [invalid("the event stream ends inside a UTF-8 character")]
      }
      return [...feedLines(`${lines.push(text)}${lines.rest()}\n\n`), end]
    }
  }
}
