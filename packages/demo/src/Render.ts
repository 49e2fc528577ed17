/**
 * The tour's report as text for a person: section headings, one block per request saying which
 * model served and why, circuit transitions, the A/B summary with its intervals and verdicts, the
 * best-of-n ranking and the per-model metrics. Colour is optional (`Style`); the same text
 * without it reads the same.
 *
 * `event` renders what happens while the tour runs (the demo prints it as it comes); `report`
 * renders a finished report whole, in the same words.
 *
 * @since 0.1.0
 */
import type { CircuitBreaker, Experiment, Observability } from "@resilient-llm/core"
import type * as Tour from "./Tour.js"

// ---------------------------------------------------------------------------------------------
// style
// ---------------------------------------------------------------------------------------------

/**
 * How text is decorated: ANSI colours, or nothing.
 *
 * @since 0.1.0
 * @category models
 */
export interface Style {
  readonly color: boolean
  readonly bold: (text: string) => string
  readonly dim: (text: string) => string
  readonly red: (text: string) => string
  readonly green: (text: string) => string
  readonly yellow: (text: string) => string
  readonly cyan: (text: string) => string
  readonly magenta: (text: string) => string
}

const sgr = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`
const plainText = (text: string) => text

/**
 * @since 0.1.0
 * @category constructors
 */
export const style = (color: boolean): Style =>
  color
    ? {
      color,
      bold: sgr(1, 22),
      dim: sgr(2, 22),
      red: sgr(31, 39),
      green: sgr(32, 39),
      yellow: sgr(33, 39),
      cyan: sgr(36, 39),
      magenta: sgr(35, 39)
    }
    : {
      color,
      bold: plainText,
      dim: plainText,
      red: plainText,
      green: plainText,
      yellow: plainText,
      cyan: plainText,
      magenta: plainText
    }

/**
 * @since 0.1.0
 * @category constructors
 */
export const plain: Style = style(false)

/**
 * Whether to colour a stream, by the usual conventions: `NO_COLOR` (set and not empty) turns
 * colour off; `FORCE_COLOR` turns it on (off when `0` or `false`); otherwise colour goes to a
 * terminal whose `TERM` is not `dumb`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const colorEnabled = (isTTY: boolean, env: Readonly<Record<string, string | undefined>>): boolean => {
  if (env["NO_COLOR"] !== undefined && env["NO_COLOR"] !== "") return false
  const force = env["FORCE_COLOR"]
  if (force !== undefined) return force !== "0" && force !== "false"
  return isTTY && env["TERM"] !== "dumb"
}

// ---------------------------------------------------------------------------------------------
// small pieces
// ---------------------------------------------------------------------------------------------

// eslint-disable-next-line no-control-regex
const ansi = /\x1b\[[0-9;]*m/g

/**
 * The text without its colour codes.
 *
 * @since 0.1.0
 * @category utils
 */
export const strip = (text: string): string => text.replace(ansi, "")

/**
 * The width of a text on screen, colour codes left out.
 *
 * @since 0.1.0
 * @category utils
 */
export const width = (text: string): number => Array.from(strip(text)).length

const padEnd = (text: string, size: number) => text + " ".repeat(Math.max(0, size - width(text)))
const padStart = (text: string, size: number) => " ".repeat(Math.max(0, size - width(text))) + text

/**
 * A text table: a header row, then rows; columns are left aligned unless `right` says otherwise.
 *
 * @since 0.1.0
 * @category utils
 */
export const table = (
  header: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  options: { readonly right?: ReadonlyArray<number>; readonly indent?: string; readonly style?: Style } = {}
): ReadonlyArray<string> => {
  const right = new Set(options.right ?? [])
  const widths = header.map((title, i) => Math.max(width(title), ...rows.map((row) => width(row[i] ?? ""))))
  const line = (cells: ReadonlyArray<string>) =>
    (options.indent ?? "") +
    cells.map((cell, i) => right.has(i) ? padStart(cell, widths[i]) : padEnd(cell, widths[i])).join("  ").trimEnd()
  const s = options.style ?? plain
  return [s.dim(line(header)), ...rows.map(line)]
}

const ms = (value: number | undefined): string => {
  if (value === undefined || !Number.isFinite(value)) return "–"
  return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`
}

const seconds = (value: number): string => `${(value / 1000).toFixed(1)} s`

const percent = (value: number): string => `${(value * 100).toFixed(1)}%`

const number = (value: number | undefined, digits = 1): string =>
  value === undefined || !Number.isFinite(value) ? "–" : value.toFixed(digits)

