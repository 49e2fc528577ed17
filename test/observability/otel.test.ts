import { assert, describe, it } from "@effect/vitest"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import { type CollectionResult, DataPointType } from "@opentelemetry/sdk-metrics"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { ChatCompletion, Fallback, Observability } from "@resilient-llm/core"
import { FakeProvider } from "@resilient-llm/testing"
import { Effect, Metric } from "effect"
import * as Collector from "../support/Collector.js"
import * as Fake from "../support/Fake.js"
import * as InMemoryTelemetry from "./InMemoryTelemetry.js"
import { OtlpLive } from "./OpenTelemetry.js"

// The library needs no change to reach OpenTelemetry: its spans and metrics go through the Effect
// runtime, and @effect/opentelemetry hands them to the OpenTelemetry SDK (or Effect's own
// effect/observability/Otlp to an OTLP collector).

const apiKey = "sk-otel-secret-0123456789abcdef"
const usage = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 }

const telemetry = () => InMemoryTelemetry.make("integration-tests")

const id = (span: ReadableSpan) => span.spanContext().spanId
const childrenOf = (spans: ReadonlyArray<ReadableSpan>, parent: ReadableSpan) =>
  spans
    .filter((span) => span.parentSpanContext?.spanId === id(parent))
    .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1])

/** Everything a span carries that a backend would store, as text. */
const spanText = (span: ReadableSpan) =>
  JSON.stringify({
    name: span.name,
    attributes: span.attributes,
    status: span.status,
    events: span.events.map((event) => ({ name: event.name, attributes: event.attributes })),
    links: span.links.map((link) => link.attributes)
  })

/** The data points of one metric, by name, across every scope of a collection. */
const dataPoints = (collected: CollectionResult, name: string) =>
  collected.resourceMetrics.scopeMetrics.flatMap((scope) =>
    scope.metrics.filter((metric) => metric.descriptor.name === name)
  )

