/**
 * The TypeScript blocks of the repository's READMEs, and where their type-checked copies live.
 *
 * Every ```ts block of every README is copied, as it is, to `test/readme/blocks/<readme>/<n>.ts`,
 * where `tsc -b` type-checks it against the packages (tsconfig in that folder). The test in this
 * folder fails when a copy differs from its block, so an example cannot drift from the code: edit
 * the README, run `pnpm readme:blocks`, and `pnpm check` type-checks the result.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

/** The repository's root, with a trailing slash. */
export const root = fileURLToPath(new URL("../../", import.meta.url))

/** Every README with code in it, relative to the root, and the folder of its copies. */
export const readmes: ReadonlyArray<{ readonly path: string; readonly folder: string }> = [
  { path: "README.md", folder: "root" },
  { path: "packages/core/README.md", folder: "core" },
  { path: "packages/openai/README.md", folder: "openai" },
  { path: "packages/testing/README.md", folder: "testing" },
  { path: "packages/gateway/README.md", folder: "gateway" },
  { path: "packages/demo/README.md", folder: "demo" },
  { path: "bench/README.md", folder: "bench" }
]

/** Where the copies of a README's blocks live, relative to the root. */
export const blocksFolder = (folder: string): string => `test/readme/blocks/${folder}`

/** The file of block `index` (from 1), zero-padded so the files sort in README order. */
export const blockFile = (folder: string, index: number): string =>
  `${blocksFolder(folder)}/block${String(index).padStart(2, "0")}.ts`

const fence = /^```(ts|typescript)[ \t]*\n([\s\S]*?)^```[ \t]*$/gm

/** The TypeScript blocks of a Markdown text, in order, each ending with a newline. */
export const extract = (markdown: string): ReadonlyArray<string> =>
  Array.from(markdown.matchAll(fence), (match) => match[2])

/** The blocks of a README that exists; a README that does not exist has none. */
export const blocksOf = (path: string): ReadonlyArray<string> => {
  try {
    return extract(readFileSync(`${root}${path}`, "utf8"))
  } catch (error) {
    if (error instanceof Error && "code" in error && error.code === "ENOENT") return []
    throw error
  }
}
