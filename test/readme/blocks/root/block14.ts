import { Deployments } from "@resilient-llm/core"
import { Effect } from "effect"

export const deploymentStatus = Effect.flatMap(Deployments.Deployments, (router) => router.snapshot).pipe(
  Effect.map((deployments) =>
    deployments.map((d) => ({
      model: d.model,
      deployment: d.deployment,
      circuit: d.circuit, // closed, open, half-open, isolated
      inFlight: d.inFlight,
      latencyMs: d.latencyMs, // moving average of recent successes
      rpmNow: d.limits.rpm, // after the adaptive factor
      coolingDownMs: d.limits.cooldownMs
    }))
  )
)
