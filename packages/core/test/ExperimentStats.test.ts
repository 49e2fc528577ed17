import { assert, describe, it } from "@effect/vitest"
import { Experiment } from "@resilient-llm/core"
import { Arbitrary, Effect, Random, Schema } from "effect"
import { fmix32, fnv1a32, pick, stickyPoint } from "../src/internal/experimentAssignment.js"
import { Recorder } from "../src/internal/experimentRecorder.js"
import * as Stats from "../src/internal/experimentStats.js"

// Quantiles from a printed table (two-sided 95%: the 0.975 quantile), not from the code under test.
const T_0975: Readonly<Record<number, number>> = {
  1: 12.706204736,
  2: 4.302652730,
  3: 3.182446305,
  4: 2.776445105,
  5: 2.570581836,
  8: 2.306004135,
  10: 2.228138852,
  18: 2.100922040,
  30: 2.042272456,
  60: 2.000297822,
  120: 1.979930405
}
const Z_0975 = 1.959963985

const twoPass = (xs: ReadonlyArray<number>) => {
  const mean = xs.reduce((sum, x) => sum + x, 0) / xs.length
  const variance = xs.reduce((sum, x) => sum + (x - mean) ** 2, 0) / (xs.length - 1)
  return { n: xs.length, mean, variance }
}

const intBetween = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))
const doubleBetween = (minimum: number, maximum: number, options?: { readonly exclusiveMaximum?: boolean }) =>
  Schema.Finite.check(Schema.isBetween({ minimum, maximum, ...options }))

const closeTo = (actual: number | undefined, expected: number, tolerance = 1e-6, what = "") =>
  assert.isTrue(
    actual !== undefined && Math.abs(actual - expected) <= tolerance,
    `${what} expected ${expected}, got ${actual}`
  )

describe("Student's t and normal quantiles", () => {
  it("match the printed table", () => {
    for (const [df, t] of Object.entries(T_0975)) {
      closeTo(Stats.studentTQuantile(0.975, Number(df)), t, 1e-8, `t(0.975, ${df})`)
      closeTo(Stats.studentTQuantile(0.025, Number(df)), -t, 1e-8, `t(0.025, ${df})`)
    }
    closeTo(Stats.studentTQuantile(0.995, 8), 3.355387331, 1e-8)
    closeTo(Stats.studentTQuantile(0.975, Infinity), Z_0975, 1e-8)
    closeTo(Stats.normalQuantile(0.975), Z_0975, 1e-8)
    closeTo(Stats.normalQuantile(0.95), 1.644853627, 1e-8)
    closeTo(Stats.normalQuantile(0.995), 2.575829304, 1e-8)
    closeTo(Stats.normalCdf(1), 0.841344746, 1e-9)
    assert.isTrue(Number.isNaN(Stats.studentTQuantile(1, 5)))
    assert.isTrue(Number.isNaN(Stats.studentTQuantile(0.5, 0)))
  })

  it("a fractional df lies between its integer neighbours", () => {
    const q = Stats.studentTQuantile(0.975, 9.5)
    assert.isBelow(q, Stats.studentTQuantile(0.975, 9))
    assert.isAbove(q, T_0975[10])
  })

  it.prop(
    "match the closed forms for 1 and 2 degrees of freedom",
    [doubleBetween(0.001, 0.999)],
    ([p]) => {
      closeTo(
        Stats.studentTQuantile(p, 1),
        Math.tan(Math.PI * (p - 0.5)),
        1e-7 * (1 + Math.abs(Math.tan(Math.PI * (p - 0.5))))
      )
      const two = (2 * p - 1) / Math.sqrt(2 * p * (1 - p))
      closeTo(Stats.studentTQuantile(p, 2), two, 1e-8 * (1 + Math.abs(two)))
    }
  )

  it.prop(
    "invert the distribution function, for any real df",
    [doubleBetween(0.01, 0.99), doubleBetween(0.5, 500)],
    ([p, df]) => {
      closeTo(Stats.studentTCdf(Stats.studentTQuantile(p, df), df), p, 1e-9)
    }
  )
})

