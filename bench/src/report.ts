/**
 * What a benchmark returns and how it is printed: a section per benchmark, a table of rows, the
 * ratios it exists to report (each against its target, when it has one) and notes saying what
 * each side did. The same data is printed as text tables or as JSON.
 */
import { type Stat, stat } from "./measure.js"

export type Cell =
  | { readonly _tag: "Stat"; readonly stat: Stat; readonly unit: string }
  | { readonly _tag: "Value"; readonly value: number; readonly unit: string }
  | { readonly _tag: "Text"; readonly text: string }

export const statCell = (stat: Stat, unit: string): Cell => ({ _tag: "Stat", stat, unit })
export const valueCell = (value: number, unit: string): Cell => ({ _tag: "Value", value, unit })
export const textCell = (text: string): Cell => ({ _tag: "Text", text })

export interface Column {
  readonly key: string
  readonly header: string
}

export interface Row {
  /**
   * What the row measures, stable across label edits and sizes (`oursUndici.c16`): the Effect 3
   * comparison (`compare.ts`) finds a row's figures by it.
   */
  readonly key: string
  readonly label: string
  readonly cells: Readonly<Record<string, Cell>>
}

export interface Ratio {
  readonly name: string
  readonly value: number
  /** What the ratio should be, in words (`>= 1`), when there is a target. */
  readonly target?: string
  readonly met?: boolean
  /** The ratio in each round, when it is taken round by round (`value` is then their median). */
  readonly rounds?: ReadonlyArray<number>
}

/**
 * A ratio taken round by round (`values`, one per round measured, as `roundRatios` gives them), its
 * median as the value; `met` from the rounds when `target` is given (a predicate on the rounds, as
 * the target says: "median <= 1", "every round >= 1").
 */
export const perRound = (
  name: string,
  values: ReadonlyArray<number>,
  target?: { readonly text: string; readonly met: (rounds: ReadonlyArray<number>, median: number) => boolean }
): Ratio => {
  const { median } = stat(values)
  return target === undefined
    ? { name, value: median, rounds: values }
    : { name, value: median, rounds: values, target: target.text, met: target.met(values, median) }
}

/** Round `i` of `a` divided by round `i` of `b`, for every round. */
export const roundRatios = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): ReadonlyArray<number> =>
  a.map((value, i) => value / b[i])

export interface Section {
  readonly id: string
  readonly title: string
  readonly columns: ReadonlyArray<Column>
  readonly rows: ReadonlyArray<Row>
  readonly ratios: ReadonlyArray<Ratio>
  readonly notes: ReadonlyArray<string>
}

/** A number as the tables print it: three significant digits, thousands separated from 100,000. */
export const significant = (value: number): string => {
  if (!Number.isFinite(value)) return String(value)
  const magnitude = Math.abs(value)
  if (magnitude >= 100_000) return Math.round(value).toLocaleString("en-US")
  if (magnitude >= 100) return value.toFixed(0)
  if (magnitude >= 10) return value.toFixed(1)
  if (magnitude >= 1) return value.toFixed(2)
  return value.toPrecision(2)
}

/** Half the range of the rounds, relative to the median, in percent: the `±` of a figure. */
export const plusMinusPercent = (stat: Stat): number => Math.round((stat.spread * 100) / 2)

/** A figure as the tables print it: `296,239 ns ±23%`, or `436 B` when it has no rounds. */
export const formatFigure = (value: number, unit: string, plusMinus?: number): string =>
  `${significant(value)}${unit === "" ? "" : ` ${unit}`}${plusMinus === undefined ? "" : ` ±${plusMinus}%`}`

export const formatCell = (cell: Cell | undefined): string => {
  if (cell === undefined) return ""
  switch (cell._tag) {
    case "Text":
      return cell.text
    case "Value":
      return formatFigure(cell.value, cell.unit)
    case "Stat":
      return formatFigure(cell.stat.median, cell.unit, plusMinusPercent(cell.stat))
  }
}

const pad = (text: string, width: number, right: boolean): string => right ? text.padStart(width) : text.padEnd(width)

/** A section as a text table, its ratios and its notes. */
export const formatSection = (section: Section): string => {
  const headers = ["", ...section.columns.map((column) => column.header)]
  const lines = section.rows.map((row) => [row.label, ...section.columns.map((c) => formatCell(row.cells[c.key]))])
  const widths = headers.map((header, i) => Math.max(header.length, ...lines.map((line) => line[i].length)))
  const render = (cells: ReadonlyArray<string>) => cells.map((cell, i) => pad(cell, widths[i], i > 0)).join("  ")
  const out = [`## ${section.title}`, "", render(headers), widths.map((w) => "-".repeat(w)).join("  ")]
  for (const line of lines) out.push(render(line))
  if (section.ratios.length > 0) {
    out.push("")
    for (const ratio of section.ratios) {
      const target = ratio.target === undefined ? "" : `   target ${ratio.target}: ${ratio.met ? "met" : "NOT met"}`
      const rounds = ratio.rounds === undefined || ratio.rounds.length === 0
        ? ""
        : ` (rounds: min ${significant(Math.min(...ratio.rounds))}, max ${significant(Math.max(...ratio.rounds))}; ${
          ratio.rounds.map(significant).join(" ")
        })`
      out.push(`  ${ratio.name}: ${significant(ratio.value)}${rounds}${target}`)
    }
  }
  if (section.notes.length > 0) {
    out.push("")
    for (const note of section.notes) out.push(`  - ${note}`)
  }
  return out.join("\n")
}

const cellJson = (cell: Cell): unknown => {
  switch (cell._tag) {
    case "Text":
      return cell.text
    case "Value":
      return { value: cell.value, unit: cell.unit }
    case "Stat":
      return {
        median: cell.stat.median,
        min: cell.stat.min,
        max: cell.stat.max,
        spread: cell.stat.spread,
        rounds: cell.stat.rounds,
        unit: cell.unit
      }
  }
}

/** A section as plain JSON data: the rows keyed by label, the ratios by name. */
export const sectionJson = (section: Section): unknown => ({
  id: section.id,
  title: section.title,
  rows: Object.fromEntries(
    section.rows.map((row) => [
      row.label,
      Object.fromEntries(Object.entries(row.cells).map(([key, cell]) => [key, cellJson(cell)]))
    ])
  ),
  ratios: section.ratios,
  notes: section.notes
})
