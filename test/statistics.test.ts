import fs from 'node:fs';
import path from 'node:path';
import { Rng } from '../runtime/core/rng';
import {
  fitLinearProbe,
  probeR2,
  aggregateIqm,
  aggregateMean,
  aggregateMedian,
  aggregateOptimalityGap,
  areaUnderCurve,
  bestValue,
  finalValue,
  iqm,
  jumpstart,
  LearningCurve,
  mean,
  median,
  minMaxBounds,
  minMaxNormalise,
  performanceProfile,
  probabilityOfImprovement,
  probabilityOfImprovementCI,
  quantile,
  sampleEfficiencyCurve,
  ScoreMatrix,
  stratifiedBootstrapCI,
  timeToThreshold,
} from '../runtime/core/statistics';

/*
 * The statistics module against numbers computed once with scipy/numpy
 * (test/fixtures/statistics/make_reference.py writes reference.json), plus the properties the
 * transfer report relies on: probability of improvement at its ends, bootstrap coverage,
 * determinism, the transfer scalars by hand, and refusals that name the argument.
 */

interface Reference {
  arrays: Record<string, { values: number[]; iqm: number; mean: number; median: number; quantiles: Array<[number, number]> }>;
  mann_whitney: Array<{ x: string; y: string; u: number; u_over_nm: number }>;
  matrices: Record<string, { scores: number[][]; iqm: number; mean: number; median: number; optimality_gap: Record<string, number> }>;
  probability_of_improvement: Array<{ x: string; y: string; probability: number }>;
}

// Sources sit beside the compiled tests: dist/test/… → test/fixtures/statistics.
const REFERENCE: Reference = JSON.parse(
  fs.readFileSync(path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'statistics', 'reference.json'), 'utf8'),
);

/** Relative tolerance 1e-12: summation order differs from numpy's (pairwise) and scipy's (partition). */
function expectClose(actual: number, expected: number, what: string): void {
  const error = Math.abs(actual - expected);
  if (!(error <= 1e-12 * Math.abs(expected))) {
    throw new Error(`${what}: got ${actual}, scipy/numpy reference ${expected} (difference ${error})`);
  }
}

/** One task's scores as a runs × 1 matrix. */
const column = (values: number[]): number[][] => values.map((value) => [value]);

describe('statistics: scipy/numpy reference values', () => {
  test('the fixtures cover the sizes and cases they claim (sanity)', () => {
    const sizes = Object.values(REFERENCE.arrays).map((a) => a.values.length);
    expect(sizes).toEqual([1, 2, 3, 4, 5, 7, 10, 33]);
    const all = Object.values(REFERENCE.arrays).flatMap((a) => a.values);
    expect(all.some((v) => v < 0)).toBe(true);
    expect(Object.values(REFERENCE.arrays).filter((a) => new Set(a.values).size < a.values.length).length).toBeGreaterThanOrEqual(4);
  });

  test('iqm equals scipy trim_mean(x, 0.25); mean and median equal numpy', () => {
    for (const [name, ref] of Object.entries(REFERENCE.arrays)) {
      expectClose(iqm(ref.values), ref.iqm, `iqm(${name})`);
      expectClose(mean(ref.values), ref.mean, `mean(${name})`);
      expectClose(median(ref.values), ref.median, `median(${name})`);
    }
    // The trimming must matter somewhere, or this test could not tell IQM from the mean.
    expect(Object.values(REFERENCE.arrays).some((a) => Math.abs(a.iqm - a.mean) > 1e-3)).toBe(true);
  });

  test("quantile equals numpy's linear method at every level", () => {
    for (const [name, ref] of Object.entries(REFERENCE.arrays)) {
      const sorted = [...ref.values].sort((a, b) => a - b);
      for (const [q, expected] of ref.quantiles) expectClose(quantile(sorted, q), expected, `quantile(${name}, ${q})`);
    }
  });

  test('probability of improvement on one task equals Mann–Whitney U / (n·m)', () => {
    for (const { x, y, u, u_over_nm } of REFERENCE.mann_whitney) {
      const xs = REFERENCE.arrays[x].values;
      const ys = REFERENCE.arrays[y].values;
      const probability = probabilityOfImprovement(column(xs), column(ys));
      expectClose(probability, u_over_nm, `P(${x} > ${y})`);
      expectClose(probability * xs.length * ys.length, u, `U(${x}, ${y})`);
    }
  });

  test('matrix aggregates and probability of improvement over tasks equal the reference', () => {
    for (const [name, ref] of Object.entries(REFERENCE.matrices)) {
      expectClose(aggregateIqm(ref.scores), ref.iqm, `aggregateIqm(${name})`);
      expectClose(aggregateMean(ref.scores), ref.mean, `aggregateMean(${name})`);
      expectClose(aggregateMedian(ref.scores), ref.median, `aggregateMedian(${name})`);
      for (const [gamma, gap] of Object.entries(ref.optimality_gap)) {
        expectClose(aggregateOptimalityGap(ref.scores, Number(gamma)), gap, `aggregateOptimalityGap(${name}, ${gamma})`);
      }
    }
    for (const { x, y, probability } of REFERENCE.probability_of_improvement) {
      expectClose(probabilityOfImprovement(REFERENCE.matrices[x].scores, REFERENCE.matrices[y].scores), probability, `P(${x} > ${y})`);
    }
  });
});

