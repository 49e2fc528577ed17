/**
 * Benchmark 7: our stream parsing on what a hostile server sends: one line that never ends, read in
 * 16 KiB or 1 KiB pieces, refused at limits (`maxResponseBytes`) of 1, 2, 4 and 8 MiB; and streams
 * of small events whose lines end in LF, CRLF or CR alone. The body comes from memory, through an
 * `HttpClient` that answers with it piece by piece, so the figures are the client's own work:
 * `ChatClient.stream` of `OpenAiCompatible` (UTF-8, the line splitter, Effect's parser, the chunk
 * schema). Linear parsing costs the same per byte at every limit, and about the same per event
 * whatever the line ending. Reported: CPU time per byte of the refused line, and per event.
 */
import { ChatClient, type ChatCompletion } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { Effect, Exit, Layer, ManagedRuntime, Stream } from "effect"
import { HttpClient, HttpClientResponse } from "effect/http"
import { type Contender, measureRounds, scaleStat, sink, type Timing, timingOf } from "./measure.js"
import { type Ratio, type Row, type Section, statCell } from "./report.js"

export interface SseOptions {
  /** Limits of the long-line refusal, in MiB. */
  readonly limitsMiB: ReadonlyArray<number>
  /** Events per stream of the line-ending comparison. */
  readonly events: number
  readonly rounds: number
  readonly warmup: number
}

const encoder = new TextEncoder()
const MiB = 1024 * 1024
const request: ChatCompletion.ChatRequest = { model: "m", messages: [{ role: "user", content: "hi" }] }

/** A body of `first`, then pieces from `next` until it returns `undefined`. */
const body = (first: Uint8Array, next: () => Uint8Array | undefined): ReadableStream<Uint8Array> => {
  let started = false
  return new ReadableStream({
    pull(controller) {
      if (!started) {
        started = true
        controller.enqueue(first)
        return
      }
      const piece = next()
      if (piece === undefined) controller.close()
      else controller.enqueue(piece)
    }
  })
}

/** An `HttpClient` whose every response is the event stream `makeBody` gives. */
const answering = (makeBody: () => ReadableStream<Uint8Array>) =>
  HttpClient.make((req) =>
    Effect.sync(() =>
      HttpClientResponse.fromWeb(
        req,
        new Response(makeBody(), { status: 200, headers: { "content-type": "text/event-stream" } })
      )
    )
  )

const clientRuntime = (maxResponseBytes: number, makeBody: () => ReadableStream<Uint8Array>) =>
  ManagedRuntime.make(
    OpenAiCompatible.layer({ baseUrl: "http://bench.invalid/v1", maxResponseBytes }).pipe(
      Layer.provide(Layer.succeed(HttpClient.HttpClient, answering(makeBody)))
    )
  )

const eventStream = (ending: string, events: number): Uint8Array => {
  const event = `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"m",` +
    `"choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}${ending}${ending}`
  return encoder.encode(`${event.repeat(events)}data: [DONE]${ending}${ending}`)
}

