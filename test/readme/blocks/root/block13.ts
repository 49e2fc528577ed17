import { ChatCompletion, Deployments, Fallback } from "@resilient-llm/core"
import { Effect } from "effect"

export const withItsCost = Effect.suspend(() => {
  let costUsd = 0
  return Fallback.chain(["gpt-4o", "claude-sonnet"])(ChatCompletion.prompt("Hello")).pipe(
    Deployments.observeCalls((call) => {
      costUsd += call.costUsd ?? 0
    }),
    Effect.map((served) => ({ served, costUsd }))
  )
})
