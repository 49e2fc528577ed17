import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as Path from "node:path"
import YAML from "yaml"
import { fixturePath, loadDocument, readSpec, specPath } from "./openApi.js"
import { closure, schemasUsed } from "./specParts.js"

// The parts of the OpenAI spec live in the repository, say where they came from, hold exactly
// what the tests use, and a missing or damaged copy stops the tests with a message, never
// silently.

const folder = Path.dirname(fixturePath)
const fixtureText = readFileSync(fixturePath, "utf8")

const withFile = <A>(content: string, f: (path: string) => A): A => {
  const dir = mkdtempSync(Path.join(tmpdir(), "resilient-llm-spec-"))
  const path = Path.join(dir, "openapi.yaml")
  writeFileSync(path, content)
  try {
    return f(path)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const failure = (f: () => unknown): string => {
  try {
    f()
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
  return assert.fail("expected a failure")
}

describe("the OpenAI spec fixture", () => {
  it("is the one in the repository, unless OPENAI_OPENAPI_SPEC names another", () => {
    if (process.env.OPENAI_OPENAPI_SPEC === undefined || process.env.OPENAI_OPENAPI_SPEC === "") {
      assert.strictEqual(specPath, fixturePath)
    }
    assert.isTrue(fixturePath.endsWith(Path.join("test", "conformance", "openai-openapi", "openapi.yaml")))
  })

  it("says where it came from and under which licence, the same in its header and SOURCE.md", () => {
    const commit = fixtureText.match(
      /^# source: https:\/\/github\.com\/openai\/openai-openapi, commit ([0-9a-f]{7,40})/m
    )
    assert.isNotNull(commit, "the header names the upstream commit")
    const sha = fixtureText.match(/^# source sha256: ([0-9a-f]{64})$/m)
    assert.isNotNull(sha, "the header has the upstream file's SHA-256")
    const source = readFileSync(Path.join(folder, "SOURCE.md"), "utf8")
    assert.include(source, `\`${commit![1]}\``)
    assert.include(source, sha![1])
    const licence = readFileSync(Path.join(folder, "LICENSE"), "utf8")
    assert.include(licence, "MIT License")
    assert.include(licence, "Permission is hereby granted, free of charge")
    const doc = YAML.parse(fixtureText)
    assert.deepStrictEqual(doc.info.license, { name: "MIT", identifier: "MIT" })
  })

  it("holds exactly the schemas the tests use and what they refer to", () => {
    const { schemas } = YAML.parse(fixtureText).components
    const needed = closure(schemas, schemasUsed)
    assert.deepStrictEqual([...needed].sort(), Object.keys(schemas).sort())
    for (const name of schemasUsed) assert.isDefined(schemas[name], name)
  })

  it("a missing file fails loudly, saying how to restore it", () => {
    const missing = `${fixturePath}.missing`
    const message = failure(() => readSpec(missing))
    assert.include(message, `${missing} cannot be read`)
    assert.include(message, "OPENAI_OPENAPI_SPEC")
  })

  it("a damaged or incomplete file fails loudly", () => {
    assert.include(failure(() => withFile("openapi: [3.1.0\n", readSpec)), "is not valid YAML")
    assert.include(failure(() => withFile("openapi: 3.1.0\n", readSpec)), "has no components.schemas")
    const doc = YAML.parse(fixtureText)
    delete doc.components.schemas["ChatCompletionMessageToolCalls"]
    const incomplete = failure(() => withFile(YAML.stringify(doc), readSpec))
    assert.include(incomplete, "is incomplete")
    assert.include(incomplete, "ChatCompletionMessageToolCalls")
  })

  it("is what the tests read, whole", () => {
    assert.deepStrictEqual(JSON.parse(readSpec(fixturePath)), YAML.parse(fixtureText))
    if (specPath === fixturePath) {
      assert.deepStrictEqual(loadDocument(), { components: YAML.parse(fixtureText).components })
    }
  })
})
