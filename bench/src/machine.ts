/**
 * The machine and versions a run measured, printed with every run: figures mean little without
 * them, and this machine is shared, so the load before and after the run is recorded too.
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import { dirname, join } from "node:path"
import { compiled } from "./build.js"

export interface Machine {
  readonly node: string
  readonly platform: string
  readonly cpu: string
  readonly cores: number
  readonly memoryGiB: number
  readonly loadAverage: readonly [number, number, number]
  readonly versions: Readonly<Record<string, string>>
  /** What ran of resilient-llm: its packages' build, or their sources through tsx. */
  readonly packages: "build (dist/)" | "sources (tsx)"
}

const require = createRequire(import.meta.url)

const readVersion = (file: string, name: string): string | undefined => {
  try {
    const manifest: unknown = JSON.parse(readFileSync(file, "utf8"))
    if (typeof manifest === "object" && manifest !== null && "name" in manifest && manifest.name === name) {
      return "version" in manifest ? String(manifest.version) : undefined
    }
  } catch {
    // no manifest here
  }
  return undefined
}

// From the package's entry point up to its own package.json (some packages do not export it).
const versionOf = (name: string): string => {
  try {
    let dir = dirname(require.resolve(name))
    for (let depth = 0; depth < 6; depth++) {
      const found = readVersion(join(dir, "package.json"), name)
      if (found !== undefined) return found
      dir = dirname(dir)
    }
  } catch {
    // not resolvable from here
  }
  return "unknown"
}

const loadAverage = (): readonly [number, number, number] => {
  const [one = 0, five = 0, fifteen = 0] = os.loadavg()
  return [one, five, fifteen]
}

export const machine = (): Machine => ({
  node: process.version,
  platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  cpu: os.cpus()[0]?.model ?? "unknown",
  cores: os.availableParallelism(),
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  loadAverage: loadAverage(),
  versions: Object.fromEntries(
    ["effect", "@effect/platform-node", "cockatiel", "opossum", "openai", "undici"].map((name) => [
      name,
      versionOf(name)
    ])
  ),
  packages: compiled ? "build (dist/)" : "sources (tsx)"
})

export const currentLoad = loadAverage
