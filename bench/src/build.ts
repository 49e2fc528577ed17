/**
 * What the benchmark runs: the packages' build (`dist/`, compiled by `tsc`, as users install it)
 * when this process was started with `--conditions=resilient-llm-dist`, as `pnpm bench` does, and
 * their TypeScript sources otherwise (the bench test, `tsx src/main.ts`). The sources run through
 * tsx, whose transform names every closure as it is created (esbuild's `keepNames`): about 1 µs a
 * call of the policy stack that the build does not pay.
 */
import { createRequire } from "node:module"
import { dirname, join } from "node:path"

const condition = "--conditions=resilient-llm-dist"

/** Whether the packages load from their build. */
export const compiled = process.execArgv.includes(condition)

/** What a child process of the benchmark is started with: tsx, and the same packages as this one. */
export const childExecArgv: ReadonlyArray<string> = ["--import", "tsx", ...(compiled ? [condition] : [])]

/** The gateway's command: its build, or its source (`@resilient-llm/gateway/bin` is not exported). */
export const gatewayBin = join(
  dirname(createRequire(import.meta.url).resolve("@resilient-llm/gateway/package.json")),
  compiled ? "dist/bin.js" : "src/bin.ts"
)