describe("Welch interval", () => {
  const side = Schema.Struct({
    n: intBetween(2, 10_000),
    mean: doubleBetween(-1e6, 1e6),
    variance: doubleBetween(1e-6, 1e6)
  })

  it.prop(
    "has the Welch–Satterthwaite df, between min(n) - 1 and n1 + n2 - 2, and is centred on the difference",
    [side, side],
    ([a, b]) => {
      const interval = Stats.welch(a, b, 0.95)
      const va = a.variance / a.n
      const vb = b.variance / b.n
      const df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))
      assert.isDefined(interval)
      closeTo(interval?.df, df, 1e-9 * df)
      assert.isAtLeast(interval?.df ?? 0, Math.min(a.n, b.n) - 1 - 1e-9)
      assert.isAtMost(interval?.df ?? Infinity, a.n + b.n - 2 + 1e-9)
      const middle = ((interval?.lower ?? 0) + (interval?.upper ?? 0)) / 2
      closeTo(middle, b.mean - a.mean, 1e-6 * (1 + Math.abs(b.mean - a.mean)))
    }
  )

  it("keeps a finite df when the variances are too small or too large to square", () => {
    const tiny = Stats.welch({ n: 5, mean: 0, variance: 1e-200 }, { n: 9, mean: 1, variance: 1e-200 }, 0.95)
    // equal variances: df = (va + vb)² / (va² / 4 + vb² / 8) with va = v / 5, vb = v / 9
    closeTo(tiny?.df, (1 / 5 + 1 / 9) ** 2 / ((1 / 25) / 4 + (1 / 81) / 8), 1e-9)
    const large = Stats.welch({ n: 5, mean: 0, variance: 1e200 }, { n: 9, mean: 1, variance: 1e200 }, 0.95)
    closeTo(large?.df, tiny?.df ?? Number.NaN, 1e-9)
    assert.isUndefined(Stats.welch({ n: 5, mean: 0, variance: Infinity }, { n: 5, mean: 0, variance: 1 }, 0.95))
  })
})

describe("difference of two error rates (Newcombe's hybrid score interval)", () => {
  // Newcombe, R. G. (1998). Interval estimation for the difference between independent
  // proportions: comparison of eleven methods. Statistics in Medicine 17, 873-890. Table II, the
  // six worked examples, 95% intervals by method 10 (score, no continuity correction), to the four
  // decimals printed there. Newcombe's difference is x1/n1 - x2/n2; ours is challenger - control.
  const table: ReadonlyArray<readonly [x1: number, n1: number, x2: number, n2: number, lower: number, upper: number]> =
    [
      [56, 70, 48, 80, 0.0524, 0.3339],
      [9, 10, 3, 10, 0.1705, 0.8090],
      [6, 7, 2, 7, 0.0582, 0.8062],
      [5, 56, 0, 29, -0.0381, 0.1926],
      [0, 10, 0, 20, -0.1611, 0.2775],
      [10, 10, 0, 20, 0.6791, 1.0000]
    ]

  it("matches the worked examples of Newcombe (1998), Table II, method 10", () => {
    for (const [x1, n1, x2, n2, lower, upper] of table) {
      const interval = Stats.proportions({ n: n2, successes: x2 }, { n: n1, successes: x1 }, 0.95)
      const example = `${x1}/${n1} - ${x2}/${n2}`
      closeTo(interval?.difference, x1 / n1 - x2 / n2, 1e-12, example)
      closeTo(interval?.lower, lower, 0.00005 + 1e-9, `${example} lower`)
      closeTo(interval?.upper, upper, 0.00005 + 1e-9, `${example} upper`)
    }
  })

  it("0/1000 against 4/1000 is not worse: Fisher's exact test gives p = 0.125", () => {
    const interval = Stats.proportions({ n: 1000, successes: 0 }, { n: 1000, successes: 4 }, 0.95)
    assert.isDefined(interval)
    assert.isBelow(interval?.lower ?? 1, 0)
    assert.strictEqual(Stats.verdict(interval, false), "inconclusive")
    // and a difference that is there is still found: 0/1000 against 12/1000 (Fisher p < 0.001)
    assert.strictEqual(
      Stats.verdict(Stats.proportions({ n: 1000, successes: 0 }, { n: 1000, successes: 12 }, 0.95), false),
      "worse"
    )
  })

  const counts = Schema.Struct({ n: intBetween(1, 100_000), share: doubleBetween(0, 1) })
  it.prop(
    "lies within [-1, 1], holds the observed difference, and widens with the confidence",
    [counts, counts],
    ([a, b]) => {
      const control = { n: a.n, successes: Math.round(a.share * a.n) }
      const challenger = { n: b.n, successes: Math.round(b.share * b.n) }
      const at95 = Stats.proportions(control, challenger, 0.95)
      const at99 = Stats.proportions(control, challenger, 0.99)
      assert.isDefined(at95)
      assert.isDefined(at99)
      const d = challenger.successes / challenger.n - control.successes / control.n
      assert.isAtLeast(at95?.lower ?? Number.NaN, -1 - 1e-12)
      assert.isAtMost(at95?.upper ?? Number.NaN, 1 + 1e-12)
      assert.isAtMost(at95?.lower ?? Number.NaN, d + 1e-12)
      assert.isAtLeast(at95?.upper ?? Number.NaN, d - 1e-12)
      assert.isAtMost(at99?.lower ?? Number.NaN, (at95?.lower ?? Number.NaN) + 1e-12)
      assert.isAtLeast(at99?.upper ?? Number.NaN, (at95?.upper ?? Number.NaN) - 1e-12)
    }
  )
})

