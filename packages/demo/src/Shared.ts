/**
 * The tour's sixth act, with `--redis URL`: two instances of one application (each its own
 * breaker, budget, rate limit, experiment and Redis connection, as two processes would have) share
 * one view through Redis. Instance A meets an outage and its breaker opens; instance B, which
 * never saw a failure, skips the model at once. A's spending exhausts a team's budget and B
 * refuses the team; the rate limit holds across both; the A/B summary counts both instances'
 * calls. Everything lives under a prefix of its own, expiring ten minutes after the act.
 *
 * @since 0.2.0
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { Budget, ChatClient, ChatCompletion, CircuitBreaker, Experiment, RateLimit, Stores } from "@resilient-llm/core"
import { OpenAiCompatible } from "@resilient-llm/openai"
import { FakeProvider } from "@resilient-llm/testing"
import * as Effect from "effect/Effect"
import type * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as Render from "./Render.js"
import * as Tour from "./Tour.js"

/**
 * What the act found.
 *
 * @since 0.2.0
 * @category models
 */
export interface SharedReport {
  /** The Redis URL, without its password. */
  readonly redis: string
  readonly prefix: string
  readonly breaker: {
    /** Calls A sent to the failing model before its circuit opened. */
    readonly failuresInA: number
    readonly stateInA: CircuitBreaker.State
    readonly stateInB: CircuitBreaker.State
    /** B's call was refused without a request: the provider saw none from B. */
    readonly refusedInB: boolean
    readonly requestsFromB: number
  }
  readonly budget: { readonly spentInA: number; readonly refusedInB: boolean; readonly limitUsd: number }
  readonly rateLimit: { readonly rpm: number; readonly grantedToA: number; readonly refusedInB: boolean }
  readonly experiment: {
    readonly callsByA: number
    readonly callsByB: number
    /** Calls in the summary each instance reads: both instances' calls. */
    readonly summaryInA: number
    readonly summaryInB: number
  }
}

const failing = "primary"
const answering = "steady"
const apiKey = "sk-fake-shared-demo"

/** One instance: its own stores over its own connection, its own breaker, its own client. */
const instance = (url: string, prefix: string, baseUrl: string) =>
  Layer.build(
    Layer.mergeAll(
      CircuitBreaker.layer({ trip: CircuitBreaker.consecutiveFailures(3), breakDuration: "30 seconds" }),
      Layer.effect(ChatClient.ChatClient, OpenAiCompatible.make({ baseUrl, apiKey: Redacted.make(apiKey) }))
    ).pipe(
      Layer.provideMerge(Stores.layerRedis({ prefix, timeout: "500 millis", expireAfterIdle: "10 minutes" })),
      Layer.provide(NodeRedis.layer({ url, disableOfflineQueue: true }))
    )
  )

/**
 * Runs the act against the Redis at `url`, with a fake provider of its own.
 *
 * @since 0.2.0
 * @category constructors
 */
