import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { RedisServer } from "@resilient-llm/testing"
import { Effect, References } from "effect"
import * as Render from "../src/Render.js"
import * as Shared from "../src/Shared.js"

describe("the shared act (pnpm demo --redis URL)", () => {
  it.live(
    "two instances share breakers, budgets, limits and experiments through one Redis",
    () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.make()
        const report = yield* Shared.run(server.url)
        assert.deepStrictEqual(report.breaker, {
          failuresInA: 3,
          stateInA: "open",
          stateInB: "open",
          refusedInB: true,
          requestsFromB: 0
        })
        assert.isTrue(report.budget.refusedInB)
        assert.deepStrictEqual(report.rateLimit, { rpm: 2, grantedToA: 2, refusedInB: true })
        assert.deepStrictEqual(report.experiment, { callsByA: 12, callsByB: 8, summaryInA: 20, summaryInB: 20 })
        const text = Render.strip(Shared.render(report, Render.style(false)).join("\n"))
        assert.include(text, "6. Two instances, one view")
        assert.include(text, "B's call was refused at once")
      }).pipe(
        Effect.scoped,
        Effect.provide(NodeHttpClient.layerUndici),
        Effect.provideService(References.MinimumLogLevel, "None")
      ),
    { timeout: 60_000 }
  )
})
