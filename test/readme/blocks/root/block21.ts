import { Observability } from "@resilient-llm/core"
import { Effect } from "effect"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerResponse from "effect/http/HttpServerResponse"

// one row per model: request count, error rate, outcomes by tag, recent latency quantiles
export const modelStatus = Observability.snapshot().pipe(
  Effect.map((models) =>
    models.map((m) => ({
      model: m.model,
      requests: m.requests,
      errorRate: m.errorRate,
      outcomes: m.outcomes, // { success: 812, RateLimitError: 9, TimeoutError: 2 }
      p50Ms: m.p50Ms,
      p95Ms: m.p95Ms
    }))
  )
)

export const StatusRoutes = HttpRouter.add(
  "GET",
  "/status/models",
  Effect.flatMap(modelStatus, (rows) => HttpServerResponse.json(rows))
)
