/**
 * Benchmark 1: what the policies cost on a call that succeeds at once. The call is a stub that
 * answers immediately, so everything measured is the wrapping: ours (`Fallback.chain` over one
 * model with timeout, retry and breaker), the same stack in cockatiel and in opossum, and the bare
 * call in each world (a resolved promise; an `Effect.succeed`).
 */
import { ChatClient, ChatCompletion, CircuitBreaker, Fallback, Retry } from "@resilient-llm/core"
import { Effect, Layer, ManagedRuntime, References, Stream, Tracer } from "effect"
import {
  attemptTimeoutMs,
  breakerOptions,
  cockatielStack,
  DiscardLogs,
  KeepSpans,
  opossumStack,
  retries
} from "./contenders.js"
import { type Contender, measureRounds, sink, type Timing, timingOf } from "./measure.js"
import { perRound, type Ratio, roundRatios, type Row, type Section, statCell, textCell } from "./report.js"

export interface OverheadOptions {
  readonly rounds: number
  readonly size: number
  readonly warmup: number
}

const completion = ChatCompletion.make({
  model: "primary",
  content: "Hello.",
  usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 }
})

const request = ChatCompletion.prompt("Say hello")
const primaryRequest: ChatCompletion.ChatRequest = {
  model: "primary",
  messages: [{ role: "user", content: "Say hello" }]
}

const StubClient = Layer.succeed(ChatClient.ChatClient, {
  create: () => Effect.succeed(completion),
  stream: () => Stream.die("the overhead benchmark does not stream")
})

// Logs are produced (two lines per call: the attempt and the served summary) and dropped by a
// logger that does nothing, and spans are made (the chain's and the attempt's) for a tracer that
// keeps them in memory, so what is measured is the library's work, not a console's or an exporter's.
const Runtime = Layer.mergeAll(StubClient, CircuitBreaker.layer(breakerOptions), DiscardLogs, KeepSpans)

type Key =
  | "promise"
  | "effect"
  | "cockatiel"
  | "opossum"
  | "ours"
  | "oursQuiet"
  | "oursBare"
  | "oursNoTracing"
  | "oursRunPromise"
  | "effectPrimitives"

const labels: Record<Key, string> = {
  promise: "bare call (promise)",
  effect: "bare call (Effect)",
  cockatiel: "cockatiel wrap(retry, breaker, timeout)",
  opossum: "opossum breaker(timeout) + retry loop",
  ours: "resilient-llm Fallback.chain (1 model)",
  oursQuiet: "  same, logs below minimum level",
  oursBare: "  same, no tracer or logger installed (P1b)",
  oursNoTracing: "  same, no logger and tracing disabled",
  oursRunPromise: "  same, one runPromise per call",
  effectPrimitives: "  Effect primitives only (no fallback/observability)"
}

