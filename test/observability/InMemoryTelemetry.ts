/**
 * `OpenTelemetryLive` (the README's setup) over in-memory parts the tests read directly: spans kept
 * by an `InMemorySpanExporter`, metrics pulled from a reader on demand instead of on a timer.
 */
import { MetricReader } from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { OpenTelemetryLive } from "./OpenTelemetry.js"

/** A reader the test pulls from with `collect()`, instead of one that exports on a timer. */
class PullMetricReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve()
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve()
  }
}

/**
 * The layer, and the exporter and reader behind it. Read the spans before the layer closes:
 * shutting the provider down clears the exporter.
 */
export const make = (serviceName: string) => {
  const exporter = new InMemorySpanExporter()
  const reader = new PullMetricReader()
  const layer = OpenTelemetryLive({
    serviceName,
    spanProcessor: new SimpleSpanProcessor(exporter),
    metricReader: reader
  })
  return { exporter, reader, layer }
}
