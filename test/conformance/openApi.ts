/**
 * The parts of the official OpenAI OpenAPI document that the conformance tests use, kept in the
 * repository at `test/conformance/openai-openapi/openapi.yaml` (its origin and licence are in the
 * `SOURCE.md` and `LICENSE` beside it; `pnpm spec:extract` rebuilds it from a full upstream copy).
 * `OPENAI_OPENAPI_SPEC` may name a full upstream `openapi.yaml` instead, to check against a newer
 * release. Also validators for its schemas, built by a standard OpenAPI 3.1 JSON Schema validator
 * (`@hyperjump/json-schema`).
 *
 * A missing, unreadable or incomplete document fails every test file that imports this module, at
 * import, with a message that says which file and what to do: the tests never pass or skip
 * without it.
 */
import { addMediaTypePlugin } from "@hyperjump/browser"
import type { OutputUnit, Validator } from "@hyperjump/json-schema"
import { buildSchemaDocument } from "@hyperjump/json-schema/experimental"
import { setShouldValidateSchema, validate } from "@hyperjump/json-schema/openapi-3-1"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import YAML from "yaml"
import { closure, fixturePath, isRecord, type JsonSchema, schemasUsed } from "./specParts.js"

export { fixturePath, isRecord, type JsonSchema, schemasUsed }

export interface OpenApiDocument {
  readonly components: { readonly schemas: Readonly<Record<string, JsonSchema>> }
}

const restore = "restore it with `git checkout -- test/conformance/openai-openapi`, or rebuild it from a full " +
  "upstream openapi.yaml with `pnpm spec:extract <path>` (test/conformance/openai-openapi/SOURCE.md says which)"

const reason = (error: unknown): string => error instanceof Error ? error.message : String(error)

const findSpec = (): string => {
  const fromEnv = process.env.OPENAI_OPENAPI_SPEC
  return fromEnv !== undefined && fromEnv !== "" ? Path.resolve(fromEnv) : fixturePath
}

export const specPath = findSpec()

const specUrl = pathToFileURL(specPath).href

/**
 * Reads and checks the document at `path`: it parses, has `components.schemas`, and holds every
 * schema of `schemasUsed` with everything they refer to. Returns it as JSON text; any failure
 * throws, naming the file and how to put it right.
 */
export const readSpec = (path: string): string => {
  const remedy = path === fixturePath ? restore : `fix or unset OPENAI_OPENAPI_SPEC (${path})`
  let text: string
  try {
    text = readFileSync(path, "utf8")
  } catch (error) {
    throw new Error(
      `the OpenAI OpenAPI document ${path} cannot be read (${reason(error)}): ${remedy}`
    )
  }
  let doc: unknown
  try {
    doc = YAML.parse(text)
  } catch (error) {
    throw new Error(`the OpenAI OpenAPI document ${path} is not valid YAML (${reason(error)}): ${remedy}`)
  }
  if (!isRecord(doc) || !isRecord(doc.components) || !isRecord(doc.components.schemas)) {
    throw new Error(`the OpenAI OpenAPI document ${path} has no components.schemas: ${remedy}`)
  }
  try {
    closure(doc.components.schemas, schemasUsed)
  } catch (error) {
    throw new Error(`the OpenAI OpenAPI document ${path} is incomplete: ${reason(error)}: ${remedy}`)
  }
  return JSON.stringify(doc)
}

// read at import, so that a missing or broken document fails the test file before any test runs
const specJson = readSpec(specPath)

/** The spec as a fresh JSON value (each caller gets its own copy). */
const parsedSpec = (): unknown => JSON.parse(specJson)

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

/**
 * A validator for `#/components/schemas/<name>` of the official document. A schema the fixture
 * does not hold is a defect that says how to add it, never a validator that accepts everything.
 */
export const validator = (name: string): Effect.Effect<SchemaValidator> =>
  Effect.suspend(() =>
    isRecord(loadDocument().components.schemas[name])
      ? Effect.promise(() => validate(`${specUrl}#/components/schemas/${name}`))
      : Effect.die(
        new Error(
          `schema ${name} is not in ${specPath}: add it to schemasUsed in test/conformance/specParts.ts ` +
            "and run `pnpm spec:extract <path to a full upstream openapi.yaml>`"
        )
      )
  ).pipe(
    Effect.map((compiled) => ({
      name,
      errors: (value) => {
        const output = compiled(toJson(value), "BASIC")
        return output.valid ? [] : (output.errors ?? [])
      }
    }))
  )
