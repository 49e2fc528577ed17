/**
 * Values generated from a JSON Schema of the OpenAPI document, as a fast-check arbitrary: the
 * subset of JSON Schema the Chat Completions schemas use (`$ref`, `type`, `enum`, `const`,
 * `properties`, `required`, `additionalProperties`, `items`, `minItems`/`maxItems`, `anyOf`,
 * `oneOf`, `allOf`, numeric bounds). What it produces is only a candidate: the tests keep the
 * values the standard validator accepts, so a mistake here can cost coverage but never let an
 * invalid value through as a conforming one.
 */
import * as fc from "fast-check"
import { isRecord, type JsonSchema, type OpenApiDocument } from "./openApi.js"

export interface Options {
  /** How many `$ref`s deep to follow before generating only required fields. */
  readonly maxDepth?: number
  /** Whether objects that allow it get a field the schema does not name, as providers add. */
  readonly extraFields?: boolean
}

const schemaArray = (u: unknown): ReadonlyArray<JsonSchema> => Array.isArray(u) ? u.filter(isRecord) : []

const numberOr = (u: unknown, fallback: number): number => typeof u === "number" ? u : fallback

export const arbitrary = (
  document: OpenApiDocument,
  root: JsonSchema,
  options: Options = {}
): fc.Arbitrary<unknown> => {
  const maxDepth = options.maxDepth ?? 4
  const extraFields = options.extraFields ?? true

  const resolve = (ref: string): JsonSchema => {
    const name = ref.replace(/^#\/components\/schemas\//, "")
    const schema = document.components.schemas[name]
    if (schema === undefined) throw new Error(`unknown $ref ${ref}`)
    return schema
  }

  const go = (schema: JsonSchema, depth: number): fc.Arbitrary<unknown> => {
    if (typeof schema.$ref === "string") return go(resolve(schema.$ref), depth + 1)
    if ("const" in schema) return fc.constant(schema.const)
    if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum)
    const alternatives = [...schemaArray(schema.anyOf), ...schemaArray(schema.oneOf)]
    if (alternatives.length > 0) return fc.oneof(...alternatives.map((s) => go(s, depth)))
    const all = schemaArray(schema.allOf)
    if (all.length > 0) {
      return fc.tuple(...all.map((s) => go(s, depth))).map((parts) =>
        Object.assign({}, ...parts.filter((part) => isRecord(part)))
      )
    }
    const type = schema.type
    if (Array.isArray(type)) {
      return fc.oneof(...type.filter((t) => typeof t === "string").map((t) => go({ ...schema, type: t }, depth)))
    }
    switch (type) {
      case "null":
        return fc.constant(null)
      case "boolean":
        return fc.boolean()
      case "integer":
        // fast-check's integers are 32-bit (wider bounds, like `seed`'s ±2^63, never finish)
        return fc.integer({
          min: Math.max(numberOr(schema.minimum, 0), -(2 ** 31)),
          max: Math.min(numberOr(schema.maximum, 2_000_000_000), 2 ** 31 - 1)
        })
      case "number":
        return fc.double({
          min: numberOr(schema.minimum, -1e6),
          max: numberOr(schema.maximum, 1e6),
          noNaN: true,
          noDefaultInfinity: true
        })
      case "string": {
        // Short strings: a `maxLength` of 10 MB is a limit, not a size worth generating (fast-check
        // would draw lengths up to it).
        const minLength = numberOr(schema.minLength, 0)
        return fc.string({ minLength, maxLength: Math.max(minLength, Math.min(numberOr(schema.maxLength, 24), 24)) })
      }
      case "array": {
        const items = isRecord(schema.items) ? go(schema.items, depth) : fc.jsonValue({ maxDepth: 1 })
        const minLength = numberOr(schema.minItems, 0)
        const maxLength = Math.max(minLength, Math.min(numberOr(schema.maxItems, 3), minLength + 3))
        return fc.array(items, { minLength, maxLength: depth > maxDepth ? minLength : maxLength })
      }
      default:
        if (type === "object" || isRecord(schema.properties)) return object(schema, depth)
        return fc.jsonValue({ maxDepth: 2 })
    }
  }

  const object = (schema: JsonSchema, depth: number): fc.Arbitrary<unknown> => {
    const properties = isRecord(schema.properties) ? schema.properties : {}
    const required = new Set(Array.isArray(schema.required) ? schema.required.filter((r) => typeof r === "string") : [])
    const keys = Object.keys(properties).filter((key) => depth <= maxDepth || required.has(key))
    const fields: Record<string, fc.Arbitrary<unknown>> = {}
    for (const key of keys) {
      const property = properties[key]
      if (isRecord(property)) fields[key] = go(property, depth)
    }
    const record = fc.record(fields, { requiredKeys: keys.filter((key) => required.has(key)) })
    if (Object.keys(properties).length === 0 && schema.additionalProperties !== false) {
      const values = isRecord(schema.additionalProperties)
        ? go(schema.additionalProperties, depth)
        : fc.string({ maxLength: 8 })
      return fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), values, { maxKeys: 3 })
    }
    if (!extraFields || schema.additionalProperties === false) return record
    return fc.tuple(record, fc.option(fc.jsonValue({ maxDepth: 1 }), { nil: undefined })).map(([value, extra]) =>
      extra === undefined ? value : { ...value, x_provider_extension: extra }
    )
  }

  return go(root, 0)
}
