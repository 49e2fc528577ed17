/**
 * The soak: many requests over real HTTP through a fallback chain of three models, each guarded
 * by its circuit breaker and retried, against two fake providers that fail on purpose.
 *
 * - `model-a` (provider `primary`) fails 30% of its calls with a 503 and 10% with a 429: half of
 *   those ask for `retry-after-ms: 25` (the retry waits for it), half for `retry-after: 2` (longer
 *   than the caller's `maxWait`, so the chain gives up on the model at once).
 * - `model-b` (provider `secondary`) hangs on 20% of its calls: only the attempt timeout ends them.
 * - `model-c` (provider `secondary`) is healthy.
 *
 * The two providers have different API keys and the client is `Providers.layer`, so the soak also
 * shows that each key goes to its own server only. Every log line, span and error text of the
 * run is scanned for both keys (`SecretScan`). The requests run in equal batches (ten at full
 * size), and the heap is read after each (`HeapProbe`). The result is a `Report` of plain figures.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { ChatCompletion, CircuitBreaker, Fallback, LlmError } from "@resilient-llm/core"
import { Providers } from "@resilient-llm/openai"
import { FakeProvider } from "@resilient-llm/testing"
import { Cause, Clock, Duration, Effect, Exit, Fiber, Logger, Option, Redacted, References, Stream } from "effect"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { quantile, Tally } from "./Figures.js"
import * as HeapProbe from "./HeapProbe.js"
import * as SecretScan from "./SecretScan.js"

export const models = ["model-a", "model-b", "model-c"] as const

/** The chain's policies, scaled to fakes whose latencies are milliseconds. */
export const settings = {
  latency: { min: "1 millis", max: "4 millis" },
  // far above the fakes' latency: on a busy machine a healthy call can queue for a few hundred ms
  timeout: Duration.seconds(1),
  retry: { retries: 2, base: "10 millis", maxDelay: "50 millis", maxWait: "200 millis" },
  deadline: Duration.seconds(5),
  breaker: {
    trip: CircuitBreaker.consecutiveFailures(5),
    breakDuration: "100 millis",
    maxProbeDuration: "2 seconds"
  },
  /** How far past its deadline a request may end before it counts as an overrun: scheduling slack. */
  deadlineSlack: Duration.millis(250),
  /** The test's own bound on one request: past it the request counts as hung and is stopped. */
  hungAfter: Duration.seconds(15),
  /**
   * The fakes close idle keep-alive connections after this; undici, told `timeout=3`, closes
   * its own 2 s before, so idle sockets are gone about a second after the last request.
   */
  keepAlive: Duration.millis(3500)
} as const

export const keys = {
  primary: "sk-chaos-primary-Q7vN2xL9pR4tW8yB3mK6",
  secondary: "sk-chaos-secondary-H5cJ1zF8dS3gA6nE9uV2"
} as const

export interface Options {
  readonly requests: number
  readonly concurrency: number
  readonly seed: number
  /** Equal batches the requests run in, the heap read after each; at least 3. Default 10. */
  readonly batches?: number
  /** The chain's attempt timeout; default `settings.timeout`. */
  readonly timeout?: Duration.Duration
}

export interface Report {
  readonly requests: number
  readonly concurrency: number
  readonly durationMs: number
  readonly served: number
  readonly servedBy: Record<string, number>
  /** Requests that ended with `AllModelsFailed`, by its `reason`. */
  readonly failedBy: Record<string, number>
  /** `AllModelsFailed` holding an error that is not an `LlmError`. */
  readonly untyped: number
  readonly defects: number
  readonly interrupted: number
  /** Requests the test's own bound had to stop. */
  readonly hung: number
  /** The first few things that went wrong, in words. */
  readonly problems: ReadonlyArray<string>
  /** Served answers whose text is not what the serving model sent for that request. */
  readonly madeUp: number
  /** Every attempt, by model and outcome (`success` or the error's tag). */
  readonly attempts: Record<string, Record<string, number>>
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number }
  readonly deadlineMs: number
  /** How long after its time limit each timed-out attempt actually ended. */
  readonly timeoutLateMs: { readonly count: number; readonly p50: number; readonly p99: number; readonly max: number }
  /** How late the event loop ran timers during the soak (`perf_hooks.monitorEventLoopDelay`). */
  readonly eventLoopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number }
  /** Requests that ended more than `deadlineSlack` past their deadline. */
  readonly overruns: number
  readonly breakerTransitions: Record<string, number>
  readonly connections: {
    /** The most sockets open on both fakes at once, sampled every 50 ms. */
    readonly peakOpen: number
    /** Sockets open on both fakes right after the last request: idle keep-alive connections. */
    readonly openAtEnd: number
    /** Requests either fake was still handling right after the last request. */
    readonly activeAtEnd: number
    /** How long until both fakes had no socket open and no request, the client still running; -1 if never. */
    readonly zeroAfterMs: number
  }
  readonly heap: {
    readonly collector: HeapProbe.Collector["source"]
    readonly forced: boolean
    /** Heap used after each batch (after full collections when `forced`), in bytes. */
    readonly afterBatch: ReadonlyArray<number>
    /** The lowest heap used sampled (every 50 ms) during each batch, in bytes. */
    readonly floorPerBatch: ReadonlyArray<number>
  }
  readonly unhandledRejections: number
  readonly uncaughtExceptions: number
  readonly secrets: SecretScan.Counts
  /** The `Authorization` headers each fake recorded (its latest 500): its own key, the other's, anything else. */
  readonly keysSeen: Record<string, { readonly own: number; readonly other: number; readonly else: number }>
  /** Chat requests each fake received. */
  readonly received: Record<string, number>
}

