/**
 * `pnpm pack:check`: the packages as a user gets them. Packs every publishable package (its
 * `prepack` builds it), checks what each tarball holds and what its `package.json` says, installs
 * the tarballs with npm into a new app in the system's temporary directory (outside the
 * workspace, so nothing resolves to the sources), type-checks the app in `app/` under
 * `moduleResolution` `NodeNext` and `Bundler` (with `skipLibCheck`, as most apps do; `app/types.ts`
 * proves the declarations are real types), compiles it, and runs it with plain `node` against
 * a `FakeProvider`. Then it runs the gateway's command as npm installed it: `--check` on a small
 * configuration, and a gateway on a free port in front of its fake provider, asked one chat
 * completion and stopped with SIGTERM. Any difference fails the command, saying what and where;
 * the app's folder is kept for a look when it fails.
 */
import { execFile, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { published } from "./published.js"

const root = fileURLToPath(new URL("../../", import.meta.url))
const appTemplate = fileURLToPath(new URL("./app/", import.meta.url))

interface Run {
  readonly stdout: string
  readonly stderr: string
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeoutMs = 180_000): Promise<Run> =>
  new Promise((resolve, reject) => {
    execFile(command, args, { cwd, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) return resolve({ stdout, stderr })
      reject(new Error(`${command} ${args.join(" ")} (in ${cwd}) failed: ${error.message}\n${stdout}\n${stderr}`))
    })
  })

const problems: Array<string> = []
const problem = (text: string): void => {
  problems.push(text)
}

const timings: Array<string> = []
const timed = async <A>(label: string, f: () => Promise<A>): Promise<A> => {
  const start = performance.now()
  const result = await f()
  timings.push(`${label} ${((performance.now() - start) / 1000).toFixed(1)} s`)
  return result
}

const versionIn = (dir: string, name: string): string =>
  JSON.parse(readFileSync(Path.join(dir, "node_modules", name, "package.json"), "utf8")).version

/** The modules a package exports: `src/*.ts` but `index.ts`, which is `.`. */
const publicModules = (dir: string): ReadonlyArray<string> =>
  readdirSync(Path.join(root, "packages", dir, "src"))
    .filter((file) => file.endsWith(".ts") && file !== "index.ts")
    .map((file) => file.slice(0, -3))

type Manifest = Record<string, unknown>

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** What a packed `package.json` must say. */
const checkManifest = (pkg: (typeof published)[number], manifest: Manifest): void => {
  const where = `${pkg.name}'s packed package.json`
  const text = JSON.stringify(manifest)
  if (text.includes("workspace:")) problem(`${where} still has a workspace: range`)
  for (const field of ["description", "license", "repository", "homepage", "bugs", "keywords", "engines", "files"]) {
    if (manifest[field] === undefined) problem(`${where} has no ${field}`)
  }
  if (manifest.license !== "MIT") problem(`${where}: license is ${String(manifest.license)}`)
  if (manifest.type !== "module") problem(`${where}: type is not module`)
  if (manifest.main !== "./dist/index.js") problem(`${where}: main is ${String(manifest.main)}`)
  if (manifest.types !== "./dist/index.d.ts") problem(`${where}: types is ${String(manifest.types)}`)
  const expected = {
    "./package.json": "./package.json",
    ".": { types: "./dist/index.d.ts", default: "./dist/index.js" },
    "./*": { types: "./dist/*.d.ts", default: "./dist/*.js" },
    ...Object.fromEntries(pkg.unexported.map((module) => [`./${module}`, null])),
    "./internal/*": null
  }
  if (JSON.stringify(manifest.exports) !== JSON.stringify(expected)) {
    problem(`${where}: exports is ${JSON.stringify(manifest.exports)}, expected ${JSON.stringify(expected)}`)
  }
  const peers = isObject(manifest.peerDependencies) ? Object.keys(manifest.peerDependencies).sort() : []
  if (JSON.stringify(peers) !== JSON.stringify([...pkg.peers])) {
    problem(`${where}: peerDependencies are ${peers.join(", ")}, expected ${pkg.peers.join(", ")}`)
  }
  const dependencies = isObject(manifest.dependencies) ? Object.keys(manifest.dependencies).sort() : []
  if (JSON.stringify(dependencies) !== JSON.stringify([...pkg.dependencies])) {
    problem(
      `${where}: dependencies are ${dependencies.join(", ") || "none"}, expected ${
        pkg.dependencies.join(", ") || "none"
      } (what the app shares must be a peer)`
    )
  }
  if (JSON.stringify(manifest.bin ?? {}) !== JSON.stringify(pkg.bin)) {
    problem(`${where}: bin is ${JSON.stringify(manifest.bin)}, expected ${JSON.stringify(pkg.bin)}`)
  }
}