describe("Welford moments", () => {
  it.prop(
    "equal the two-pass mean and variance",
    [Schema.Array(doubleBetween(-1e6, 1e6)).check(Schema.isBetweenLength(2, 300))],
    ([xs]) => {
      const moments = Stats.emptyMoments()
      for (const x of xs) Stats.addMoment(moments, x)
      const expected = twoPass(xs)
      const scale = Math.max(1, ...xs.map(Math.abs))
      assert.strictEqual(moments.n, xs.length)
      closeTo(moments.mean, expected.mean, 1e-9 * scale)
      closeTo(Stats.variance(moments), expected.variance, 1e-9 * scale * scale)
    }
  )

  it("has no variance below two observations", () => {
    const moments = Stats.emptyMoments()
    Stats.addMoment(moments, 3)
    assert.isTrue(Number.isNaN(Stats.variance(moments)))
  })
})

describe("percentiles", () => {
  it("interpolate linearly between order statistics", () => {
    const sorted = [100, 110, 120, 130, 140, 150, 160, 170, 180, 190]
    // p50: h = 9 * 0.5 = 4.5, halfway between 140 and 150; p95: h = 8.55, 55% from 180 to 190
    assert.strictEqual(Stats.quantileSorted(sorted, 0.5), 145)
    closeTo(Stats.quantileSorted(sorted, 0.95), 185.5, 1e-9)
    assert.strictEqual(Stats.quantileSorted([7], 0.95), 7)
    assert.isUndefined(Stats.quantileSorted([], 0.5))
  })

  it.effect.prop(
    "of the reservoir lie within the recorded range, and the reservoir keeps its size",
    [
      Schema.Array(intBetween(0, 100_000)).check(Schema.isBetweenLength(1, 400)),
      intBetween(1, 50),
      Schema.Int
    ],
    ([latencies, sampleSize, seed]) =>
      Effect.gen(function*() {
        const experiment = yield* Experiment.make({
          name: "range",
          assignment: "random",
          sampleSize,
          variants: [{ name: "a", model: "m", weight: 1 }]
        })
        for (const latencyMs of latencies) yield* experiment.record({ variant: "a", latencyMs, outcome: "success" })
        const [a] = (yield* experiment.summary).variants
        const min = Math.min(...latencies)
        const max = Math.max(...latencies)
        assert.strictEqual(a.sampled, Math.min(sampleSize, latencies.length))
        for (const p of [a.latency.p50, a.latency.p95]) {
          assert.isTrue(p !== undefined && p >= min && p <= max, `${p} outside [${min}, ${max}]`)
        }
        assert.isTrue((a.latency.p50 ?? 0) <= (a.latency.p95 ?? 0))
      }).pipe(Effect.scoped, Random.withSeed(seed))
  )
})

