import { CircuitBreaker } from "@resilient-llm/core"
import { Effect } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"

const StatusRoute = HttpRouter.add(
  "GET",
  "/status/models",
  Effect.map(CircuitBreaker.snapshot, (circuits) =>
    HttpServerResponse.jsonUnsafe(circuits.map((c) => ({
      model: c.key,
      state: c.state,
      since: new Date(c.since).toISOString(),
      nextProbe: c.openUntil === undefined ? null : new Date(c.openUntil).toISOString()
    }))))
)
