import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { assert, it } from "@effect/vitest"
import { Budget, Stores } from "@resilient-llm/core"
import { RedisServer } from "@resilient-llm/testing"
import { Effect, Layer } from "effect"

it.live("two instances spend from one budget", () =>
  Effect.gen(function*() {
    const server = yield* RedisServer.make()
    const instance = Stores.layerRedis({ prefix: "test:" }).pipe(
      Layer.provide(NodeRedis.layer({ url: server.url, disableOfflineQueue: true }))
    )
    const a = yield* Budget.make({ limitUsd: 1, period: "1 day" }).pipe(Effect.provide(instance))
    const b = yield* Budget.make({ limitUsd: 1, period: "1 day" }).pipe(Effect.provide(instance))
    yield* a.reserve({ key: "team", model: "gpt-4o", estimateUsd: 1 })
    const refused = yield* Effect.flip(b.reserve({ key: "team", model: "gpt-4o", estimateUsd: 0.1 }))
    assert.strictEqual(refused._tag, "BudgetExceededError")
  }).pipe(Effect.scoped))