/** What a tarball must hold, and must not. */
const checkContents = (pkg: (typeof published)[number], files: ReadonlyArray<string>): void => {
  const where = `${pkg.name}'s tarball`
  const allowed =
    /^package\/(dist\/.+\.(js|js\.map|d\.ts|d\.ts\.map)|src\/.+\.ts|README\.md|LICENSE|CHANGELOG\.md|package\.json)$/
  for (const file of files) if (!allowed.test(file)) problem(`${where} holds ${file}`)
  const required = ["package/README.md", "package/LICENSE", "package/CHANGELOG.md", "package/package.json"]
  for (const module of ["index", ...publicModules(pkg.dir)]) {
    required.push(`package/dist/${module}.js`, `package/dist/${module}.d.ts`, `package/src/${module}.ts`)
  }
  for (const file of required) if (!files.includes(file)) problem(`${where} lacks ${file}`)
}

const gatewayKey = "sk-pack-check"

// a fallback chain on the gateway's own fake provider: its first model always fails
const gatewayConfig = `server:
  port: 0
  logLevel: warn
  reload: false
providers:
  local:
    fake:
      seed: 1
      models:
        flaky: { faults: { serverError: 1 } }
        steady: { reply: "hello from the gateway" }
models:
  chat:
    fallback: [flaky, steady]
keys:
  - name: app
    sha256: ${createHash("sha256").update(gatewayKey).digest("hex")}
    models: ["*"]
`

/** What the gateway's answer to one request said. */
interface GatewayAnswer {
  readonly status: number
  readonly model: unknown
  readonly text: unknown
  readonly attempts: string | null
  readonly exitCode: number | null
}

/**
 * Starts the installed command with plain `node` on a free port, asks it one chat completion
 * with a gateway key, then stops it with SIGTERM and waits for it to exit.
 */
const askGateway = (app: string, bin: string): Promise<GatewayAnswer> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "--config", "gateway.yaml"], {
      cwd: app,
      stdio: ["ignore", "ignore", "pipe"]
    })
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
    let stderr = ""
    let started = false
    const fail = (error: Error) => {
      clearTimeout(timer)
      child.kill("SIGKILL")
      reject(error)
    }
    const timer = setTimeout(() => fail(new Error(`the gateway did not answer within 60 s:\n${stderr}`)), 60_000)
    void exited.then((code) => {
      if (!started) fail(new Error(`the gateway exited with code ${code} before it listened:\n${stderr}`))
    })
    child.stderr.on("data", (data: Buffer) => {
      stderr += data.toString("utf8")
      const match = /resilient-llm gateway on (http:\/\/\S+)/.exec(stderr)
      if (match === null || started) return
      started = true
      const url = match[1]
      void (async () => {
        const response = await fetch(`${url}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${gatewayKey}`, "content-type": "application/json" },
          body: JSON.stringify({ model: "chat", messages: [{ role: "user", content: "Hello" }] })
        })
        const body: unknown = await response.json()
        const first = isObject(body) && Array.isArray(body.choices) ? body.choices[0] : undefined
        const message = isObject(first) ? first.message : undefined
        child.kill("SIGTERM")
        const exitCode = await exited
        clearTimeout(timer)
        resolve({
          status: response.status,
          model: isObject(body) ? body.model : undefined,
          text: isObject(message) ? message.content : undefined,
          attempts: response.headers.get("x-resilient-llm-attempts"),
          exitCode
        })
      })().catch((error: unknown) => fail(error instanceof Error ? error : new Error(String(error))))
    })
  })

/** The gateway's command as npm installed it: `--check`, then a gateway asked once and stopped. */
const checkGateway = async (app: string): Promise<void> => {
  writeFileSync(Path.join(app, "gateway.yaml"), gatewayConfig)
  const bin = Path.join(app, "node_modules", ".bin", "resilient-llm-gateway")
  // run as a shell runs it: through its `#!/usr/bin/env node` line and the mode npm gave it
  const checked = await run(bin, ["--config", "gateway.yaml", "--check"], app, 60_000).catch((error: Error) => {
    problem(`resilient-llm-gateway --check failed:\n${error.message}`)
    return undefined
  })
  if (checked !== undefined) {
    const expected = "gateway.yaml is valid: 1 provider(s); logical models: flaky (local/flaky), steady " +
      "(local/steady); virtual models: chat; 1 key(s)"
    if (checked.stdout.trim() !== expected) {
      problem(`resilient-llm-gateway --check printed ${JSON.stringify(checked.stdout)}, expected ${expected}`)
    } else {
      console.log(`resilient-llm-gateway --check printed: ${checked.stdout.trim()}`)
    }
  }
  const answer = await askGateway(app, bin).catch((error: Error) => {
    problem(`the gateway's command did not serve a request under plain node:\n${error.message}`)
    return undefined
  })
  if (answer !== undefined) {
    const expected: GatewayAnswer = {
      status: 200,
      model: "steady",
      text: "hello from the gateway",
      attempts: "2",
      exitCode: 0
    }
    if (JSON.stringify(answer) !== JSON.stringify(expected)) {
      problem(`the gateway answered ${JSON.stringify(answer)}, expected ${JSON.stringify(expected)}`)
    } else {
      console.log(`the gateway answered: ${JSON.stringify(answer)}`)
    }
  }
}

