/**
 * Benchmark 2: HTTP client throughput. Every client posts the same chat request to the same
 * loopback server (a child process, `server.ts`) at concurrency 1, 16 and 64: `undici.request`
 * with `JSON.parse` as the floor, the official `openai` SDK, and our `OpenAiCompatible` client on
 * `@effect/platform-node`'s undici client (the one the README recommends) and on `fetch` (the
 * transport the SDK uses), plus ours behind the whole `Fallback.chain` stack. Effect's own
 * `HttpClient` on the same undici layer, posting and parsing the JSON with nothing else, is the
 * floor of any client built on it, ours included. Reported: requests per second (wall) and CPU
 * time per request of this process, which runs only the clients.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { ChatClient, ChatCompletion, CircuitBreaker, Fallback } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import OpenAI from "openai"
import { Agent, request as undiciRequest } from "undici"
import { attemptTimeoutMs, breakerOptions, DiscardLogs, retries } from "./contenders.js"
import { startLoopbackServer } from "./loopback.js"
import { type Contender, effectWorkers, measureRounds, promiseWorkers, scaleStat, timingOf } from "./measure.js"
import { perRound, type Ratio, roundRatios, type Row, type Section, statCell } from "./report.js"

export interface ThroughputOptions {
  readonly concurrency: ReadonlyArray<number>
  readonly rounds: number
  /** Requests per round. */
  readonly size: number
  readonly warmup: number
}

const apiKey = "sk-bench"
const model = "bench-model"
const messages = [{ role: "user" as const, content: "Say hello" }]

type Key = "undici" | "effectHttp" | "openai" | "oursUndici" | "oursFetch" | "oursChain"

const labels: Record<Key, string> = {
  undici: "undici.request + JSON.parse (floor)",
  effectHttp: "effect/http HttpClient alone (undici), JSON",
  openai: "openai SDK (fetch)",
  oursUndici: "resilient-llm OpenAiCompatible (undici)",
  oursFetch: "resilient-llm OpenAiCompatible (fetch)",
  oursChain: "  + Fallback.chain(timeout, retry, breaker)"
}

const clientRuntime = (baseUrl: string, http: Layer.Layer<HttpClient.HttpClient>) =>
  ManagedRuntime.make(Layer.mergeAll(
    OpenAiCompatible.layer({ baseUrl, apiKey: Redacted.make(apiKey) }).pipe(Layer.provideMerge(http)),
    CircuitBreaker.layer(breakerOptions),
    DiscardLogs
  ))