describe("sticky hash", () => {
  it("is FNV-1a 32 with the murmur finaliser, pinned", () => {
    const utf8 = (s: string) => new TextEncoder().encode(s)
    // published FNV-1a 32 test vectors
    assert.strictEqual(fnv1a32(utf8("")), 0x811c9dc5)
    assert.strictEqual(fnv1a32(utf8("a")), 0xe40c292c)
    assert.strictEqual(fnv1a32(utf8("foobar")), 0xbf9cf968)
    assert.strictEqual(fmix32(0), 0)
    // pinned: changing these moves every user to another variant
    assert.strictEqual(stickyPoint("checkout", "user-42"), fmix32(fnv1a32(utf8("checkout\u0000user-42"))) / 2 ** 32)
    assert.strictEqual(stickyPoint("checkout", "user-42").toFixed(12), STICKY_PIN)
  })

  it.prop(
    "maps a key to the same point in [0, 1) every time, and to a variant with weight",
    [
      Schema.String,
      Schema.String,
      Arbitrary.schema(Schema.Array(intBetween(0, 5)).check(Schema.isBetweenLength(1, 6))).pipe(
        Arbitrary.filter((ws) => ws.some((w) => w > 0))
      )
    ],
    ([name, key, weights]) => {
      const point = stickyPoint(name, key)
      assert.isTrue(point >= 0 && point < 1)
      assert.strictEqual(stickyPoint(name, key), point)
      const index = pick(weights, point)
      assert.isAbove(weights[index], 0)
      assert.strictEqual(pick(weights, point), index)
    }
  )

  it.prop(
    "picks in weight order as the point grows",
    [
      doubleBetween(0, 1, { exclusiveMaximum: true }),
      doubleBetween(0, 1, { exclusiveMaximum: true })
    ],
    ([u, v]) => {
      const weights = [2, 0, 1, 3]
      const [lo, hi] = u <= v ? [u, v] : [v, u]
      assert.isAtMost(pick(weights, lo), pick(weights, hi))
    }
  )
})

// computed once with the implementation and kept: the test fails if the mapping ever changes
const STICKY_PIN = "0.450809204951"

