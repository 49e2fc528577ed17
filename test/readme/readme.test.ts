import { assert, describe, it } from "@effect/vitest"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { blockFile, blocksFolder, blocksOf, extract, readmes, root } from "./Blocks.js"

const fix = "edit the README, then run `pnpm readme:blocks` so that `tsc -b` type-checks the change"

describe("README code blocks", () => {
  it("extracts ts blocks in order, and nothing else", () => {
    const markdown = "text\n```ts\nconst a = 1\n```\n```sh\nls\n```\n```typescript\nconst b = 2\n```\n"
    assert.deepStrictEqual(extract(markdown), ["const a = 1\n", "const b = 2\n"])
  })

  for (const readme of readmes) {
    it(`${readme.path}: every block is a type-checked copy`, () => {
      const blocks = blocksOf(readme.path)
      const folder = `${root}${blocksFolder(readme.folder)}`
      const copies = existsSync(folder) ? readdirSync(folder).filter((file) => file.endsWith(".ts")).sort() : []
      assert.strictEqual(copies.length, blocks.length, `${readme.path} has ${blocks.length} blocks: ${fix}`)
      blocks.forEach((block, i) => {
        const copy = readFileSync(`${root}${blockFile(readme.folder, i + 1)}`, "utf8")
        assert.strictEqual(copy, block, `block ${i + 1} of ${readme.path} differs from its copy: ${fix}`)
      })
    })
  }

  it("finds every README in the repository: the root's, each package's, the benchmarks'", () => {
    const paths = readmes.map((readme) => readme.path)
    const packages = readdirSync(`${root}packages`).filter((dir) => existsSync(`${root}packages/${dir}/package.json`))
    for (const path of ["README.md", "bench/README.md", ...packages.map((dir) => `packages/${dir}/README.md`)]) {
      assert.include(paths, path, `${path} is missing or not found`)
    }
    assert.strictEqual(new Set(readmes.map((readme) => readme.folder)).size, readmes.length, "one folder per README")
  })

  it("keeps no copies of a README that has no blocks any more", () => {
    const withBlocks = readmes.filter((readme) => blocksOf(readme.path).length > 0).map((readme) => readme.folder)
    const folders = readdirSync(`${root}test/readme/blocks`, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
    assert.deepStrictEqual(folders.sort(), withBlocks.sort(), fix)
  })

  it("the copies are part of the type-checked build", () => {
    const config = JSON.parse(readFileSync(`${root}tsconfig.json`, "utf8"))
    assert.deepInclude(config.references, { path: "test/readme/blocks" })
  })
})
