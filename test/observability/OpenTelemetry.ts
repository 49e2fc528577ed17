/**
 * The README's OpenTelemetry setups, type-checked here and used by the tests, so the documented
 * code is the tested code. Nothing in resilient-llm is configured: the spans and metrics every
 * pattern emits reach OpenTelemetry through the Effect runtime these layers install.
 */
import * as OtelMetrics from "@effect/opentelemetry/OtelMetrics"
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import * as Resource from "@effect/opentelemetry/Resource"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type { MetricReader } from "@opentelemetry/sdk-metrics"
import { BasicTracerProvider, type SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer } from "effect"
import * as Otlp from "effect/observability/Otlp"

// README: with the OpenTelemetry SDK you already run (any span processor and metric reader:
// BatchSpanProcessor + an OTLP exporter, PeriodicExportingMetricReader, Prometheus...)
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

// README: without the SDK, straight to an OTLP/HTTP collector (traces, metrics and logs)
export const OtlpLive = (collectorUrl: string) =>
  Otlp.layerJson({ baseUrl: collectorUrl, resource: { serviceName: "support-bot" } }).pipe(
    Layer.provide(NodeHttpClient.layerUndici)
  )
