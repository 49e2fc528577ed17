/**
 * The statistics behind `Experiment.summary`: running moments (Welford), percentiles of a sample,
 * the quantiles of Student's t and of the normal distribution, and the two-sample intervals
 * (Welch for means, Newcombe's hybrid score interval for a difference of proportions) with their
 * verdict.
 * Pure functions over plain numbers, so they are tested against formulas and tables directly.
 *
 * @internal
 */

/**
 * Running count, mean and sum of squared deviations (Welford's online algorithm): one pass,
 * constant memory, and no catastrophic cancellation for large values with a small spread.
 *
 * @internal
 */
export interface Moments {
  n: number
  mean: number
  m2: number
}

/** @internal */
export const emptyMoments = (): Moments => ({ n: 0, mean: 0, m2: 0 })

/** @internal */
export const addMoment = (moments: Moments, x: number): void => {
  moments.n += 1
  const delta = x - moments.mean
  moments.mean += delta / moments.n
  moments.m2 += delta * (x - moments.mean)
}

/**
 * The sample variance (divisor n - 1); `NaN` below two observations.
 *
 * @internal
 */
export const variance = (moments: Pick<Moments, "n" | "m2">): number =>
  moments.n < 2 ? Number.NaN : moments.m2 / (moments.n - 1)

/**
 * The `p` quantile (0 to 1) of an ascending sample by linear interpolation between order
 * statistics (Hyndman and Fan's type 7, the default of R and NumPy); `undefined` when empty.
 *
 * @internal
 */
export const quantileSorted = (sorted: ReadonlyArray<number>, p: number): number | undefined => {
  if (sorted.length === 0) return undefined
  const h = (sorted.length - 1) * p
  const lo = Math.floor(h)
  const hi = Math.min(lo + 1, sorted.length - 1)
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo])
}

// --- special functions ---------------------------------------------------------------------------

const LANCZOS_G = 7
const LANCZOS = [
  0.99999999999980993,
  676.5203681218851,
  -1259.1392167224028,
  771.32342877765313,
  -176.61502916214059,
  12.507343278686905,
  -0.13857109526572012,
  9.9843695780195716e-6,
  1.5056327351493116e-7
]

/**
 * ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms; about 15 significant digits).
 *
 * @internal
 */
export const logGamma = (x: number): number => {
  if (x < 0.5) {
    // reflection keeps the series in its accurate range
    return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x)
  }
  const z = x - 1
  let sum = LANCZOS[0]
  for (let i = 1; i < LANCZOS.length; i++) sum += LANCZOS[i] / (z + i)
  const t = z + LANCZOS_G + 0.5
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum)
}

const EPSILON = 1e-15
const TINY = 1e-300
const MAX_ITERATIONS = 10_000

/** Continued fraction of the incomplete beta function (modified Lentz). */
const betaFraction = (a: number, b: number, x: number): number => {
  const qab = a + b
  const qap = a + 1
  const qam = a - 1
  let c = 1
  let d = 1 - qab * x / qap
  if (Math.abs(d) < TINY) d = TINY
  d = 1 / d
  let h = d
  for (let m = 1; m <= MAX_ITERATIONS; m++) {
    const m2 = 2 * m
    let aa = m * (b - m) * x / ((qam + m2) * (a + m2))
    d = 1 + aa * d
    if (Math.abs(d) < TINY) d = TINY
    c = 1 + aa / c
    if (Math.abs(c) < TINY) c = TINY
    d = 1 / d
    h *= d * c
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
    d = 1 + aa * d
    if (Math.abs(d) < TINY) d = TINY
    c = 1 + aa / c
    if (Math.abs(c) < TINY) c = TINY
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < EPSILON) break
  }
  return h
}

/**
 * The regularized incomplete beta function I_x(a, b).
 *
 * @internal
 */