describe('statistics: probability of improvement', () => {
  const x = [
    [0.3, 0.9, 0.1],
    [0.5, 0.7, 0.1],
    [0.4, 0.8, 0.2],
  ];

  test('identical columns give 0.5, with an interval around it', () => {
    expect(probabilityOfImprovement(x, x)).toBe(0.5);
    const ci = probabilityOfImprovementCI(x, x, { reps: 500, seed: 3 });
    expect(ci.estimate).toBe(0.5);
    expect(ci.lower).toBeLessThan(0.5);
    expect(ci.upper).toBeGreaterThan(0.5);
  });

  test('X better than Y on every run of every task gives 1 (and 0 the other way), interval included', () => {
    const y = [
      [0.0, 0.1, -0.5],
      [0.2, 0.6, 0.0],
    ];
    expect(probabilityOfImprovement(x, y)).toBe(1);
    expect(probabilityOfImprovement(y, x)).toBe(0);
    expect(probabilityOfImprovementCI(x, y, { reps: 200, seed: 1 })).toEqual({ estimate: 1, lower: 1, upper: 1 });
  });
});

describe('statistics: stratified bootstrap', () => {
  test('resamples runs within each task: every resample keeps the run count and each column draws from its own task', () => {
    const scores = [
      [0, 10],
      [1, 11],
      [2, 12],
    ];
    const seen = new Set<string>();
    stratifiedBootstrapCI(
      scores,
      (resample) => {
        expect(resample.length).toBe(3);
        for (const row of resample) {
          expect([0, 1, 2]).toContain(row[0]);
          expect([10, 11, 12]).toContain(row[1]);
        }
        seen.add(JSON.stringify(resample));
        return aggregateMean(resample);
      },
      { reps: 200, seed: 5 },
    );
    // Tasks are resampled independently, so rows mix runs: (0, 12) is not a run of the input.
    expect(seen.size).toBeGreaterThan(50);
    expect([...seen].some((s) => (JSON.parse(s) as number[][]).some(([a, b]) => b - a !== 10))).toBe(true);
  });

  test('a single run gives a zero-width interval at the estimate', () => {
    expect(stratifiedBootstrapCI([[0.25, 0.75]], aggregateIqm, { reps: 100, seed: 0 })).toEqual({ estimate: 0.5, lower: 0.5, upper: 0.5 });
  });

  test('the 95% interval of the mean covers the true mean in about 90–95% of repetitions', () => {
    /*
     * 1000 data sets of 10 normal samples (mean 3, sd 2), 1000 bootstrap repetitions each. The
     * percentile bootstrap of a mean is about x̄ ± 1.96·σ̂/√n with the plug-in σ̂ = s·√(9/10), so
     * its coverage at n = 10 is P(|t₉| < 1.96·√0.9) = 0.904 (scipy), not 0.95. With 1000 data
     * sets the observed rate has a standard deviation of √(0.904·0.096/1000) ≈ 0.0093, so
     * [0.875, 0.935] is the expectation ± 3 SD. Intervals of the wrong size fall outside it:
     * size 0.99 covers ≈ 0.963 and size 0.9 ≈ 0.847 (same formula), checked below.
     */
    const coverage = (size: number): number => {
      const rng = new Rng('coverage-data');
      let covered = 0;
      for (let repetition = 0; repetition < 1000; repetition++) {
        const samples = Array.from({ length: 10 }, () => [3 + 2 * rng.normal()]);
        const ci = stratifiedBootstrapCI(samples, aggregateMean, { reps: 1000, size, seed: repetition });
        if (ci.lower <= 3 && 3 <= ci.upper) covered++;
      }
      return covered / 1000;
    };
    const at95 = coverage(0.95);
    expect(at95).toBeGreaterThanOrEqual(0.875);
    expect(at95).toBeLessThanOrEqual(0.935);
    expect(coverage(0.99)).toBeGreaterThan(0.935);
    expect(coverage(0.9)).toBeLessThan(0.875);
  });

  test('the same seed gives bit-identical intervals; another seed gives different ones', () => {
    const rng = new Rng('determinism');
    const scores = Array.from({ length: 10 }, () => [rng.next(), rng.next(), rng.next()]);
    const other = Array.from({ length: 7 }, () => [rng.next(), rng.next(), rng.next()]);
    const curves = Array.from({ length: 6 }, () => [0, 1000, 2000].map((step) => ({ step, value: rng.next() })));
    const all = (seed: number | string) => ({
      iqm: stratifiedBootstrapCI(scores, aggregateIqm, { reps: 2000, seed }),
      median: stratifiedBootstrapCI(scores, aggregateMedian, { reps: 2000, seed }),
      improvement: probabilityOfImprovementCI(scores, other, { reps: 2000, seed }),
      profile: performanceProfile(scores, [0.25, 0.5, 0.75], { reps: 2000, seed }),
      curve: sampleEfficiencyCurve(curves, { reps: 2000, seed }),
    });
    const first = all(42);
    stratifiedBootstrapCI(other, aggregateIqm, { reps: 300, seed: 1 }); // unrelated work in between changes nothing
    expect(all(42)).toStrictEqual(first);
    expect(all('42')).toStrictEqual(first); // a seed is its string form, as in Rng
    const second = all(43);
    expect(second.iqm).not.toStrictEqual(first.iqm);
    expect(second.improvement).not.toStrictEqual(first.improvement);
    expect(second.curve).not.toStrictEqual(first.curve);
    expect(second.iqm.estimate).toBe(first.iqm.estimate); // the point estimate does not depend on the seed
  });

  test('5 runs × 4 tasks with 50,000 repetitions is fast (measured ≈ 0.15 s; the bound only catches a blow-up)', () => {
    const scores = REFERENCE.matrices.m5x4.scores;
    const start = process.hrtime.bigint();
    const ci = stratifiedBootstrapCI(scores, aggregateIqm, { reps: 50_000, seed: 0 });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    expect(ci.lower).toBeLessThan(ci.estimate);
    expect(ci.upper).toBeGreaterThan(ci.estimate);
    expect(seconds).toBeLessThan(2);
  });
});

