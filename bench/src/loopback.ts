/**
 * Starts `server.ts` in a child process (through tsx, whatever runs the parent: `pnpm bench` or
 * vitest) and gives its base URL; `close` disconnects, and the child exits.
 */
import { fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { childExecArgv } from "./build.js"

export interface LoopbackServer {
  /** The OpenAI-style base URL, `http://127.0.0.1:<port>/v1`. */
  readonly baseUrl: string
  readonly streamChunks: number
  readonly close: () => Promise<void>
}

const serverPath = fileURLToPath(new URL("./server.ts", import.meta.url))
// the bench package's directory: `--import tsx` is resolved from it, up to the workspace root
const packageDir = fileURLToPath(new URL("..", import.meta.url))

const isReady = (message: unknown): message is { readonly port: number; readonly streamChunks: number } =>
  typeof message === "object" && message !== null && "port" in message && typeof message.port === "number" &&
  "streamChunks" in message && typeof message.streamChunks === "number"

export const startLoopbackServer = (options: { readonly streamChunks: number }): Promise<LoopbackServer> =>
  new Promise((resolve, reject) => {
    const child = fork(serverPath, [], {
      cwd: packageDir,
      execArgv: [...childExecArgv],
      env: { ...process.env, BENCH_STREAM_CHUNKS: String(options.streamChunks) },
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    const timer = setTimeout(() => {
      child.kill()
      reject(new Error("the benchmark server did not start within 30 s"))
    }, 30_000)
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`the benchmark server exited with code ${code}`))
    })
    child.once("message", (message) => {
      clearTimeout(timer)
      if (!isReady(message)) {
        child.kill()
        reject(new Error("the benchmark server sent an unexpected message"))
        return
      }
      resolve({
        baseUrl: `http://127.0.0.1:${message.port}/v1`,
        streamChunks: message.streamChunks,
        close: async () => {
          if (child.connected) child.disconnect()
          const killer = setTimeout(() => child.kill(), 5_000)
          await exited
          clearTimeout(killer)
        }
      })
    })
  })