const signed = (value: number, digits: number): string =>
  `${value > 0 ? "+" : value < 0 ? "−" : "±"}${Math.abs(value).toFixed(digits)}`

const list = (items: ReadonlyArray<string>): string => `[${items.join(", ")}]`

const clip = (text: string, size: number): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  const chars = Array.from(flat)
  return chars.length <= size ? flat : `${chars.slice(0, size - 1).join("")}…`
}

const indent = "   "
const detail = "       "

// ---------------------------------------------------------------------------------------------
// the acts
// ---------------------------------------------------------------------------------------------

const titles: Record<Tour.Section, string> = {
  fallback: "Fallback chain",
  breaker: "Circuit breaker",
  experiment: "A/B experiment",
  bestOfN: "Best-of-n with a judge",
  deployments: "Deployments: rate limits, spillover, cost, budgets"
}

const numbers: Record<Tour.Section, number> = { fallback: 1, breaker: 2, experiment: 3, bestOfN: 4, deployments: 5 }

const heading = (section: Tour.Section, s: Style): string => s.bold(s.cyan(`${numbers[section]}. ${titles[section]}`))

/**
 * The first lines of the output: what runs, against what.
 *
 * @since 0.1.0
 * @category rendering
 */
export const started = (
  mode: Tour.Report["mode"],
  endpoint: string,
  seed: number | undefined,
  s: Style
): ReadonlyArray<string> => [
  s.bold("resilient-llm demo") +
  ": fallback chain, circuit breaker, A/B experiment, best-of-n with a judge, deployments",
  mode === "fake"
    ? s.dim(
      `${indent}against FakeProvider at ${endpoint} (seed ${seed ?? "?"}), over real HTTP through OpenAiCompatible`
    )
    : s.dim(`${indent}against ${endpoint}, through OpenAiCompatible`),
  ""
]

/**
 * A section's heading and what it is about to do.
 *
 * @since 0.1.0
 * @category rendering
 */
export const sectionStarted = (config: Tour.SectionConfig, s: Style): ReadonlyArray<string> => {
  const say = (text: string) => s.dim(`${indent}${text}`)
  switch (config.section) {
    case "fallback":
      return [
        heading("fallback", s),
        say(`Fallback.chain(${list(config.models)}): each model in turn until one answers;`),
        say(
          `${ms(config.timeoutMs)} per attempt, and ${config.retries} retry after ${ms(config.retryDelayMs)} ` +
            "for errors worth retrying (5xx, timeouts);"
        ),
        say(`the last request hedges: Fallback.chain(${list(config.hedgedModels)}) starts the next model`),
        say(`alongside the first once it has not answered for ${ms(config.hedgeDelayMs)}; the first answer serves`),
        ""
      ]
    case "breaker":
      return [
        heading("breaker", s),
        say(`Fallback.chain(${list(config.models)}) through a CircuitBreaker, ${ms(config.timeoutMs)} per attempt;`),
        say(
          `the circuit opens after ${config.trip} failures in a row, for ${ms(config.firstBreakMs)} ` +
            "(doubled after a failed probe),"
        ),
        say("then lets one call through as a probe"),
        ""
      ]
    case "experiment": {
      const [control, challenger] = config.variants
      return [
        heading("experiment", s),
        say(
          `Experiment "${config.name}": control ${control?.model ?? "?"} vs challenger ${challenger?.model ?? "?"}, ` +
            `weights ${config.variants.map((v) => v.weight).join(":")}, ${config.assignment} by user`
        ),
        say(
          `${config.requests} requests, ${config.concurrency} at a time, every other user's answer streamed; ` +
            `every answer is scored by ${config.judge}`
        ),
        ""
      ]
    }
    case "bestOfN":
      return [
        heading("bestOfN", s),
        say(
          `BestOfN.complete over ${list(config.models)}, judged by ${config.judge}, ` +
            `candidates cut off after ${ms(config.candidateTimeoutMs)}`
        ),
        ...(config.judgeRule === undefined ? [] : [say(`the fake judge's rule: ${config.judgeRule}`)]),
        say(`prompt: ${config.prompt}`),
        ""
      ]
    case "deployments":
      return [
        heading("deployments", s),
        say(`Deployments: the logical model "${config.model}" is served by`),
        ...config.deployments.map((d) =>
          say(
            `  ${d.name}: ${d.provider}'s ${d.providerModel}, priority ${d.priority}` +
              `${d.rpm === undefined ? "" : `, ${d.rpm} requests a minute`}, ` +
              `$${d.price.input} / $${d.price.output} per million tokens in / out`
          )
        ),
        say(
          `a budget of $${config.budget.limitUsd} per key a day (${config.burstKey}: $1); ` +
            `Fallback.chain(["${config.model}"]), max_tokens ${config.maxTokens}`
        ),
        ""
      ]
  }
}

