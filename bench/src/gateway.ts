/**
 * Benchmark 6: what the gateway adds to a request. The same chat request goes to the same loopback
 * provider (`server.ts`, a child process) directly, and through the gateway (`pnpm gateway`, a
 * second child process, with one virtual model whose fallback chain calls that provider's model, a
 * logical model with one deployment behind its breaker, with a 30 s timeout), at concurrency 1 and 64, from an undici client in this
 * process. Each round sends `size` requests each way, the two taking turns; a round's figure is
 * the p50 latency through the gateway minus the p50 latency direct. The target (issue 19): under
 * 0.3 ms at p50. A third way, through a bare `node:http` and undici proxy (the `node-proxy` server
 * of `gatewayStackServer.ts`: parse, forward, answer, nothing else), says what one more loopback
 * hop through any Node.js server costs on this machine at that moment: the floor under the target. Published figures for the same measure: Bifrost 0.44 ms, Portkey 2.37 ms,
 * LiteLLM 4.34 ms (each on its own hardware and load).
 */
import { fileURLToPath } from "node:url"
import { Agent, request } from "undici"
import { childExecArgv, compiled, gatewayBin } from "./build.js"
import { gatewayKey, packageDir, type Running, startServer } from "./gatewayProcess.js"
import { startLoopbackServer } from "./loopback.js"
import { quantile, sink, type Stat, stat } from "./measure.js"
import { perRound, type Ratio, type Row, type Section, statCell, textCell } from "./report.js"

export interface GatewayOptions {
  readonly concurrency: ReadonlyArray<number>
  readonly rounds: number
  /** Requests per round, each way. */
  readonly size: number
  readonly warmup: number
}

/** The target of issue 19, in milliseconds of p50 latency added. */
export const targetMs = 0.3

const published = "published p50 overhead: Bifrost 0.44 ms, Portkey 2.37 ms, LiteLLM 4.34 ms"

/** Starts `pnpm gateway` in a child process on a free port, in front of `providerUrl`. */
const startGateway = (providerUrl: string): Promise<Running> =>
  startServer({
    name: "the gateway",
    module: gatewayBin,
    args: (config) => ["--config", config],
    providerUrl,
    cwd: packageDir,
    execArgv: childExecArgv
  })

/** Starts the bare proxy of `gatewayStackServer.ts` in a child process, in front of `providerUrl`. */
const startBareProxy = (providerUrl: string): Promise<Running> =>
  startServer({
    name: "the bare proxy",
    module: fileURLToPath(new URL("./gatewayStackServer.ts", import.meta.url)),
    args: () => ["node-proxy", providerUrl],
    providerUrl,
    cwd: packageDir,
    execArgv: childExecArgv
  })

/** Sends `total` requests from `concurrency` loops and returns each one's latency in ms. */
const latencies = async (total: number, concurrency: number, once: () => Promise<number>): Promise<Array<number>> => {
  const measured: Array<number> = []
  let started = 0
  const worker = async () => {
    while (started < total) {
      started++
      const start = process.hrtime.bigint()
      sink(await once())
      measured.push(Number(process.hrtime.bigint() - start) / 1e6)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker))
  return measured
}