describe("Experiment.summary", () => {
  it.effect("matches hand-computed statistics, intervals and verdicts on a fixed data set", () =>
    Effect.gen(function*() {
      const experiment = yield* Experiment.make({
        name: "fixed",
        assignment: "random",
        minSamples: 6,
        variants: [
          { name: "A", model: "model-a", weight: 1 },
          { name: "B", model: "model-b", weight: 1 },
          { name: "C", model: "model-c", weight: 1 },
          { name: "D", model: "model-d", weight: 0 }
        ]
      })
      const data = {
        A: { latencies: range(10, (i) => 100 + 10 * i), errors: 2, scores: [3, 4, 5, 3, 4, 5] },
        B: { latencies: range(10, (i) => 90 + 10 * i), errors: 3, scores: [5, 6, 7, 5, 6, 7] },
        C: { latencies: range(10, (i) => 10 * i), errors: 12, scores: [4, 5, 6, 4, 5, 6] },
        D: { latencies: [1000, 1000, 1000], errors: 0, scores: [1, 2, 3] }
      }
      for (const [variant, { errors, latencies, scores }] of Object.entries(data)) {
        const ids: Array<string> = []
        for (const [i, latencyMs] of latencies.entries()) {
          ids.push(
            yield* experiment.record({ variant, latencyMs, outcome: "success", inputTokens: 10 + i, outputTokens: 20 })
          )
        }
        for (let i = 0; i < errors; i++) yield* experiment.record({ variant, latencyMs: 5, outcome: "ServerError" })
        for (const [i, score] of scores.entries()) yield* experiment.score(ids[i], score)
      }
      const summary = yield* experiment.summary

      // per variant
      const [A, B, C, D] = summary.variants
      assert.deepStrictEqual([A.calls, A.errors, A.outcomes], [12, 2, { success: 10, ServerError: 2 }])
      closeTo(A.errorRate, 2 / 12)
      closeTo(A.latency.mean, 145)
      // sum of squared deviations of 100..190 from 145 is 100 * 82.5 = 8250; / 9
      closeTo(A.latency.sd, Math.sqrt(8250 / 9))
      closeTo(A.latency.p50, 145)
      closeTo(A.latency.p95, 185.5)
      closeTo(A.inputTokens.mean, 14.5)
      closeTo(A.outputTokens.mean, 20)
      assert.deepStrictEqual([A.score.count, A.score.mean], [6, 4])
      closeTo(A.score.sd, Math.sqrt(0.8))
      assert.deepStrictEqual([D.calls, D.latency.mean, D.score.count], [3, 1000, 3])
      assert.deepStrictEqual(summary.variants.map((v) => v.isControl), [true, false, false, false])
      assert.deepStrictEqual([B.calls, C.calls, C.errors], [13, 22, 12])

      // challengers against A, expected values by formula
      const welch = (a: ReadonlyArray<number>, b: ReadonlyArray<number>, t: number) => {
        const x = twoPass(a)
        const y = twoPass(b)
        const va = x.variance / x.n
        const vb = y.variance / y.n
        const df = (va + vb) ** 2 / (va ** 2 / (x.n - 1) + vb ** 2 / (y.n - 1))
        const d = y.mean - x.mean
        const half = t * Math.sqrt(va + vb)
        return { d, df, lower: d - half, upper: d + half }
      }
      // Wilson's score interval for each rate, combined by Newcombe's method 10
      const wilson = (x: number, n: number) => {
        const p = x / n
        const z2 = Z_0975 ** 2
        const centre = (2 * n * p + z2) / (2 * (n + z2))
        const half = Z_0975 * Math.sqrt(z2 + 4 * n * p * (1 - p)) / (2 * (n + z2))
        return { p, lower: centre - half, upper: centre + half }
      }
      const proportion = (ea: number, na: number, eb: number, nb: number) => {
        const a = wilson(ea, na)
        const b = wilson(eb, nb)
        const d = b.p - a.p
        return {
          d,
          lower: d - Math.sqrt((b.p - b.lower) ** 2 + (a.upper - a.p) ** 2),
          upper: d + Math.sqrt((b.upper - b.p) ** 2 + (a.p - a.lower) ** 2)
        }
      }
      const expectInterval = (
        actual: Experiment.Comparison,
        expected: { d: number; lower: number; upper: number; df?: number },
        verdict: Experiment.Verdict
      ) => {
        closeTo(actual.difference, expected.d, 1e-9, `${actual.metric} difference`)
        closeTo(actual.lower, expected.lower, 1e-6, `${actual.metric} lower`)
        closeTo(actual.upper, expected.upper, 1e-6, `${actual.metric} upper`)
        if (expected.df !== undefined) closeTo(actual.df, expected.df, 1e-9, `${actual.metric} df`)
        assert.strictEqual(actual.verdict, verdict, `${actual.metric}: ${actual.reason}`)
      }
      const [vsB, vsC, vsD] = summary.comparisons
      assert.deepStrictEqual(summary.comparisons.map((c) => c.variant), ["B", "C", "D"])

      // equal sizes and spreads: Welch's df is 2 (n - 1) = 18 for latency (10 a side), 10 for score (6)
      const latencyB = welch(data.A.latencies, data.B.latencies, T_0975[18])
      assert.strictEqual(latencyB.df, 18)
      // -10 ± 2.1009 * sqrt(91.667 + 91.667) = -10 ± 28.45: contains 0
      expectInterval(vsB.latency, latencyB, "inconclusive")
      closeTo(vsB.latency.lower, -38.446, 1e-3)
      // -100 ± 28.45: all below 0, faster is better
      expectInterval(vsC.latency, welch(data.A.latencies, data.C.latencies, T_0975[18]), "better")

      // 3/13 - 2/12 = 0.064 in [-0.254, 0.361]: inconclusive; 12/22 - 2/12 = 0.379 in [0.034, 0.599]:
      // more errors is worse
      expectInterval(vsB.errorRate, proportion(2, 12, 3, 13), "inconclusive")
      expectInterval(vsC.errorRate, proportion(2, 12, 12, 22), "worse")
      closeTo(vsC.errorRate.lower, 0.03425, 1e-4)

      // 2 ± 2.2281 * sqrt(0.8 / 6 * 2) = 2 ± 1.1506: a higher score is better; 1 ± 1.1506 contains 0
      expectInterval(vsB.score, welch(data.A.scores, data.B.scores, T_0975[10]), "better")
      expectInterval(vsC.score, welch(data.A.scores, data.C.scores, T_0975[10]), "inconclusive")
      closeTo(vsB.score.lower, 0.84935, 1e-4)

      // D has 3 observations, fewer than minSamples = 6: inconclusive whatever the interval says
      assert.deepStrictEqual([vsD.latency.verdict, vsD.errorRate.verdict, vsD.score.verdict], [
        "inconclusive",
        "inconclusive",
        "inconclusive"
      ])
      assert.include(vsD.latency.reason, "too few samples")
      assert.include(vsB.latency.reason, "contains 0")
      assert.include(vsC.latency.reason, "excludes 0")
    }).pipe(Effect.scoped, Random.withSeed(11)))

  it.effect("0 errors in 1,000 calls against 4 in 1,000 is inconclusive, 12 in 1,000 is worse", () =>
    Effect.gen(function*() {
      const experiment = yield* Experiment.make({
        name: "rare errors",
        assignment: "random",
        variants: [
          { name: "control", model: "model-a", weight: 1 },
          { name: "four", model: "model-b", weight: 1 },
          { name: "twelve", model: "model-c", weight: 1 }
        ]
      })
      for (const [variant, errors] of [["control", 0], ["four", 4], ["twelve", 12]] as const) {
        for (let i = 0; i < 1000; i++) {
          yield* experiment.record({ variant, latencyMs: 100, outcome: i < errors ? "ServerError" : "success" })
        }
      }
      const [four, twelve] = (yield* experiment.summary).comparisons
      assert.strictEqual(four.errorRate.verdict, "inconclusive", four.errorRate.reason)
      closeTo(four.errorRate.lower, -0.000540, 1e-6)
      closeTo(four.errorRate.upper, 0.010240, 1e-6)
      assert.strictEqual(twelve.errorRate.verdict, "worse", twelve.errorRate.reason)
    }).pipe(Effect.scoped))

  it.effect("Welch's df is fractional for unequal sizes and spreads (values from SciPy)", () =>
    Effect.gen(function*() {
      // With equal sizes and spreads Welch's df equals the pooled test's n1 + n2 - 2; here it does
      // not (pooled: 11), so a pooled-variance interval would fail these figures.
      // scipy.stats: welch df 4.0664134719363725, t.ppf(0.975, df) 2.7586528698648265
      const experiment = yield* Experiment.make({
        name: "unequal",
        assignment: "random",
        minSamples: 5,
        variants: [{ name: "A", model: "a", weight: 1 }, { name: "B", model: "b", weight: 1 }]
      })
      for (const latencyMs of [1, 2, 3, 4, 50]) {
        yield* experiment.record({ variant: "A", latencyMs, outcome: "success" })
      }
      for (let latencyMs = 10; latencyMs <= 17; latencyMs++) {
        yield* experiment.record({ variant: "B", latencyMs, outcome: "success" })
      }
      const [vsB] = (yield* experiment.summary).comparisons
      closeTo(vsB.latency.difference, 1.5, 1e-12)
      closeTo(vsB.latency.df, 4.0664134719363725, 1e-9)
      closeTo(vsB.latency.lower, -24.85199453832151, 1e-6)
      closeTo(vsB.latency.upper, 27.85199453832151, 1e-6)
      assert.strictEqual(vsB.latency.verdict, "inconclusive")
    }).pipe(Effect.scoped, Random.withSeed(3)))

  it.effect("constant samples give an exact difference; no data gives no interval", () =>
    Effect.gen(function*() {
      const experiment = yield* Experiment.make({
        name: "constant",
        assignment: "random",
        minSamples: 2,
        variants: [{ name: "A", model: "a", weight: 1 }, { name: "B", model: "b", weight: 1 }, {
          name: "C",
          model: "c",
          weight: 1
        }]
      })
      for (let i = 0; i < 5; i++) {
        yield* experiment.record({ variant: "A", latencyMs: 100, outcome: "success" })
        yield* experiment.record({ variant: "B", latencyMs: 80, outcome: "success" })
      }
      const [vsB, vsC] = (yield* experiment.summary).comparisons
      assert.deepStrictEqual([vsB.latency.difference, vsB.latency.lower, vsB.latency.upper], [-20, -20, -20])
      assert.strictEqual(vsB.latency.verdict, "better")
      // no errors on either side: the difference is exactly 0
      assert.deepStrictEqual([vsB.errorRate.difference, vsB.errorRate.verdict], [0, "inconclusive"])
      assert.deepStrictEqual([vsC.latency.difference, vsC.latency.lower, vsC.latency.verdict], [
        undefined,
        undefined,
        "inconclusive"
      ])
    }).pipe(Effect.scoped, Random.withSeed(1)))
})

