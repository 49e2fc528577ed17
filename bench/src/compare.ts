/**
 * Before and after: the per-call figures of the Effect 3 run (`baseline.ts`) beside the same rows
 * of a new run, matched by section, row key and column, with `after / before` for each. Printed as
 * Markdown tables, to paste into RESULTS.md, and returned as data for the JSON.
 */
import type { Baseline, BaselineFigure } from "./baseline.js"
import type { Machine } from "./machine.js"
import { type Cell, formatFigure, plusMinusPercent, type Section, significant } from "./report.js"
import type { Mode } from "./suite.js"

/** A figure of the new run, as the comparison keeps it. */
export interface AfterFigure {
  readonly median: number
  readonly unit: string
  readonly plusMinus?: number
}

export interface ComparedFigure {
  readonly column: string
  readonly before: BaselineFigure
  /** Absent when the new run has no such row or column (another size, `--only`, a renamed key). */
  readonly after?: AfterFigure
  /** `after / before`, when both exist in the same unit. */
  readonly ratio?: number
}

export interface ComparedRow {
  readonly key: string
  readonly label: string
  readonly figures: ReadonlyArray<ComparedFigure>
  readonly note?: string
}

export interface ComparedSection {
  readonly id: string
  readonly title: string
  readonly columns: ReadonlyArray<{ readonly key: string; readonly header: string }>
  readonly rows: ReadonlyArray<ComparedRow>
}

/** The new run, as far as the comparison needs it. */
export interface After {
  readonly mode: Mode
  readonly machine: Machine
  readonly sections: ReadonlyArray<Section>
}

export interface Comparison {
  readonly before: Omit<Baseline, "sections">
  readonly after?: { readonly mode: Mode; readonly machine: Machine }
  readonly sections: ReadonlyArray<ComparedSection>
}

const afterFigure = (cell: Cell | undefined): AfterFigure | undefined => {
  if (cell === undefined) return undefined
  switch (cell._tag) {
    case "Text":
      return undefined
    case "Value":
      return { median: cell.value, unit: cell.unit }
    case "Stat":
      return { median: cell.stat.median, unit: cell.unit, plusMinus: plusMinusPercent(cell.stat) }
  }
}

const compareFigure = (column: string, before: BaselineFigure, after: AfterFigure | undefined): ComparedFigure => {
  if (after === undefined) return { column, before }
  if (after.unit !== before.unit || before.median === 0) return { column, before, after }
  return { column, before, after, ratio: after.median / before.median }
}

/**
 * Puts `baseline` beside `after`: every baseline section the new run measured, or all of them
 * (with nothing after) when there is no new run.
 */
export const compare = (baseline: Baseline, after?: After): Comparison => {
  const { sections, ...before } = baseline
  const measured = after === undefined
    ? sections
    : sections.filter((section) => after.sections.some((found) => found.id === section.id))
  return {
    before,
    ...(after === undefined ? {} : { after: { mode: after.mode, machine: after.machine } }),
    sections: measured.map((section) => {
      const found = after?.sections.find((candidate) => candidate.id === section.id)
      return {
        id: section.id,
        title: section.title,
        columns: section.columns,
        rows: section.rows.map((row) => {
          const cells = found?.rows.find((candidate) => candidate.key === row.key)?.cells
          const compared: ComparedRow = {
            key: row.key,
            label: row.label,
            figures: section.columns.flatMap((column) => {
              const before = row.cells[column.key]
              return before === undefined ? [] : [compareFigure(column.key, before, afterFigure(cells?.[column.key]))]
            })
          }
          return row.note === undefined ? compared : { ...compared, note: row.note }
        })
      }
    })
  }
}

const versionsLine = (versions: Readonly<Record<string, string>>): string =>
  Object.entries(versions).map(([name, version]) => `${name} ${version}`).join(", ")

const markdownText = (text: string): string => text.trim().replace(/\s+/g, " ").replace(/\|/g, "\\|")

const ratioText = (figure: ComparedFigure | undefined): string => {
  if (figure?.ratio !== undefined) return `${significant(figure.ratio)}x`
  if (figure?.after !== undefined) return `unit ${figure.after.unit}`
  return "–"
}

const sectionTable = (
  section: ComparedSection,
  beforeHeader: string,
  afterHeader: string
): ReadonlyArray<string> => {
  const headers = [
    "",
    ...section.columns.flatMap((column) => [`${column.header}, ${beforeHeader}`, afterHeader, "after / before"])
  ]
  const lines = [
    `### ${section.title}`,
    "",
    `| ${headers.join(" | ")} |`,
    `| --- |${" ---: |".repeat(headers.length - 1)}`
  ]
  const notes: Array<string> = []
  for (const row of section.rows) {
    let label = markdownText(row.label)
    if (row.note !== undefined) {
      if (!notes.includes(row.note)) notes.push(row.note)
      label += ` (${notes.indexOf(row.note) + 1})`
    }
    const cells = section.columns.flatMap((column) => {
      const figure = row.figures.find((candidate) => candidate.column === column.key)
      if (figure === undefined) return ["", "", ""]
      const { after, before } = figure
      return [
        formatFigure(before.median, before.unit, before.plusMinus),
        after === undefined ? "–" : formatFigure(after.median, after.unit, after.plusMinus),
        ratioText(figure)
      ]
    })
    lines.push(`| ${[label, ...cells].join(" | ")} |`)
  }
  if (notes.length > 0) {
    lines.push("")
    notes.forEach((note, i) => lines.push(`(${i + 1}) ${note}`))
  }
  return lines
}

/** The comparison as Markdown: what each column measured, then a table per benchmark. */
export const formatComparison = (comparison: Comparison): string => {
  const { after, before } = comparison
  const afterEffect = after?.machine.versions["effect"] ?? "4"
  const lines = [
    `## Before and after: Effect ${before.effect} → Effect ${afterEffect}, per call`,
    "",
    `- **before**: Effect ${before.effect}, the run committed in RESULTS.md on ${before.date} (commit ` +
    `${before.commit}): \`${before.command}\`, ${before.mode} size; node ${before.node}, ${before.machine}; ` +
    `${versionsLine(before.versions)}.`,
    after === undefined
      ? `- **after**: not measured yet (\`${before.command}\` prints this table with its figures).`
      : `- **after**: Effect ${afterEffect}, this run, ${after.mode} size; node ${after.machine.node}, ` +
        `${after.machine.cpu}, ${after.machine.cores} cores, ${after.machine.memoryGiB} GiB, ` +
        `${after.machine.platform}; ${versionsLine(after.machine.versions)}; load average before ` +
        `${after.machine.loadAverage.map((n) => n.toFixed(2)).join(" ")}.`,
    "- **after / before**: below 1 is better for CPU, wall time and heap, above 1 for rates (req/s, chunks/s, " +
    "calls/s). Rows that run no Effect code (bare promise, cockatiel, opossum, the openai SDK, the undici floor) " +
    "are controls: their change is the machine's, Node's or undici's, not Effect's."
  ]
  if (after !== undefined && after.mode !== before.mode) {
    lines.push(
      `- **Not comparable**: this run is \`${after.mode}\` size and the before figures are \`${before.mode}\`; ` +
        `compare a \`${before.mode}\` run.`
    )
  }
  for (const section of comparison.sections) {
    lines.push("", ...sectionTable(section, `Effect ${before.effect}`, `Effect ${afterEffect}`))
  }
  return lines.join("\n")
}
