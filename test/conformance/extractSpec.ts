/**
 * `pnpm spec:extract <openapi.yaml> <commit>`: rebuilds `test/conformance/openai-openapi/openapi.yaml`
 * from a full copy of the official document (openai/openai-openapi at `<commit>`), keeping
 * `openapi`, `info` and the schemas the tests use (`schemasUsed` in `openApi.ts`) with every schema
 * they refer to, unchanged and in the upstream order. The header of the file it writes records
 * where the parts came from; update `SOURCE.md` beside it when the commit changes.
 */
import { createHash } from "node:crypto"
import { readFileSync, writeFileSync } from "node:fs"
import YAML from "yaml"
import { closure, fixturePath, isRecord, schemasUsed } from "./specParts.js"

const [source, commit] = process.argv.slice(2)
if (source === undefined || commit === undefined || !/^[0-9a-f]{7,40}$/.test(commit)) {
  console.error("usage: pnpm spec:extract <path to the upstream openapi.yaml> <its commit in openai/openai-openapi>")
  process.exit(2)
}

const text = readFileSync(source, "utf8")
const doc: unknown = YAML.parse(text)
if (!isRecord(doc) || !isRecord(doc.components) || !isRecord(doc.components.schemas)) {
  throw new Error(`${source} has no components.schemas`)
}
const schemas = doc.components.schemas
const kept = new Set(closure(schemas, schemasUsed))
const subset = {
  openapi: doc.openapi,
  info: doc.info,
  components: {
    schemas: Object.fromEntries(Object.entries(schemas).filter(([name]) => kept.has(name)))
  }
}

const sha256 = createHash("sha256").update(text).digest("hex")
const header = [
  "Parts of the official OpenAI API description, for resilient-llm's conformance tests.",
  `source: https://github.com/openai/openai-openapi, commit ${commit}, openapi.yaml`,
  `source sha256: ${sha256}`,
  `kept, unchanged: openapi, info, and ${kept.size} of its ${Object.keys(schemas).length} components.schemas:`,
  `${schemasUsed.join(", ")}`,
  "and every schema they refer to",
  "licence: MIT, as info.license below declares (see LICENSE beside this file)",
  "rebuilt by `pnpm spec:extract`: do not edit by hand"
]
const document = new YAML.Document(subset)
document.commentBefore = header.map((line) => ` ${line}`).join("\n")
writeFileSync(fixturePath, document.toString({ lineWidth: 0 }))
console.log(`${fixturePath}: ${kept.size} schemas from ${source} (${commit}, sha256 ${sha256.slice(0, 12)}…)`)