/** Runs benchmark 6. */
export const gateway = async (options: GatewayOptions): Promise<Section> => {
  const provider = await startLoopbackServer({ streamChunks: 10 })
  const running = await startGateway(provider.baseUrl)
  const proxy = await startBareProxy(provider.baseUrl)
  const agent = new Agent({ keepAliveTimeout: 60_000, connections: 256 })
  const post = (url: string, body: string, key: string) => async (): Promise<number> => {
    const response = await request(url, {
      method: "POST",
      dispatcher: agent,
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body
    })
    const json: unknown = await response.body.json()
    if (response.statusCode !== 200 || typeof json !== "object" || json === null) {
      throw new Error(`status ${response.statusCode}: ${JSON.stringify(json)}`)
    }
    return "choices" in json && Array.isArray(json.choices) ? json.choices.length : 0
  }
  const messages = [{ role: "user", content: "Say hello" }]
  const direct = post(
    `${provider.baseUrl}/chat/completions`,
    JSON.stringify({ model: "bench-model", messages }),
    "sk-bench"
  )
  const viaGateway = post(
    `${running.url}/v1/chat/completions`,
    JSON.stringify({ model: "bench", messages }),
    gatewayKey
  )
  const viaProxy = post(
    `${proxy.url}/v1/chat/completions`,
    JSON.stringify({ model: "bench-model", messages }),
    "sk-bench"
  )
  const sides = { direct, gateway: viaGateway, proxy: viaProxy }

  try {
    const rows: Array<Row> = []
    const ratios: Array<Ratio> = []
    const notes: Array<string> = []
    for (const concurrency of options.concurrency) {
      for (const once of Object.values(sides)) await latencies(options.warmup, concurrency, once)
      const p50 = { direct: [] as Array<number>, gateway: [] as Array<number>, proxy: [] as Array<number> }
      const p99 = { direct: [] as Array<number>, gateway: [] as Array<number>, proxy: [] as Array<number> }
      for (let round = 0; round < options.rounds; round++) {
        // take turns, the other way round every other round
        const order = round % 2 === 0
          ? (["direct", "gateway", "proxy"] as const)
          : (["proxy", "gateway", "direct"] as const)
        for (const side of order) {
          const measured = await latencies(options.size, concurrency, sides[side])
          p50[side].push(quantile(measured, 0.5))
          p99[side].push(quantile(measured, 0.99))
        }
      }
      const added: Stat = stat(p50.gateway.map((g, i) => g - p50.direct[i]))
      const addedP99: Stat = stat(p99.gateway.map((g, i) => g - p99.direct[i]))
      const proxyAdded: Stat = stat(p50.proxy.map((p, i) => p - p50.direct[i]))
      const addedRatios = added.rounds.map((ms) => ms / targetMs)
      rows.push(
        {
          key: `direct.c${concurrency}`,
          label: `c=${concurrency} direct to the provider`,
          cells: { p50: statCell(stat(p50.direct), "ms"), p99: statCell(stat(p99.direct), "ms") }
        },
        {
          key: `gateway.c${concurrency}`,
          label: `c=${concurrency} through the gateway`,
          cells: { p50: statCell(stat(p50.gateway), "ms"), p99: statCell(stat(p99.gateway), "ms") }
        },
        {
          key: `added.c${concurrency}`,
          label: `c=${concurrency} added by the gateway`,
          cells: {
            p50: textCell(`${added.median.toFixed(3)} ms (rounds ${added.min.toFixed(3)} to ${added.max.toFixed(3)})`),
            p99: textCell(`${addedP99.median.toFixed(3)} ms`)
          }
        },
        {
          key: `proxy.c${concurrency}`,
          label: `c=${concurrency} through a bare node:http + undici proxy`,
          cells: { p50: statCell(stat(p50.proxy), "ms"), p99: statCell(stat(p99.proxy), "ms") }
        },
        {
          key: `proxyAdded.c${concurrency}`,
          label: `c=${concurrency} added by the bare proxy`,
          cells: {
            p50: textCell(
              `${proxyAdded.median.toFixed(3)} ms (rounds ${proxyAdded.min.toFixed(3)} to ${proxyAdded.max.toFixed(3)})`
            ),
            p99: textCell("")
          }
        }
      )
      ratios.push(
        {
          name: `c=${concurrency}: p50 added by the gateway / ${targetMs} ms target (median round)`,
          value: added.median / targetMs,
          target: "< 1",
          met: added.median < targetMs
        },
        perRound(
          `c=${concurrency}: p50 added by a bare node:http + undici proxy / ${targetMs} ms target (median round)`,
          proxyAdded.rounds.map((ms) => ms / targetMs)
        )
      )
      notes.push(
        `c=${concurrency}: per-round ratios to the ${targetMs} ms target: ${
          addedRatios.map((r) => r.toFixed(2)).join(", ")
        } (${addedRatios.filter((r) => r < 1).length} of ${addedRatios.length} rounds under it)`
      )
    }
    return {
      id: "gateway",
      title: "6. What the gateway adds per request (loopback; provider and gateway in child processes)",
      columns: [
        { key: "p50", header: "p50 latency" },
        { key: "p99", header: "p99 latency" }
      ],
      rows,
      ratios,
      notes: [
        ...notes,
        `Target (issue 19): under ${targetMs} ms added at p50; ${published}.`,
        "Provider: plain node:http in a child process, a fixed 300-byte completion. Gateway: its command " +
        `(${compiled ? "the build, dist/bin.js" : "the TypeScript source through tsx"}) in another child process, ` +
        "its log level at warn, one virtual model: a fallback " +
        "chain with a 30 s timeout of the provider's model, a logical model with one deployment (the default " +
        "breaker) on the library's Deployments router, through Providers.clients on undici. " +
        "Client: undici with keep-alive in this process. All of them share this machine's cores.",
        "Bare proxy: node:http reading the body and parsing it as JSON, undici posting it to the provider and " +
        "the answer's JSON written back; no key, no schema, no timeout, no breaker, no metrics. What it adds is " +
        "the cost of the hop itself on this machine, which any gateway in Node.js pays before doing anything.",
        "Through the gateway a request also pays a second loopback HTTP exchange (client to gateway), its key's " +
        "SHA-256, the body's JSON parsing and schema check, the chain (span, metrics, timeout), the router (span, " +
        "metrics, limiter, breaker), and the completion's schema decoding and JSON encoding. " +
        "`pnpm --filter @resilient-llm/bench gateway:stacks` splits the gateway's CPU time by layer."
      ]
    }
  } finally {
    await agent.close()
    await running.close()
    await proxy.close()
    await provider.close()
  }
}
