/**
 * `pnpm readme:blocks`: writes every README's TypeScript blocks to `test/readme/blocks`, replacing
 * what was there, so that `tsc -b` type-checks them.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import { blockFile, blocksFolder, blocksOf, readmes, root } from "./Blocks.js"

for (const readme of readmes) {
  const folder = `${root}${blocksFolder(readme.folder)}`
  rmSync(folder, { recursive: true, force: true })
  const blocks = blocksOf(readme.path)
  if (blocks.length === 0) continue
  mkdirSync(folder, { recursive: true })
  blocks.forEach((block, i) => writeFileSync(`${root}${blockFile(readme.folder, i + 1)}`, block))
  console.log(`${readme.path}: ${blocks.length} blocks`)
}
