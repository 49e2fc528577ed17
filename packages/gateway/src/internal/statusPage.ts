/**
 * The status page: one HTML document with no script and no outside resource (so it works behind
 * any firewall, and sends the browser nowhere), redrawn by the browser every few seconds. Per
 * virtual model: what it served and spent; the deployments of each logical model it calls, with
 * their circuits (state now, and a strip of their states over the history window, with the last
 * transitions), calls in flight, moving latency, rate limits now, calls, failures and cost; latency
 * p50/p95/p99 and error rate over time as SVG line charts; and for an experiment its A/B summary
 * with each challenger's intervals and verdicts.
 *
 * @internal
 */
import * as Cost from "@resilient-llm/core/Cost"
import type * as Experiment from "@resilient-llm/core/Experiment"
import type * as Gateway from "../Gateway.js"
import type { Point, TransitionRecord } from "./history.js"

const escape = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }[c] ?? c))

const fixed = (n: number | undefined, digits = 0): string =>
  n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(digits)
const percent = (n: number | undefined): string => n === undefined ? "–" : `${(n * 100).toFixed(1)}%`
const usd = (n: number): string => n === 0 ? "–" : Cost.format(n)
const time = (ms: number): string => new Date(ms).toISOString().slice(11, 19)

/** Circuit colours, also used by the tests to find the strips in a screenshot. */
export const stateColors: Readonly<Record<string, string>> = {
  closed: "#16a34a",
  "half-open": "#f59e0b",
  open: "#dc2626",
  isolated: "#7c3aed"
}

/** Series colours of the charts. */
export const seriesColors = ["#2563eb", "#f59e0b", "#dc2626", "#0d9488", "#9333ea", "#64748b"] as const

interface Series {
  readonly name: string
  readonly color: string
  readonly values: ReadonlyArray<readonly [at: number, value: number | undefined]>
}

const chartWidth = 520
const chartHeight = 180
const pad = { left: 48, right: 12, top: 12, bottom: 24 }

/** A line chart of some series over time, with gaps where a value is missing. */
const lineChart = (title: string, series: ReadonlyArray<Series>, format: (n: number) => string, yMax?: number) => {
  const all = series.flatMap((s) => s.values)
  const xs = all.map(([at]) => at)
  const ys = all.flatMap(([, v]) => v === undefined ? [] : [v])
  const legend = series.map((s) => `<span class="key"><i style="background:${s.color}"></i>${escape(s.name)}</span>`)
    .join("")
  if (ys.length === 0) {
    return `<figure class="chart"><figcaption>${
      escape(title)
    }</figcaption><div class="empty">no data yet</div></figure>`
  }
  const x0 = Math.min(...xs)
  const x1 = Math.max(...xs)
  const top = Math.max(...ys)
  const y0 = 0
  const y1 = yMax ?? (top <= 0 ? 1 : top * 1.1)
  const w = chartWidth - pad.left - pad.right
  const h = chartHeight - pad.top - pad.bottom
  const px = (at: number) => pad.left + (x1 === x0 ? w : ((at - x0) / (x1 - x0)) * w)
  const py = (v: number) => pad.top + h - ((v - y0) / (y1 - y0)) * h
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const v = y0 + (y1 - y0) * f
    const y = py(v)
    return `<line x1="${pad.left}" x2="${chartWidth - pad.right}" y1="${y}" y2="${y}" class="grid"/>` +
      `<text x="${pad.left - 6}" y="${y + 4}" text-anchor="end">${escape(format(v))}</text>`
  }).join("")
  // drawn last to first, so the first series (p50) is on top where lines meet
  const lines = [...series].reverse().map((s) => {
    // a missing value breaks the line: the interval had no request
    const runs: Array<Array<string>> = [[]]
    for (const [at, v] of s.values) {
      if (v === undefined) runs.push([])
      else runs[runs.length - 1].push(`${px(at).toFixed(1)},${py(v).toFixed(1)}`)
    }
    return runs.filter((run) => run.length > 0).map((run) =>
      run.length === 1
        ? `<circle cx="${run[0].split(",")[0]}" cy="${run[0].split(",")[1]}" r="3" fill="${s.color}"/>`
        : `<polyline points="${run.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2"/>`
    ).join("")
  }).join("")
  const axis = `<text x="${pad.left}" y="${chartHeight - 6}">${time(x0)}</text>` +
    `<text x="${chartWidth - pad.right}" y="${chartHeight - 6}" text-anchor="end">${time(x1)}</text>`
  return `<figure class="chart"><figcaption>${escape(title)} ${legend}</figcaption>` +
    `<svg viewBox="0 0 ${chartWidth} ${chartHeight}" width="${chartWidth}" height="${chartHeight}" role="img" ` +
    `aria-label="${escape(title)}">${grid}${lines}${axis}</svg></figure>`
}