/** Runs benchmark 1. */
export const overhead = async (options: OverheadOptions): Promise<Section> => {
  const runtime = ManagedRuntime.make(Runtime)
  const breaker = await runtime.runPromise(CircuitBreaker.CircuitBreaker)
  const chainOptions: Fallback.Options = {
    timeout: attemptTimeoutMs,
    retry: { retries },
    breaker
  }
  const complete = Fallback.chain(["primary"], chainOptions)
  const primitives = (client: ChatClient.Service) =>
    client.create(primaryRequest).pipe(
      Retry.withTimeout({ model: "primary", timeout: attemptTimeoutMs }),
      breaker.protect("primary"),
      Retry.withRetry({ retries })
    )

  const call = (): Promise<ChatCompletion.ChatCompletion> => Promise.resolve(completion)
  const cockatiel = cockatielStack()
  const opossum = opossumStack(call)

  const effectLoop = <A, E>(
    once: Effect.Effect<A, E, ChatClient.ChatClient>,
    use: (a: A) => number,
    around: <X, Y>(loop: Effect.Effect<X, Y, ChatClient.ChatClient>) => Effect.Effect<X, Y, ChatClient.ChatClient> = (
      loop
    ) => loop
  ) => {
    const loop = Effect.fnUntraced(function*(n: number) {
      for (let i = 0; i < n; i++) sink(use(yield* once))
      return n
    })
    return (n: number) => runtime.runPromise(around(loop(n)))
  }
  // No logger and no tracer: what an application that installed neither runs (Effect's default
  // tracer, which keeps spans in memory and exports them nowhere). Set once around the loop.
  const noLoggers = <X, Y, Z>(loop: Effect.Effect<X, Y, Z>) =>
    Effect.withTracer(Effect.provideService(loop, References.CurrentLoggers, new Set()), Tracer.nativeTracer)

  const promiseLoop = <A>(once: () => Promise<A>, use: (a: A) => number) => async (n: number) => {
    for (let i = 0; i < n; i++) sink(use(await once()))
    return n
  }

  const choices = (c: ChatCompletion.ChatCompletion) => c.choices.length
  const served = (s: Fallback.Served<ChatCompletion.ChatCompletion>) => s.attempts.length + s.value.choices.length

  const contenders: ReadonlyArray<Contender<Key>> = [
    { key: "promise", run: promiseLoop(call, choices) },
    { key: "effect", run: effectLoop(ChatClient.create(primaryRequest), choices) },
    { key: "cockatiel", run: promiseLoop(() => cockatiel.execute(call), choices) },
    { key: "opossum", run: promiseLoop(opossum.run, choices) },
    { key: "ours", run: effectLoop(complete(request), served) },
    {
      key: "oursQuiet",
      run: effectLoop(complete(request).pipe(Effect.provideService(References.MinimumLogLevel, "Warn")), served)
    },
    { key: "oursBare", run: effectLoop(complete(request), served, noLoggers) },
    {
      key: "oursNoTracing",
      run: effectLoop(complete(request), served, (loop) => noLoggers(Effect.withTracerEnabled(loop, false)))
    },
    { key: "oursRunPromise", run: promiseLoop(() => runtime.runPromise(complete(request)), served) },
    { key: "effectPrimitives", run: effectLoop(Effect.flatMap(ChatClient.ChatClient, primitives), choices) }
  ]

  try {
    const timings = await measureRounds(contenders, options)
    const of = (key: Key): Timing => timingOf(timings, key)
    // CPU time is the figure: on a shared machine, wall time also counts the time this process waited
    // for a core, which says more about the neighbours than about the code.
    const ns = (key: Key) => of(key).cpuNsPerUnit.median
    const rows: Array<Row> = contenders.map(({ key }) => ({
      key,
      label: labels[key],
      cells: {
        cpu: statCell(of(key).cpuNsPerUnit, "ns"),
        wall: statCell(of(key).wallNsPerUnit, "ns"),
        overhead: textCell(
          key === "promise" || key === "effect"
            ? ""
            : `${Math.round(ns(key) - ns(isPromise(key) ? "promise" : "effect"))} ns`
        ),
        vsCockatiel: textCell(`${(ns(key) / ns("cockatiel")).toFixed(2)}x`)
      }
    }))
    const oursOverhead = ns("ours") - ns("effect")
    const cockatielOverhead = ns("cockatiel") - ns("promise")
    const rounds = (key: Key) => of(key).cpuNsPerUnit.rounds
    const ratios: Array<Ratio> = [
      perRound(
        "P1: resilient-llm / cockatiel, CPU per call, per round",
        roundRatios(rounds("ours"), rounds("cockatiel")),
        {
          text: "median <= 1",
          met: (_, median) => median <= 1
        }
      ),
      perRound(
        "P1b: resilient-llm with no tracer or logger, µs of CPU per call over a bare Effect call, per round",
        rounds("oursBare").map((value, i) => (value - rounds("effect")[i]) / 1000),
        { text: "<= 5 µs (median)", met: (_, median) => median <= 5 }
      ),
      perRound(
        "  the same with tracing disabled too, µs over a bare Effect call",
        rounds("oursNoTracing").map((value, i) => (value - rounds("effect")[i]) / 1000)
      ),
      { name: "resilient-llm / opossum, time per call", value: ns("ours") / ns("opossum") },
      { name: "resilient-llm / cockatiel, overhead over each bare call", value: oursOverhead / cockatielOverhead },
      { name: "resilient-llm / bare Effect call", value: ns("ours") / ns("effect") },
      { name: "cockatiel / bare promise call", value: ns("cockatiel") / ns("promise") }
    ]
    return {
      id: "overhead",
      title: "1. Policy overhead per call (a call that succeeds at once)",
      columns: [
        { key: "cpu", header: "CPU per call" },
        { key: "wall", header: "wall per call" },
        { key: "overhead", header: "over bare call" },
        { key: "vsCockatiel", header: "vs cockatiel" }
      ],
      rows,
      ratios,
      notes: [
        "resilient-llm per call: 2 spans (the chain's and the attempt's, to an installed tracer that keeps them in " +
        "memory), 2 log records (to a logger that discards them), metrics (request counter, latency histogram, " +
        "latency summary, token counters), breaker admission and outcome, a timeout timer and the attempt report. " +
        "P1b: the same chain with no tracer installed (Effect's default, which exports nothing: the patterns then " +
        "make no spans) and no logger (no log record is built); metrics, breaker, timeout, retry and report as above.",
        "cockatiel: no logs, traces or metrics; emits events to listeners (none attached). Its timeout sets a timer " +
        "and an AbortController per call.",
        "opossum: rolling counts and latency percentiles (its metrics), events; no logs or traces; a timer per call.",
        "Each contender runs the same number of calls per round in its own world: an async loop of awaits, or an " +
        "Effect generator loop of yields (Effect.fnUntraced); 'over bare call' subtracts the bare call of the same world."
      ]
    }
  } finally {
    opossum.breaker.shutdown()
    await runtime.dispose()
  }
}

const isPromise = (key: Key): boolean =>
  key === "promise" || key === "cockatiel" || key === "opossum" || key === "oursRunPromise"
