import { ChatCompletion, CircuitBreaker, Fallback } from "@resilient-llm/core"
import { Effect } from "effect"

const program = Effect.gen(function*() {
  const breaker = yield* CircuitBreaker.CircuitBreaker
  const complete = Fallback.chain(["gpt-4o", "claude-sonnet"], {
    timeout: "30 seconds",
    breaker,
    hedge: {
      // gpt-4o's p95 over its last 100 answers, between 1 and 10 s; 2 s until it has 20 answers
      delay: { percentile: 95, initial: "2 seconds", min: "1 second", max: "10 seconds" },
      maxInFlight: 20 // at most 20 hedges running at once, over every call of this chain
    }
  })
  const served = yield* complete(ChatCompletion.prompt("Summarise this ticket"))
  // gpt-4o hung: served.model === "claude-sonnet", and served.attempts is
  // [{ model: "gpt-4o", outcome: "cancelled", hedge: false, ... },
  //  { model: "claude-sonnet", outcome: "success", hedge: true, ... }]
})