/** The circuit's states over the window, as a strip of coloured spans. */
const circuitStrip = (
  transitions: ReadonlyArray<TransitionRecord>,
  state: string,
  from: number,
  to: number
) => {
  const width = 360
  const spans: Array<{ readonly state: string; readonly start: number; readonly end: number }> = []
  // the state before the first transition in the window is where that transition came from
  const inWindow = transitions.filter((t) => t.at >= from)
  let current = inWindow.length > 0 ? inWindow[0].from : state
  let start = from
  for (const t of inWindow) {
    spans.push({ state: current, start, end: t.at })
    current = t.to
    start = t.at
  }
  spans.push({ state: current, start, end: to })
  const x = (at: number) => to === from ? width : ((at - from) / (to - from)) * width
  const rects = spans.filter((s) => s.end > s.start || spans.length === 1).map((s) =>
    `<rect x="${x(s.start).toFixed(1)}" y="0" width="${Math.max(1, x(s.end) - x(s.start)).toFixed(1)}" height="14" ` +
    `fill="${stateColors[s.state] ?? "#94a3b8"}"><title>${escape(s.state)}</title></rect>`
  ).join("")
  return `<svg class="strip" viewBox="0 0 ${width} 14" width="${width}" height="14" role="img" aria-label="circuit history">${rects}</svg>`
}

const badge = (state: string | undefined) =>
  state === undefined
    ? `<span class="badge none">no breaker</span>`
    : `<span class="badge" style="background:${stateColors[state] ?? "#94a3b8"}">${escape(state)}</span>`

const pointValues = (points: ReadonlyArray<Point>, f: (p: Point) => number | undefined) =>
  points.map((p) => [p.at, f(p)] as const)

const interval = (c: Experiment.Comparison, format: (n: number) => string) =>
  c.lower === undefined || c.upper === undefined
    ? "–"
    : `${format(c.difference ?? 0)} [${format(c.lower)}, ${format(c.upper)}]`

const verdict = (c: Experiment.Comparison) =>
  `<span class="verdict ${c.verdict}" title="${escape(c.reason)}">${c.verdict}</span>`

