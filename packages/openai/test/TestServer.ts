/**
 * A bare `node:http` server on 127.0.0.1 with an ephemeral port, closed with its scope, that
 * records every request and counts open connections. Tests script the raw response (status,
 * headers, body written in whatever pieces they choose) so the client sees real HTTP.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import { EventEmitter } from "node:events"
import * as Http from "node:http"

export interface RecordedRequest {
  readonly method: string
  readonly url: string
  readonly headers: Http.IncomingHttpHeaders
  readonly body: string
  readonly json: unknown
}

export type Handler = (request: RecordedRequest, response: Http.ServerResponse) => void | Promise<void>

export interface TestServer {
  /** `http://127.0.0.1:<port>/v1` */
  readonly baseUrl: string
  readonly port: number
  readonly requests: ReadonlyArray<RecordedRequest>
  readonly openConnections: () => number
  /** Connections accepted since the server started. */
  readonly totalConnections: () => number
  /** Resolves once the number of open connections satisfies `predicate`. */
  readonly awaitConnections: (predicate: (open: number) => boolean) => Effect.Effect<void>
  /** Resolves once `n` requests have arrived (their bodies read). */
  readonly awaitRequests: (n: number) => Effect.Effect<void>
}

const parse = (body: string): unknown => {
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

export const make = (handler: Handler): Effect.Effect<TestServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const requests: Array<RecordedRequest> = []
    const events = new EventEmitter()
    let open = 0
    let total = 0
    const server = Http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8")
        const recorded: RecordedRequest = {
          method: req.method ?? "",
          url: req.url ?? "",
          headers: req.headers,
          body,
          json: parse(body)
        }
        requests.push(recorded)
        events.emit("change")
        void Promise.resolve(handler(recorded, res)).catch(() => res.destroy())
      })
    })
    server.on("connection", (socket) => {
      open++
      total++
      events.emit("change")
      socket.on("close", () => {
        open--
        events.emit("change")
      })
    })
    const port = yield* Effect.acquireRelease(
      Effect.callback<number>((resume) => {
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      }),
      () =>
        Effect.callback<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const awaitCondition = (condition: () => boolean) =>
      Effect.callback<void>((resume) => {
        if (condition()) return resume(Effect.void)
        const check = () => {
          if (condition()) {
            events.off("change", check)
            resume(Effect.void)
          }
        }
        events.on("change", check)
        return Effect.sync(() => events.off("change", check))
      })
    return {
      baseUrl: `http://127.0.0.1:${port}/v1`,
      port,
      requests,
      openConnections: () => open,
      totalConnections: () => total,
      awaitConnections: (predicate) => awaitCondition(() => predicate(open)),
      awaitRequests: (n) => awaitCondition(() => requests.length >= n)
    }
  })

/** Responds with a JSON body. */
export const json = (
  response: Http.ServerResponse,
  status: number,
  body: unknown,
  headers: Http.OutgoingHttpHeaders = {}
): void => {
  const text = typeof body === "string" ? body : JSON.stringify(body)
  response.writeHead(status, { "content-type": "application/json", ...headers })
  response.end(text)
}

/** Writes `pieces` one after another, each in its own write, flushed before the next. */
export const writeSlowly = async (response: Http.ServerResponse, pieces: ReadonlyArray<string | Uint8Array>) => {
  for (const piece of pieces) {
    if (response.destroyed) return
    await new Promise<void>((resolve) => response.write(piece, () => resolve()))
    // give the socket a turn, so each piece leaves in its own TCP segment
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}

/** Starts an event stream response. */
export const startEvents = (response: Http.ServerResponse, headers: Http.OutgoingHttpHeaders = {}): void => {
  response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...headers })
  response.flushHeaders()
}

/** A completion body as OpenAI sends it. */
export const completion = (model: string, content: string | null, extra: Record<string, unknown> = {}) => ({
  id: "chatcmpl-test",
  object: "chat.completion",
  created: 1_741_570_283,
  model,
  choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  ...extra
})

/** A streamed chunk as OpenAI sends it. */
export const chunk = (model: string, content: string, finishReason: string | null = null) => ({
  id: "chatcmpl-test",
  object: "chat.completion.chunk",
  created: 1_741_570_283,
  model,
  choices: [{ index: 0, delta: { content }, finish_reason: finishReason }]
})

/** `data: <json>\n\n` */
export const event = (data: unknown): string => `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`
