/**
 * The official OpenAI OpenAPI document, read from `shared/openai-openapi/openapi.yaml` in the
 * nearest directory above this one that has it (the project's parent in a checkout, further up in
 * a git worktree), or from the path in `OPENAI_OPENAPI_SPEC`; never copied into the project. Also
 * validators for its schemas, built by a standard OpenAPI 3.1 JSON Schema validator
 * (`@hyperjump/json-schema`).
 *
 * Parsing the 3 MB of YAML takes seconds and every test file would do it again, so the parsed
 * document is kept as JSON in the system's temporary directory, keyed by the spec's path, size
 * and modification time.
 */
import { addMediaTypePlugin } from "@hyperjump/browser"
import type { OutputUnit, Validator } from "@hyperjump/json-schema"
import { buildSchemaDocument } from "@hyperjump/json-schema/experimental"
import { setShouldValidateSchema, validate } from "@hyperjump/json-schema/openapi-3-1"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import YAML from "yaml"

const findSpec = (): string => {
  const fromEnv = process.env.OPENAI_OPENAPI_SPEC
  if (fromEnv !== undefined && fromEnv !== "") return Path.resolve(fromEnv)
  const relative = Path.join("shared", "openai-openapi", "openapi.yaml")
  const here = Path.dirname(fileURLToPath(import.meta.url))
  for (let dir = here;; dir = Path.dirname(dir)) {
    const candidate = Path.join(dir, relative)
    if (existsSync(candidate)) return candidate
    if (Path.dirname(dir) === dir) throw new Error(`no ${relative} in ${here} or any directory above it`)
  }
}

export const specPath = findSpec()

const specUrl = pathToFileURL(specPath).href

let specJson: string | undefined

/**
 * The spec as a fresh JSON value (each caller gets its own copy), parsed from the JSON cache when
 * it is there.
 */
const parsedSpec = (): unknown => {
  specJson ??= readSpecJson()
  return JSON.parse(specJson)
}

const readSpecJson = (): string => {
  const stat = statSync(specPath)
  const key = createHash("sha256").update(`${specPath}\0${stat.size}\0${stat.mtimeMs}`).digest("hex").slice(0, 16)
  const cache = Path.join(tmpdir(), `resilient-llm-openapi-${key}.json`)
  if (existsSync(cache)) {
    try {
      const json = readFileSync(cache, "utf8")
      JSON.parse(json)
      return json
    } catch {
      // a damaged cache: parse the YAML instead
    }
  }
  const json = JSON.stringify(YAML.parse(readFileSync(specPath, "utf8")))
  try {
    // written aside then renamed, so a concurrent reader sees the whole file or none
    const partial = `${cache}.${process.pid}.tmp`
    writeFileSync(partial, json)
    renameSync(partial, cache)
  } catch {
    // no cache this time
  }
  return json
}

// The document is validated as instances are checked against it, not as a whole: a handful of
// schemas outside Chat Completions (fine-tuning hyperparameters) still use OpenAPI 3.0's boolean
// `exclusiveMinimum`, which the 3.1 meta-schema rejects and which we have no say over.
setShouldValidateSchema(false)

addMediaTypePlugin("application/openapi+yaml", {
  parse: async (response) =>
    buildSchemaDocument(
      response.url === specUrl ? parsedSpec() : YAML.parse(await response.text()),
      response.url,
      "https://spec.openapis.org/oas/3.1/schema-base"
    ),
  fileMatcher: (path) => Promise.resolve(path.endsWith("openapi.yaml"))
})

export type JsonSchema = { readonly [key: string]: unknown }

export interface OpenApiDocument {
  readonly components: { readonly schemas: Readonly<Record<string, JsonSchema>> }
}

/** A JSON object (not an array, not null): what a schema, and the document itself, is. */
export const isRecord = (u: unknown): u is JsonSchema => typeof u === "object" && u !== null && !Array.isArray(u)

/** The parsed document, for generating instances from its schemas. */
export const loadDocument = (): OpenApiDocument => {
  const doc = parsedSpec()
  if (!isRecord(doc) || !isRecord(doc.components) || !isRecord(doc.components.schemas)) {
    throw new Error(`${specPath} has no components.schemas`)
  }
  const schemas: Record<string, JsonSchema> = {}
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    if (isRecord(schema)) schemas[name] = schema
  }
  return { components: { schemas } }
}

export interface SchemaValidator {
  readonly name: string
  /** The validator's errors for `value`, empty when it is valid. */
  readonly errors: (value: unknown) => ReadonlyArray<OutputUnit>
}

// Values checked here come from JSON.parse or from a generator of JSON values.
const toJson = (value: unknown): Parameters<Validator>[0] => JSON.parse(JSON.stringify(value))

/** A validator for `#/components/schemas/<name>` of the official document. */
export const validator = (name: string): Effect.Effect<SchemaValidator> =>
  Effect.promise(() => validate(`${specUrl}#/components/schemas/${name}`)).pipe(
    Effect.map((compiled) => ({
      name,
      errors: (value) => {
        const output = compiled(toJson(value), "BASIC")
        return output.valid ? [] : (output.errors ?? [])
      }
    }))
  )