describe("Recorder", () => {
  it("keeps at most sampleSize calls per variant plus the score window", () => {
    const recorder = new Recorder("r", [{ name: "a", model: "m" }], 10, 25)
    for (let i = 0; i < 1_000; i++) {
      recorder.record(0, {
        callId: recorder.nextCallId(),
        shadow: false,
        startedAt: i,
        latencyMs: i,
        outcome: "success",
        inputTokens: undefined,
        outputTokens: undefined
      }, (i * 0.618033988749895) % 1)
    }
    assert.strictEqual(recorder.size, 35)
    assert.strictEqual(recorder.pendingScores, 25)
    assert.strictEqual(recorder.variants[0].calls, 1_000)
    // the window holds the 25 most recent calls, r-976 to r-1000
    assert.strictEqual(recorder.score("r-976", 1), "scored")
    assert.strictEqual(recorder.score("r-976", 1), "already-scored")
    assert.strictEqual(recorder.score("r-975", 1), "unknown")
    assert.strictEqual(recorder.score("r-1", 1), "unknown")
  })
})

describe("Recorder outcomes", () => {
  it("count at most 64 distinct labels per variant, the rest as other", () => {
    const recorder = new Recorder("r", [{ name: "a", model: "m" }], 10, 10)
    const call = (outcome: string) => ({
      callId: recorder.nextCallId(),
      shadow: false,
      startedAt: 0,
      latencyMs: 1,
      outcome,
      inputTokens: undefined,
      outputTokens: undefined
    })
    for (let i = 0; i < 1_000; i++) recorder.record(0, call(`Error-${i}`), 0.5)
    recorder.record(0, call("Error-3"), 0.5)
    const [a] = recorder.variants
    assert.strictEqual(a.outcomes.size, 65)
    assert.strictEqual(a.outcomes.get("Error-3"), 2, "a label already counted keeps counting")
    assert.strictEqual(a.outcomes.get("other"), 1_000 - 64)
    assert.deepStrictEqual([a.calls, a.errors], [1_001, 1_001])
  })
})

function range(n: number, f: (i: number) => number): Array<number> {
  return Array.from({ length: n }, (_, i) => f(i))
}