/**
 * A section that could not run, and why.
 *
 * @since 0.1.0
 * @category rendering
 */
export const sectionSkipped = (skipped: Tour.Skipped, s: Style): ReadonlyArray<string> => [
  heading(skipped.section, s),
  `${indent}${s.yellow("skipped")}: ${skipped.reason}`,
  ""
]

// refusals before anything was sent
const skips: ReadonlySet<string> = new Set(["CircuitOpenError", "ThrottledError", "BulkheadFullError"])

const mark = (attempt: Tour.Attempt, s: Style): string =>
  attempt.outcome === "success"
    ? s.green("✓")
    : skips.has(attempt.outcome) || attempt.outcome === "cancelled"
    ? s.yellow("↷")
    : s.red("✗")

const target = (attempt: { readonly model: string; readonly deployment: string | undefined }): string =>
  attempt.deployment === undefined ? attempt.model : `${attempt.model}@${attempt.deployment}`

const attemptName = (attempt: Tour.Attempt): string =>
  (attempt.retry === 0 ? target(attempt) : `${target(attempt)} (retry ${attempt.retry})`) +
  (attempt.hedge ? " (hedge)" : "")

const usd = (amount: number): string => `$${amount.toFixed(Math.abs(amount) < 0.01 ? 6 : Math.abs(amount) < 1 ? 4 : 2)}`

/** Why an attempt failed, and what the chain did next. */
const why = (attempt: Tour.Attempt, next: Tour.Attempt | undefined): string => {
  if (attempt.outcome === "success") return attempt.costUsd === undefined ? "" : usd(attempt.costUsd)
  const then = next === undefined
    ? "no model left"
    : target(next) === target(attempt)
    ? "retried"
    : `next: ${target(next)}`
  switch (attempt.outcome) {
    case "ModelNotFoundError":
      return `no such model (not worth retrying); ${then}`
    case "TimeoutError":
      return `no answer in time, request aborted; ${then}`
    case "ServerError":
      return `HTTP ${attempt.status ?? "5xx"} from the provider; ${then}`
    case "CircuitOpenError":
      return `circuit open: skipped at once, nothing sent; ${then}`
    case "ThrottledError":
      return `rate limit full: skipped at once, nothing sent; ${then}`
    case "BulkheadFullError":
      return `too many calls in flight: skipped at once, nothing sent; ${then}`
    case "BudgetExceededError":
      return "budget spent: refused before any provider was asked"
    case "cancelled":
      return "another model answered first: interrupted, request aborted"
    default:
      return `${clip(attempt.error ?? attempt.outcome, 60)}; ${then}`
  }
}

const served = (request: Tour.Request, s: Style): string => {
  const by = request.servedBy === undefined
    ? s.red(`no model served`) + ` in ${ms(request.durationMs)}`
    : `served by ${s.bold(target({ model: request.servedBy, deployment: request.deployment }))} in ` +
      ms(request.durationMs)
  return request.key === undefined ? by : `${by}${s.dim(`  (${request.key})`)}`
}

const stateText = (state: string, s: Style): string =>
  state === "closed" ? s.green(state) : state === "half-open" ? s.yellow(state) : s.red(state)

/**
 * One request of a fallback chain: who served it, then each attempt with its outcome and why.
 *
 * @since 0.1.0
 * @category rendering
 */
export const request = (
  request: Tour.Request,
  state: string | undefined,
  s: Style
): ReadonlyArray<string> => {
  const first = request.attempts[0]?.model
  const head = `${indent}${s.bold(`#${request.number}`.padEnd(4))}${served(request, s)}` +
    (state === undefined || first === undefined ? "" : s.dim(`   ${first}'s circuit: `) + stateText(state, s))
  const names = request.attempts.map(attemptName)
  const nameWidth = Math.max(...names.map(width), 0)
  const lines = request.attempts.map((attempt, i) => {
    const outcome = attempt.outcome === "success" ? "" : attempt.outcome
    return `${detail}${mark(attempt, s)} ${padEnd(names[i], nameWidth)}  ${padStart(ms(attempt.durationMs), 7)}  ` +
      `${padEnd(outcome, 18)}  ${s.dim(why(attempt, request.attempts[i + 1]))}`.trimEnd()
  })
  const error = request.error === undefined ? [] : [`${detail}${s.red(clip(request.error, 100))}`]
  return [head, ...lines.map((line) => line.trimEnd()), ...error]
}

