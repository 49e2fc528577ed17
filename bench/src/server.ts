/**
 * The benchmarks' HTTP server, run in a child process so that its CPU time is not counted against
 * the clients: a plain `node:http` server on 127.0.0.1 that answers `POST /v1/chat/completions`
 * with a fixed completion, or, when the request asks for `stream: true`, with a fixed event stream
 * of `BENCH_STREAM_CHUNKS` chunks and `[DONE]`. Both bodies are built once, at startup, so the
 * server does as little as a server can per request. It tells its parent its port over IPC and
 * exits when the parent disconnects.
 */
import { createServer } from "node:http"

const streamChunks = Number(process.env["BENCH_STREAM_CHUNKS"] ?? "1000")

const completion = Buffer.from(JSON.stringify({
  id: "chatcmpl-bench",
  object: "chat.completion",
  created: 1_700_000_000,
  model: "bench-model",
  choices: [{
    index: 0,
    message: { role: "assistant", content: "Hello! How can I help you today?", refusal: null },
    logprobs: null,
    finish_reason: "stop"
  }],
  usage: { prompt_tokens: 9, completion_tokens: 9, total_tokens: 18 }
}))

const chunk = (delta: Record<string, unknown>, finishReason: string | null): string =>
  `data: ${
    JSON.stringify({
      id: "chatcmpl-bench",
      object: "chat.completion.chunk",
      created: 1_700_000_000,
      model: "bench-model",
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }]
    })
  }\n\n`

const events: Array<string> = [chunk({ role: "assistant", content: "" }, null)]
for (let i = 1; i < streamChunks - 1; i++) events.push(chunk({ content: `word${i % 100} ` }, null))
events.push(chunk({}, "stop"))
events.push("data: [DONE]\n\n")
const eventStream = Buffer.from(events.join(""))

const server = createServer((request, response) => {
  const parts: Array<Buffer> = []
  request.on("data", (part: Buffer) => parts.push(part))
  request.on("end", () => {
    if (request.method !== "POST" || !request.url?.endsWith("/chat/completions")) {
      response.writeHead(404, { "content-type": "application/json" })
      response.end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }))
      return
    }
    let streaming = false
    try {
      const body: unknown = JSON.parse(Buffer.concat(parts).toString("utf8"))
      streaming = typeof body === "object" && body !== null && "stream" in body && body.stream === true
    } catch {
      response.writeHead(400, { "content-type": "application/json" })
      response.end(JSON.stringify({ error: { message: "invalid JSON", type: "invalid_request_error" } }))
      return
    }
    if (streaming) {
      response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
      response.end(eventStream)
    } else {
      response.writeHead(200, { "content-type": "application/json", "content-length": completion.byteLength })
      response.end(completion)
    }
  })
})

server.keepAliveTimeout = 60_000
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("the server has no TCP address")
  process.send?.({ port: address.port, streamChunks })
})

process.on("disconnect", () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
})
