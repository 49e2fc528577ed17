import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Gateway } from "@resilient-llm/gateway"
import { Effect, Layer, Logger, References } from "effect"
import OpenAI from "openai"

export const gatewayKey = "sk-gateway-test-0123456789"
export const gatewayKeyHash = "9ecf69fb17a0c2d1573866b4941d6d36af031bc062857ee13376b553b4c405fd"

/** The layers a gateway needs, and no log output. */
export const GatewayDeps = Layer.mergeAll(NodeHttpClient.layerUndici, NodeFileSystem.layer)

export const quiet = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.provideService(References.MinimumLogLevel, "None"), Effect.provide(Logger.layer([])))

/** Starts a gateway on 127.0.0.1 and a free port from configuration text; it stops with the test's scope. */
export const start = (text: string) =>
  Effect.flatMap(Layer.build(GatewayDeps), (deps) => Gateway.make({ text, port: 0 }).pipe(Effect.provideContext(deps)))

export const sdk = (gateway: Gateway.Service, options?: { readonly apiKey?: string; readonly maxRetries?: number }) =>
  new OpenAI({
    baseURL: `${gateway.url}/v1`,
    apiKey: options?.apiKey ?? gatewayKey,
    maxRetries: options?.maxRetries ?? 0,
    timeout: 10_000
  })

export const post = (gateway: Gateway.Service, body: unknown, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${gatewayKey}`, ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body)
    })
    const text = await response.text()
    let json: unknown = undefined
    try {
      json = JSON.parse(text)
    } catch {
      // an event stream
    }
    return { status: response.status, headers: response.headers, text, json }
  })
