/**
 * The gateway: an OpenAI-compatible HTTP server in front of every provider, which runs a pattern
 * (a fallback chain, an A/B experiment, a best-of-n with a judge) for each virtual model of its
 * configuration file. Any OpenAI client, in any language, points its base URL at it and sends a
 * virtual model's name as `model`; the response says which deployment served, in the body's
 * `model` and in the `x-resilient-llm-model` header.
 *
 * It serves `POST /v1/chat/completions` (JSON, or server-sent events with `stream: true`),
 * `GET /v1/models`, `GET /health`, `GET /metrics` (Prometheus text) and a status page at
 * `/status`. Clients authenticate with gateway keys; provider keys never leave the gateway. Every
 * error is in OpenAI's shape, with the status the official SDKs expect. A change of the file is
 * applied without dropping a request in flight; shutdown drains requests in flight for up to
 * `server.shutdownTimeout`.
 *
 * @example
 * ```ts
 * import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
 * import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
 * import { Gateway } from "@resilient-llm/gateway"
 * import { Effect, Layer } from "effect"
 *
 * const GatewayLive = Gateway.layer({ path: "gateway.yaml" }).pipe(
 *   Layer.provide([NodeHttpClient.layerUndici, NodeFileSystem.layer])
 * )
 *
 * const program = Effect.gen(function*() {
 *   const gateway = yield* Gateway.Gateway
 *   yield* Effect.log(`listening on ${gateway.url}`)
 *   return yield* Effect.never
 * }).pipe(Effect.provide(GatewayLive))
 * ```
 *
 * @since 0.1.0
 */
import type * as Experiment from "@resilient-llm/core/Experiment"
import type * as RateLimit from "@resilient-llm/core/RateLimit"
import type * as Routing from "@resilient-llm/core/Routing"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import type * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import type * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import type * as GatewayConfig from "./GatewayConfig.js"
import * as internal from "./internal/gateway.js"
import * as metrics from "./internal/metrics.js"

/**
 * Where the configuration comes from, and what to override.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The configuration file. It is checked for changes every `server.reload.interval`. */
  readonly path?: string
  /** The configuration's text, when there is no file (tests, embedding); `apply` replaces it. */
  readonly text?: string
  /** Overrides `server.host`. */
  readonly host?: string
  /** Overrides `server.port`. */
  readonly port?: number
}

/**
 * One point of a status history: the requests of one interval.
 *
 * @since 0.1.0
 * @category models
 */
export interface Point {
  /** When the interval ended, epoch milliseconds. */
  readonly at: number
  readonly requests: number
  readonly errors: number
  readonly errorRate: number
  /** Latency quantiles of the interval's requests, in milliseconds; `undefined` without requests. */
  readonly p50: number | undefined
  readonly p95: number | undefined
  readonly p99: number | undefined
}

/**
 * A deployment now: its place in its logical model's routing, its circuit (when its logical
 * model has a breaker) and the circuit's last transitions, its calls in flight and waiting for
 * its bulkhead, its moving latency, its rate limits after the adaptive factor, and its calls
 * over time (from every virtual model), with what they cost.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeploymentStatus {
  readonly name: string
  readonly provider: string
  /** The provider's own name for the model. */
  readonly providerModel: string
  readonly weight: number
  readonly priority: number
  readonly circuit:
    | { readonly state: string; readonly since: number; readonly openUntil: number | undefined }
    | undefined
  readonly transitions: ReadonlyArray<
    { readonly at: number; readonly from: string; readonly to: string; readonly reason: string }
  >
  readonly inFlight: number
  readonly queued: number
  /** Moving average of recent successes; `undefined` without one in the last minute. */
  readonly latencyMs: number | undefined
  readonly limits: RateLimit.Status
  /** Calls since the gateway started; `errors` are those that failed; `costUsd` what they cost. */
  readonly totals: { readonly requests: number; readonly errors: number; readonly costUsd: number }
  readonly points: ReadonlyArray<Point>
}

/**
 * A logical model as one virtual model uses it: its routing strategy, this virtual model's
 * attempts at it over time, and its deployments.
 *
 * @since 0.2.0
 * @category models
 */
export interface LogicalModelStatus {
  readonly name: string
  readonly strategy: Routing.Strategy
  readonly totals: { readonly requests: number; readonly errors: number }
  readonly points: ReadonlyArray<Point>
  readonly deployments: ReadonlyArray<DeploymentStatus>
}

