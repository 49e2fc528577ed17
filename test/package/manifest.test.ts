import { assert, describe, it } from "@effect/vitest"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { published as table } from "./published.js"

// What the workspace's package.json files must say for `pnpm pack` to make a publishable package
// (`pnpm pack:check` then checks the tarballs themselves), and that every pending changeset can be
// released. Read from disk, without the network.

const root = fileURLToPath(new URL("../../", import.meta.url))

const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(`${root}${path}`, "utf8"))

const published = table.map((pkg) => pkg.dir)
type Published = (typeof published)[number]

const entryOf = (dir: Published) => {
  const entry = table.find((pkg) => pkg.dir === dir)
  if (entry === undefined) throw new Error(`${dir} is not in test/package/published.ts`)
  return entry
}
const peersOf = (dir: Published): ReadonlyArray<string> => entryOf(dir).peers
// what no public type of the package mentions, so the app need not share it
const dependenciesOf = (dir: Published): ReadonlyArray<string> => entryOf(dir).dependencies
// modules of `src/` that are not for importing: the gateway's command runs when loaded
const unexported = (dir: Published): ReadonlyArray<string> => entryOf(dir).unexported

// In the workspace the sources, and the build under the `resilient-llm-dist` condition (what
// `pnpm bench` measures: the code users install, not tsx's transform of the sources)
const exportsMap = (pkg: Published, dir: string, js: string, dts: string) => ({
  "./package.json": "./package.json",
  ".": dir === "src"
    ? { types: `./src/index.ts`, "resilient-llm-dist": "./dist/index.js", default: `./src/index.ts` }
    : { types: `./${dir}/index.${dts}`, default: `./${dir}/index.${js}` },
  "./*": dir === "src"
    ? { types: `./src/*.ts`, "resilient-llm-dist": "./dist/*.js", default: `./src/*.ts` }
    : { types: `./${dir}/*.${dts}`, default: `./${dir}/*.${js}` },
  ...Object.fromEntries(unexported(pkg).map((module) => [`./${module}`, null])),
  "./internal/*": null
})

const record = (u: unknown): Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u) ? Object.fromEntries(Object.entries(u)) : {}

