/**
 * The official OpenAI OpenAPI document, read from `../shared/openai-openapi/openapi.yaml` (never
 * copied into the project), and validators for its schemas built by a standard OpenAPI 3.1 JSON
 * Schema validator (`@hyperjump/json-schema`).
 */
import { addMediaTypePlugin } from "@hyperjump/browser"
import type { OutputUnit, Validator } from "@hyperjump/json-schema"
import { buildSchemaDocument } from "@hyperjump/json-schema/experimental"
import { setShouldValidateSchema, validate } from "@hyperjump/json-schema/openapi-3-1"
import { Effect } from "effect"
import { existsSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import YAML from "yaml"

/**
 * The spec lives in the `shared/` folder beside the repository, never inside it. The nearest
 * ancestor holding `shared/openai-openapi/openapi.yaml` wins, so the tests find it from a clone, a
 * git worktree or CI's checkout alike.
 */
const findSpec = (): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = path.join(dir, "shared", "openai-openapi", "openapi.yaml")
    if (existsSync(candidate)) return candidate
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error("shared/openai-openapi/openapi.yaml was not found beside the repository")
    dir = parent
  }
}

export const specPath = findSpec()

const specUrl = pathToFileURL(specPath).href

// The document is validated as instances are checked against it, not as a whole: a handful of
// schemas outside Chat Completions (fine-tuning hyperparameters) still use OpenAPI 3.0's boolean
// `exclusiveMinimum`, which the 3.1 meta-schema rejects and which we have no say over.
setShouldValidateSchema(false)

addMediaTypePlugin("application/openapi+yaml", {
  parse: async (response) =>
    buildSchemaDocument(
      YAML.parse(await response.text()),
      response.url,
      "https://spec.openapis.org/oas/3.1/schema-base"
    ),
  fileMatcher: (path) => Promise.resolve(path.endsWith("openapi.yaml"))
})

export type JsonSchema = { readonly [key: string]: unknown }

export interface OpenApiDocument {
  readonly components: { readonly schemas: Readonly<Record<string, JsonSchema>> }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** The parsed document, for generating instances from its schemas. */
export const loadDocument = (): OpenApiDocument => {
  const doc: unknown = YAML.parse(readFileSync(specPath, "utf8"))
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
