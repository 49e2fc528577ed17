/**
 * What the conformance tests keep of the OpenAI OpenAPI document and where, with the reference
 * walk that decides it: shared by the loader (`openApi.ts`) and `pnpm spec:extract`, without
 * reading the document.
 */
import { fileURLToPath } from "node:url"

/**
 * The schemas the tests use, by name: the fixture holds these and every schema they refer to,
 * nothing else. A test that needs another adds it here and runs `pnpm spec:extract`.
 */
export const schemasUsed: ReadonlyArray<string> = [
  "CreateChatCompletionRequest",
  "CreateChatCompletionResponse",
  "CreateChatCompletionStreamResponse"
]

/** The fixture in the repository, as an absolute path. */
export const fixturePath = fileURLToPath(new URL("./openai-openapi/openapi.yaml", import.meta.url))

export type JsonSchema = { readonly [key: string]: unknown }

/** A JSON object (not an array, not null): what a schema, and the document itself, is. */
export const isRecord = (u: unknown): u is JsonSchema => typeof u === "object" && u !== null && !Array.isArray(u)

/** Every `$ref` in `value`, at any depth. */
export const refsIn = (value: unknown): ReadonlyArray<string> => {
  const found: Array<string> = []
  const walk = (u: unknown): void => {
    if (Array.isArray(u)) return u.forEach(walk)
    if (!isRecord(u)) return
    for (const [key, child] of Object.entries(u)) {
      if (key === "$ref" && typeof child === "string") found.push(child)
      else walk(child)
    }
  }
  walk(value)
  return found
}

const schemaPrefix = "#/components/schemas/"

/**
 * The names of `roots` and of every schema they refer to, directly or not, in the order first
 * met. Throws on a reference to a schema `schemas` lacks, or outside `components.schemas`.
 */
export const closure = (
  schemas: Readonly<Record<string, unknown>>,
  roots: ReadonlyArray<string>
): ReadonlyArray<string> => {
  const seen = new Set<string>()
  const visit = (name: string, from: string): void => {
    if (seen.has(name)) return
    if (!isRecord(schemas[name])) throw new Error(`schema ${name} (needed by ${from}) is not in the document`)
    seen.add(name)
    for (const ref of refsIn(schemas[name])) {
      if (!ref.startsWith(schemaPrefix)) throw new Error(`${name} refers to ${ref}, outside components.schemas`)
      visit(ref.slice(schemaPrefix.length), name)
    }
  }
  for (const root of roots) visit(root, "the tests")
  return [...seen]
}
