// the gateway inside an Effect program, from a file it watches
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Gateway } from "@resilient-llm/gateway"
import { Effect, Layer } from "effect"

const GatewayLive = Gateway.layer({ path: "gateway.yaml", port: 8787 }).pipe(
  Layer.provide([NodeHttpClient.layerUndici, NodeFileSystem.layer])
)

const program = Effect.gen(function*() {
  const gateway = yield* Gateway.Gateway
  const status = yield* gateway.status // what the status page shows, as data
  yield* Effect.log(`${gateway.url}: generation ${status.generation}, ${status.inFlight} in flight`)
})

// Layer.launch(GatewayLive) runs it until interrupted; closing it drains requests in flight
export const main = program.pipe(Effect.provide(GatewayLive))