describe('statistics: performance profile and sample-efficiency curve', () => {
  test('the profile is the fraction of run × task scores above each threshold, with intervals around it', () => {
    const scores = [
      [0.1, 0.5],
      [0.4, 0.9],
      [0.6, 0.2],
      [0.8, 0.4],
    ];
    const profile = performanceProfile(scores, [0, 0.4, 0.45, 0.9], { reps: 1000, seed: 2 });
    expect(profile.map((p) => p.threshold)).toEqual([0, 0.4, 0.45, 0.9]);
    // Strictly above: 0.4 itself is not counted at τ = 0.4, and nothing is above 0.9.
    expect(profile.map((p) => p.estimate)).toEqual([1, 4 / 8, 4 / 8, 0]);
    for (const point of profile) {
      expect(point.lower).toBeLessThanOrEqual(point.estimate);
      expect(point.upper).toBeGreaterThanOrEqual(point.estimate);
    }
    expect(profile[1].upper - profile[1].lower).toBeGreaterThan(0);
    expect(profile[3]).toMatchObject({ lower: 0, upper: 0 });
  });

  test('the sample-efficiency curve is the IQM over runs at each step, one or several tasks', () => {
    const values = [
      [0.0, 0.2, 0.5],
      [0.1, 0.4, 0.9],
      [0.0, 0.3, 0.6],
      [0.2, 0.1, 0.7],
      [0.1, 0.6, 1.0],
    ];
    const curves: LearningCurve[] = values.map((run) => run.map((value, i) => ({ step: 500 * i, value })));
    const curve = sampleEfficiencyCurve(curves, { reps: 1000, seed: 9 });
    expect(curve.map((p) => p.step)).toEqual([0, 500, 1000]);
    curve.forEach((point, i) => {
      expect(point.estimate).toBe(iqm(values.map((run) => run[i])));
      expect(point.lower).toBeLessThanOrEqual(point.estimate);
      expect(point.upper).toBeGreaterThanOrEqual(point.estimate);
    });
    // Two tasks: the IQM pools runs × tasks at each step.
    const twoTasks = curves.map((curve) => [curve, curve.map((p) => ({ step: p.step, value: p.value + 1 }))]);
    const pooled = sampleEfficiencyCurve(twoTasks, { reps: 200, seed: 9 });
    expect(pooled[2].estimate).toBeCloseTo(iqm([...values.map((run) => run[2]), ...values.map((run) => run[2] + 1)]), 12);
  });

  test('curves logged at different steps are refused, naming the curve and the step', () => {
    const a = [
      { step: 0, value: 0 },
      { step: 100, value: 1 },
    ];
    const b = [
      { step: 0, value: 0 },
      { step: 150, value: 1 },
    ];
    expect(() => sampleEfficiencyCurve([a, b], { reps: 10, seed: 0 })).toThrow(
      /sampleEfficiencyCurve: the curves log different steps \(curves\[1\]\[1\]\.step is 150 where curves\[0\] has 100\)/,
    );
    expect(() => sampleEfficiencyCurve([[a, a], [a, [a[0]]]], { reps: 10, seed: 0 })).toThrow(/curves\[1\]\[1\] has 1 points but curves\[0\]\[0\] has 2/);
    expect(() => sampleEfficiencyCurve([[a, a], [a]], { reps: 10, seed: 0 })).toThrow(/curves\[1\] has 1 tasks but curves\[0\] has 2/);
  });
});

