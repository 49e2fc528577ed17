import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Otlp from "@effect/opentelemetry/Otlp"
import { Layer } from "effect"

export const OtlpLive = (collectorUrl: string) =>
  Otlp.layerJson({ baseUrl: collectorUrl, resource: { serviceName: "support-bot" } }).pipe(
    Layer.provide(NodeHttpClient.layerUndici)
  )
