import { assert, describe, it } from "@effect/vitest"
import { GatewayConfig } from "@resilient-llm/gateway"
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../../", import.meta.url))
const sample = readFileSync(`${root}gateway.yaml`, "utf8")

describe("the sample configuration", () => {
  it("is the one the README shows", () => {
    const readme = readFileSync(`${root}README.md`, "utf8")
    const blocks = Array.from(readme.matchAll(/^```yaml\n([\s\S]*?)^```$/gm), (match) => match[1])
    assert.include(blocks, sample)
  })

  it.effect("is valid, runs on the built-in fake provider alone, and its key is the README's", () =>
    Effect.gen(function*() {
      const config = yield* GatewayConfig.parse(sample, { source: "gateway.yaml" })
      for (const provider of Object.values(config.providers)) assert.isDefined(provider.fake)
      assert.deepStrictEqual(Object.keys(config.models), ["chat", "support-ab", "best"])
      assert.strictEqual(config.keys?.[0].sha256, createHash("sha256").update("sk-gateway-demo").digest("hex"))
    }))
})