/**
 * A virtual model on the status page.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelStatus {
  readonly name: string
  readonly pattern: "fallback" | "experiment" | "best-of-n"
  readonly description: string | undefined
  /**
   * Requests to this virtual model since the gateway started; `errors` are those answered with
   * 429 or 5xx; `costUsd` what they cost at the deployments' prices.
   */
  readonly totals: { readonly requests: number; readonly errors: number; readonly costUsd: number }
  readonly points: ReadonlyArray<Point>
  /** The logical models it calls, in the configuration's order. */
  readonly models: ReadonlyArray<LogicalModelStatus>
  readonly experiment: Experiment.Summary | undefined
}

/**
 * What the status page shows, as data (`GET /status/data`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Status {
  /** The configuration's generation: 1 at start, one more at each reload that took effect. */
  readonly generation: number
  readonly startedAt: number
  readonly now: number
  readonly inFlight: number
  readonly historyIntervalMs: number
  readonly historyPoints: number
  readonly models: ReadonlyArray<ModelStatus>
}

/**
 * A running gateway.
 *
 * - `url`: `http://<host>:<port>`; OpenAI clients take `${url}/v1` as their base URL;
 * - `reload`: reads the file again now and applies it when it changed (a reload also happens by
 *   itself when the file changes);
 * - `apply`: runs a configuration given as text, as a reload would;
 * - `generation`, `inFlight`, `status`: what the gateway is doing.
 *
 * A configuration that fails to parse or build leaves the running one in place.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly url: string
  readonly port: number
  readonly reload: Effect.Effect<void, GatewayConfig.GatewayConfigError>
  readonly apply: (text: string) => Effect.Effect<void, GatewayConfig.GatewayConfigError>
  readonly generation: Effect.Effect<number>
  readonly inFlight: Effect.Effect<number>
  readonly status: Effect.Effect<Status>
}

/**
 * @since 0.1.0
 * @category services
 */
export class Gateway extends Context.Service<Gateway, Service>()("@resilient-llm/gateway/Gateway") {}

/**
 * The gateway could not start: its file could not be read, or its address could not be bound.
 *
 * @since 0.1.0
 * @category errors
 */
export class GatewayStartError extends Data.TaggedError("GatewayStartError")<{
  readonly reason: "ReadFile" | "Listen"
  readonly detail: string
}> {
  override get message(): string {
    return this.reason === "ReadFile"
      ? `Cannot read the gateway configuration: ${this.detail}`
      : `The gateway cannot listen: ${this.detail}`
  }
}

/**
 * Requests answered, by virtual `model`, gateway `key` and HTTP `status`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const requests: Metric.Counter<number> = metrics.requests

/**
 * What requests cost in US dollars at the deployments' prices, by virtual `model` and gateway
 * `key`. The library's `resilient_llm_cost_usd_total` has the same by logical model and
 * deployment.
 *
 * @since 0.2.0
 * @category metrics
 */
export const cost: Metric.Counter<number> = metrics.cost

/**
 * Time to answer (for a stream, to its first chunk), in milliseconds, by virtual `model`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const duration: Metric.Histogram<number> = metrics.duration

/**
 * Requests being served now.
 *
 * @since 0.1.0
 * @category metrics
 */
export const inFlight: Metric.Gauge<number> = metrics.inFlight

/**
 * Reloads of the configuration, by `result` (`applied`, `rejected`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const reloads: Metric.Counter<number> = metrics.reloads

/**
 * Starts the gateway in the current scope: reads and checks the configuration, builds its
 * providers and patterns, and listens. Closing the scope stops accepting connections, waits for
 * the requests in flight for up to `server.shutdownTimeout` (then interrupts the rest, cancelling
 * their provider calls), and stops everything the configuration started.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: Options
) => Effect.Effect<
  Service,
  GatewayConfig.GatewayConfigError | GatewayStartError,
  Scope.Scope | HttpClient.HttpClient | FileSystem.FileSystem
> = (options) =>
  internal.make(options).pipe(
    Effect.mapError((error) => error._tag === "StartFailure" ? new GatewayStartError(error) : error)
  )

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  Gateway,
  GatewayConfig.GatewayConfigError | GatewayStartError,
  HttpClient.HttpClient | FileSystem.FileSystem
> => Layer.effect(Gateway, make(options))
