/**
 * The gateway of the benchmarks, in a child process: its configuration (one virtual model, a
 * fallback chain of the loopback provider's model, 30 s timeout, one key) and the start of a
 * server that prints `resilient-llm gateway on <url>` once it listens, as the gateway's command
 * and `gatewayStackServer.ts` do. Benchmark 6 and `gateway:stacks` start theirs the same way.
 */
import { fork } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** The servers of `gatewayStackServer.ts`, lightest first (`gateway:stacks` runs the gateway after them). */
export const stackNames = [
  "node-echo",
  "effect-echo",
  "node-proxy",
  "effect-client",
  "effect-fallback",
  "effect-chain"
] as const

/** The gateway key the benchmarks send. */
export const gatewayKey = "sk-bench-gateway"

/** The bench package's folder: where child processes run. */
export const packageDir = fileURLToPath(new URL("..", import.meta.url))

const gatewayConfig = (providerUrl: string) =>
  `server:
  port: 0
  logLevel: warn
  reload: false
providers:
  upstream:
    baseUrl: ${providerUrl}
    models: [bench-model]
models:
  bench:
    fallback: [bench-model]
    timeout: 30 seconds
keys:
  - name: bench
    sha256: ${createHash("sha256").update(gatewayKey).digest("hex")}
    models: ["*"]
`

export interface Running {
  readonly url: string
  readonly pid: number
  /** SIGTERM, then SIGKILL after 10 s; removes the configuration's folder. */
  readonly close: () => Promise<void>
}

export interface StartOptions {
  /** What the errors call it. */
  readonly name: string
  /** The module to fork. */
  readonly module: string
  /** Its arguments, given the path of the gateway configuration written for `providerUrl`. */
  readonly args: (configPath: string) => ReadonlyArray<string>
  readonly providerUrl: string
  readonly cwd: string
  readonly execArgv: ReadonlyArray<string>
}

/** Forks a server with the gateway's configuration at hand and waits (up to 60 s) for the line with its URL. */
export const startServer = (options: StartOptions): Promise<Running> =>
  new Promise((resolve, reject) => {
    const dir = mkdtempSync(join(tmpdir(), "bench-gateway-"))
    const config = join(dir, "gateway.yaml")
    writeFileSync(config, gatewayConfig(options.providerUrl))
    const child = fork(options.module, [...options.args(config)], {
      cwd: options.cwd,
      execArgv: [...options.execArgv],
      stdio: ["ignore", "ignore", "pipe", "ipc"]
    })
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    let stderr = ""
    const timer = setTimeout(() => {
      child.kill()
      reject(new Error(`${options.name} did not start within 60 s: ${stderr}`))
    }, 60_000)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`${options.name} exited with code ${code}: ${stderr}`))
    })
    child.stderr?.on("data", (data: Buffer) => {
      stderr += data.toString("utf8")
      const match = /resilient-llm gateway on (http:\/\/[^\s]+)/.exec(stderr)
      if (match === null) return
      clearTimeout(timer)
      child.stderr?.removeAllListeners("data")
      child.stderr?.resume()
      resolve({
        url: match[1],
        pid: child.pid ?? 0,
        close: async () => {
          child.kill("SIGTERM")
          const killer = setTimeout(() => child.kill("SIGKILL"), 10_000)
          await exited
          clearTimeout(killer)
          rmSync(dir, { recursive: true, force: true })
        }
      })
    })
  })
