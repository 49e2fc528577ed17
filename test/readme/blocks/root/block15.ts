import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { CircuitBreaker, Experiment, Stores } from "@resilient-llm/core"
import { Effect, Layer } from "effect"

// every instance of billing-api in production shares these
const SharedStores = Stores.layerRedis({
  prefix: "billing-api:prod:", // required: one per application and environment
  timeout: "50 millis", // the longest any call waits for Redis (default 100 millis)
  retryAfter: "1 second", // after a failure, calls skip Redis this long, then one tries it again
  expireAfterIdle: "7 days" // keys not written this long expire (the default)
}).pipe(Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379", disableOfflineQueue: true })))

// breakers and experiments read the store when they are built, limits and budgets when they are made
const Breakers = CircuitBreaker.layer({ trip: CircuitBreaker.consecutiveFailures(5) }).pipe(
  Layer.provide(SharedStores)
)
const program = Effect.gen(function*() {
  const experiment = yield* Experiment.make({
    name: "summarizer-2025-06",
    assignment: "sticky",
    variants: [{ name: "control", model: "gpt-4o", weight: 0.8 }, { name: "challenger", model: "claude", weight: 0.2 }]
  })
  return yield* experiment.summary // every instance's calls
}).pipe(Effect.scoped, Effect.provide(SharedStores))
