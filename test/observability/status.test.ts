import * as HttpApp from "@effect/platform/HttpApp"
import { assert, describe, it } from "@effect/vitest"
import { ChatCompletion, Fallback } from "@resilient-llm/core"
import { FakeProvider } from "@resilient-llm/testing"
import { Effect } from "effect"
import * as Fake from "../support/Fake.js"
import { StatusRoutes } from "./StatusPage.js"

describe("Observability.snapshot as a status page", () => {
  it.scopedLive("serves per-model counts, error rates and latencies of real calls", () =>
    Effect.gen(function*() {
      const primary = "status-primary"
      const backup = "status-backup"
      const fake = yield* Fake.start({
        models: { [primary]: { script: [FakeProvider.serverError(503), FakeProvider.ok] }, [backup]: {} }
      })
      const complete = Fallback.chain([primary, backup])
      const served = yield* Effect.forEach(
        [1, 2, 3],
        () => Effect.map(complete(ChatCompletion.prompt("hi")), (s) => s.model)
      ).pipe(Effect.provide(Fake.client(fake.url)))
      // the first call fails over to the backup, then the primary serves
      assert.deepStrictEqual(served, [backup, primary, primary])

      const handler = HttpApp.toWebHandler(StatusRoutes)
      const response = yield* Effect.promise(() => handler(new Request("http://status.local/status/models")))
      assert.strictEqual(response.status, 200)
      const rows: ReadonlyArray<Record<string, unknown>> = yield* Effect.promise(() => response.json())
      const byModel = new Map(rows.map((row) => [row.model, row]))
      assert.deepInclude(byModel.get(primary), {
        requests: 3,
        errorRate: 1 / 3,
        outcomes: { ServerError: 1, success: 2 }
      })
      assert.deepInclude(byModel.get(backup), { requests: 1, errorRate: 0, outcomes: { success: 1 } })
      assert.isNumber(byModel.get(primary)?.p95Ms)
    }))
})