describe('statistics: per-seed transfer scalars', () => {
  const curve: LearningCurve = [
    { step: 0, value: 0.2 },
    { step: 100, value: 0.4 },
    { step: 300, value: 0.9 },
    { step: 400, value: 0.6 },
  ];

  test('jumpstart, final and best values', () => {
    expect(jumpstart(curve)).toBe(0.2);
    expect(finalValue(curve)).toBe(0.6);
    expect(bestValue(curve)).toBe(0.9);
  });

  test('area under the curve is the trapezoid area over the step span (a mean level)', () => {
    // (100·0.6 + 200·1.3 + 100·1.5) / 2 = 235, over a span of 400 steps.
    expect(areaUnderCurve(curve)).toBeCloseTo(235 / 400, 15);
    expect(areaUnderCurve([{ step: 1000, value: 0.3 }])).toBe(0.3);
    const constant = [100, 250, 900].map((step) => ({ step, value: 0.7 }));
    expect(areaUnderCurve(constant)).toBeCloseTo(0.7, 15);
  });

  test('time to threshold: first step at or above it, else censored at the budget', () => {
    expect(timeToThreshold(curve, 0.5, 400)).toEqual({ step: 300, censored: false });
    expect(timeToThreshold(curve, 0.4, 400)).toEqual({ step: 100, censored: false }); // reaching it counts
    expect(timeToThreshold(curve, 0.2, 400)).toEqual({ step: 0, censored: false });
    expect(timeToThreshold(curve, 0.95, 400)).toEqual({ step: 400, censored: true });
    // Reached only after the budget: censored at the budget, not credited.
    expect(timeToThreshold(curve, 0.5, 250)).toEqual({ step: 250, censored: true });
  });

  test('min–max normalisation per task, marl-eval style', () => {
    const normalised = minMaxNormalise([2, 4, 6]);
    expect(normalised[0]).toBe(0);
    expect(normalised[1]).toBeCloseTo(2 / (4 + 1e-6), 15);
    expect(normalised[2]).toBeCloseTo(4 / (4 + 1e-6), 15);
    expect(normalised[2]).toBeLessThan(1);
    expect(minMaxBounds([3, -1, 7, 2])).toEqual({ min: -1, max: 7 });
    expect(minMaxNormalise([5], { min: 0, max: 10 })[0]).toBeCloseTo(5 / (10 + 1e-6), 15);
    expect(minMaxNormalise([0.5, 0.5])).toEqual([0, 0]); // a flat task does not divide by zero
  });
});

