/**
 * Server-sent events from raw bytes, as an OpenAI-compatible stream uses them: strict UTF-8 decoded
 * incrementally (a character split across network reads is kept whole), lines parsed by Effect's
 * SSE parser (`effect/encoding/Sse`), and each event reduced to a `Frame`.
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
 * The parser is used directly rather than through `Sse.decode`: that channel fails the stream
 * with a `Retry` at the first `retry:` field, which a chat stream must ignore, and it would cost a
 * channel step per read where this reader is a plain function.
 *
 * @internal
 */
export const makeFrameReader = (maxEventSize: number): FrameReader => {
  const decoder = new TextDecoder("utf-8", { fatal: true })
  let events: Array<Sse.Event> = []
  // Effect 4's parser keeps a CRLF split across two reads whole and scans each read once, so
  // neither needs the workarounds the Effect 3 parser did (see EventStream.test.ts). It checks
  // `maxEventSize` only against what is still pending when a read ends, though: an event that
  // starts and ends within one read is dispatched whatever its size, so the limit is enforced
  // here as well, on every event dispatched.
  let oversized = false
  const parser = Sse.makeParser((event) => {
    if (event._tag !== "Event" || oversized) return
    if (event.data.length > maxEventSize) oversized = true
    else events.push(event)
  }, { maxEventSize })

  const invalid = (detail: string): Frame => ({ _tag: "Invalid", detail })
  const tooLarge = () => invalid(`a server-sent event exceeds the limit of ${maxEventSize} characters`)

  const feedText = (text: string): ReadonlyArray<Frame> => {
    if (text.length === 0) return []
    const error = parser.feed(text)
    const frames: Array<Frame> = []
    for (const event of events) {
      if (event.event !== "message" && event.event !== "error") continue
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