const reasons: Record<CircuitBreaker.Reason, string> = {
  "consecutive-failures": "too many failures in a row",
  "failure-rate": "failure rate",
  "break-elapsed": "break over: the next call is a probe",
  "probes-succeeded": "the probe succeeded",
  "probe-failed": "the probe failed",
  "probe-timed-out": "the probe ran too long",
  "isolated": "isolated",
  "reset": "reset"
}

/**
 * A circuit transition, as `CircuitBreaker.changes` reported it.
 *
 * @since 0.1.0
 * @category rendering
 */
export const transition = (t: Tour.Transition, s: Style): ReadonlyArray<string> => {
  const reason = reasons[t.reason]
  const next = t.breakMs === undefined ? "" : `; next probe in ${ms(t.breakMs)}`
  const during = t.during === undefined ? "" : `during #${t.during}: `
  return [
    `${indent}${s.magenta("◆")} ${s.dim(`+${seconds(t.atMs)}`)}  ${s.bold(t.key)}'s circuit ` +
    `${stateText(t.from, s)} → ${stateText(t.to, s)}  ${s.dim(`(${during}${reason}${next})`)}`
  ]
}

/**
 * A turn of the story (an outage starts, a model recovers).
 *
 * @since 0.1.0
 * @category rendering
 */
export const note = (text: string, s: Style): ReadonlyArray<string> => [`${indent}${s.yellow("▸")} ${text}`]

// ---------------------------------------------------------------------------------------------
// section summaries
// ---------------------------------------------------------------------------------------------

const breakerSummary = (report: Tour.BreakerReport, s: Style): ReadonlyArray<string> => {
  const order = report.transitions.map((t) => t.to).join(" → ")
  const first = report.transitions[0]?.from
  return [
    "",
    `${indent}${report.config.models[0]}'s circuit: ${first === undefined ? "no transitions" : `${first} → ${order}`}`,
    `${indent}${report.skipped} requests skipped ${report.config.models[0]} at once while its circuit was open:`,
    `${indent}${s.green(`about ${ms(report.savedMs)} of waiting saved`)}` +
    ` (a failed call cost ${ms(report.failureCostMs)} while it was closed)`
  ]
}

const verdictText = (verdict: Experiment.Verdict, s: Style): string =>
  verdict === "better" ? s.green(verdict) : verdict === "worse" ? s.red(verdict) : s.yellow(verdict)

const comparisonRow = (comparison: Experiment.Comparison, s: Style): ReadonlyArray<string> => {
  const scale = comparison.metric === "errorRate" ? 100 : 1
  const unit = comparison.metric === "latency" ? " ms" : comparison.metric === "errorRate" ? " pts" : ""
  const digits = comparison.metric === "latency" ? 0 : 1
  const value = (v: number | undefined) => v === undefined ? "–" : `${signed(v * scale, digits)}${unit}`
  const interval = comparison.lower === undefined || comparison.upper === undefined
    ? "–"
    : `[${signed(comparison.lower * scale, digits)}, ${signed(comparison.upper * scale, digits)}]${unit}`
  const names = { latency: "mean latency", errorRate: "error rate", score: "mean score" }
  return [names[comparison.metric], value(comparison.difference), interval, verdictText(comparison.verdict, s)]
}