describe('statistics: bad input is refused, naming the argument', () => {
  const scores = [
    [0.1, 0.2],
    [0.3, 0.4],
  ];
  const options = { reps: 10, seed: 0 };
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['empty values', () => iqm([]), /^iqm: values is empty; expected at least one number$/],
    ['NaN value', () => iqm([1, NaN]), /^iqm: values\[1\] is NaN; expected a finite number$/],
    ['infinite value', () => mean([1, Infinity]), /^mean: values\[1\] is Infinity/],
    ['non-number value', () => median([1, '2' as unknown as number]), /^median: values\[1\] is a string/],
    ['no runs', () => aggregateMean([]), /^aggregateMean: scores has no runs/],
    ['no tasks', () => aggregateIqm([[]]), /^aggregateIqm: scores\[0\] has no tasks/],
    ['ragged matrix', () => aggregateIqm([[1, 2], [3]]), /^aggregateIqm: scores\[1\] has 1 tasks but scores\[0\] has 2; every run must score every task$/],
    ['NaN in matrix', () => aggregateMedian([[1, 2], [3, NaN]]), /^aggregateMedian: scores\[1\]\[1\] is NaN/],
    ['matrix not an array', () => aggregateIqm(3 as unknown as ScoreMatrix), /^aggregateIqm: scores is 3; expected an array of runs/],
    ['bad gamma', () => aggregateOptimalityGap(scores, NaN), /^aggregateOptimalityGap: gamma is NaN/],
    ['reps 0', () => stratifiedBootstrapCI(scores, aggregateIqm, { reps: 0, seed: 0 }), /^stratifiedBootstrapCI: options\.reps is 0; expected an integer ≥ 1$/],
    ['fractional reps', () => stratifiedBootstrapCI(scores, aggregateIqm, { reps: 2.5, seed: 0 }), /options\.reps is 2\.5/],
    ['size 1', () => stratifiedBootstrapCI(scores, aggregateIqm, { ...options, size: 1 }), /^stratifiedBootstrapCI: options\.size is 1; expected a coverage strictly between 0 and 1/],
    ['size 0', () => probabilityOfImprovementCI(scores, scores, { ...options, size: 0 }), /^probabilityOfImprovementCI: options\.size is 0/],
    ['size 95', () => performanceProfile(scores, [0.5], { ...options, size: 95 }), /^performanceProfile: options\.size is 95/],
    ['size NaN', () => stratifiedBootstrapCI(scores, aggregateIqm, { ...options, size: NaN }), /options\.size is NaN/],
    ['no seed', () => stratifiedBootstrapCI(scores, aggregateIqm, { reps: 10 } as never), /options\.seed is missing; expected a number or a string/],
    ['no options', () => stratifiedBootstrapCI(scores, aggregateIqm, undefined as never), /^stratifiedBootstrapCI: options is missing/],
    ['aggregate not a function', () => stratifiedBootstrapCI(scores, 'iqm' as never, options), /^stratifiedBootstrapCI: aggregate is a string; expected a function/],
    ['aggregate returns NaN', () => stratifiedBootstrapCI(scores, () => NaN, options), /^stratifiedBootstrapCI: aggregate returned NaN/],
    ['tasks differ', () => probabilityOfImprovement(scores, [[1, 2, 3]]), /^probabilityOfImprovement: y has 3 tasks but x has 2/],
    ['NaN in y', () => probabilityOfImprovement(scores, [[1, NaN]]), /^probabilityOfImprovement: y\[0\]\[1\] is NaN/],
    ['no thresholds', () => performanceProfile(scores, [], options), /^performanceProfile: thresholds is empty/],
    ['unsorted quantile input', () => quantile([2, 1], 0.5), /^quantile: sorted is not in ascending order \(sorted\[1\] < sorted\[0\]\)/],
    ['quantile level outside [0, 1]', () => quantile([1, 2], 1.5), /^quantile: q is 1\.5; expected a level between 0 and 1/],
    ['empty curve', () => jumpstart([]), /^jumpstart: curve is empty/],
    ['steps not increasing', () => areaUnderCurve([{ step: 5, value: 0 }, { step: 5, value: 1 }]), /^areaUnderCurve: curve\[1\]\.step is 5, not after curve\[0\]\.step = 5/],
    ['NaN in curve', () => finalValue([{ step: 0, value: NaN }]), /^finalValue: curve\[0\]\.value is NaN/],
    ['bad budget', () => timeToThreshold([{ step: 0, value: 0 }], 0.5, NaN), /^timeToThreshold: budget is NaN/],
    ['bad threshold', () => timeToThreshold([{ step: 0, value: 0 }], undefined as never, 10), /^timeToThreshold: threshold is missing/],
    ['no curves', () => sampleEfficiencyCurve([], options), /^sampleEfficiencyCurve: curves is empty/],
    ['bounds upside down', () => minMaxNormalise([1], { min: 2, max: 1 }), /^minMaxNormalise: bounds\.max \(1\) is below bounds\.min \(2\)/],
  ];
  test.each(cases)('%s', (_name, call, message) => {
    expect(call).toThrow(message);
  });

  test('the edges of the valid range are accepted: reps 1, a single value, a single task', () => {
    expect(stratifiedBootstrapCI([[0.5]], aggregateIqm, { reps: 1, seed: 0 })).toEqual({ estimate: 0.5, lower: 0.5, upper: 0.5 });
    expect(iqm([4])).toBe(4);
    expect(quantile([7], 0.3)).toBe(7);
  });
});

