/**
 * Benchmark 3: streaming. The loopback server answers `stream: true` with the same event stream
 * every time (realistic OpenAI chunks, one word each, then `[DONE]`), written at once so the
 * client is the bottleneck. Each client reads the whole stream and decodes every chunk: ours
 * (`ChatClient.stream` of `OpenAiCompatible`, on undici), the official `openai` SDK (`stream:
 * true`, `for await`), and as the floor `undici.request` with a hand-rolled line splitter and
 * `JSON.parse` per event. Reported: chunks per second and CPU time per chunk.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { ChatClient, ChatCompletion } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { Effect, Layer, ManagedRuntime, Redacted, Stream } from "effect"
import OpenAI from "openai"
import { Agent, request as undiciRequest } from "undici"
import { DiscardLogs } from "./contenders.js"
import { startLoopbackServer } from "./loopback.js"
import { type Contender, measureRounds, scaleStat, sink, timingOf } from "./measure.js"
import { perRound, roundRatios, type Row, type Section, statCell } from "./report.js"

export interface StreamingOptions {
  readonly chunksPerStream: number
  readonly rounds: number
  /** Chunks per round (whole streams: rounded up to a multiple of `chunksPerStream`). */
  readonly size: number
  readonly warmup: number
}

const apiKey = "sk-bench"
const model = "bench-model"
const messages = [{ role: "user" as const, content: "Tell me a long story" }]

type Key = "undici" | "openai" | "ours"

const labels: Record<Key, string> = {
  undici: "undici.request + line split + JSON.parse (floor)",
  openai: "openai SDK stream",
  ours: "resilient-llm ChatClient.stream (undici)"
}

/** Reads one event stream's data lines and parses each, as little as a client can do. */
const readEvents = async (body: AsyncIterable<Buffer>): Promise<number> => {
  const decoder = new TextDecoder()
  let pending = ""
  let chunks = 0
  let characters = 0
  for await (const bytes of body) {
    pending += decoder.decode(bytes, { stream: true })
    let end = pending.indexOf("\n\n")
    while (end !== -1) {
      const event = pending.slice(0, end)
      pending = pending.slice(end + 2)
      end = pending.indexOf("\n\n")
      if (!event.startsWith("data: ")) continue
      const data = event.slice(6)
      if (data === "[DONE]") continue
      const parsed: unknown = JSON.parse(data)
      chunks++
      if (typeof parsed === "object" && parsed !== null && "id" in parsed && typeof parsed.id === "string") {
        characters += parsed.id.length
      }
    }
  }
  sink(characters)
  return chunks
}

/** Runs benchmark 3. */
export const streaming = async (options: StreamingOptions): Promise<Section> => {
  const server = await startLoopbackServer({ streamChunks: options.chunksPerStream })
  // the server's stream has a role chunk, the words and a finish chunk, then [DONE]
  const chunksPerStream = server.streamChunks
  const url = `${server.baseUrl}/chat/completions`
  const agent = new Agent({ keepAliveTimeout: 60_000 })
  const openai = new OpenAI({ baseURL: server.baseUrl, apiKey })
  const runtime = ManagedRuntime.make(Layer.mergeAll(
    OpenAiCompatible.layer({ baseUrl: server.baseUrl, apiKey: Redacted.make(apiKey) }).pipe(
      Layer.provide(NodeHttpClient.layerUndici)
    ),
    DiscardLogs
  ))
  const body = JSON.stringify({ model, messages, stream: true })
  const request: ChatCompletion.ChatRequest = { model, messages }

  const streamsFor = (chunks: number) => Math.max(1, Math.ceil(chunks / chunksPerStream))

  const undiciOnce = async (): Promise<number> => {
    const response = await undiciRequest(url, {
      method: "POST",
      dispatcher: agent,
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body
    })
    return readEvents(response.body)
  }
  const openaiOnce = async (): Promise<number> => {
    const stream = await openai.chat.completions.create({ model, messages, stream: true })
    let chunks = 0
    let characters = 0
    for await (const chunk of stream) {
      chunks++
      characters += chunk.choices[0]?.delta?.content?.length ?? 0
    }
    sink(characters)
    return chunks
  }
  const oursOnce = Stream.runFold(
    ChatClient.stream(request),
    () => ({ chunks: 0, characters: 0 }),
    (acc, chunk) => ({ chunks: acc.chunks + 1, characters: acc.characters + ChatCompletion.chunkText(chunk).length })
  ).pipe(Effect.map(({ characters, chunks }) => {
    sink(characters)
    return chunks
  }))
  const oursStreams = Effect.fnUntraced(function*(streams: number) {
    let chunks = 0
    for (let i = 0; i < streams; i++) chunks += yield* oursOnce
    return chunks
  })

  const sequentially = async (streams: number, once: () => Promise<number>): Promise<number> => {
    let chunks = 0
    for (let i = 0; i < streams; i++) chunks += await once()
    return chunks
  }

  const contenders: ReadonlyArray<Contender<Key>> = [
    { key: "undici", run: (n) => sequentially(streamsFor(n), undiciOnce) },
    { key: "openai", run: (n) => sequentially(streamsFor(n), openaiOnce) },
    { key: "ours", run: (n) => runtime.runPromise(oursStreams(streamsFor(n))) }
  ]

  try {
    const timings = await measureRounds(contenders, options)
    const rows: Array<Row> = contenders.map(({ key }) => ({
      key,
      label: labels[key],
      cells: {
        rate: statCell(timingOf(timings, key).unitsPerSecond, "chunks/s"),
        cpu: statCell(scaleStat(timingOf(timings, key).cpuNsPerUnit, 1e-3), "µs")
      }
    }))
    const rate = (key: Key) => timingOf(timings, key).unitsPerSecond.median
    const cpu = (key: Key) => timingOf(timings, key).cpuNsPerUnit.median
    return {
      id: "streaming",
      title: `3. Streaming: parsing the same SSE stream (${chunksPerStream} chunks per stream, one stream at a time)`,
      columns: [{ key: "rate", header: "chunks/s" }, { key: "cpu", header: "CPU per chunk" }],
      rows,
      ratios: [
        perRound(
          "P3: resilient-llm / openai SDK, chunks per second",
          roundRatios(
            timingOf(timings, "ours").unitsPerSecond.rounds,
            timingOf(timings, "openai").unitsPerSecond.rounds
          ),
          { text: ">= 1 in every round", met: (all) => all.every((ratio) => ratio >= 1) }
        ),
        { name: "resilient-llm / openai SDK, CPU per chunk", value: cpu("ours") / cpu("openai") },
        { name: "resilient-llm / undici floor, chunks per second", value: rate("ours") / rate("undici") }
      ],
      notes: [
        "Each chunk is a real-sized OpenAI chunk (about 190 bytes); the server writes the whole stream at once.",
        "Ours decodes strict UTF-8, parses SSE with Effect's parser (effect/encoding/Sse), checks each event's size, " +
        "validates every chunk with the ChatCompletionChunk schema and stops at [DONE]; the SDK parses SSE and JSON " +
        "without validation."
      ]
    }
  } finally {
    await runtime.dispose()
    await agent.close()
    await server.close()
  }
}
