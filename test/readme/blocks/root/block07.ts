import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { CircuitBreaker } from "@resilient-llm/core"
import { Effect } from "effect"

const StatusRoute = HttpRouter.get(
  "/status/models",
  Effect.map(CircuitBreaker.snapshot, (circuits) =>
    HttpServerResponse.unsafeJson(circuits.map((c) => ({
      model: c.key,
      state: c.state,
      since: new Date(c.since).toISOString(),
      nextProbe: c.openUntil === undefined ? null : new Date(c.openUntil).toISOString()
    }))))
)
