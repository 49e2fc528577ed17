import { assert, describe, it } from "@effect/vitest"
import { Budget, LlmError } from "@resilient-llm/core"
import { Effect, Layer, Option, Schema } from "effect"
import { TestClock } from "effect/testing"
import { eachStore } from "./support/Stores.js"

const day = 86_400_000

const closeTo = (actual: number, expected: number) =>
  assert.isTrue(Math.abs(actual - expected) < 1e-9, `${actual} is not ${expected}`)

eachStore("Budget", (it) => {
  const budget = Budget.make

  it.effect("admits calls until the key has spent its limit, then refuses until the next period", () =>
    Effect.gen(function*() {
      const b = yield* budget({ limitUsd: 1, period: "1 day" })
      const first = yield* b.reserve({ key: "team-a", model: "gpt-4o", estimateUsd: 0.4 })
      yield* b.settle(first, 0.7) // it cost more than estimated
      const second = yield* b.reserve({ key: "team-a", model: "gpt-4o", estimateUsd: 0.4 })
      yield* b.settle(second, 0.5) // 1.2 spent: past the limit, the call that crossed it was admitted
      const status = yield* b.status("team-a")
      closeTo(status.spentUsd, 1.2)
      assert.deepStrictEqual([status.limitUsd, status.resetsAt], [1, day])
      const refused = yield* Effect.flip(b.reserve({ key: "team-a", model: "claude", estimateUsd: 0.01 }))
      assert.instanceOf(refused, LlmError.BudgetExceededError)
      assert.deepStrictEqual(
        {
          model: refused.model,
          key: refused.key,
          limit: refused.limitUsd,
          at: refused.resetsAt
        },
        { model: "claude", key: "team-a", limit: 1, at: day }
      )
      closeTo(refused.spentUsd, 1.2)
      // another key has its own budget
      yield* b.reserve({ key: "team-b", model: "gpt-4o", estimateUsd: 0.4 })
      // the next day starts at 0
      yield* TestClock.adjust("1 day")
      const next = yield* b.reserve({ key: "team-a", model: "gpt-4o", estimateUsd: 0.1 })
      assert.strictEqual(next.period, 1)
      assert.deepStrictEqual(yield* b.status("team-a"), {
        key: "team-a",
        spentUsd: 0.1,
        limitUsd: 1,
        resetsAt: 2 * day
      })
    }))

  it.effect("sets estimates aside, so concurrent calls cannot all slip under the limit", () =>
    Effect.gen(function*() {
      const b = yield* budget({ limitUsd: 1, period: "1 hour" })
      const results = yield* Effect.forEach(
        Array.from({ length: 10 }, (_, i) => i),
        () => Effect.result(b.reserve({ key: "k", model: "m", estimateUsd: 0.3 })),
        { concurrency: "unbounded" }
      )
      // 0, 0.3, 0.6 and 0.9 are under 1: four admitted, six refused
      assert.strictEqual(results.filter((r) => r._tag === "Success").length, 4)
    }))

  it.effect("gives the estimate back when a call cost nothing, and has per-key limits", () =>
    Effect.gen(function*() {
      const b = yield* budget({ limitUsd: 0.5, period: "1 day", keys: { vip: 100, blocked: 0 } })
      assert.strictEqual(b.limitOf("vip"), 100)
      assert.strictEqual(b.limitOf("anyone"), 0.5)
      const r = yield* b.reserve({ key: "anyone", model: "m", estimateUsd: 0.45 })
      yield* b.settle(r, 0)
      assert.strictEqual((yield* b.status("anyone")).spentUsd, 0)
      assert.instanceOf(
        yield* Effect.flip(b.reserve({ key: "blocked", model: "m", estimateUsd: 0 })),
        LlmError.BudgetExceededError
      )
      yield* b.reserve({ key: "vip", model: "m", estimateUsd: 50 })
      assert.strictEqual((yield* b.status("vip")).spentUsd, 50)
    }))
})

describe("Budget", () => {
  it.effect("a failing store admits the call and logs, rather than refusing everyone", () =>
    Effect.gen(function*() {
      const failing = Layer.succeed(Budget.BudgetStore, {
        reserve: () => Effect.fail(new Budget.BudgetStoreError({ reason: "connection refused" })),
        add: () => Effect.fail(new Budget.BudgetStoreError({ reason: "connection refused" })),
        spent: () => Effect.fail(new Budget.BudgetStoreError({ reason: "connection refused" }))
      })
      const b = yield* Budget.make({ limitUsd: 0, period: "1 day" }).pipe(Effect.provide(failing))
      const r = yield* b.reserve({ key: "k", model: "m", estimateUsd: 1 })
      assert.strictEqual(r.amountUsd, 0)
      yield* b.settle(r, 2)
      assert.strictEqual((yield* Effect.flip(b.status("k")))._tag, "BudgetStoreError")
    }))

  it.effect("withKey sets the key its effect's calls are charged to", () =>
    Effect.gen(function*() {
      assert.isUndefined(yield* Budget.CurrentKey)

      const current = Effect.gen(function*() {
        return yield* Budget.CurrentKey
      })
      assert.strictEqual(yield* Budget.withKey(current, "team-a"), "team-a")
    }))

  it("Config rejects negative limits and periods that are not positive durations", () => {
    const decode = Schema.decodeUnknownOption(Budget.Config)
    assert.isTrue(Option.isSome(decode({ limitUsd: 5, period: "1 day", keys: { a: 1 } })))
    for (
      const bad of [
        { limitUsd: -1, period: "1 day" },
        { limitUsd: 1, period: "0 seconds" },
        { limitUsd: 1, period: "soon" },
        { limitUsd: 1, period: "1 day", keys: { a: -2 } }
      ]
    ) {
      assert.isTrue(Option.isNone(decode(bad)), JSON.stringify(bad))
    }
  })
})
