/**
 * Benchmark 5: what an outage costs the callers, in virtual time (`TestClock`, `TestChatClient`),
 * so the figures are exact and the same on every machine. A primary hangs (each call would take
 * 10 minutes) while 1,000 requests arrive at 100 per second; a healthy second model answers in
 * 1 s. The seed's hand-written chain tries the primary with a 30 s timeout every time, then the
 * fallback; ours is `Fallback.chain` with the same timeout and a circuit breaker (5 consecutive
 * failures, 30 s break), then the same with hedging (the primary's p95, 1 s until it has answers)
 * and a breaker that counts a call running past 1.5 s as a failure while it runs. Issue 16's
 * target (P4): a p99 wait of at most 3 s, and a total wait of at most 1/50 of the seed chain's.
 * Also best-of-n: `BestOfN.complete` (candidates and judging in parallel) against asking and
 * scoring the same models one after another.
 */
import { BestOfN, ChatClient, ChatCompletion, CircuitBreaker, Fallback, Judge, LlmError } from "@resilient-llm/core"
import { TestChatClient } from "@resilient-llm/testing"
import { Clock, Duration, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { attemptTimeoutMs, breakerOptions, DiscardLogs } from "./contenders.js"
import { quantile } from "./measure.js"
import { type Ratio, type Row, type Section, valueCell } from "./report.js"

export interface OutageOptions {
  readonly requests: number
  readonly bestOfNModels: number
}

const arrivalEveryMs = 10
const fallbackLatencyMs = 1_000
const hang = "10 minutes"

// The hedged chain: the delay is the primary's p95, 1 s while it has too few answers (a hung
// primary has none); a call that runs past 1.5 s counts against it while it runs, so the hedges
// that cancel its calls do not hide it from the breaker.
const hedgeDelay = { percentile: 95, initial: "1 second" } as const
const slowCallThreshold = "1500 millis"

const question = "Where is my order?"
const request = ChatCompletion.prompt(question)
const messages: ChatCompletion.ChatRequest["messages"] = [{ role: "user", content: question }]

const outageScript: TestChatClient.Script = {
  primary: [TestChatClient.reply("too late", { delay: hang })],
  fallback: [TestChatClient.reply("fallback here", { delay: Duration.millis(fallbackLatencyMs) })]
}

const timeoutError = new LlmError.TimeoutError({ model: "primary", timeout: Duration.millis(attemptTimeoutMs) })

/** The chain people write by hand: the primary with a timeout, then the fallback, every time. */
const handWritten = ChatClient.create({ model: "primary", messages }).pipe(
  Effect.timeoutOrElse({ duration: Duration.millis(attemptTimeoutMs), orElse: () => Effect.fail(timeoutError) }),
  Effect.catch(() => ChatClient.create({ model: "fallback", messages }))
)

export interface OutageFigures {
  readonly waitsMs: ReadonlyArray<number>
  readonly primaryCalls: number
}

/**
 * Sends `requests` requests, one every 100 ms of virtual time, each through `serve`, and moves the
 * clock until all have an answer. Each wait is read inside its own fiber, so it is exact.
 */
const simulate = Effect.fnUntraced(function*<E>(
  requests: number,
  serve: Effect.Effect<unknown, E, ChatClient.ChatClient | CircuitBreaker.CircuitBreaker>
): Effect.fn.Return<
  OutageFigures,
  E,
  ChatClient.ChatClient | CircuitBreaker.CircuitBreaker | TestChatClient.TestChatClient
> {
  const waits = new Array<number>(requests).fill(Number.NaN)
  const fibers: Array<Fiber.Fiber<void, E>> = []
  let done = 0
  for (let i = 0; i < requests; i++) {
    const caller = Effect.gen(function*() {
      yield* Effect.sleep(Duration.millis(i * arrivalEveryMs))
      const start = yield* Clock.currentTimeMillis
      yield* serve
      waits[i] = (yield* Clock.currentTimeMillis) - start
      done++
    })
    fibers.push(yield* Effect.forkChild(caller))
  }
  // generous bound: every request could wait a whole hang and the fallback
  const steps = Math.ceil((requests * arrivalEveryMs + Duration.toMillis(hang) + 60_000) / arrivalEveryMs)
  for (let step = 0; step < steps && done < requests; step++) {
    yield* TestClock.adjust(Duration.millis(arrivalEveryMs))
  }
  yield* Fiber.joinAll(fibers)
  return { waitsMs: waits, primaryCalls: (yield* TestChatClient.callsTo("primary")).length }
})

// The TestClock is built first and given to the others, so the breaker's timers follow it too.
const outageWorld = (breaker: CircuitBreaker.Options) =>
  Layer.mergeAll(
    TestChatClient.layer(outageScript),
    CircuitBreaker.layer(breaker),
    DiscardLogs
  ).pipe(Layer.provideMerge(TestClock.layer()))

/** Runs the outage under a fresh TestClock, with the chain `serve` built from the breaker in context. */
const underOutage = <E>(
  requests: number,
  serve: (breaker: CircuitBreaker.Service) => Effect.Effect<unknown, E, ChatClient.ChatClient>,
  breaker: CircuitBreaker.Options = breakerOptions
): Promise<OutageFigures> =>
  Effect.runPromise(
    Effect.flatMap(CircuitBreaker.CircuitBreaker, (service) => simulate(requests, serve(service))).pipe(
      Effect.provide(outageWorld(breaker))
    )
  )

const bestOfNScript = (latencies: ReadonlyArray<number>): TestChatClient.Script =>
  Object.fromEntries(
    latencies.map((latency, i) => [
      `model-${i}`,
      [TestChatClient.reply(`answer ${"!".repeat(i + 1)}`, { delay: Duration.millis(latency) })]
    ])
  )

const judgeLatencyMs = 300

// A judge that takes 300 ms per answer and prefers longer ones.
const slowJudge = Judge.fromFunction(({ response }) =>
  Effect.as(Effect.sleep(Duration.millis(judgeLatencyMs)), response.length)
)

/** Best-of-n, in virtual milliseconds from the call to the ranked answer, parallel and sequential. */
const bestOfN = (models: number): Promise<{ readonly parallelMs: number; readonly sequentialMs: number }> => {
  const latencies = Array.from({ length: models }, (_, i) => 800 + ((i * 700) % 1_900))
  const names = latencies.map((_, i) => `model-${i}`)
  const timed = Effect.fnUntraced(function*<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.fn.Return<number, E, R> {
    const start = yield* Clock.currentTimeMillis
    const fiber = yield* Effect.forkChild(Effect.zip(effect, Clock.currentTimeMillis))
    while (fiber.pollUnsafe() === undefined) yield* TestClock.adjust("10 millis")
    const [, end] = yield* Fiber.join(fiber)
    return end - start
  })
  const sequential = Effect.gen(function*() {
    let best = -Infinity
    for (const model of names) {
      const completion = yield* ChatClient.create({ model, messages })
      const score = yield* Judge.score({ prompt: question, response: ChatCompletion.text(completion) })
      best = Math.max(best, score.value)
    }
    return best
  })
  return Effect.runPromise(
    Effect.gen(function*() {
      const parallelMs = yield* timed(BestOfN.complete(request, { models: names }))
      const sequentialMs = yield* timed(sequential)
      return { parallelMs, sequentialMs }
    }).pipe(
      Effect.provide(
        Layer.mergeAll(TestChatClient.layer(bestOfNScript(latencies)), Judge.layer(slowJudge), DiscardLogs).pipe(
          Layer.provideMerge(TestClock.layer())
        )
      )
    )
  )
}

const summary = (figures: OutageFigures) => {
  const waits = figures.waitsMs
  const total = waits.reduce((sum, wait) => sum + wait, 0)
  return {
    totalS: total / 1000,
    meanMs: total / waits.length,
    p50Ms: quantile(waits, 0.5),
    p99Ms: quantile(waits, 0.99),
    maxMs: Math.max(...waits),
    slow: waits.filter((wait) => wait > 1_000).length,
    primaryCalls: figures.primaryCalls
  }
}

/** Runs benchmark 5. */
export const outage = async (options: OutageOptions): Promise<Section> => {
  const naive = summary(await underOutage(options.requests, () => handWritten))
  const ours = summary(
    await underOutage(
      options.requests,
      (breaker) => Fallback.chain(["primary", "fallback"], { timeout: attemptTimeoutMs, breaker })(request)
    )
  )
  const hedged = summary(
    await underOutage(
      options.requests,
      (breaker) =>
        Fallback.chain(["primary", "fallback"], { timeout: attemptTimeoutMs, breaker, hedge: { delay: hedgeDelay } })(
          request
        ),
      { ...breakerOptions, slowCallThreshold }
    )
  )
  // No chain can serve a request sooner than the healthy model answers: that is the floor.
  const floorS = (options.requests * fallbackLatencyMs) / 1000
  const best = await bestOfN(options.bestOfNModels)
  const row = (key: string, label: string, figures: ReturnType<typeof summary>): Row => ({
    key,
    label,
    cells: {
      total: valueCell(figures.totalS, "s"),
      mean: valueCell(figures.meanMs, "ms"),
      p50: valueCell(figures.p50Ms, "ms"),
      p99: valueCell(figures.p99Ms, "ms"),
      max: valueCell(figures.maxMs, "ms"),
      slow: valueCell(figures.slow, ""),
      primary: valueCell(figures.primaryCalls, "")
    }
  })
  const ratios: Array<Ratio> = [
    {
      name: "P4: hedged chain, p99 caller wait in seconds",
      value: hedged.p99Ms / 1000,
      target: "<= 3",
      met: hedged.p99Ms <= 3_000
    },
    {
      name: "P4: hedged chain / seed's hand-written chain, total time callers waited",
      value: hedged.totalS / naive.totalS,
      target: "<= 1/50 (0.02)",
      met: hedged.totalS * 50 <= naive.totalS
    },
    {
      name: `  floor: every request served by the 1 s model (${floorS} s) / seed's chain, total wait`,
      value: floorS / naive.totalS
    },
    {
      name: "  hedged chain / seed's chain, wait beyond the healthy model's own 1 s",
      value: (hedged.totalS - floorS) / (naive.totalS - floorS)
    },
    {
      name: "hand-written / resilient-llm (breaker, no hedging), total time callers waited",
      value: naive.totalS / ours.totalS
    },
    { name: "hand-written / resilient-llm (breaker, no hedging), p99 wait", value: naive.p99Ms / ours.p99Ms },
    {
      name: `best-of-${options.bestOfNModels}: sequential / BestOfN.complete, wall time`,
      value: best.sequentialMs / best.parallelMs,
      target: "> 1",
      met: best.sequentialMs > best.parallelMs
    }
  ]
  return {
    id: "outage",
    title: `5. Outage cost in virtual time: primary hangs, ${options.requests} requests at 100/s, fallback 1 s`,
    columns: [
      { key: "total", header: "total wait" },
      { key: "mean", header: "mean" },
      { key: "p50", header: "p50" },
      { key: "p99", header: "p99" },
      { key: "max", header: "max" },
      { key: "slow", header: "waits > 1 s" },
      { key: "primary", header: "calls to primary" }
    ],
    rows: [
      row("handWritten", "hand-written: primary (30 s timeout), then fallback", naive),
      row("ours", "resilient-llm Fallback.chain + CircuitBreaker", ours),
      row("oursHedged", "  + hedge (p95, 1 s initial), breaker counts slow calls at 1.5 s", hedged),
      {
        key: "bestOfNParallel",
        label: `best-of-${options.bestOfNModels}: BestOfN.complete (parallel)`,
        cells: { total: valueCell(best.parallelMs / 1000, "s") }
      },
      {
        key: "bestOfNSequential",
        label: `best-of-${options.bestOfNModels}: ask and score one by one`,
        cells: { total: valueCell(best.sequentialMs / 1000, "s") }
      }
    ],
    ratios,
    notes: [
      "Virtual time under TestClock with TestChatClient: exact, and the same on any machine.",
      "Without hedging the breaker learns only from finished attempts: every request that arrives before the first " +
      "5 timeouts end (the first 30 s: all 1,000 at 100/s) waits out the 30 s timeout, and the chain is no better " +
      "than the hand-written one.",
      "With hedging, each request's primary call gets the fallback started alongside it after 1 s (the primary has " +
      "no answers, so its p95 is unknown and the initial delay applies); the fallback answers 1 s later and the " +
      "primary call is cancelled. The breaker counts each primary call as failed once it has run 1.5 s, so the " +
      "circuit opens 1.5 s after the fifth request; from then on a request goes to the fallback at once and waits " +
      "its 1 s. Every request needs the healthy model's 1 s, so no chain can wait less than the floor row says.",
      `Best-of-n: candidates answer in 0.8 to 2.6 s, the judge takes ${judgeLatencyMs} ms per answer; BestOfN.complete ` +
      "asks every model at once and judges each answer as it arrives, so it takes about the slowest candidate plus " +
      "one judgement."
    ]
  }
}
