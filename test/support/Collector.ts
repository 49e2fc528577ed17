/**
 * A bare HTTP sink on 127.0.0.1 that answers 200 to everything and keeps what it was sent: an
 * OTLP collector or an alert webhook for the tests. It stops with its scope.
 */
import { Effect, type Scope } from "effect"
import * as Http from "node:http"
import { eventually } from "./Fake.js"

export interface Received {
  readonly method: string
  readonly path: string
  readonly body: string
}

export interface Collector {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly received: ReadonlyArray<Received>
  /** Waits (up to 5 s) until `n` requests have arrived. */
  readonly awaitRequests: (n: number) => Effect.Effect<ReadonlyArray<Received>>
}

export const make: Effect.Effect<Collector, never, Scope.Scope> = Effect.gen(function*() {
  const received: Array<Received> = []
  const server = Http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      received.push({ method: req.method ?? "", path: req.url ?? "", body: Buffer.concat(chunks).toString("utf8") })
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
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
  const awaitRequests = (n: number) => eventually(Effect.sync(() => [...received]), (all) => all.length >= n)
  return { url: `http://127.0.0.1:${port}`, received, awaitRequests }
})
