/**
 * `pnpm bench`: runs the benchmarks in one process and prints a table per benchmark, then the
 * per-call figures beside those of the Effect 3 run (`baseline.ts`); or the same figures as JSON
 * with `--json` (or both: the tables, and the JSON written to `--out <file>`). `--quick` runs a few
 * rounds of each (about a minute in all), `--smoke` a few iterations (the test's size: it checks
 * that everything runs, its figures mean nothing); `--only overhead,outage` runs some.
 * `--baseline` prints the Effect 3 figures as the before/after tables and runs nothing.
 */
import { writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { effect3 } from "./baseline.js"
import { compare, formatComparison } from "./compare.js"
import { formatSection, sectionJson } from "./report.js"
import { type BenchmarkId, benchmarkIds, type Plan, plan, runBenchmarks } from "./suite.js"

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
    only: { type: "string" },
    out: { type: "string" },
    baseline: { type: "boolean", default: false },
    help: { type: "boolean", default: false }
  }
})

if (values.help) {
  console.log(
    `usage: pnpm bench [--json] [--out file.json] [--quick | --smoke] [--only ${benchmarkIds.join(",")}]\n` +
      "       pnpm bench --baseline   (the Effect 3 figures as before/after tables; runs nothing)"
  )
  process.exit(0)
}

if (values.baseline) {
  console.log(formatComparison(compare(effect3)))
  process.exit(0)
}

const isBenchmarkId = (id: string): id is BenchmarkId => benchmarkIds.some((known) => known === id)

const only = values.only === undefined ? benchmarkIds : values.only.split(",").map((id) => id.trim())
const unknown = only.filter((id) => !isBenchmarkId(id))
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; known: ${benchmarkIds.join(", ")}`)
  process.exit(2)
}

const chosen: Plan = plan(values.smoke ? "smoke" : values.quick ? "quick" : "full", only.filter(isBenchmarkId))
const log = values.json ? (line: string) => console.error(line) : (line: string) => console.log(line)
const run = await runBenchmarks(chosen, (line) => log(line))
const comparison = compare(effect3, run)

const json = JSON.stringify(
  {
    machine: run.machine,
    loadAfter: run.loadAfter,
    mode: run.mode,
    durationSeconds: run.durationSeconds,
    sections: run.sections.map(sectionJson),
    comparison,
    sink: run.sink
  },
  null,
  2
)
if (values.out !== undefined) writeFileSync(values.out, `${json}\n`)
if (values.json) {
  console.log(json)
} else {
  const host = run.machine
  console.log(`\nnode ${host.node}, ${host.cpu}, ${host.cores} cores, ${host.memoryGiB} GiB, ${host.platform}`)
  console.log(`versions: ${Object.entries(host.versions).map(([name, version]) => `${name} ${version}`).join(", ")}`)
  console.log(`load average before: ${host.loadAverage.join(" ")}; mode: ${run.mode}; resilient-llm: ${host.packages}`)
  for (const section of run.sections) console.log(`\n${formatSection(section)}`)
  if (comparison.sections.length > 0) console.log(`\n${formatComparison(comparison)}`)
  console.log(`\nfinished in ${run.durationSeconds.toFixed(0)} s; load average after: ${run.loadAfter.join(" ")}`)
}