const experimentSummary = (summary: Experiment.Summary) => {
  const variants = summary.variants.map((v) =>
    `<tr><td>${escape(v.name)}${v.isControl ? " <em>(control)</em>" : ""}</td><td>${escape(v.model)}</td>` +
    `<td>${fixed(v.weight, 2)}</td><td>${v.calls}</td><td>${percent(v.errorRate)}</td>` +
    `<td>${fixed(v.latency.p50)}</td><td>${fixed(v.latency.p95)}</td><td>${fixed(v.score.mean, 2)}</td>` +
    `<td>${v.costUsd.mean === undefined ? "–" : usd(v.costUsd.mean)}</td><td>${usd(v.costUsd.total)}</td></tr>`
  ).join("")
  const comparisons = summary.comparisons.map((c) =>
    `<tr><td>${escape(c.variant)}</td>` +
    `<td>${interval(c.latency, (n) => `${n.toFixed(0)} ms`)} ${verdict(c.latency)}</td>` +
    `<td>${interval(c.errorRate, (n) => `${(n * 100).toFixed(1)}%`)} ${verdict(c.errorRate)}</td>` +
    `<td>${interval(c.score, (n) => n.toFixed(2))} ${verdict(c.score)}</td></tr>`
  ).join("")
  return `<h3>A/B: ${escape(summary.experiment)}</h3>` +
    `<table class="ab"><thead><tr><th>variant</th><th>model</th><th>weight</th><th>calls</th><th>error rate</th>` +
    `<th>p50 ms</th><th>p95 ms</th><th>mean score</th><th>cost per call</th><th>cost</th></tr></thead>` +
    `<tbody>${variants}</tbody></table>` +
    (comparisons === ""
      ? ""
      : `<table class="ab"><thead><tr><th>challenger vs ${escape(summary.control)}</th>` +
        `<th>latency (${Math.round(summary.confidence * 100)}% interval)</th><th>error rate</th><th>score</th>` +
        `</tr></thead><tbody>${comparisons}</tbody></table>`)
}

const limitsOf = (d: Gateway.DeploymentStatus): string => {
  const parts = [
    d.limits.rpm === undefined ? undefined : `${d.limits.rpm} rpm`,
    d.limits.tpm === undefined ? undefined : `${d.limits.tpm} tpm`,
    d.limits.cooldownMs > 0 ? `cooling ${fixed(d.limits.cooldownMs / 1000, 1)} s` : undefined
  ].filter((part) => part !== undefined)
  return parts.length === 0 ? "–" : escape(parts.join(", "))
}

const deploymentRow = (d: Gateway.DeploymentStatus, from: number, to: number) => {
  const last = d.transitions.slice(-3).reverse().map((t) =>
    `${time(t.at)} ${escape(t.from)} → ${escape(t.to)} (${escape(t.reason)})`
  ).join("<br>")
  return `<td>${escape(d.name)}<div class="small">${escape(d.provider)} · ${escape(d.providerModel)}</div></td>` +
    `<td>${badge(d.circuit?.state)}</td>` +
    `<td>${d.circuit === undefined ? "" : circuitStrip(d.transitions, d.circuit.state, from, to)}</td>` +
    `<td>${d.inFlight}${d.queued > 0 ? ` (+${d.queued} queued)` : ""}</td>` +
    `<td>${fixed(d.latencyMs)}</td><td>${limitsOf(d)}</td>` +
    `<td>${d.totals.requests}</td><td>${
      percent(d.totals.requests === 0 ? undefined : d.totals.errors / d.totals.requests)
    }</td><td>${usd(d.totals.costUsd)}</td>` +
    `<td class="small">${last === "" ? "–" : last}</td>`
}