/** One sentence from the three verdicts. */
const reading = (
  challenger: string,
  comparison: Experiment.ChallengerComparison
): string => {
  const words = {
    latency: { better: "is faster", worse: "is slower" },
    errorRate: { better: "fails less often", worse: "fails more often" },
    score: { better: "gets better scores", worse: "gets worse scores" }
  } as const
  const parts = (["latency", "errorRate", "score"] as const).flatMap((metric) => {
    const verdict = comparison[metric].verdict
    return verdict === "inconclusive" ? [] : [{ good: verdict === "better", text: words[metric][verdict] }]
  })
  const unknown = (["latency", "errorRate", "score"] as const).filter((m) => comparison[m].verdict === "inconclusive")
  const good = parts.filter((p) => p.good).map((p) => p.text)
  const bad = parts.filter((p) => !p.good).map((p) => p.text)
  const join = (items: ReadonlyArray<string>) =>
    items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`
  const said = good.length > 0 && bad.length > 0
    ? `${challenger} ${join(good)}, but ${join(bad)}`
    : good.length + bad.length > 0
    ? `${challenger} ${join([...good, ...bad])}`
    : `the data cannot tell ${challenger} from the control yet`
  const names = { latency: "latency", errorRate: "error rate", score: "score" }
  return unknown.length > 0 && parts.length > 0
    ? `${said}; ${join(unknown.map((m) => names[m]))}: inconclusive.`
    : `${said}.`
}

const experimentSummary = (report: Tour.ExperimentReport, s: Style): ReadonlyArray<string> => {
  const summary = report.summary
  const variants = table(
    ["variant", "model", "calls", "errors", "error rate", "mean latency", "p50", "p95", "mean score", "scored"],
    summary.variants.map((v) => [
      v.name,
      v.model,
      String(v.calls),
      String(v.errors),
      percent(v.errorRate),
      ms(v.latency.mean),
      ms(v.latency.p50),
      ms(v.latency.p95),
      number(v.score.mean),
      String(v.score.count)
    ]),
    { right: [2, 3, 4, 5, 6, 7, 8, 9], indent, style: s }
  )
  const level = `${Math.round(summary.confidence * 100)}%`
  const comparisons = summary.comparisons.flatMap((c) => {
    const model = summary.variants.find((v) => v.name === c.variant)?.model ?? c.variant
    return [
      "",
      ...table(
        [`${c.variant} − ${summary.control}`, "difference", `${level} interval`, "verdict"],
        [c.latency, c.errorRate, c.score].map((comparison) => comparisonRow(comparison, s)),
        { right: [1, 2], indent, style: s }
      ),
      `${indent}${s.bold(reading(model, c))}`
    ]
  })
  return [
    `${indent}${report.config.requests} requests in ${seconds(report.durationMs)}: ${report.served} answered ` +
    `(${report.streamed} of them streamed, ${report.scored} scored by the judge), ${report.failed} failed`,
    "",
    ...variants,
    ...comparisons
  ]
}

const bestOfNSummary = (report: Tour.BestOfNReport, s: Style): ReadonlyArray<string> => {
  const rank = new Map(report.ranking.map((model, i) => [model, i + 1]))
  const ordered = [...report.candidates].sort((a, b) =>
    (rank.get(a.model) ?? Infinity) - (rank.get(b.model) ?? Infinity)
  )
  const rows = ordered.map((c) => [
    rank.has(c.model) ? String(rank.get(c.model)) : "–",
    c.model === report.best ? s.green(c.model) : c.model,
    c.score === undefined ? s.red(c.status) : String(c.score),
    ms(c.latencyMs),
    ms(c.judgeLatencyMs),
    clip(c.text ?? c.error ?? "", 56)
  ])
  const slowest = Math.max(0, ...report.candidates.map((c) => c.latencyMs ?? 0))
  return [
    ...table(["rank", "model", "score", "answered in", "judged in", "answer"], rows, {
      right: [0, 2, 3, 4],
      indent,
      style: s
    }),
    "",
    ...(report.best === undefined
      ? [`${indent}${s.red(`no answer picked: ${clip(report.error ?? "no candidate was scored", 200)}`)}`]
      : [
        `${indent}${s.bold(`best: ${report.best}`)}. The call took ${ms(report.durationMs)}: about the slowest ` +
        `candidate (${ms(slowest)}) plus one judge call,`,
        `${indent}since the candidates run at once and each is judged as soon as it answers.`
      ])
  ]
}

const deploymentsSummary = (report: Tour.DeploymentsReport, s: Style): ReadonlyArray<string> => {
  const rows = report.config.deployments.map((d) => [
    d.name,
    String(report.served[d.name] ?? 0),
    usd(report.costUsd[d.name] ?? 0),
    d.rpm === undefined ? "–" : `${report.limits[d.name] ?? "?"} of ${d.rpm}`
  ])
  const budget = report.budget
  return [
    "",
    ...table(["deployment", "served", "cost", "requests a minute now"], rows, { right: [1, 2], indent, style: s }),
    "",
    budget.refused === undefined
      ? `${indent}${budget.key} spent ${usd(budget.spentUsd)} of ${usd(budget.limitUsd)} and was never refused`
      : `${indent}${s.bold(`${budget.key}'s budget refused request #${budget.refused}`)}: ` +
        `${usd(budget.spentUsd)} spent of ${usd(budget.limitUsd)}, nothing sent to any provider`
  ]
}

/**
 * What a section adds once it has finished: the breaker's account, the A/B tables, the ranking.
 *
 * @since 0.1.0
 * @category rendering
 */
export const sectionFinished = (report: Tour.SectionReport, s: Style): ReadonlyArray<string> => {
  switch (report.section) {
    case "fallback":
      return [""]
    case "breaker":
      return [...breakerSummary(report, s), ""]
    case "experiment":
      return [...experimentSummary(report, s), ""]
    case "bestOfN":
      return [...bestOfNSummary(report, s), ""]
    case "deployments":
      return [...deploymentsSummary(report, s), ""]
  }
}

/**
 * The per-model table of `Observability.snapshot`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const metrics = (rows: ReadonlyArray<Observability.ModelStats>, s: Style): ReadonlyArray<string> => [
  s.bold(s.cyan("Per-model metrics")) + s.dim("  (Observability.snapshot: every attempt of every pattern)"),
  ...table(
    ["model", "requests", "ok", "errors", "error rate", "p50", "p95", "outcomes"],
    rows.map((row) => [
      row.model,
      String(row.requests),
      String(row.successes),
      String(row.errors),
      percent(row.errorRate),
      ms(row.p50Ms),
      ms(row.p95Ms),
      Object.entries(row.outcomes).filter(([outcome]) => outcome !== "success").map(([outcome, n]) => `${outcome} ${n}`)
        .join(", ")
    ]),
    { right: [1, 2, 3, 4, 5, 6], indent, style: s }
  ),
  ""
]

/**
 * The last line.
 *
 * @since 0.1.0
 * @category rendering
 */
export const finished = (report: Tour.Report, s: Style): ReadonlyArray<string> => [
  s.dim(
    `Done in ${seconds(report.durationMs)}. \`pnpm -s demo --json\` prints the same as JSON; ` +
      "`pnpm demo --help` lists the options."
  )
]

