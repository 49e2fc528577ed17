import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Gateway, GatewayConfig } from "@resilient-llm/gateway"
import { Effect, Layer } from "effect"

const text = `
providers:
  local:
    fake:
      models:
        fast: { reply: "Hello!" }
models:
  chat: { fallback: [fast], timeout: 5 seconds }
allowUnauthenticated: true
`

export const check = GatewayConfig.parse(text, { source: "inline" }) // fails with every issue, by line

export const serve = Effect.gen(function*() {
  const gateway = yield* Gateway.make({ text, port: 0 })
  yield* Effect.log(`OpenAI base URL: ${gateway.url}/v1`)
  yield* gateway.apply(text.replace("Hello!", "Hi!")) // a reload, without dropping requests in flight
  return yield* Effect.never
}).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(NodeHttpClient.layerUndici, NodeFileSystem.layer)))
