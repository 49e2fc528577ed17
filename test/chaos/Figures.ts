/**
 * Small helpers for the figures the chaos tests print: quantiles, counters by label, and a
 * fixed-width table.
 */

/** The `q` quantile (0 to 1) of `values`, by nearest rank; 0 for no values. */
export const quantile = (values: ArrayLike<number>, q: number): number => {
  if (values.length === 0) return 0
  const sorted = Float64Array.from(values).sort()
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]
}

/** Counts by label, as a plain object for the report. */
export class Tally {
  private readonly counts = new Map<string, number>()
  add(label: string, n = 1): void {
    this.counts.set(label, (this.counts.get(label) ?? 0) + n)
  }
  get(label: string): number {
    return this.counts.get(label) ?? 0
  }
  toRecord(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort(([a], [b]) => a.localeCompare(b)))
  }
}

/** `n` as a percentage of `total`, with `digits` decimals. */
export const percent = (n: number, total: number, digits = 2): string =>
  total === 0 ? "n/a" : `${((100 * n) / total).toFixed(digits)}%`

export const megabytes = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`

/** `label  value` rows, the labels padded to one width. */
export const table = (title: string, rows: ReadonlyArray<readonly [string, string | number]>): string => {
  const width = Math.max(...rows.map(([label]) => label.length))
  return [`── ${title}`, ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join("\n")
}

/** `{ a: 1, b: 2 }` as `a 1, b 2`. */
export const inline = (record: Readonly<Record<string, number>>): string =>
  Object.entries(record).map(([label, n]) => `${label} ${n}`).join(", ") || "none"