const replyOf = (model: string, request: ChatCompletion.ChatRequest): string =>
  `${model} answers: ${String(request.messages.at(-1)?.content)}`

/** Polls `condition` every 20 ms until it holds: the milliseconds that took, or -1 after `within`. */
export const waitFor = (condition: Effect.Effect<boolean>, within: Duration.Input): Effect.Effect<number> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    while (!(yield* condition)) yield* Effect.sleep("20 millis")
    return (yield* Clock.currentTimeMillis) - start
  }).pipe(Effect.timeoutOrElse({ duration: within, orElse: () => Effect.succeed(-1) }))

/** Counts what reaches `process` unhandled while the scope is open. */
export const watchProcess = Effect.acquireRelease(
  Effect.sync(() => {
    const seen = { unhandledRejections: 0, uncaughtExceptions: 0, samples: new Array<string>() }
    const onRejection = (reason: unknown) => {
      seen.unhandledRejections++
      if (seen.samples.length < 5) seen.samples.push(`unhandled rejection: ${String(reason)}`)
    }
    const onException = (error: unknown) => {
      seen.uncaughtExceptions++
      if (seen.samples.length < 5) seen.samples.push(`uncaught exception: ${String(error)}`)
    }
    process.on("unhandledRejection", onRejection)
    process.on("uncaughtException", onException)
    return { seen, onRejection, onException }
  }),
  ({ onException, onRejection }) =>
    Effect.sync(() => {
      process.off("unhandledRejection", onRejection)
      process.off("uncaughtException", onException)
    })
).pipe(Effect.map(({ seen }) => seen))

const startFakes = (seed: number) =>
  Effect.all({
    primary: FakeProvider.make({
      seed,
      apiKey: Redacted.make(keys.primary),
      keepAliveTimeout: settings.keepAlive,
      maxRecordedRequests: 500,
      models: {
        "model-a": {
          latency: settings.latency,
          reply: (request, call) => replyOf(call.model, request),
          faults: [
            { rate: 0.3, fault: FakeProvider.serverError(503) },
            { rate: 0.05, fault: FakeProvider.rateLimited({ retryAfter: { millis: 25 } }) },
            { rate: 0.05, fault: FakeProvider.rateLimited({ retryAfter: { seconds: 2 } }) }
          ]
        }
      }
    }),
    secondary: FakeProvider.make({
      seed: seed + 1,
      apiKey: Redacted.make(keys.secondary),
      keepAliveTimeout: settings.keepAlive,
      maxRecordedRequests: 500,
      models: {
        "model-b": {
          latency: settings.latency,
          reply: (request, call) => replyOf(call.model, request),
          faults: [{ rate: 0.2, fault: FakeProvider.hang() }]
        },
        "model-c": { latency: settings.latency, reply: (request, call) => replyOf(call.model, request) }
      }
    })
  })

/** The two fakes' `Authorization` headers, sorted into their own key, the other's, and anything else. */
const keysSeenBy = (fakes: { readonly primary: FakeProvider.Service; readonly secondary: FakeProvider.Service }) =>
  Effect.forEach(["primary", "secondary"] as const, (name) =>
    Effect.map(fakes[name].requests, (requests) => {
      const own = `Bearer ${keys[name]}`
      const other = `Bearer ${keys[name === "primary" ? "secondary" : "primary"]}`
      const seen = { own: 0, other: 0, else: 0 }
      for (const request of requests) {
        if (request.authorization === own) seen.own++
        else if (request.authorization === other) seen.other++
        else seen.else++
      }
      return [name, seen] as const
    })).pipe(Effect.map(Object.fromEntries<{ own: number; other: number; else: number }>))