describe('statistics: linear probe', () => {
  const rng = new Rng('probe');
  const rows = (n: number, f: (x: number[]) => number[], noise = 0) => {
    const x: number[] = [];
    const y: number[] = [];
    for (let i = 0; i < n; i++) {
      const xi = [rng.normal(), rng.normal(), rng.normal()];
      x.push(...xi);
      y.push(...f(xi).map((v) => v + noise * rng.normal()));
    }
    return { x, y };
  };
  const affine = (x: number[]) => [2 * x[0] - x[2] + 0.5, -x[1] + 3];

  test('recovers an affine map exactly and scores held-out rows by R²', () => {
    const train = rows(200, affine);
    const probe = fitLinearProbe(train.x, train.y, 200, 3, 2, 0);
    expect(Array.from(probe.weights).map((w) => Math.round(w * 1e6) / 1e6 + 0)).toEqual([2, 0, 0, -1, -1, 0, 0.5, 3]);
    const test = rows(50, affine);
    expect(probeR2(probe, test.x, test.y, 50)).toBeCloseTo(1, 9);
    // Targets unrelated to x: R² near 0 in sample, not above it out of sample.
    const unrelated = rows(400, () => [rng.normal(), rng.normal()]);
    const p2 = fitLinearProbe(unrelated.x, unrelated.y, 400, 3, 2);
    expect(probeR2(p2, unrelated.x, unrelated.y, 400)).toBeLessThan(0.05);
    const fresh = rows(400, () => [rng.normal(), rng.normal()]);
    expect(probeR2(p2, fresh.x, fresh.y, 400)).toBeLessThan(0.02);
    // Half the variance is noise: R² about 1/2.
    const noisy = rows(4000, (x) => [x[0]], 1);
    expect(probeR2(fitLinearProbe(noisy.x, noisy.y, 4000, 3, 1), noisy.x, noisy.y, 4000)).toBeCloseTo(0.5, 1);
  });

  test('bad input is refused', () => {
    expect(() => fitLinearProbe([1, 2], [1], 1, 3, 1)).toThrow(/x must hold n·xDim = 3 numbers/);
    expect(() => fitLinearProbe([1, 1, 1, 1], [1, 2], 2, 2, 1, 0)).toThrow(/singular/);
    expect(probeR2(fitLinearProbe([0, 1], [5, 5], 2, 1, 1), [0, 1], [5, 5], 2)).toBeNaN();
    // A constant target over many rows (one held-out task) is NaN too, not a huge negative from rounding.
    const n = 9000;
    const x = Array.from({ length: n }, () => rng.normal());
    const y = new Array<number>(n).fill(0.2);
    expect(probeR2(fitLinearProbe(x, y.map((v, i) => v + x[i]), n, 1, 1), x, y, n)).toBeNaN();
  });
});