const main = async (): Promise<void> => {
  const work = mkdtempSync(Path.join(tmpdir(), "resilient-llm-pack-"))
  if (!Path.relative(root, work).startsWith("..")) throw new Error(`${work} is inside the workspace ${root}`)
  const tarballs = Path.join(work, "tarballs")
  const app = Path.join(work, "app")
  mkdirSync(tarballs)
  mkdirSync(app)

  // packed one at a time: each prepack runs `tsc -b`, which also builds the packages it references
  const packed: Array<string> = []
  await timed("pack", async () => {
    for (const pkg of published) {
      const before = new Set(readdirSync(tarballs))
      await run("pnpm", ["pack", "--pack-destination", tarballs], Path.join(root, "packages", pkg.dir))
      const made = readdirSync(tarballs).filter((file) => !before.has(file))
      if (made.length !== 1) throw new Error(`pnpm pack in packages/${pkg.dir} made ${made.join(", ") || "nothing"}`)
      const tarball = Path.join(tarballs, made[0])
      packed.push(tarball)
      const files = (await run("tar", ["-tzf", tarball], work)).stdout.split("\n").filter((line) => line !== "")
      checkContents(pkg, files)
      const manifest = JSON.parse((await run("tar", ["-xzOf", tarball, "package/package.json"], work)).stdout)
      checkManifest(pkg, manifest)
      console.log(
        `${made[0]}: ${files.length} files, ${(statSync(tarball).size / 1024).toFixed(0)} KiB packed`
      )
    }
  })

  // the app installs what a user would: the tarballs and their peers, at the workspace's versions
  const testing = Path.join(root, "packages", "testing")
  const peers = [
    `effect@${versionIn(testing, "effect")}`,
    `@effect/platform-node@${versionIn(testing, "@effect/platform-node")}`,
    `@types/node@${versionIn(root, "@types/node")}`
  ]
  writeFileSync(
    Path.join(app, "package.json"),
    JSON.stringify({ name: "resilient-llm-user-app", private: true, type: "module" }, null, 2)
  )
  for (const file of readdirSync(appTemplate)) copyFileSync(Path.join(appTemplate, file), Path.join(app, file))
  await timed(
    "npm install",
    () =>
      run(
        "npm",
        ["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefer-offline", ...packed, ...peers],
        app
      )
  )

  const tsc = Path.join(root, "node_modules", "typescript", "bin", "tsc")
  const typeCheck = (config: string) =>
    run(process.execPath, [tsc, "-p", config], app).catch((error: Error) => {
      problem(`the app does not type-check with ${config}:\n${error.message}`)
    })
  await timed(
    "tsc (NodeNext, emits) and tsc (Bundler)",
    () => Promise.all([typeCheck("tsconfig.nodenext.json"), typeCheck("tsconfig.bundler.json")])
  )

  if (problems.length === 0) {
    const output = await timed(
      "node out/main.js",
      () =>
        run(process.execPath, [Path.join("out", "main.js")], app, 60_000).catch((error: Error) => {
          problem(`the app failed under plain node:\n${error.message}`)
          return undefined
        })
    )
    if (output !== undefined) console.log(`the app printed: ${output.stdout.trim().split("\n").at(-1)}`)
    await timed("the gateway's command", () => checkGateway(app))
  }

  console.log(timings.join(", "))
  if (problems.length > 0) {
    console.error(`\npack:check found ${problems.length} problem(s) (the app is in ${app}):`)
    for (const text of problems) console.error(`- ${text}`)
    process.exit(1)
  }
  rmSync(work, { recursive: true, force: true })
  console.log(
    "pack:check: the packed packages install with npm, type-check under NodeNext and Bundler, and run; " +
      "the gateway's command checks a file and serves a request"
  )
}

await main()
