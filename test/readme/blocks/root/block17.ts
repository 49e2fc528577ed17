import { ChatCompletion, Experiment } from "@resilient-llm/core"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const experiment = yield* Experiment.make({
    name: "support-bot-2025-06",
    variants: [
      { name: "control", model: "gpt-4o", weight: 9 }, // weights are relative: 90% / 10%
      { name: "challenger", model: "claude-sonnet", weight: 1 }
    ],
    assignment: "sticky" // a user keeps their variant, across calls and processes
  })

  const served = yield* experiment.complete(ChatCompletion.prompt("Where is my order?"), { key: "user-42" })
  // served.completion, served.variant, served.model, served.callId

  // later, when a judge or a person has rated the answer (higher is better)
  yield* experiment.score(served.callId, 4)

  const summary = yield* experiment.summary
}).pipe(Effect.scoped) // the experiment's shadow calls live in this scope