/** Runs benchmark 2. */
export const throughput = async (options: ThroughputOptions): Promise<Section> => {
  const server = await startLoopbackServer({ streamChunks: 10 })
  const url = `${server.baseUrl}/chat/completions`
  const agent = new Agent({ keepAliveTimeout: 60_000 })
  const openai = new OpenAI({ baseURL: server.baseUrl, apiKey })
  const undiciRuntime = clientRuntime(server.baseUrl, NodeHttpClient.layerUndici)
  const fetchRuntime = clientRuntime(server.baseUrl, FetchHttpClient.layer)
  const body = JSON.stringify({ model, messages })
  const request: ChatCompletion.ChatRequest = { model, messages }

  const rawOnce = async (): Promise<number> => {
    const response = await undiciRequest(url, {
      method: "POST",
      dispatcher: agent,
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body
    })
    const json: unknown = await response.body.json()
    if (response.statusCode !== 200 || typeof json !== "object" || json === null) throw new Error("bad response")
    return "choices" in json && Array.isArray(json.choices) ? json.choices.length : 0
  }
  const openaiOnce = async (): Promise<number> =>
    (await openai.chat.completions.create({ model, messages })).choices.length
  const oursOnce = Effect.map(ChatClient.create(request), (completion) => completion.choices.length)
  // Effect's client as ours drives it (a scope per request, no span without a tracer), and no more:
  // no schema, no watchdog, no size limit, no error mapping.
  const effectHttp = await undiciRuntime.runPromise(Effect.map(HttpClient.HttpClient, HttpClient.withScope))
  const effectHttpRequest = HttpClientRequest.post(url).pipe(
    HttpClientRequest.bearerToken(apiKey),
    HttpClientRequest.bodyText(body, "application/json")
  )
  const effectHttpOnce = effectHttp.execute(effectHttpRequest).pipe(
    Effect.flatMap((response) => response.json),
    Effect.scoped,
    Effect.map((json) => typeof json === "object" && json !== null && "choices" in json ? 1 : 0),
    Effect.provideService(HttpClient.TracerDisabledWhen, () => true)
  )
  const breaker = await undiciRuntime.runPromise(CircuitBreaker.CircuitBreaker)
  // built once, as an application would: the chain and its breaker, then one effect run per request
  const complete = Fallback.chain([model], { timeout: attemptTimeoutMs, retry: { retries }, breaker })
  const chainOnce = Effect.map(complete(ChatCompletion.prompt("Say hello")), (served) => served.value.choices.length)

  const contendersAt = (concurrency: number): ReadonlyArray<Contender<Key>> => [
    { key: "undici", run: (n) => promiseWorkers(n, concurrency, rawOnce) },
    { key: "effectHttp", run: (n) => undiciRuntime.runPromise(effectWorkers(n, concurrency, effectHttpOnce)) },
    { key: "openai", run: (n) => promiseWorkers(n, concurrency, openaiOnce) },
    { key: "oursUndici", run: (n) => undiciRuntime.runPromise(effectWorkers(n, concurrency, oursOnce)) },
    { key: "oursFetch", run: (n) => fetchRuntime.runPromise(effectWorkers(n, concurrency, oursOnce)) },
    { key: "oursChain", run: (n) => undiciRuntime.runPromise(effectWorkers(n, concurrency, chainOnce)) }
  ]

  try {
    const rows: Array<Row> = []
    const ratios: Array<Ratio> = []
    for (const concurrency of options.concurrency) {
      const contenders = contendersAt(concurrency)
      const timings = await measureRounds(contenders, options)
      for (const { key } of contenders) {
        const timing = timingOf(timings, key)
        rows.push({
          key: `${key}.c${concurrency}`,
          label: `c=${concurrency} ${labels[key]}`,
          cells: {
            rps: statCell(timing.unitsPerSecond, "req/s"),
            cpu: statCell(scaleStat(timing.cpuNsPerUnit, 1e-3), "µs")
          }
        })
      }
      const rps = (key: Key) => timingOf(timings, key).unitsPerSecond.median
      const cpu = (key: Key) => timingOf(timings, key).cpuNsPerUnit.median
      const rounds = (key: Key, figure: "unitsPerSecond" | "cpuNsPerUnit") => timingOf(timings, key)[figure].rounds
      ratios.push(
        perRound(
          `P2: c=${concurrency}: resilient-llm (undici) / undici.request + JSON.parse, client CPU per request`,
          roundRatios(rounds("oursUndici", "cpuNsPerUnit"), rounds("undici", "cpuNsPerUnit")),
          { text: "<= 1.3 (median)", met: (_, median) => median <= 1.3 }
        ),
        perRound(
          `P2: c=${concurrency}: resilient-llm (undici) / openai SDK, requests per second`,
          roundRatios(rounds("oursUndici", "unitsPerSecond"), rounds("openai", "unitsPerSecond")),
          { text: ">= 1 in every round", met: (all) => all.every((ratio) => ratio >= 1) }
        ),
        perRound(
          `c=${concurrency}: effect/http HttpClient alone (undici) / undici.request + JSON.parse, client CPU per request`,
          roundRatios(rounds("effectHttp", "cpuNsPerUnit"), rounds("undici", "cpuNsPerUnit"))
        ),
        perRound(
          `c=${concurrency}: resilient-llm (undici) / effect/http HttpClient alone (undici), client CPU per request`,
          roundRatios(rounds("oursUndici", "cpuNsPerUnit"), rounds("effectHttp", "cpuNsPerUnit"))
        ),
        {
          name: `c=${concurrency}: resilient-llm (fetch) / openai SDK, requests per second`,
          value: rps("oursFetch") / rps("openai")
        },
        {
          name: `c=${concurrency}: resilient-llm (undici) / openai SDK, CPU per request`,
          value: cpu("oursUndici") / cpu("openai")
        }
      )
    }
    return {
      id: "throughput",
      title: "2. HTTP client throughput over loopback (server in a child process)",
      columns: [
        { key: "rps", header: "requests/s" },
        { key: "cpu", header: "client CPU per request" }
      ],
      rows,
      ratios,
      notes: [
        "Server: plain node:http in a child process, fixed 300-byte completion, keep-alive; its CPU is not counted. " +
        "It shares this machine's cores with the client, so requests/s is bounded by both.",
        "Every client keeps connections alive and parses the JSON. Ours also validates the body with the " +
        "ChatCompletion schema, maps errors, bounds the call with its timeout watchdog and checks the body size; " +
        "with no tracer installed (as here) it opens no http.client span. The SDK retries (twice by default) only " +
        "on failure, as ours does only in the chain row.",
        "undici floor: one Agent, no schema, no span. effect/http HttpClient alone: the same undici layer ours " +
        "uses, a scope per request (aborted when it closes, as ours is), no span, the body parsed as JSON; no " +
        "schema, timeout, size limit or error mapping."
      ]
    }
  } finally {
    await undiciRuntime.dispose()
    await fetchRuntime.dispose()
    await agent.close()
    await server.close()
  }
}