/** Runs benchmark 6. */
export const sse = async (options: SseOptions): Promise<Section> => {
  const lineCases = [
    ...options.limitsMiB.map((mib) => ({ key: `line${mib}MiB.read16KiB`, limit: mib * MiB, read: 16 * 1024 })),
    ...[options.limitsMiB[0], options.limitsMiB[options.limitsMiB.length - 1]].map((mib) => ({
      key: `line${mib}MiB.read1KiB`,
      limit: mib * MiB,
      read: 1024
    }))
  ]
  const endings = [["lf", "\n"], ["crlf", "\r\n"], ["cr", "\r"]] as const

  // a unit is a byte of the refused line, or an event
  const lineRuntimes = lineCases.map(({ key, limit, read }) => {
    const piece = encoder.encode("x".repeat(read))
    let fed = 0
    const runtime = clientRuntime(limit, () => {
      fed = 0
      return body(encoder.encode("data: "), () => {
        fed += piece.length
        return fed > 4 * limit ? undefined : piece
      })
    })
    const once = Effect.gen(function*() {
      const exit = yield* Effect.exit(Stream.runDrain(ChatClient.stream(request)))
      if (Exit.isSuccess(exit)) return yield* Effect.die(new Error("the endless line was not refused"))
      sink(fed)
      return fed
    })
    return { key, runtime, once }
  })
  const eventRuntimes = endings.map(([key, ending]) => {
    const bytes = eventStream(ending, options.events)
    const runtime = clientRuntime(MiB, () => {
      let offset = 0
      return body(new Uint8Array(0), () => {
        if (offset >= bytes.length) return undefined
        const piece = bytes.subarray(offset, offset + 16 * 1024)
        offset += piece.length
        return piece
      })
    })
    const once = Stream.runCount(ChatClient.stream(request))
    return { key, runtime, once }
  })
  const contenders = (
    cases: ReadonlyArray<{
      readonly key: string
      readonly runtime: ManagedRuntime.ManagedRuntime<ChatClient.ChatClient, never>
      readonly once: Effect.Effect<number, unknown, ChatClient.ChatClient>
    }>
  ): ReadonlyArray<Contender> => cases.map(({ key, once, runtime }) => ({ key, run: () => runtime.runPromise(once) }))

  try {
    const lines = await measureRounds(contenders(lineRuntimes), {
      rounds: options.rounds,
      size: 1,
      warmup: options.warmup
    })
    const events = await measureRounds(contenders(eventRuntimes), {
      rounds: options.rounds,
      size: 1,
      warmup: options.warmup
    })
    return report(options, lineCases, endings.map(([key]) => key), lines, events)
  } finally {
    for (const { runtime } of [...lineRuntimes, ...eventRuntimes]) await runtime.dispose()
  }
}

const report = (
  options: SseOptions,
  lineCases: ReadonlyArray<{ readonly key: string; readonly limit: number; readonly read: number }>,
  endings: ReadonlyArray<string>,
  lines: ReadonlyMap<string, Timing>,
  events: ReadonlyMap<string, Timing>
): Section => {
  const rows: Array<Row> = [
    ...lineCases.map(({ key, limit, read }): Row => ({
      key,
      label: `one line refused at ${limit / MiB} MiB, ${read / 1024} KiB reads`,
      cells: { cpu: statCell(timingOf(lines, key).cpuNsPerUnit, "ns/byte") }
    })),
    ...endings.map((key): Row => ({
      key: `events.${key}`,
      label: `${options.events.toLocaleString("en-US")} events, ${key.toUpperCase()} line endings, 16 KiB reads`,
      cells: {
        rate: statCell(timingOf(events, key).unitsPerSecond, "events/s"),
        cpu: statCell(scaleStat(timingOf(events, key).cpuNsPerUnit, 1e-3), "µs/event")
      }
    }))
  ]
  const perByte = (key: string) => timingOf(lines, key).cpuNsPerUnit.median
  const smallest = options.limitsMiB[0]
  const largest = options.limitsMiB[options.limitsMiB.length - 1]
  const growth = (readKiB: number): Ratio => {
    const value = perByte(`line${largest}MiB.read${readKiB}KiB`) / perByte(`line${smallest}MiB.read${readKiB}KiB`)
    return {
      name: `CPU per byte, refusing at ${largest} MiB / at ${smallest} MiB, ${readKiB} KiB reads (linear: about 1)`,
      value,
      target: "<= 2",
      met: value <= 2
    }
  }
  const crOverLf = timingOf(events, "cr").cpuNsPerUnit.median / timingOf(events, "lf").cpuNsPerUnit.median
  const ratios: Array<Ratio> = [
    growth(16),
    growth(1),
    {
      name: "CPU per event, CR-only / LF line endings (linear: about 1)",
      value: crOverLf,
      target: "<= 2",
      met: crOverLf <= 2
    }
  ]
  return {
    id: "sse",
    title: "7. The SSE reader on hostile input: one endless line, and CR-only line endings",
    columns: [{ key: "rate", header: "events/s" }, { key: "cpu", header: "CPU" }],
    rows,
    ratios,
    notes: [
      "The body comes from memory in 16 KiB (or 1 KiB) pieces, without a socket: the figures are the client's work.",
      "Smaller reads cost more per byte (each read is a pull of the body stream); what linear means is that the " +
      "cost per byte does not grow with the line.",
      "Issue 14 measured 0.16 / 0.6 / 2.3 / 10.5 s of CPU to refuse one line at 1 / 2 / 4 / 8 MiB (quadratic), " +
      "and CR-only streams 200 times slower than LF."
    ]
  }
}