export const incompleteBeta = (x: number, a: number, b: number): number => {
  if (x <= 0) return 0
  if (x >= 1) return 1
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x))
  // the fraction converges fast only on one side of the mean; use the symmetry on the other
  return x < (a + 1) / (a + b + 2)
    ? front * betaFraction(a, b, x) / a
    : 1 - front * betaFraction(b, a, 1 - x) / b
}

/**
 * The regularized upper incomplete gamma function Q(a, x) (series below a + 1, continued fraction
 * above).
 *
 * @internal
 */
export const incompleteGammaUpper = (a: number, x: number): number => {
  if (x <= 0) return 1
  const logFront = -x + a * Math.log(x) - logGamma(a)
  if (x < a + 1) {
    let term = 1 / a
    let sum = term
    for (let n = 1; n <= MAX_ITERATIONS; n++) {
      term *= x / (a + n)
      sum += term
      if (Math.abs(term) < Math.abs(sum) * EPSILON) break
    }
    return 1 - sum * Math.exp(logFront)
  }
  let b = x + 1 - a
  let c = 1 / TINY
  let d = 1 / b
  let h = d
  for (let i = 1; i <= MAX_ITERATIONS; i++) {
    const an = -i * (i - a)
    b += 2
    d = an * d + b
    if (Math.abs(d) < TINY) d = TINY
    c = b + an / c
    if (Math.abs(c) < TINY) c = TINY
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < EPSILON) break
  }
  return Math.exp(logFront) * h
}

/**
 * The standard normal distribution function Φ(z), through Q(1/2, z²/2) = erfc(|z|/√2).
 *
 * @internal
 */
export const normalCdf = (z: number): number => {
  if (Number.isNaN(z)) return Number.NaN
  const tail = 0.5 * incompleteGammaUpper(0.5, z * z / 2)
  return z >= 0 ? 1 - tail : tail
}

/**
 * Student's t distribution function with `df` degrees of freedom (any real df > 0).
 *
 * @internal
 */
export const studentTCdf = (t: number, df: number): number => {
  if (Number.isNaN(t) || !(df > 0)) return Number.NaN
  if (df === Infinity) return normalCdf(t)
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5)
  return t >= 0 ? 1 - tail : tail
}

