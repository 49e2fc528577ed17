import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Layer } from "effect"
import * as Otlp from "effect/observability/Otlp"

export const OtlpLive = (collectorUrl: string) =>
  Otlp.layerJson({ baseUrl: collectorUrl, resource: { serviceName: "support-bot" } }).pipe(
    Layer.provide(NodeHttpClient.layerUndici)
  )
