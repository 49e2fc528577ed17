import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { effect3 } from "../src/baseline.js"
import { compare, formatComparison } from "../src/compare.js"
import type { Stat } from "../src/measure.js"
import type { Cell, Section } from "../src/report.js"
import { benchmarkIds, plan, runBenchmarks } from "../src/suite.js"

// Every benchmark, a few iterations each: this only proves they still run and report sensible
// figures. Nothing here depends on how fast the machine is.

const numbersOf = (cell: Cell): ReadonlyArray<number> => {
  switch (cell._tag) {
    case "Text":
      return []
    case "Value":
      return [cell.value]
    case "Stat":
      return statNumbers(cell.stat)
  }
}

const statNumbers = (stat: Stat): ReadonlyArray<number> => [stat.median, stat.min, stat.max, ...stat.rounds]

const required = <A>(value: A | undefined, what: string): A => {
  if (value === undefined) throw new Error(`missing ${what}`)
  return value
}

const section = (sections: ReadonlyArray<Section>, id: string): Section =>
  required(sections.find((candidate) => candidate.id === id), `section ${id}`)

const value = (found: Section, label: string, column: string): number => {
  const row = required(found.rows.find((candidate) => candidate.label === label), `row ${label}`)
  const cell = row.cells[column]
  assert.isTrue(cell !== undefined && cell._tag === "Value", `${label} / ${column} is a value`)
  return cell !== undefined && cell._tag === "Value" ? cell.value : Number.NaN
}

describe("pnpm bench", () => {
  it.live("runs every benchmark and reports finite, positive figures", () =>
    Effect.gen(function*() {
      const run = yield* Effect.promise(() => runBenchmarks(plan("smoke")))
      assert.deepStrictEqual(run.sections.map((s) => s.id), [...benchmarkIds])
      for (const found of run.sections) {
        assert.isAbove(found.rows.length, 0, `${found.id} has rows`)
        for (const row of found.rows) {
          for (const [column, cell] of Object.entries(row.cells)) {
            for (const n of numbersOf(cell)) {
              assert.isTrue(Number.isFinite(n) && n > 0, `${found.id} / ${row.label} / ${column}: ${n}`)
            }
          }
        }
        for (const ratio of found.ratios) {
          // a difference of timings (P1b's µs over a bare Effect call), or a ratio of two (the overhead
          // over each bare call), means something only at full size: at smoke size a difference can
          // come out below zero on a busy machine
          const ofDifferences = ratio.name.includes("overhead over") || ratio.name.includes("over a bare Effect call")
          assert.isTrue(
            Number.isFinite(ratio.value) && (ofDifferences || ratio.value > 0),
            `${found.id} / ${ratio.name}: ${ratio.value}`
          )
        }
      }

      // The outage comparison's ordering holds in virtual time, whatever the machine.
      const outage = section(run.sections, "outage")
      const naive = "hand-written: primary (30 s timeout), then fallback"
      const ours = "resilient-llm Fallback.chain + CircuitBreaker"
      const hedged = required(outage.rows.find((row) => row.key === "oursHedged"), "hedged row").label
      assert.isAtMost(value(outage, ours, "total"), value(outage, naive, "total"))
      assert.isAtMost(value(outage, ours, "p99"), value(outage, naive, "p99"))
      assert.isBelow(value(outage, hedged, "total"), value(outage, ours, "total"))
      assert.isAtMost(value(outage, hedged, "p99"), 3_000)
      assert.isBelow(value(outage, hedged, "primary"), value(outage, naive, "primary"))
      const parallel = required(outage.rows.find((row) => row.label.includes("BestOfN.complete")), "best-of-n row")
      const sequential = required(outage.rows.find((row) => row.label.includes("one by one")), "sequential row")
      assert.isBelow(value(outage, parallel.label, "total"), value(outage, sequential.label, "total"))

      // The Effect 3 figures find their rows by key: every one has an "after" in this run, except the
      // throughput rows at concurrencies the smoke size does not run.
      const comparison = compare(effect3, run)
      assert.deepStrictEqual(
        [...new Set(comparison.sections.map((s) => s.id))],
        ["overhead", "throughput", "streaming", "breaker"]
      )
      const concurrency = plan("smoke").throughput.concurrency
      for (const compared of comparison.sections) {
        for (const row of compared.rows) {
          if (compared.id === "throughput" && !concurrency.some((c) => row.key.endsWith(`.c${c}`))) continue
          assert.isAbove(row.figures.length, 0, `${compared.id} / ${row.key} has figures`)
          for (const figure of row.figures) {
            const ratio = figure.ratio
            assert.isTrue(
              ratio !== undefined && Number.isFinite(ratio) && ratio > 0,
              `${compared.id} / ${row.key} / ${figure.column}: after / before ${ratio}`
            )
          }
        }
      }
      const table = formatComparison(comparison)
      for (const compared of comparison.sections) assert.include(table, compared.title)
      assert.include(table, "Not comparable")
    }), { timeout: 180_000 })
})
