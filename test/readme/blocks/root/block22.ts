import * as OtelMetrics from "@effect/opentelemetry/OtelMetrics"
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import * as Resource from "@effect/opentelemetry/Resource"
import type { MetricReader } from "@opentelemetry/sdk-metrics"
import { BasicTracerProvider, type SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer } from "effect"

export const OpenTelemetryLive = (options: {
  readonly serviceName: string
  readonly spanProcessor: SpanProcessor
  readonly metricReader: MetricReader
}) => {
  const TracerProviderLive = Layer.effect(
    OtelTracer.OtelTracerProvider,
    Effect.flatMap(Resource.Resource, (resource) =>
      Effect.acquireRelease(
        Effect.sync(() => new BasicTracerProvider({ resource, spanProcessors: [options.spanProcessor] })),
        (provider) => Effect.promise(() => provider.shutdown()) // flushes the processor
      ))
  )
  return Layer.mergeAll(
    OtelTracer.layer.pipe(Layer.provide(TracerProviderLive)), // Effect spans become OpenTelemetry spans
    OtelMetrics.layer(() => options.metricReader) // Effect metrics are read by the reader
  ).pipe(Layer.provide(Resource.layer({ serviceName: options.serviceName })))
}
