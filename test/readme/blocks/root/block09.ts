import { ChatClient, CircuitBreaker } from "@resilient-llm/core"
import { Effect, Schedule } from "effect"

const BreakerLive = CircuitBreaker.layer({
  // open when half the calls of the last minute failed, once there were at least 20
  trip: CircuitBreaker.failureRate({ threshold: 0.5, window: "1 minute", minimumCalls: 20 }),
  // 30 s, then 1, 2, 4 minutes... capped at 10 while the probes keep failing; 30 s again once closed
  breakDuration: Schedule.min([Schedule.exponential("30 seconds"), Schedule.spaced("10 minutes")]),
  slowCallThreshold: "20 seconds" // an answer slower than this counts as a failure
})

// wrap each single attempt, so that with retries every attempt counts
const ask = (model: string, content: string) =>
  ChatClient.create({ model, messages: [{ role: "user", content }] }).pipe(
    Effect.timeout("30 seconds"), // inside the breaker: a hang is a failure of the model
    CircuitBreaker.protect(model)
  )