describe("OpenTelemetry through @effect/opentelemetry", () => {
  it.live("a fallback chain exports its span tree: the chain, one span per attempt, the HTTP calls", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ apiKey, models: { "gpt-test": { reply: "served", usage } } })
      const { exporter, layer } = telemetry()
      // read the spans before the layer closes: shutting the provider down clears the exporter
      const [served, spans] = yield* Fallback.chain(["no-such-model", "gpt-test"])(ChatCompletion.prompt("hi")).pipe(
        Effect.provide(Fake.client(fake.url, { apiKey })),
        Effect.map((served) => [served, exporter.getFinishedSpans()] as const),
        Effect.provide(layer)
      )
      assert.strictEqual(served.model, "gpt-test")

      const roots = spans.filter((span) => span.name === "resilient-llm.fallback")
      assert.strictEqual(roots.length, 1)
      const [root] = roots
      assert.isUndefined(root.parentSpanContext)
      assert.strictEqual(root.status.code, SpanStatusCode.OK)
      assert.deepInclude(root.attributes, {
        "llm.pattern": "fallback",
        "llm.models": "no-such-model,gpt-test",
        "llm.served_model": "gpt-test",
        "llm.attempts": 2
      })
      assert.strictEqual(root.resource.attributes["service.name"], "integration-tests")
      assert.isTrue(spans.every((span) => span.spanContext().traceId === root.spanContext().traceId), "one trace")

      const attempts = childrenOf(spans, root)
      assert.deepStrictEqual(attempts.map((span) => span.name), [
        "resilient-llm.fallback.attempt",
        "resilient-llm.fallback.attempt"
      ])
      const [failed, succeeded] = attempts
      assert.deepInclude(failed.attributes, {
        "llm.model": "no-such-model",
        "llm.pattern": "fallback",
        "llm.outcome": "ModelNotFoundError",
        "llm.attempt": 1,
        "llm.retry": 0
      })
      assert.isNumber(failed.attributes["llm.latency_ms"])
      assert.notProperty(failed.attributes, "llm.tokens.input", "no tokens for a failure")
      assert.strictEqual(failed.status.code, SpanStatusCode.ERROR)
      assert.include(failed.status.message, "Model no-such-model was not found")
      assert.isTrue(failed.events.some((event) => event.name === "exception"))

      assert.deepInclude(succeeded.attributes, {
        "llm.model": "gpt-test",
        "llm.pattern": "fallback",
        "llm.outcome": "success",
        "llm.attempt": 2,
        "llm.retry": 0,
        "llm.tokens.input": 12,
        "llm.tokens.output": 5
      })
      assert.strictEqual(succeeded.status.code, SpanStatusCode.OK)

      // each attempt's HTTP request is a client span under it, with the status the fake served.
      // Effect 4's HttpClient names it by the method alone ("POST", as OpenTelemetry's HTTP
      // conventions say); Effect 3's @effect/platform named it "http.client POST".
      const http = attempts.map((attempt) => childrenOf(spans, attempt))
      assert.deepStrictEqual(http.map((children) => children.map((span) => span.name)), [["POST"], ["POST"]])
      assert.deepStrictEqual(http.map(([span]) => [span.kind, span.attributes["http.request.method"]]), [
        [SpanKind.CLIENT, "POST"],
        [SpanKind.CLIENT, "POST"]
      ])
      assert.deepStrictEqual(http.map(([span]) => span.attributes["http.response.status_code"]), [404, 200])

      // the key was sent (the fake demands it) and appears in no span
      assert.deepStrictEqual((yield* fake.requests).map((r) => r.authorization), [
        `Bearer ${apiKey}`,
        `Bearer ${apiKey}`
      ])
      assert.isAbove(spans.length, 4)
      for (const span of spans) {
        const text = spanText(span)
        assert.notInclude(text, apiKey, span.name)
        assert.notInclude(text, apiKey.slice(-12), span.name)
      }
    }))

  it.live("a chain where every model fails ends its root span in error with the reason", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({
        models: {
          "a": { script: [FakeProvider.serverError(503)] },
          "b": { script: [FakeProvider.contextLengthExceeded()] }
        }
      })
      const { exporter, layer } = telemetry()
      const [failure, spans] = yield* Fallback.chain(["a", "b"])(ChatCompletion.prompt("hi")).pipe(
        Effect.flip,
        Effect.provide(Fake.client(fake.url)),
        Effect.map((failure) => [failure, exporter.getFinishedSpans()] as const),
        Effect.provide(layer)
      )
      assert.strictEqual(failure.reason, "Exhausted")
      const root = spans.find((span) => span.name === "resilient-llm.fallback")
      assert.isDefined(root)
      if (root === undefined) return
      assert.strictEqual(root.status.code, SpanStatusCode.ERROR)
      assert.deepInclude(root.attributes, { "llm.reason": "Exhausted", "llm.attempts": 2 })
      const attempts = childrenOf(spans, root)
      assert.deepStrictEqual(
        attempts.map((span) => [span.attributes["llm.model"], span.attributes["llm.outcome"], span.status.code]),
        [["a", "ServerError", SpanStatusCode.ERROR], ["b", "ContextLengthError", SpanStatusCode.ERROR]]
      )
    }))

  it.live("the request, latency and token metrics reach an OpenTelemetry MetricReader with their labels", () =>
    Effect.gen(function*() {
      const fake = yield* Fake.start({ models: { "gpt-test": { usage } } })
      const { layer, reader } = telemetry()
      const run = "otel-metrics"
      const collected = yield* Effect.gen(function*() {
        yield* Fallback.chain(["no-such-model", "gpt-test"])(ChatCompletion.prompt("hi")).pipe(
          Effect.provide(Fake.client(fake.url)),
          Observability.withMetricLabels({ run })
        )
        return yield* Effect.promise(() => reader.collect())
      }).pipe(
        Effect.provide(layer),
        // the reader reads the registry of the context its layer was built in: this test's own
        Effect.provideService(Metric.MetricRegistry, new Map())
      )

      const [requests] = dataPoints(collected, "resilient_llm_requests_total")
      assert.isDefined(requests, "resilient_llm_requests_total was exported")
      assert.strictEqual(requests.dataPointType, DataPointType.SUM)
      const counts = requests.dataPoints
        .filter((point) => point.attributes["run"] === run)
        .map((
          point
        ) => [point.attributes["model"], point.attributes["pattern"], point.attributes["outcome"], point.value])
        .sort((a, b) => String(a[0]).localeCompare(String(b[0])))
      assert.deepStrictEqual(counts, [
        ["gpt-test", "fallback", "success", 1],
        ["no-such-model", "fallback", "ModelNotFoundError", 1]
      ])

      const [tokens] = dataPoints(collected, "resilient_llm_tokens_total")
      assert.isDefined(tokens)
      const tokenCounts = Object.fromEntries(
        tokens.dataPoints
          .filter((point) => point.attributes["run"] === run && point.attributes["model"] === "gpt-test")
          .map((point) => [String(point.attributes["kind"]), point.value])
      )
      assert.deepStrictEqual(tokenCounts, { input: 12, output: 5 })

      const [latency] = dataPoints(collected, "resilient_llm_latency_ms")
      assert.isDefined(latency)
      assert.strictEqual(latency.dataPointType, DataPointType.HISTOGRAM)
      const models = latency.dataPoints.filter((point) => point.attributes["run"] === run).map((point) =>
        point.attributes["model"]
      )
      assert.sameMembers(models, ["gpt-test", "no-such-model"])
    }))
})

describe("OTLP through Effect's own exporter (effect/observability/Otlp)", () => {
  it.live("spans, metrics and the attempt log lines reach an OTLP/HTTP collector", () =>
    Effect.gen(function*() {
      const otlp = yield* Collector.make
      const fake = yield* Fake.start({ models: { "gpt-test": {} } })
      yield* Fallback.chain(["no-such-model", "gpt-test"])(ChatCompletion.prompt("hi")).pipe(
        Effect.provide(Fake.client(fake.url)),
        Effect.provide(OtlpLive(otlp.url)) // closing the layer flushes every exporter
      )
      const sent = (path: string) => otlp.received.filter((e) => e.path === path).map((e) => e.body).join("\n")
      const traces = sent("/v1/traces")
      assert.include(traces, "\"name\":\"resilient-llm.fallback\"")
      assert.include(traces, "\"name\":\"resilient-llm.fallback.attempt\"")
      assert.include(traces, "\"stringValue\":\"ModelNotFoundError\"")
      const metrics = sent("/v1/metrics")
      assert.include(metrics, "\"name\":\"resilient_llm_requests_total\"")
      assert.include(metrics, "\"name\":\"resilient_llm_latency_ms\"")
      const logs = sent("/v1/logs")
      assert.include(logs, "attempt failed")
      assert.include(logs, "served by gpt-test after 2 attempts")
      assert.include(logs, "\"key\":\"llm.model\"")
    }))
})