/** Inverts an increasing distribution function by bisection, to the last representable digit. */
const invert = (cdf: (x: number) => number, p: number): number => {
  if (p === 0.5) return 0
  if (p < 0.5) return -invert(cdf, 1 - p)
  let lo = 0
  let hi = 1
  while (cdf(hi) < p) {
    lo = hi
    hi *= 2
    if (hi > 1e12) return Infinity
  }
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2
    if (mid === lo || mid === hi) break
    if (cdf(mid) < p) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

/**
 * The `p` quantile of the standard normal distribution (p in (0, 1)).
 *
 * @internal
 */
export const normalQuantile = (p: number): number => {
  if (!(p > 0 && p < 1)) return Number.NaN
  return invert(normalCdf, p)
}

/**
 * The `p` quantile of Student's t with `df` degrees of freedom (any real df > 0, fractional as
 * Welch's are; `Infinity` is the normal). Found by inverting the exact distribution function, so
 * small samples get their wide intervals rather than the normal's 1.96.
 *
 * @internal
 */
export const studentTQuantile = (p: number, df: number): number => {
  if (!(p > 0 && p < 1) || !(df > 0)) return Number.NaN
  if (df === Infinity) return normalQuantile(p)
  return invert((t) => studentTCdf(t, df), p)
}

// --- two-sample comparisons ----------------------------------------------------------------------

/**
 * What a comparison concludes: `better` and `worse` when the whole interval lies on one side of
 * zero, `inconclusive` when it contains zero or the samples are too small.
 *
 * @internal
 */
export type Verdict = "better" | "worse" | "inconclusive"

/** @internal */
export interface Interval {
  /** Challenger minus control. */
  readonly difference: number
  readonly lower: number
  readonly upper: number
  /** Welch–Satterthwaite degrees of freedom; `undefined` for a difference of rates. */
  readonly df: number | undefined
}

/** @internal */
export interface SampleMoments {
  readonly n: number
  readonly mean: number
  readonly variance: number
}

/**
 * Welch's interval for the difference of two means (b minus a), with the Welch–Satterthwaite
 * degrees of freedom; `undefined` when either side has fewer than two observations, or when the
 * values are so large that their squares overflow (an interval of `NaN`s would say nothing).
 *
 * @internal
 */
export const welch = (a: SampleMoments, b: SampleMoments, confidence: number): Interval | undefined => {
  if (a.n < 2 || b.n < 2) return undefined
  const va = a.variance / a.n
  const vb = b.variance / b.n
  const difference = b.mean - a.mean
  const standardError = Math.sqrt(va + vb)
  if (!Number.isFinite(standardError) || !Number.isFinite(difference)) return undefined
  if (standardError === 0) {
    // both sides constant: the difference is known exactly
    return { difference, lower: difference, upper: difference, df: Infinity }
  }
  // (va + vb)² / (va² / (na - 1) + vb² / (nb - 1)), written with the shares of the variance so
  // that neither the squares nor their ratio can overflow or underflow
  const shareA = va / (va + vb)
  const shareB = vb / (va + vb)
  const df = 1 / (shareA ** 2 / (a.n - 1) + shareB ** 2 / (b.n - 1))
  const critical = studentTQuantile(1 - (1 - confidence) / 2, df)
  return {
    difference,
    lower: difference - critical * standardError,
    upper: difference + critical * standardError,
    df
  }
}

/**
 * Wilson's score interval for one proportion, `successes` out of `n`, with the normal quantile
 * `z`: the proportions not rejected by the score test, so it stays inside [0, 1] and keeps its
 * coverage near 0 and 1, where the Wald interval collapses to a point.
 *
 * @internal
 */
export const wilson = (successes: number, n: number, z: number): { readonly lower: number; readonly upper: number } => {
  const p = successes / n
  const z2 = z * z
  const centre = (2 * n * p + z2) / (2 * (n + z2))
  const half = z * Math.sqrt(z2 + 4 * n * p * (1 - p)) / (2 * (n + z2))
  return { lower: Math.max(0, centre - half), upper: Math.min(1, centre + half) }
}

/**
 * The interval for the difference of two proportions (b minus a) by Newcombe's hybrid score
 * method (method 10 of Newcombe, 1998): each proportion's Wilson interval, combined as if each
 * side's distance to its bound were a standard error. Unlike the Wald interval it stays inside
 * [-1, 1] and keeps close to its nominal coverage when a rate is near 0 or 1, as error rates are:
 * 0 errors in 1,000 calls against 4 in 1,000 is not called a difference (Fisher's exact test
 * gives p = 0.125, where the Wald interval excludes 0). `undefined` when either side is empty.
 *
 * @internal
 */
export const proportions = (
  a: { readonly n: number; readonly successes: number },
  b: { readonly n: number; readonly successes: number },
  confidence: number
): Interval | undefined => {
  if (a.n === 0 || b.n === 0) return undefined
  const z = normalQuantile(1 - (1 - confidence) / 2)
  const pa = a.successes / a.n
  const pb = b.successes / b.n
  const wa = wilson(a.successes, a.n, z)
  const wb = wilson(b.successes, b.n, z)
  const difference = pb - pa
  return {
    difference,
    lower: difference - Math.hypot(pb - wb.lower, wa.upper - pa),
    upper: difference + Math.hypot(wb.upper - pb, pa - wa.lower),
    df: undefined
  }
}

/**
 * The verdict on an interval of challenger minus control. An interval touching zero is
 * inconclusive.
 *
 * @internal
 */
export const verdict = (interval: Interval | undefined, higherIsBetter: boolean): Verdict => {
  if (interval === undefined) return "inconclusive"
  if (interval.lower > 0) return higherIsBetter ? "better" : "worse"
  if (interval.upper < 0) return higherIsBetter ? "worse" : "better"
  return "inconclusive"
}
