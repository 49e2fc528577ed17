/**
 * Server-sent events from raw bytes, as an OpenAI-compatible stream uses them: strict UTF-8 decoded
 * incrementally (a character split across network reads is kept whole), lines parsed by
 * `@effect/experimental`'s SSE parser, and each event reduced to a `Frame`.
 *
 * @internal
 */
import * as Sse from "@effect/experimental/Sse"

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
 * A stateful reader for one stream.
 *
 * - Comments (`: keep-alive`) and blank keep-alive lines produce nothing; events whose data is
 *   empty are skipped too.
 * - Multi-line `data:` fields are joined with `\n`, as the SSE standard says (JSON allows the
 *   newline between tokens).
 * - Only unnamed (`message`) and `error` events are kept: named events are extensions of other
 *   protocols (`ping`), not part of an OpenAI stream.
 * - `retry:` fields are ignored: a chat completion is not resumable, so reconnecting would start
 *   a new generation.
 * - When the body ends, a last event not followed by a blank line is still dispatched (so a final
 *   `data: [DONE]` without its newline counts); a half-received event then fails to decode.
 * - An event longer than `maxEventSize` characters, or bytes that are not UTF-8, yield `Invalid`
 *   (after the events completed before it in the same read, for an oversized event).
 *
 * @internal
 */
export const makeFrameReader = (maxEventSize: number): FrameReader => {
  const decoder = new TextDecoder("utf-8", { fatal: true })
  let events: Array<Sse.Event> = []
  const parser = Sse.makeParser((event) => {
    if (event._tag === "Event") events.push(event)
  }, { maxEventSize })
  // The parser forgets a trailing "\r" between two `feed` calls and would read a CRLF split across
  // reads as two line breaks (ending an event early); the "\n" of such a pair is dropped here.
  let pendingCarriageReturn = false

  const invalid = (detail: string): Frame => ({ _tag: "Invalid", detail })

  // The parser scans its whole pending buffer from the start for every line it reads, so a read
  // of many events (a 64 KiB network read holds hundreds) costs the square of its length. Fed one
  // line at a time, its buffer stays one line long. A piece ends just after its "\n", so a CRLF
  // is never split here, and the size limit is checked after every line rather than only at the
  // end of a read.
  const feedLines = (text: string): Sse.SseError | undefined => {
    let start = 0
    while (start < text.length) {
      const newline = text.indexOf("\n", start)
      const end = newline === -1 ? text.length : newline + 1
      const error = parser.feed(start === 0 && end === text.length ? text : text.slice(start, end))
      if (error !== undefined) return error
      start = end
    }
    return undefined
  }

  const feedText = (input: string): ReadonlyArray<Frame> => {
    let text = input
    if (text.length === 0) return []
    if (pendingCarriageReturn && text.startsWith("\n")) text = text.slice(1)
    pendingCarriageReturn = input.endsWith("\r")
    const error = feedLines(text)
    const frames: Array<Frame> = []
    for (const event of events) {
      if (event.event !== "message" && event.event !== "error") continue
      const data = event.data.trim()
      if (data.length === 0) continue
      frames.push(data === "[DONE]" ? done : { _tag: "Data", event: event.event, data: event.data })
    }
    events = []
    if (error !== undefined) frames.push(invalid(`a server-sent event exceeds the limit of ${maxEventSize} characters`))
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
      return feedText(text)
    },
    end: () => {
      let text: string
      try {
        text = decoder.decode()
      } catch {
        return [invalid("the event stream ends inside a UTF-8 character")]
      }
      return [...feedText(`${text}\n\n`), end]
    }
  }
}
