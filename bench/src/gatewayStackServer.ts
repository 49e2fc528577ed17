/**
 * The servers `gatewayStacks.ts` compares with the gateway, each a child process started as
 * `gatewayStackServer.ts <stack> <providerBaseUrl>`, each answering `POST /v1/chat/completions`
 * and printing `resilient-llm gateway on <url>` once it listens. From the lightest to the heaviest:
 *
 * - `node-echo`: `node:http`, the body parsed, a fixed completion sent back (no provider);
 * - `effect-echo`: the same on Effect's HTTP server (`NodeHttpServer`, an `HttpRouter` route);
 * - `node-proxy`: `node:http` and undici to the provider, JSON in and out;
 * - `effect-client`: Effect's HTTP server, the body decoded as a `ChatRequest`, the provider called
 *   through `@resilient-llm/openai`'s client (`Providers.clients`);
 * - `effect-fallback`: the same through `Fallback.chain` (30 s timeout) straight over that client;
 * - `effect-chain`: the chain over a `Deployments` router (its default breaker) over that client, as
 *   the gateway's benchmark configuration runs it.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as ChatClient from "@resilient-llm/core/ChatClient"
import * as ChatCompletion from "@resilient-llm/core/ChatCompletion"
import * as Deployments from "@resilient-llm/core/Deployments"
import * as Fallback from "@resilient-llm/core/Fallback"
import * as Providers from "@resilient-llm/openai/Providers"
import { Context, Effect, Layer, References, Schema } from "effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Http from "node:http"
import { Agent, request } from "undici"
import { stackNames } from "./gatewayProcess.js"

const stack = process.argv[2]
const providerUrl = process.argv[3] ?? ""

// exits normally, so `node --cpu-prof` writes its profile
process.on("SIGTERM", () => process.exit(0))

const canned = JSON.stringify({
  id: "chatcmpl-canned",
  object: "chat.completion",
  created: 1,
  model: "bench-model",
  choices: [{
    index: 0,
    message: { role: "assistant", content: "Hello! How can I help you today? ".repeat(6) },
    finish_reason: "stop"
  }],
  usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 }
})

const listening = (server: Http.Server) => {
  const address = server.address()
  const port = address !== null && typeof address === "object" ? address.port : 0
  process.stderr.write(`resilient-llm gateway on http://127.0.0.1:${port}\n`)
}

const readBody = (req: Http.IncomingMessage, done: (body: unknown) => void) => {
  const chunks: Array<Buffer> = []
  req.on("data", (chunk: Buffer) => chunks.push(chunk))
  req.on("end", () => done(JSON.parse(Buffer.concat(chunks).toString("utf8"))))
}

const nodeServer = (handle: (body: unknown, res: Http.ServerResponse) => void) => {
  const server = Http.createServer((req, res) => readBody(req, (body) => handle(body, res)))
  server.listen(0, "127.0.0.1", () => listening(server))
}

const decodeRequest = Schema.decodeUnknownEffect(ChatCompletion.ChatRequest)

const effectServer = (stack: "effect-echo" | "effect-client" | "effect-fallback" | "effect-chain") =>
  Effect.gen(function*() {
    const clients = yield* Layer.build(Providers.clients([{ name: "provider", baseUrl: providerUrl }]))
    const client = Context.get(clients, Deployments.ProviderClients).get("provider")
    if (client === undefined) return yield* Effect.die(new Error("no provider client"))
    const router = yield* Deployments.make({
      models: { "bench-model": { deployments: [{ provider: "provider", model: "bench-model" }] } }
    }).pipe(Effect.provide(Layer.merge(Layer.succeedContext(clients), Deployments.layerStoresMemory)))
    const chain = Fallback.chain(["bench-model"], { timeout: "30 seconds" })
    const handler = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const { model: _, ...prompt } = yield* decodeRequest(yield* request.json)
      if (stack === "effect-echo") return HttpServerResponse.text(canned, { contentType: "application/json" })
      const completion = stack === "effect-client"
        ? yield* client.create({ ...prompt, model: "bench-model" })
        : (yield* chain(prompt).pipe(
          Effect.provideService(ChatClient.ChatClient, stack === "effect-fallback" ? client : router)
        )).value
      return HttpServerResponse.text(JSON.stringify(completion), { contentType: "application/json" })
    }).pipe(Effect.orDie)
    const app = yield* HttpRouter.toHttpEffect(
      HttpRouter.addAll([HttpRouter.route("POST", "/v1/chat/completions", handler)])
    )
    const server = Http.createServer()
    yield* (yield* NodeHttpServer.make(() => server, { host: "127.0.0.1", port: 0 })).serve(app)
    listening(server)
    return yield* Effect.never
  }).pipe(
    Effect.scoped,
    Effect.provide(NodeHttpClient.layerUndici),
    // as the gateway of the benchmark runs: log lines below warn are not written
    Effect.provideService(References.MinimumLogLevel, "Warn")
  )

switch (stack) {
  case "node-echo":
    nodeServer((_body, res) => {
      res.writeHead(200, { "content-type": "application/json" })
      res.end(canned)
    })
    break
  case "node-proxy": {
    const agent = new Agent({ keepAliveTimeout: 60_000 })
    nodeServer((body, res) => {
      const prompt = typeof body === "object" && body !== null ? body : {}
      request(`${providerUrl}/chat/completions`, {
        method: "POST",
        dispatcher: agent,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...prompt, model: "bench-model" })
      }).then((upstream) => upstream.body.json()).then((completion) => {
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify(completion))
      }, (error: unknown) => {
        res.writeHead(502)
        res.end(String(error))
      })
    })
    break
  }
  case "effect-echo":
  case "effect-client":
  case "effect-fallback":
  case "effect-chain":
    Effect.runFork(effectServer(stack))
    break
  default:
    process.stderr.write(`unknown stack ${stack}; known: ${stackNames.join(", ")}\n`)
    process.exit(2)
}