describe("the published packages' manifests", () => {
  for (const dir of published) {
    it(`@resilient-llm/${dir}: exports, files, peers, licence and metadata`, () => {
      const manifest = readJson(`packages/${dir}/package.json`)
      assert.strictEqual(manifest.name, `@resilient-llm/${dir}`)
      assert.isUndefined(manifest.private)
      // in the workspace the sources; once packed the build, with the same public surface
      assert.deepStrictEqual(manifest.exports, exportsMap(dir, "src", "ts", "ts"))
      const publish = record(manifest.publishConfig)
      assert.deepStrictEqual(publish.exports, exportsMap(dir, "dist", "js", "d.ts"))
      assert.strictEqual(publish.main, "./dist/index.js")
      assert.strictEqual(publish.types, "./dist/index.d.ts")
      assert.strictEqual(publish.access, "public")
      // types first in every condition object, so that TypeScript picks them
      for (const target of Object.values(record(publish.exports))) {
        if (target !== null && typeof target === "object") assert.strictEqual(Object.keys(target)[0], "types")
      }
      assert.deepStrictEqual(manifest.files, [
        "src/**/*.ts",
        "dist/**/*.js",
        "dist/**/*.js.map",
        "dist/**/*.d.ts",
        "dist/**/*.d.ts.map",
        "README.md",
        "LICENSE",
        "CHANGELOG.md"
      ])
      assert.strictEqual(record(manifest.scripts).prepack, "pnpm run build")
      assert.strictEqual(record(manifest.scripts).build, "tsc -b tsconfig.src.json")
      // what the user's app shares is a peer (one copy per app), and available in the workspace
      assert.deepStrictEqual(Object.keys(record(manifest.peerDependencies)).sort(), peersOf(dir))
      assert.deepStrictEqual(Object.keys(record(manifest.dependencies)).sort(), dependenciesOf(dir))
      for (const peer of peersOf(dir)) assert.isDefined(record(manifest.devDependencies)[peer], peer)
      for (const field of ["description", "repository", "homepage", "bugs", "keywords", "engines"]) {
        assert.isDefined(manifest[field], field)
      }
      if (dir === "gateway") {
        // in the workspace the command runs the sources through tsx; once packed, the build with node
        assert.deepStrictEqual(manifest.bin, { "resilient-llm-gateway": "./bin/resilient-llm-gateway.js" })
        assert.deepStrictEqual(publish.bin, { "resilient-llm-gateway": "./dist/bin.js" })
        assert.match(readFileSync(`${root}packages/gateway/src/bin.ts`, "utf8"), /^#!\/usr\/bin\/env node\n/)
      } else {
        assert.isUndefined(manifest.bin)
      }
      assert.strictEqual(manifest.license, "MIT")
      assert.strictEqual(readFileSync(`${root}packages/${dir}/LICENSE`, "utf8"), readFileSync(`${root}LICENSE`, "utf8"))
      assert.isTrue(existsSync(`${root}packages/${dir}/README.md`), "a README")
      assert.match(
        readFileSync(`${root}packages/${dir}/CHANGELOG.md`, "utf8"),
        new RegExp(`^# @resilient-llm/${dir}\n`)
      )
      assert.isTrue(existsSync(`${root}packages/${dir}/docgen.json`), "API docs are generated")
      // the build's record lives in dist/: with it elsewhere, a deleted dist/ looked up to date to
      // \`tsc -b\`, and \`pnpm pack\` packed no JavaScript at all
      const build = readFileSync(`${root}packages/${dir}/tsconfig.src.json`, "utf8")
      assert.include(build, `"outDir": "dist"`)
      assert.include(build, `"tsBuildInfoFile": "dist/.tsbuildinfo"`)
    })
  }

  it("the packages not for npm are private", () => {
    for (const path of ["package.json", "packages/demo/package.json", "bench/package.json", "test/package.json"]) {
      assert.isTrue(readJson(path).private, path)
    }
    const all = readdirSync(`${root}packages`).filter((dir) => existsSync(`${root}packages/${dir}/package.json`))
    const public_ = all.filter((dir) => readJson(`packages/${dir}/package.json`).private !== true)
    assert.deepStrictEqual(public_.sort(), [...published].sort(), "every public package is checked here")
  })
})

describe("changesets", () => {
  const folder = `${root}.changeset`
  const changesets = readdirSync(folder).filter((file) => file.endsWith(".md") && file !== "README.md")

  it("the configuration releases the public packages only, with the default changelog", () => {
    const config = readJson(".changeset/config.json")
    assert.strictEqual(config.access, "public")
    assert.strictEqual(config.baseBranch, "main")
    assert.strictEqual(config.changelog, "@changesets/cli/changelog")
    assert.deepStrictEqual(config.privatePackages, { version: false, tag: false })
  })

  for (const file of changesets) {
    it(`${file} names publishable packages with a valid bump, and says what changed`, () => {
      const text = readFileSync(`${folder}/${file}`, "utf8")
      const match = text.match(/^---\n([\s\S]*?)\n---\n+([\s\S]+)$/)
      assert.isNotNull(match, "front matter between --- lines, then a summary")
      const releases = match![1].split("\n").map((line) =>
        line.match(/^"(@resilient-llm\/[a-z-]+)": (major|minor|patch)$/)
      )
      for (const [i, release] of releases.entries()) {
        assert.isNotNull(release, `line ${i + 1} of the front matter: "<package>": major | minor | patch`)
        assert.include(published.map((dir) => `@resilient-llm/${dir}`), release![1])
      }
      assert.isAbove(match![2].trim().length, 20)
    })
  }
})
