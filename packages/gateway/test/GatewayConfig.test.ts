import { assert, describe, it } from "@effect/vitest"
import { GatewayConfig } from "@resilient-llm/gateway"
import { Duration, Effect } from "effect"

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
    rateLimit: { rpm: 600, maxWait: 2 seconds }
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

describe("GatewayConfig.parse: deployments", () => {
  const routed = `providers:
  azure:
    baseUrl: https://example.openai.azure.com/openai/v1
    secretHeadersEnv: { api-key: AZURE_KEY }
    models: []
  openai:
    baseUrl: https://api.openai.com/v1
    apiKeyEnv: OPENAI_API_KEY
breaker: { consecutiveFailures: 5 }
deployments:
  gpt-4o:
    strategy: least-busy
    maxWait: 2 seconds
    breaker: { consecutiveFailures: 3, breakDuration: 15 seconds }
    deployments:
      - name: east
        provider: azure
        model: gpt-4o-prod
        weight: 3
        rpm: 600
        tpm: 150000
        adaptive: { decrease: 0.5, cooldown: 2 seconds }
        maxConcurrent: 32
        maxQueued: 8
        timeout: 20 seconds
        price: { input: 2.5, cachedInput: 1.25, output: 10 }
      - { name: openai-4o, provider: openai, model: gpt-4o, price: { input: 2.5, output: 10 }, adaptive: false }
  mini: [{ provider: openai, model: gpt-4o-mini }, { provider: azure, model: gpt-4o-mini, priority: 1 }]
  judge: { provider: openai, model: gpt-4o-mini, name: judge-mini }
models:
  chat: { fallback: [gpt-4o, mini], rateLimit: { rpm: 100, tpm: 50000 } }
allowUnauthenticated: true
`
  const issuesAt = (text: string) =>
    Effect.map(
      Effect.flip(GatewayConfig.parse(text, { source: "gateway.yaml" })),
      (error) => error.issues.map((i) => [i.line, i.field, i.message])
    )

  it.effect("reads a logical model's three forms: its routing options, a list, one deployment", () =>
    Effect.gen(function*() {
      const config = yield* GatewayConfig.parse(routed)
      const gpt = config.deployments?.["gpt-4o"]
      assert.isTrue(gpt !== undefined && "deployments" in gpt && gpt.strategy === "least-busy")
      assert.isTrue(Array.isArray(config.deployments?.["mini"]))
      assert.deepStrictEqual(config.deployments?.["judge"], {
        provider: "openai",
        model: "gpt-4o-mini",
        name: "judge-mini"
      })
      assert.deepStrictEqual(config.models["chat"].rateLimit, { rpm: 100, tpm: 50000 })
    }))

  it.effect("a deployment without a provider names its line and field", () =>
    Effect.gen(function*() {
      const issues = yield* issuesAt(
        routed.replace("      - name: east\n        provider: azure\n", "      - name: east\n")
      )
      assert.deepStrictEqual(issues, [[16, "deployments.gpt-4o.deployments[0].provider", "required, and missing"]])
    }))

  it.effect("weights all zero name the list of deployments", () =>
    Effect.gen(function*() {
      const issues = yield* issuesAt(
        routed.replace("weight: 3", "weight: 0").replace("name: openai-4o,", "name: openai-4o, weight: 0,")
      )
      assert.deepStrictEqual(issues, [[
        15,
        "deployments.gpt-4o.deployments",
        "every deployment has weight 0, so none would get traffic"
      ]])
    }))

  it.effect("a negative price names its line and field", () =>
    Effect.gen(function*() {
      const issues = yield* issuesAt(
        routed.replace("price: { input: 2.5, output: 10 }", "price: { input: -1, output: 10 }")
      )
      assert.strictEqual(issues.length, 1)
      assert.deepStrictEqual(issues[0].slice(0, 2), [27, "deployments.gpt-4o.deployments[1].price.input"])
      assert.match(String(issues[0][2]), /between 0 and 1000000/)
    }))

  it.effect("an entry's issues are its own form's: an unknown strategy, a misspelt field of one deployment", () =>
    Effect.gen(function*() {
      const issues = yield* issuesAt(
        routed.replace("strategy: least-busy", "strategy: fastest").replace(
          "model: gpt-4o-mini, name: judge-mini",
          "modle: gpt-4o-mini, name: judge-mini"
        )
      )
      assert.deepStrictEqual(issues.map((i) => i.slice(0, 2)), [
        [12, "deployments.gpt-4o.strategy"],
        [29, "deployments.judge.modle"]
      ])
      assert.match(String(issues[0][2]), /weighted.*least-busy.*lowest-latency.*cheapest/)
      assert.strictEqual(issues[1][2], "unknown field")
    }))

  it.effect("names are unique, a queue needs a bulkhead, cheapest needs prices, a provider must exist", () =>
    Effect.gen(function*() {
      const issues = yield* issuesAt(
        routed
          .replace("name: openai-4o,", "name: east,")
          .replace(", price: { input: 2.5, output: 10 }, adaptive: false", ", adaptive: false")
          .replace("        maxConcurrent: 32\n", "")
          .replace("strategy: least-busy", "strategy: cheapest")
          .replace("{ provider: azure, model: gpt-4o-mini, priority: 1 }", "{ provider: azur, model: gpt-4o-mini }")
      )
      assert.deepStrictEqual(issues.map((i) => i.slice(0, 2)), [
        [23, "deployments.gpt-4o.deployments[0].maxQueued"],
        [26, "deployments.gpt-4o.deployments[1].name"],
        [26, "deployments.gpt-4o.deployments[1]"],
        [27, "deployments.mini[1].provider"]
      ])
    }))

  it.effect("a breaker on a virtual model says where breakers are now; a rate limit needs rpm or tpm", () =>
    Effect.gen(function*() {
      const issues = yield* issuesAt(
        routed.replace("rateLimit: { rpm: 100, tpm: 50000 } }", "rateLimit: { maxWait: 1 second }, breaker: false }")
      )
      assert.deepStrictEqual(issues.map((i) => i.slice(0, 2)), [[31, "models.chat.breaker"]])
      assert.include(String(issues[0][2]), "breakers are per deployment")
      const limitIssues = yield* issuesAt(routed.replace("rateLimit: { rpm: 100, tpm: 50000 } }", "rateLimit: {} }"))
      assert.deepStrictEqual(limitIssues, [[31, "models.chat.rateLimit", "a rate limit needs rpm, tpm or both"]])
    }))

  it.effect("hedging on a fallback chain: a delay or a percentile; bad bounds, and hedging elsewhere, name the field", () =>
    Effect.gen(function*() {
      const hedged = (hedge: string) => routed.replace("rateLimit: { rpm: 100, tpm: 50000 } }", `hedge: ${hedge} }`)
      const fixed = yield* GatewayConfig.parse(hedged("{ delay: 150 millis, maxHedges: 2 }"))
      assert.deepStrictEqual(fixed.models["chat"].hedge, { delay: Duration.millis(150), maxHedges: 2 })
      const latency = yield* GatewayConfig.parse(
        hedged("{ delay: { percentile: 95, initial: 2 seconds, samples: 50, max: 5 seconds }, maxInFlight: 10 }")
      )
      assert.deepStrictEqual(latency.models["chat"].hedge, {
        delay: { percentile: 95, initial: Duration.seconds(2), samples: 50, max: Duration.seconds(5) },
        maxInFlight: 10
      })
      const together = yield* GatewayConfig.parse(hedged("{ delay: 0 millis }"))
      assert.deepStrictEqual(together.models["chat"].hedge, { delay: Duration.zero })
      const cases: ReadonlyArray<readonly [string, string, string]> = [
        ["{ delay: { percentile: 0, initial: 1 second } }", "delay.percentile", "Expected a value greater than 0"],
        [
          "{ delay: { percentile: 101, initial: 1 second } }",
          "delay.percentile",
          "Expected a value less than or equal to 100"
        ],
        ["{ delay: { percentile: 90 } }", "delay.initial", "required, and missing"],
        [
          "{ delay: { percentile: 90, initial: 1 second, samples: 10, minSamples: 20 } }",
          "delay.minSamples",
          "more than the 10 samples kept"
        ],
        [
          "{ delay: { percentile: 90, initial: 1 second, min: 2 seconds, max: 1 second } }",
          "delay.min",
          "more than max"
        ],
        ["{ delay: 1 second, maxHedges: 0 }", "maxHedges", "Expected a value greater than 0"],
        ["{ delay: 1 second, maxInFlight: 1.5 }", "maxInFlight", "Expected an integer"],
        ["{ maxHedges: 1 }", "delay", "required, and missing"]
      ]
      for (const [hedge, field, message] of cases) {
        assert.deepStrictEqual(yield* issuesAt(hedged(hedge)), [[31, `models.chat.hedge.${field}`, message]], hedge)
      }
      const unreadable = yield* issuesAt(hedged("{ delay: soon }"))
      assert.deepStrictEqual(unreadable.map((i) => i.slice(0, 2)), [[31, "models.chat.hedge.delay"]])
      const elsewhere = yield* issuesAt(
        routed.replace(
          "chat: { fallback: [gpt-4o, mini], rateLimit: { rpm: 100, tpm: 50000 } }",
          "chat: { bestOfN: { models: [gpt-4o, mini], judge: { model: judge } }, hedge: { delay: 1 second } }"
        )
      )
      assert.deepStrictEqual(elsewhere, [[
        31,
        "models.chat.hedge",
        "hedging is for fallback chains: give this virtual model a fallback, or remove hedge"
      ]])
    }))

  it.effect("a key's budget needs a limit", () =>
    Effect.gen(function*() {
      const issues = yield* issuesAt(
        routed.replace(
          "allowUnauthenticated: true\n",
          `keys:\n  - { name: a, sha256: ${"a".repeat(64)}, models: ["*"], budget: { period: 1 day } }\n`
        )
      )
      assert.deepStrictEqual(issues, [[
        33,
        "keys[0].budget",
        "a budget needs usd, requests, tokens, or several of them"
      ]])
    }))
})
