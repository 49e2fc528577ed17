import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"

// The README's observability examples are copies of type-checked, tested files: this keeps the
// copies honest. Every line of code in the section's TypeScript blocks (imports and comment lines
// aside) must be a line of one of those files.

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8")

const section = (readme: string, name: string) => {
  const start = readme.indexOf(`<!-- section:${name}:start -->`)
  const end = readme.indexOf(`<!-- section:${name}:end -->`)
  assert.isAtLeast(start, 0)
  assert.isAbove(end, start)
  return readme.slice(start, end)
}

const codeLines = (code: string) =>
  code.split("\n").map((line) => line.trim()).filter((line) =>
    line !== "" && !line.startsWith("//") && !line.startsWith("import ")
  )

describe("README section observability", () => {
  it("every TypeScript example is the code of an example file that tsc checks and a test runs", () => {
    const blocks = [...section(read("../../README.md"), "observability").matchAll(/```ts\n([\s\S]*?)```/g)].map((
      match
    ) => match[1])
    assert.strictEqual(blocks.length, 4, "status page, OpenTelemetry SDK, OTLP, alerts")
    const sources = new Set(
      ["./StatusPage.ts", "./OpenTelemetry.ts", "./Alerts.ts"].flatMap((file) => codeLines(read(file)))
    )
    for (const block of blocks) {
      const lines = codeLines(block)
      assert.isAbove(lines.length, 3)
      for (const line of lines) assert.isTrue(sources.has(line), `README line not in an example file: ${line}`)
    }
  })
})
