import { assert, describe, it } from "@effect/vitest"
import { GatewayConfig } from "@resilient-llm/gateway"
import { Effect } from "effect"

const valid = `server:
  port: 0
providers:
  openai:
    baseUrl: https://api.openai.com/v1
    apiKeyEnv: OPENAI_API_KEY
    models: ["gpt-*"]
  local:
    fake:
      seed: 7
      models:
        fast: { reply: "Hello!", latency: 5 millis }
deployments:
  gpt-4o:
    - { provider: openai, model: gpt-4o-2024-08-06, weight: 2 }
    - { provider: openai }
models:
  chat:
    fallback: [gpt-4o, fast]
    timeout: 20 seconds
    retry: { retries: 2 }
    breaker: { consecutiveFailures: 3, breakDuration: 30 seconds }
  ab:
    experiment:
      assignment: sticky
      variants:
        - { name: control, model: gpt-4o, weight: 9 }
        - { name: challenger, model: fast, weight: 1 }
  best:
    bestOfN:
      models: [gpt-4o, fast]
      judge: { model: gpt-4o-mini }
keys:
  - name: team-a
    keyEnv: GATEWAY_KEY_TEAM_A
    models: [chat, ab]
    budget: { tokens: 100000, period: 1 day }
  - name: dev
    sha256: 0b006f9beb977623c3f78ec1be7fe09519ecfab87240f4f263e4164f76667e55
    models: ["*"]
`

const issuesOf = (text: string) =>
  Effect.map(Effect.flip(GatewayConfig.parse(text, { source: "gateway.yaml" })), (error) => error.issues)

describe("GatewayConfig.parse", () => {
  it.effect("reads a whole configuration", () =>
    Effect.gen(function*() {
      const config = yield* GatewayConfig.parse(valid)
      assert.deepStrictEqual(Object.keys(config.models), ["chat", "ab", "best"])
      assert.deepStrictEqual(config.models["chat"].fallback, ["gpt-4o", "fast"])
      assert.deepStrictEqual(GatewayConfig.deploymentsOf(config), ["fast", "gpt-4o"])
    }))

  it.effect("reads JSON too", () =>
    Effect.gen(function*() {
      const json = JSON.stringify(
        {
          providers: { local: { fake: { models: { a: {} } } } },
          models: { chat: { fallback: ["a"] } },
          allowUnauthenticated: true
        },
        null,
        2
      )
      const config = yield* GatewayConfig.parse(json)
      assert.deepStrictEqual(config.models["chat"].fallback, ["a"])
    }))

  it.effect("names the line, the column and the field of a wrong value", () =>
    Effect.gen(function*() {
      const issues = yield* issuesOf(valid.replace("timeout: 20 seconds", "timeout: soon"))
      assert.strictEqual(issues.length, 1)
      assert.strictEqual(issues[0].field, "models.chat.timeout")
      assert.strictEqual(issues[0].line, 20)
      assert.strictEqual(issues[0].column, 5)
      assert.match(issues[0].message, /positive duration/)
    }))

  it.effect("a misspelt option is an unknown field, not ignored", () =>
    Effect.gen(function*() {
      const issues = yield* issuesOf(valid.replace("retry: { retries: 2 }", "retry: { retires: 2 }"))
      assert.deepStrictEqual(issues.map((i) => [i.field, i.line, i.message]), [
        ["models.chat.retry.retires", 21, "unknown field"]
      ])
    }))

  it.effect("every mistake is reported, references included", () =>
    Effect.gen(function*() {
      const text = valid
        .replace("fallback: [gpt-4o, fast]", "fallback: [gpt-4o, nope]")
        .replace("- { provider: openai }", "- { provider: azure }")
        .replace("models: [chat, ab]", "models: [chat, abc]")
      const issues = yield* issuesOf(text)
      assert.deepStrictEqual(issues.map((i) => [i.field, i.line]), [
        ["deployments.gpt-4o[1].provider", 16],
        ["models.chat.fallback[1]", 19],
        ["keys[0].models[1]", 36]
      ])
      const error = yield* Effect.flip(GatewayConfig.parse(text, { source: "gateway.yaml" }))
      assert.include(error.message, "gateway.yaml")
      assert.include(
        error.message,
        `line 19, column 24: models.chat.fallback[1]: no deployment or provider serves "nope"`
      )
    }))

  it.effect("YAML syntax errors have their line", () =>
    Effect.gen(function*() {
      const issues = yield* issuesOf("providers:\n  a: [1, 2\nmodels: {}\n")
      assert.isAbove(issues.length, 0)
      assert.isNumber(issues[0].line)
    }))

  it.effect("a key in the file is refused, and a configuration without keys must say so", () =>
    Effect.gen(function*() {
      const issues = yield* issuesOf(
        "providers:\n  p:\n    baseUrl: https://x.example/v1\n    headers: { Authorization: Bearer sk-1 }\n    models: [m]\nmodels:\n  chat: { fallback: [m] }\n"
      )
      assert.deepStrictEqual(issues.map((i) => i.field), ["providers.p.headers.Authorization", ""])
      assert.match(issues[1].message, /allowUnauthenticated/)
    }))
})