/**
 * What to print for one event of a running tour; nothing for progress, which the demo shows on its
 * status line.
 *
 * @since 0.1.0
 * @category rendering
 */
export const event = (e: Tour.Event, s: Style): ReadonlyArray<string> => {
  switch (e._tag) {
    case "Started":
      return started(e.mode, e.endpoint, e.seed, s)
    case "SectionStarted":
      return sectionStarted(e.config, s)
    case "SectionSkipped":
      return sectionSkipped(e.skipped, s)
    case "Note":
      return note(e.text, s)
    case "Request":
      return request(e.request, e.state, s)
    case "Transition":
      return transition(e.transition, s)
    case "Progress":
      return []
    case "SectionFinished":
      return sectionFinished(e.report, s)
  }
}

/**
 * A finished report, whole: the same text the demo prints as it runs.
 *
 * @since 0.1.0
 * @category rendering
 */
export const report = (r: Tour.Report, s: Style): ReadonlyArray<string> => {
  const fallback = [
    ...sectionStarted(r.fallback.config, s),
    ...r.fallback.requests.flatMap((req) => request(req, undefined, s)),
    ...sectionFinished(r.fallback, s)
  ]
  const breaker = r.breaker.status === "skipped" ? sectionSkipped(r.breaker, s) : [
    ...sectionStarted(r.breaker.config, s),
    ...r.breaker.timeline.flatMap((step) =>
      step.kind === "note"
        ? note(step.text, s)
        : step.kind === "request"
        ? request(step.request, step.state, s)
        : transition(step.transition, s)
    ),
    ...sectionFinished(r.breaker, s)
  ]
  const experiment = r.experiment.status === "skipped"
    ? sectionSkipped(r.experiment, s)
    : [...sectionStarted(r.experiment.config, s), ...sectionFinished(r.experiment, s)]
  const bestOfN = [...sectionStarted(r.bestOfN.config, s), ...sectionFinished(r.bestOfN, s)]
  const deployments = r.deployments.status === "skipped" ? sectionSkipped(r.deployments, s) : [
    ...sectionStarted(r.deployments.config, s),
    ...r.deployments.requests.flatMap((req) => request(req, undefined, s)),
    ...sectionFinished(r.deployments, s)
  ]
  return [
    ...started(r.mode, r.endpoint, r.seed, s),
    ...fallback,
    ...breaker,
    ...experiment,
    ...bestOfN,
    ...deployments,
    ...metrics(r.metrics, s),
    ...finished(r, s)
  ]
}
