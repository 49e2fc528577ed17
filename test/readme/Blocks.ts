/**
 * The TypeScript blocks of the repository's READMEs, and where their type-checked copies live.
 *
 * Every ```ts block of every README is copied, as it is, to `test/readme/blocks/<readme>/<n>.ts`,
 * where `tsc -b` type-checks it against the packages (tsconfig in that folder). The test in this
 * folder fails when a copy differs from its block, so an example cannot drift from the code: edit
 * the README, run `pnpm readme:blocks`, and `pnpm check` type-checks the result.
 */
import { readdirSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

/** The repository's root, with a trailing slash. */
export const root = fileURLToPath(new URL("../../", import.meta.url))

/** Folders never searched for READMEs: dependencies, build output, generated docs. */
const notSearched = new Set(["node_modules", ".git", "build", "dist", "docs", "blocks"])

/** Every `README.md` under `dir` (relative to the root), in a stable order. */
const findReadmes = (dir: string): ReadonlyArray<string> =>
  readdirSync(`${root}${dir}`, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const path = dir === "" ? entry.name : `${dir}/${entry.name}`
      if (entry.isDirectory()) return notSearched.has(entry.name) ? [] : findReadmes(path)
      return entry.name === "README.md" ? [path] : []
    })

/** The folder of a README's copies: `root`, the package's name, or the README's folder. */
export const folderOf = (path: string): string =>
  path === "README.md"
    ? "root"
    : path.replace(/^packages\//, "").replace(/\/README\.md$/, "").replace(/^\./, "").replaceAll("/", "-")

/**
 * Every README in the repository, found on disk (a new package's README is covered without a
 * change here), relative to the root, and the folder of its copies.
 */
export const readmes: ReadonlyArray<{ readonly path: string; readonly folder: string }> = findReadmes("")
  .map((path) => ({ path, folder: folderOf(path) }))

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