const modelSection = (model: Gateway.ModelStatus, from: number, to: number) => {
  const rows = model.models.map((logical) => {
    const span = Math.max(1, logical.deployments.length)
    const head = `<td rowspan="${span}">${escape(logical.name)}<div class="small">${
      escape(logical.strategy)
    } · ${logical.totals.requests} attempts, ${
      percent(logical.totals.requests === 0 ? undefined : logical.totals.errors / logical.totals.requests)
    } failed</div></td>`
    if (logical.deployments.length === 0) return `<tr>${head}<td colspan="10">–</td></tr>`
    return logical.deployments.map((d, i) => `<tr>${i === 0 ? head : ""}${deploymentRow(d, from, to)}</tr>`).join("")
  }).join("")
  const latency = lineChart(
    `${model.name}: latency (ms)`,
    [
      { name: "p50", color: seriesColors[0], values: pointValues(model.points, (p) => p.p50) },
      { name: "p95", color: seriesColors[1], values: pointValues(model.points, (p) => p.p95) },
      { name: "p99", color: seriesColors[2], values: pointValues(model.points, (p) => p.p99) }
    ],
    (n) => n.toFixed(0)
  )
  const errors = lineChart(
    `${model.name}: error rate`,
    [
      {
        name: model.name,
        color: seriesColors[2],
        values: pointValues(model.points, (p) => p.requests === 0 ? undefined : p.errorRate)
      },
      ...model.models.map((d, i) => ({
        name: d.name,
        color: seriesColors[(i + 3) % seriesColors.length],
        values: pointValues(d.points, (p) => p.requests === 0 ? undefined : p.errorRate)
      }))
    ],
    (n) => `${(n * 100).toFixed(0)}%`,
    1
  )
  return `<section class="model" id="model-${escape(model.name)}">` +
    `<h2>${escape(model.name)} <span class="pattern">${escape(model.pattern)}</span></h2>` +
    (model.description === undefined ? "" : `<p>${escape(model.description)}</p>`) +
    `<p class="totals">${model.totals.requests} requests, ${
      percent(
        model.totals.requests === 0 ? undefined : model.totals.errors / model.totals.requests
      )
    } failed, ${usd(model.totals.costUsd)} spent</p>` +
    `<table class="circuits"><thead><tr><th>model</th><th>deployment</th><th>circuit</th><th>history</th>` +
    `<th>in flight</th><th>latency ms</th><th>limits now</th><th>calls</th><th>failed</th><th>cost</th>` +
    `<th>last transitions</th></tr></thead><tbody>${rows}</tbody></table>` +
    `<div class="charts">${latency}${errors}</div>` +
    (model.experiment === undefined ? "" : experimentSummary(model.experiment)) +
    `</section>`
}

const style = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#0f172a;background:#f8fafc}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:0 0 6px}h3{font-size:15px;margin:12px 0 6px}
.meta{color:#475569;margin-bottom:16px}.model{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:16px;margin-bottom:16px}
.pattern{font-size:12px;color:#475569;border:1px solid #cbd5e1;border-radius:4px;padding:1px 6px;margin-left:6px}
table{border-collapse:collapse;margin:6px 0}th,td{padding:4px 10px;border-bottom:1px solid #e2e8f0;text-align:left;vertical-align:middle}
th{font-weight:600;color:#334155}.badge{color:#fff;border-radius:4px;padding:2px 8px;font-weight:600}.badge.none{background:#e2e8f0;color:#475569}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{margin:0}.chart figcaption{font-weight:600;margin-bottom:4px}
.key{font-weight:400;margin-left:10px;color:#334155}.key i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
svg text{font-size:10px;fill:#475569}.grid{stroke:#e2e8f0}.empty{color:#94a3b8;padding:24px 0}.small{font-size:12px;color:#475569}
.verdict{border-radius:4px;padding:0 6px;font-size:12px}.better{background:#dcfce7}.worse{background:#fee2e2}.inconclusive{background:#f1f5f9}
`

/** The whole page. */
export const render = (status: Gateway.Status): string => {
  const from = status.now - status.historyIntervalMs * status.historyPoints
  const window = Math.max(from, status.startedAt)
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta http-equiv="refresh" content="${Math.max(5, Math.round(status.historyIntervalMs / 1000))}">` +
    `<title>resilient-llm gateway</title><style>${style}</style></head><body>` +
    `<h1>resilient-llm gateway</h1>` +
    `<div class="meta">configuration generation ${status.generation} · ${status.inFlight} in flight · ` +
    `one point per ${
      status.historyIntervalMs >= 1000
        ? `${fixed(status.historyIntervalMs / 1000, 1)} s`
        : `${status.historyIntervalMs} ms`
    } · updated ${time(status.now)} UTC</div>` +
    status.models.map((model) => modelSection(model, window, status.now)).join("") +
    `</body></html>`
}