export const run = (
  url: string
): Effect.Effect<SharedReport, Tour.TourError, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function*() {
    const provider = yield* FakeProvider.make({
      seed: 1,
      models: {
        [failing]: { script: () => FakeProvider.serverError(503) },
        [answering]: { latency: "5 millis" }
      }
    })
    const prefix = `resilient-llm-demo:${(yield* Random.nextIntBetween(0, 36 ** 6)).toString(36)}:`
    const a = yield* instance(url, prefix, provider.url)
    const b = yield* instance(url, prefix, provider.url)
    const inA = <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.provide(effect, a)
    const inB = <X, E, R>(effect: Effect.Effect<X, E, R>) => Effect.provide(effect, b)
    const call = (model: string) =>
      ChatClient.create(ChatCompletion.withModel(ChatCompletion.prompt("Hello"), model)).pipe(
        CircuitBreaker.protect(model)
      )

    // the breaker: A meets the outage, B is spared it
    let failuresInA = 0
    while ((yield* inA(CircuitBreaker.state(failing))) === "closed" && failuresInA < 10) {
      failuresInA += 1
      yield* Effect.ignore(inA(call(failing)))
    }
    const before = (yield* provider.requestsTo(failing)).length
    const tried = yield* Effect.result(inB(call(failing)))
    const requestsFromB = (yield* provider.requestsTo(failing)).length - before
    const breaker = {
      failuresInA,
      stateInA: yield* inA(CircuitBreaker.state(failing)),
      stateInB: yield* inB(CircuitBreaker.state(failing)),
      refusedInB: tried._tag === "Failure" && tried.failure._tag === "CircuitOpenError",
      requestsFromB
    }

    // a budget: what A spends, B counts
    const limitUsd = 0.01
    const budgetA = yield* inA(Budget.make({ limitUsd, period: "1 day" }))
    const budgetB = yield* inB(Budget.make({ limitUsd, period: "1 day" }))
    const reservation = yield* budgetA.reserve({ key: "team-b", model: answering, estimateUsd: 0.004 })
    yield* budgetA.settle(reservation, 0.012)
    const refusedByBudget = yield* Effect.result(
      budgetB.reserve({ key: "team-b", model: answering, estimateUsd: 0.004 })
    )

    // a rate limit: two requests a minute, between both
    const rpm = 2
    const limiter = RateLimit.make({ model: answering, deployment: "shared", rpm })
    const limiterA = yield* inA(limiter)
    const limiterB = yield* inB(limiter)
    let grantedToA = 0
    for (let i = 0; i < rpm; i++) {
      if ((yield* Effect.result(limiterA.tryAcquire(0)))._tag === "Success") grantedToA += 1
    }
    const refusedByLimit = yield* Effect.result(limiterB.tryAcquire(0))

    // an experiment: each instance serves its share; each summary counts both
    const options: Experiment.Options = {
      name: "shared-ab",
      assignment: "random",
      variants: [{ name: "control", model: answering, weight: 1 }, { name: "challenger", model: answering, weight: 1 }]
    }
    const experimentA = yield* inA(Experiment.make(options))
    const experimentB = yield* inB(Experiment.make(options))
    const serve = (experiment: Experiment.Experiment, n: number) =>
      Effect.forEach(Array.from({ length: n }), () => experiment.complete(ChatCompletion.prompt("Hello")), {
        concurrency: 4,
        discard: true
      })
    yield* inA(serve(experimentA, 12))
    yield* inB(serve(experimentB, 8))
    const calls = (summary: Experiment.Summary) => summary.variants.reduce((n, v) => n + v.calls, 0)

    return {
      redis: Stores.redactUrl(url),
      prefix,
      breaker,
      budget: {
        spentInA: (yield* budgetA.status("team-b")).spentUsd,
        refusedInB: refusedByBudget._tag === "Failure",
        limitUsd
      },
      rateLimit: { rpm, grantedToA, refusedInB: refusedByLimit._tag === "Failure" },
      experiment: {
        callsByA: 12,
        callsByB: 8,
        summaryInA: calls(yield* experimentA.summary),
        summaryInB: calls(yield* experimentB.summary)
      }
    } satisfies SharedReport
  }).pipe(Effect.mapError((cause) => new Tour.TourError({ reason: `the shared act failed: ${cause.message}`, cause })))

/**
 * The act for a person.
 *
 * @since 0.2.0
 * @category rendering
 */
export const render = (report: SharedReport, style: Render.Style): ReadonlyArray<string> => {
  const yes = (ok: boolean, text: string) => ok ? style.green(text) : style.red(text)
  return [
    style.bold(`6. Two instances, one view (Redis at ${report.redis}, keys under ${report.prefix})`),
    `  breaker     A sent ${report.breaker.failuresInA} calls into an outage; its circuit is ${report.breaker.stateInA}, and B's is ` +
    yes(report.breaker.stateInB === "open", report.breaker.stateInB) +
    `: B's call was ${yes(report.breaker.refusedInB, report.breaker.refusedInB ? "refused at once" : "sent")} ` +
    `(${report.breaker.requestsFromB} request(s) from B reached the provider)`,
    `  budget      A spent $${report.budget.spentInA.toFixed(3)} of team-b's $${
      report.budget.limitUsd.toFixed(2)
    }; B ` +
    yes(report.budget.refusedInB, report.budget.refusedInB ? "refuses team-b" : "admits team-b"),
    `  rate limit  ${report.rateLimit.rpm} requests a minute between them: A took ${report.rateLimit.grantedToA}, B ` +
    yes(report.rateLimit.refusedInB, report.rateLimit.refusedInB ? "is refused" : "got one"),
    `  experiment  A served ${report.experiment.callsByA} calls, B ${report.experiment.callsByB}; A's summary counts ` +
    `${
      yes(
        report.experiment.summaryInA === report.experiment.callsByA + report.experiment.callsByB,
        String(report.experiment.summaryInA)
      )
    }, ` +
    `B's ${
      yes(
        report.experiment.summaryInB === report.experiment.callsByA + report.experiment.callsByB,
        String(report.experiment.summaryInB)
      )
    }`,
    ""
  ]
}
