/**
 * The machine and versions a run measured, printed with every run: figures mean little without
 * them, and this machine is shared, so the load before and after the run is recorded too.
 */
import { createRequire } from "node:module"
import * as os from "node:os"

export interface Machine {
  readonly node: string
  readonly platform: string
  readonly cpu: string
  readonly cores: number
  readonly memoryGiB: number
  readonly loadAverage: readonly [number, number, number]
  readonly versions: Readonly<Record<string, string>>
}

const require = createRequire(import.meta.url)

const versionOf = (name: string): string => {
  try {
    const manifest: unknown = require(`${name}/package.json`)
    if (typeof manifest === "object" && manifest !== null && "version" in manifest) {
      return String(manifest.version)
    }
  } catch {
    // a package without an exported package.json
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
    ["effect", "@effect/platform", "@effect/platform-node", "cockatiel", "opossum", "openai", "undici"].map((name) => [
      name,
      versionOf(name)
    ])
  )
})

export const currentLoad = loadAverage