export const run = (options: Options) =>
  Effect.gen(function*() {
    const watched = yield* watchProcess
    const scan = SecretScan.make([keys.primary, keys.secondary])
    const heap = HeapProbe.make()
    const fakes = yield* startFakes(options.seed)
    const sum = (read: (fake: FakeProvider.Service) => Effect.Effect<number>) =>
      Effect.zipWith(read(fakes.primary), read(fakes.secondary), (a, b) => a + b)
    const openConnections = sum((fake) => fake.openConnections)
    const activeRequests = sum((fake) => fake.activeRequests)

    const ChatLive = Providers.layer([
      { name: "primary", baseUrl: fakes.primary.url, apiKey: Redacted.make(keys.primary), models: ["model-a"] },
      {
        name: "secondary",
        baseUrl: fakes.secondary.url,
        apiKey: Redacted.make(keys.secondary),
        models: ["model-b", "model-c"]
      }
    ])

    const chainOptions = (breaker: CircuitBreaker.Service): Fallback.Options => ({
      timeout: options.timeout ?? settings.timeout,
      retry: settings.retry,
      deadline: settings.deadline,
      breaker
    })

    const soak = Effect.gen(function*() {
      // Warm-up, not counted: loads the code paths and opens the first connections, with a
      // breaker of its own so that the soak's starts closed.
      const warmUp = Fallback.chain(models, chainOptions(yield* CircuitBreaker.make(settings.breaker)))
      yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => ChatCompletion.prompt(`warm-up #${i}`)),
        (request) => Effect.exit(warmUp(request)),
        { concurrency: options.concurrency, discard: true }
      )

      const breaker = yield* CircuitBreaker.make(settings.breaker)
      const transitions = new Tally()
      yield* Effect.forkScoped(
        Stream.runForEach(breaker.changes, (t) => Effect.sync(() => transitions.add(`${t.key} ${t.from}→${t.to}`)))
      )
      yield* Effect.yieldNow
      const complete = Fallback.chain(models, chainOptions(breaker))

      const servedBy = new Tally()
      const failedBy = new Tally()
      const attempts = new Map<string, Tally>(models.map((model) => [model, new Tally()]))
      const problems: Array<string> = []
      const latencies = new Float64Array(options.requests)
      const timeoutLateness: Array<number> = []
      const counts = { served: 0, untyped: 0, defects: 0, interrupted: 0, hung: 0, madeUp: 0, overruns: 0 }
      let peakOpen = 0
      const deadlineMs = Duration.toMillis(settings.deadline)
      const slackMs = Duration.toMillis(settings.deadlineSlack)
      const problem = (text: string) => {
        if (problems.length < 10) problems.push(text)
      }
      const countAttempts = (list: ReadonlyArray<Fallback.Attempt>) => {
        for (const attempt of list) {
          attempts.get(attempt.model)?.add(attempt.outcome === "failure" ? attempt.error._tag : attempt.outcome)
          if (attempt.outcome === "failure" && attempt.error._tag === "TimeoutError") {
            timeoutLateness.push(attempt.durationMs - Duration.toMillis(attempt.error.timeout))
          }
          if (attempt.outcome === "failure") {
            for (const text of SecretScan.renderings(attempt.error)) scan.scanError(`${attempt.model} error`, text)
          }
        }
      }

      const one = (index: number) =>
        Effect.gen(function*() {
          const prompt = `ticket #${index}`
          const start = yield* Clock.currentTimeNanos
          const exit = yield* complete(ChatCompletion.prompt(prompt)).pipe(
            // the soak's own options are fixed: a config error would be a bug of the harness
            Effect.catchTag("FallbackConfigError", (error) => Effect.die(error)),
            Effect.timeoutOrElse({ duration: settings.hungAfter, orElse: () => Effect.fail("hung" as const) }),
            Effect.exit
          )
          const elapsedMs = Number((yield* Clock.currentTimeNanos) - start) / 1e6
          latencies[index] = elapsedMs
          if (elapsedMs > deadlineMs + slackMs) {
            counts.overruns++
            const attemptsOf = Exit.isSuccess(exit)
              ? exit.value.attempts
              : Option.match(Cause.findErrorOption(exit.cause), {
                onNone: () => [],
                onSome: (error) => error === "hung" ? [] : error.attempts
              })
            const startMs = Number(start / 1_000_000n)
            problem(
              `request ${index} took ${elapsedMs.toFixed(0)} ms: ` +
                attemptsOf.map((a) =>
                  `${a.model}#${a.retry} at +${a.startedAt - startMs} ms for ${a.durationMs} ms ${
                    a.error?._tag ?? "ok"
                  }`
                ).join(", ")
            )
          }
          if (Exit.isSuccess(exit)) {
            const served = exit.value
            counts.served++
            servedBy.add(served.model)
            countAttempts(served.attempts)
            if (ChatCompletion.text(served.value) !== `${served.model} answers: ${prompt}`) counts.madeUp++
            return
          }
          const failure = Cause.findErrorOption(exit.cause)
          if (Option.isSome(failure)) {
            const error = failure.value
            if (error === "hung") {
              counts.hung++
              return problem(`request ${index} still running after ${Duration.format(settings.hungAfter)}`)
            }
            failedBy.add(error.reason)
            countAttempts(error.attempts)
            for (const text of SecretScan.renderings(error)) scan.scanError("AllModelsFailed", text)
            if (!error.attempts.every((attempt) => LlmError.isLlmError(attempt.error))) {
              counts.untyped++
              problem(`request ${index} failed with an error that is not an LlmError: ${error.message}`)
            }
          } else if (Cause.hasInterruptsOnly(exit.cause)) {
            counts.interrupted++
            problem(`request ${index} was interrupted`)
          } else {
            counts.defects++
            problem(`request ${index} died: ${Cause.pretty(exit.cause).slice(0, 500)}`)
          }
        })

      const batches = Math.max(3, options.batches ?? 10)
      const batchSize = Math.ceil(options.requests / batches)
      const afterBatch: Array<number> = []
      // without a forced collection, the lowest heap seen during a batch is the best estimate of
      // what the program keeps alive
      const floorPerBatch: Array<number> = []
      const loopDelay = monitorEventLoopDelay({ resolution: 10 })
      loopDelay.enable()
      const started = yield* Clock.currentTimeMillis
      for (let batch = 0; batch < batches; batch++) {
        const from = batch * batchSize
        const indices = Array.from(
          { length: Math.max(0, Math.min(batchSize, options.requests - from)) },
          (_, i) => from + i
        )
        let floor = Infinity
        const sample = Effect.map(openConnections, (open) => {
          peakOpen = Math.max(peakOpen, open)
          floor = Math.min(floor, process.memoryUsage().heapUsed)
        })
        const sampler = yield* Effect.forkScoped(Effect.forever(Effect.andThen(sample, Effect.sleep("50 millis"))))
        yield* Effect.forEach(indices, one, { concurrency: options.concurrency, discard: true })
        yield* Fiber.interrupt(sampler)
        floorPerBatch.push(floor)
        afterBatch.push(heap.heapUsed())
      }
      const durationMs = (yield* Clock.currentTimeMillis) - started
      loopDelay.disable()
      const eventLoopDelayMs = {
        p50: loopDelay.percentile(50) / 1e6,
        p99: loopDelay.percentile(99) / 1e6,
        max: loopDelay.max / 1e6
      }

      const openAtEnd = yield* openConnections
      const activeAtEnd = yield* activeRequests
      const zeroAfterMs = yield* waitFor(
        Effect.zipWith(openConnections, activeRequests, (open, active) => open === 0 && active === 0),
        "10 seconds"
      )

      const report: Omit<
        Report,
        "unhandledRejections" | "uncaughtExceptions" | "secrets" | "keysSeen" | "received"
      > = {
        requests: options.requests,
        concurrency: options.concurrency,
        durationMs,
        ...counts,
        servedBy: servedBy.toRecord(),
        failedBy: failedBy.toRecord(),
        problems,
        attempts: Object.fromEntries([...attempts.entries()].map(([model, tally]) => [model, tally.toRecord()])),
        latencyMs: {
          p50: quantile(latencies, 0.5),
          p99: quantile(latencies, 0.99),
          max: quantile(latencies, 1)
        },
        deadlineMs,
        eventLoopDelayMs,
        timeoutLateMs: {
          count: timeoutLateness.length,
          p50: quantile(timeoutLateness, 0.5),
          p99: quantile(timeoutLateness, 0.99),
          max: quantile(timeoutLateness, 1)
        },
        breakerTransitions: transitions.toRecord(),
        connections: { peakOpen, openAtEnd, activeAtEnd, zeroAfterMs },
        heap: { collector: heap.source, forced: heap.forced, afterBatch, floorPerBatch }
      }
      return report
    }).pipe(
      Effect.scoped,
      Effect.provide(ChatLive),
      Effect.provide(NodeHttpClient.layerUndici),
      Effect.withTracer(scan.tracer),
      // the scanner is the only logger: nothing is printed, every line is read
      Effect.provideService(Logger.CurrentLoggers, new Set([scan.logger])),
      Effect.provideService(References.MinimumLogLevel, "All")
    )
    const figures = yield* soak

    const report: Report = {
      ...figures,
      problems: [...figures.problems, ...watched.samples],
      unhandledRejections: watched.unhandledRejections,
      uncaughtExceptions: watched.uncaughtExceptions,
      secrets: scan.counts(),
      keysSeen: yield* keysSeenBy(fakes),
      received: {
        primary: yield* fakes.primary.requestCount,
        secondary: yield* fakes.secondary.requestCount
      }
    }
    return report
  }).pipe(Effect.scoped)
