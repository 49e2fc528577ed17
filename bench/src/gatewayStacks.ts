/**
 * `pnpm --filter @resilient-llm/bench gateway:stacks`: where the gateway's time goes. The loopback
 * provider of benchmark 6, `pnpm gateway` with that benchmark's configuration, and the lighter
 * servers of `gatewayStackServer.ts` (from a bare `node:http` echo to Effect's HTTP server with the
 * library's client and chain) all run at once, each in its own child process; every round sends
 * `--requests` chat requests at `--concurrency` to each in turn, and reads each process's CPU time
 * from /proc (user and system). CPU time per request, unlike latency, hardly moves with other jobs
 * on the machine, and the rounds interleave the stacks so that load falls on all of them alike.
 *
 * `--baseline <dir>` also runs the gateway of another checkout of the repository (its dependencies
 * installed, or linked to these), as `gateway-baseline`: before and after a change, side by side.
 *
 * `--cpu-prof <dir>` runs the gateway (or the server `--profile` names) under `node --cpu-prof` (its
 * profile is written there when it stops) and prints the functions with the most self time, idle,
 * garbage collection and `writev` (time blocked in the socket write, not CPU) left out.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { Agent, request } from "undici"
import { childExecArgv, gatewayBin } from "./build.js"
import { gatewayKey, packageDir, type Running, stackNames, startServer } from "./gatewayProcess.js"
import { startLoopbackServer } from "./loopback.js"
import { quantile } from "./measure.js"

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "5000" },
    concurrency: { type: "string", default: "1" },
    warmup: { type: "string", default: "2000" },
    rounds: { type: "string", default: "5" },
    only: { type: "string" },
    "cpu-prof": { type: "string" },
    profile: { type: "string", default: "gateway" },
    baseline: { type: "string" },
    top: { type: "string", default: "30" }
  }
})

const stackServer = fileURLToPath(new URL("./gatewayStackServer.ts", import.meta.url))
const ticksPerSecond = 100

/** A process's CPU time so far, in milliseconds. */
const cpuOf = (pid: number): { readonly user: number; readonly system: number } => {
  // utime and stime: the 12th and 13th fields after the command's closing parenthesis
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
  return { user: (Number(fields[11]) * 1000) / ticksPerSecond, system: (Number(fields[12]) * 1000) / ticksPerSecond }
}

interface Stack extends Running {
  readonly name: string
}

/** Starts a server (a stack of `gatewayStackServer.ts`, or a gateway) in a child process. */
const start = async (name: string, providerUrl: string, profileDir: string | undefined): Promise<Stack> => {
  const isGateway = name.startsWith("gateway")
  const baseline = name === "gateway-baseline" ? values.baseline : undefined
  const bin = baseline === undefined ? gatewayBin : join(baseline, "packages/gateway/src/bin.ts")
  const running = await startServer({
    name,
    module: isGateway ? bin : stackServer,
    args: (config) => isGateway ? ["--config", config] : [name, providerUrl],
    providerUrl,
    cwd: baseline === undefined ? packageDir : join(baseline, "bench"),
    execArgv: [
      ...childExecArgv,
      ...(name === values.profile && profileDir !== undefined ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [])
    ]
  })
  return { name, ...running }
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}

/** The functions with the most self time in a `.cpuprofile`, as `share  function  file:line`. */
const topSelf = (path: string, top: number): string => {
  const profile: { readonly nodes: ReadonlyArray<ProfileNode>; readonly samples: ReadonlyArray<number> } = JSON
    .parse(readFileSync(path, "utf8"))
  const byId = new Map(profile.nodes.map((node) => [node.id, node.callFrame]))
  const left = new Set(["(idle)", "(program)", "(garbage collector)", "writev"])
  const self = new Map<string, number>()
  let total = 0
  for (const id of profile.samples) {
    const frame = byId.get(id)
    if (frame === undefined || left.has(frame.functionName)) continue
    total++
    const file = frame.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*\/packages\//, "")
    const key = `${frame.functionName || "(anonymous)"}  ${file}:${frame.lineNumber + 1}`
    self.set(key, (self.get(key) ?? 0) + 1)
  }
  return [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([key, n]) =>
    `${((n / total) * 100).toFixed(1).padStart(5)}%  ${key}`
  ).join("\n")
}

const names = [
  ...(values.only === undefined ? [...stackNames, "gateway"] : values.only.split(",").map((s) => s.trim())),
  ...(values.baseline === undefined ? [] : ["gateway-baseline"])
]
const concurrency = Number(values.concurrency)
const requests = Number(values.requests)
const profileDir = values["cpu-prof"]
const provider = await startLoopbackServer({ streamChunks: 10 })
const running: Array<Stack> = []
const agent = new Agent({ keepAliveTimeout: 60_000, connections: 256 })

const send = async (server: Stack, total: number) => {
  const isGateway = server.name.startsWith("gateway")
  const body = JSON.stringify({
    model: isGateway ? "bench" : "bench-model",
    messages: [{ role: "user", content: "Hi" }]
  })
  let started = 0
  const worker = async () => {
    while (started < total) {
      started++
      const response = await request(`${server.url}/v1/chat/completions`, {
        method: "POST",
        dispatcher: agent,
        headers: { "content-type": "application/json", authorization: `Bearer ${gatewayKey}` },
        body
      })
      await response.body.text()
      if (response.statusCode !== 200) throw new Error(`${server.name}: status ${response.statusCode}`)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

try {
  for (const name of names) running.push(await start(name, provider.baseUrl, profileDir))
  for (const server of running) await send(server, Number(values.warmup))
  const perRequest = new Map<string, Array<number>>(running.map((server) => [server.name, []]))
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const server of round % 2 === 0 ? running : [...running].reverse()) {
      const before = cpuOf(server.pid)
      await send(server, requests)
      const after = cpuOf(server.pid)
      perRequest.get(server.name)?.push(
        ((after.user - before.user + after.system - before.system) / requests) * 1000
      )
    }
  }
  console.log(
    `CPU time per request of each server (µs, user + system), ${values.rounds} rounds of ${requests} ` +
      `requests at concurrency ${concurrency}, median (range):`
  )
  let previous: number | undefined
  for (const server of running) {
    const figures = perRequest.get(server.name) ?? []
    const median = quantile(figures, 0.5)
    const step = previous === undefined ? "" : ` (${median >= previous ? "+" : ""}${(median - previous).toFixed(0)})`
    console.log(
      `${server.name.padEnd(14)} ${median.toFixed(0).padStart(5)}${step.padEnd(8)}  ${
        Math.min(...figures).toFixed(0)
      } to ${Math.max(...figures).toFixed(0)}`
    )
    previous = median
  }
} finally {
  await agent.close()
  for (const server of running) await server.close()
  await provider.close()
}
if (profileDir !== undefined) {
  const latest = readdirSync(profileDir).filter((file) => file.endsWith(".cpuprofile")).sort().pop()
  if (latest !== undefined) {
    console.log(`\n${join(profileDir, latest)}\n${topSelf(join(profileDir, latest), Number(values.top))}`)
  }
}
