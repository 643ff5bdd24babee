import { Rng } from './rng';

/*
 * Statistics for comparing training runs, as rliable defines them (Agarwal et al. 2021,
 * "Deep RL at the Edge of the Statistical Precipice"): the interquartile mean, stratified
 * bootstrap confidence intervals, probability of improvement and performance profiles, plus the
 * per-seed transfer scalars of the transfer literature (jumpstart, area under the curve, time to
 * a threshold). Reference values from scipy/numpy are in test/fixtures/statistics/.
 *
 * Every random draw comes from a seeded Rng, so the same inputs, repetitions and seed give
 * bit-identical intervals on every machine.
 */

/** Scores of several runs (seeds) on several tasks: `scores[run][task]`, usually normalised per task. */
export type ScoreMatrix = ReadonlyArray<ReadonlyArray<number>>;

/** A statistic of a score matrix, such as `aggregateIqm`. */
export type Aggregate = (scores: ScoreMatrix) => number;

export interface BootstrapOptions {
  /** Bootstrap repetitions (rliable uses 50,000 for aggregates, 2,000 for probability of improvement). */
  reps: number;
  /** Coverage of the interval, strictly between 0 and 1; 0.95 if not given. */
  size?: number;
  /** Seed of the resampling; the same seed reproduces the interval bit for bit. */
  seed: number | string;
}

/** A point estimate with its percentile bootstrap interval. */
export interface IntervalEstimate {
  estimate: number;
  lower: number;
  upper: number;
}

/** One evaluation of a learning curve, e.g. the evaluation win rate after `step` env steps. */
export interface CurvePoint {
  step: number;
  value: number;
}

/** Evaluations in order of strictly increasing step. */
export type LearningCurve = ReadonlyArray<CurvePoint>;

/*
 * Built-ins used in the bootstrap's inner loops, bound once: under Jest every lookup of a global
 * name goes through the test sandbox's interceptor, which made bootstraps ~20× slower in tests.
 */
const isFiniteValue = Number.isFinite;
const isArray = Array.isArray;
const floor = Math.floor;
const lesserOf = Math.min;

/** A uniform index in [0, n): the same draw as `rng.int(n)`, with `floor` bound above. */
function drawIndex(rng: Rng, n: number): number {
  return floor(rng.next() * n);
}

// ---------------------------------------------------------------------------------------------
// Input checks: every public function names itself and the argument it refuses.

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && isFiniteValue(value);
}

function refuseNumber(value: unknown, name: string, where: string): never {
  throw new Error(`${where}: ${name} is ${describe(value)}; expected a finite number`);
}

function checkFinite(value: unknown, name: string, where: string): number {
  return isFiniteNumber(value) ? value : refuseNumber(value, name, where);
}

function checkValues(values: ArrayLike<number>, name: string, where: string): void {
  if (values === null || typeof values !== 'object' || typeof values.length !== 'number') {
    throw new Error(`${where}: ${name} is ${describe(values)}; expected an array of numbers`);
  }
  if (values.length === 0) throw new Error(`${where}: ${name} is empty; expected at least one number`);
  // Element names are built only on failure: aggregates check every bootstrap resample.
  for (let i = 0; i < values.length; i++) if (!isFiniteNumber(values[i])) refuseNumber(values[i], `${name}[${i}]`, where);
}

/** Checks that `scores` is a non-empty rectangular matrix of finite numbers and returns its shape. */
function checkMatrix(scores: ScoreMatrix, name: string, where: string): { runs: number; tasks: number } {
  if (!isArray(scores)) throw new Error(`${where}: ${name} is ${describe(scores)}; expected an array of runs, each an array of task scores`);
  if (scores.length === 0) throw new Error(`${where}: ${name} has no runs; expected at least one`);
  for (let run = 0; run < scores.length; run++) {
    const row = scores[run];
    if (!isArray(row)) throw new Error(`${where}: ${name}[${run}] is ${describe(row)}; expected an array of task scores`);
    if (row.length === 0) throw new Error(`${where}: ${name}[${run}] has no tasks; expected at least one`);
    if (row.length !== scores[0].length) {
      throw new Error(`${where}: ${name}[${run}] has ${row.length} tasks but ${name}[0] has ${scores[0].length}; every run must score every task`);
    }
    for (let task = 0; task < row.length; task++) if (!isFiniteNumber(row[task])) refuseNumber(row[task], `${name}[${run}][${task}]`, where);
  }
  return { runs: scores.length, tasks: scores[0].length };
}

function checkBootstrapOptions(options: BootstrapOptions, where: string): { reps: number; size: number; rng: Rng } {
  if (options === null || typeof options !== 'object') throw new Error(`${where}: options is ${describe(options)}; expected { reps, size?, seed }`);
  const { reps, size = 0.95, seed } = options;
  if (typeof reps !== 'number' || !Number.isInteger(reps) || reps < 1) {
    throw new Error(`${where}: options.reps is ${describe(reps)}; expected an integer ≥ 1`);
  }
  if (typeof size !== 'number' || !(size > 0 && size < 1)) {
    throw new Error(`${where}: options.size is ${describe(size)}; expected a coverage strictly between 0 and 1, such as 0.95`);
  }
  if (!(typeof seed === 'string' || (typeof seed === 'number' && isFiniteValue(seed)))) {
    throw new Error(`${where}: options.seed is ${describe(seed)}; expected a number or a string`);
  }
  return { reps, size, rng: new Rng(seed) };
}

// ---------------------------------------------------------------------------------------------
// Point statistics of a list of numbers.

/*
 * One growing scratch buffer for sorting inside bootstraps, so a repetition allocates no new buffer.
 * Safe because every user of it finishes synchronously before returning.
 */
let scratch = new Float64Array(64);

function scratchOf(length: number): Float64Array {
  if (scratch.length < length) scratch = new Float64Array(Math.max(length, 2 * scratch.length));
  return scratch.subarray(0, length);
}

function sumOf(values: ArrayLike<number>, from = 0, to = values.length): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += values[i];
  return sum;
}

/** Sorts `buffer` in place and returns its 25% trimmed mean (the IQM). */
function trimmedMeanInPlace(buffer: Float64Array): number {
  buffer.sort();
  // scipy's trim_mean truncates the cut: int(0.25 · n) from each end, so n < 4 cuts nothing.
  const cut = floor(0.25 * buffer.length);
  return sumOf(buffer, cut, buffer.length - cut) / (buffer.length - 2 * cut);
}

/** Per-run scores of one task as a score matrix (one row per run, one column). */
export function scoreColumn(values: ReadonlyArray<number>): ScoreMatrix {
  return values.map((v) => [v]);
}

/** Median of `buffer`, sorting it in place. */
function medianInPlace(buffer: Float64Array): number {
  buffer.sort();
  const middle = buffer.length >> 1;
  return buffer.length % 2 === 1 ? buffer[middle] : (buffer[middle - 1] + buffer[middle]) / 2;
}

export function mean(values: ReadonlyArray<number>): number {
  checkValues(values, 'values', 'mean');
  return sumOf(values) / values.length;
}

export function median(values: ReadonlyArray<number>): number {
  checkValues(values, 'values', 'median');
  const buffer = scratchOf(values.length);
  buffer.set(values);
  return medianInPlace(buffer);
}

/**
 * Interquartile mean: the mean of the middle 50% of the values, with scipy's
 * `trim_mean(values, 0.25)` semantics (drop ⌊n/4⌋ from each end of the sorted values).
 */
export function iqm(values: ReadonlyArray<number>): number {
  checkValues(values, 'values', 'iqm');
  const buffer = scratchOf(values.length);
  buffer.set(values);
  return trimmedMeanInPlace(buffer);
}

/**
 * The `q`-quantile (0 ≤ q ≤ 1) of ascending `sorted` values by numpy's default 'linear' method
 * (the one rliable's percentile intervals use): position q·(n − 1), interpolated between its
 * neighbours the way numpy does, which keeps results within the neighbours' range.
 */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  checkValues(sorted, 'sorted', 'quantile');
  checkFinite(q, 'q', 'quantile');
  if (q < 0 || q > 1) throw new Error(`quantile: q is ${q}; expected a level between 0 and 1`);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] < sorted[i - 1]) throw new Error(`quantile: sorted is not in ascending order (sorted[${i}] < sorted[${i - 1}])`);
  }
  return sortedQuantile(sorted, q);
}

function sortedQuantile(sorted: ArrayLike<number>, q: number): number {
  const position = (sorted.length - 1) * q;
  const below = floor(position);
  if (below >= sorted.length - 1) return sorted[sorted.length - 1];
  const a = sorted[below];
  const b = sorted[below + 1];
  const t = position - below;
  const difference = b - a;
  // numpy interpolates from the nearer end, so the same floating-point result comes out here.
  return t >= 0.5 ? b - difference * (1 - t) : a + difference * t;
}

// ---------------------------------------------------------------------------------------------
// Aggregates of a runs × tasks score matrix (rliable's definitions).

/** IQM of all runs × tasks scores together. */
export function aggregateIqm(scores: ScoreMatrix): number {
  const { runs, tasks } = checkMatrix(scores, 'scores', 'aggregateIqm');
  const buffer = scratchOf(runs * tasks);
  for (let run = 0; run < runs; run++) for (let task = 0; task < tasks; task++) buffer[run * tasks + task] = scores[run][task];
  return trimmedMeanInPlace(buffer);
}

function perTaskMeansInto(scores: ScoreMatrix, runs: number, tasks: number, out: Float64Array): void {
  for (let task = 0; task < tasks; task++) {
    let sum = 0;
    for (let run = 0; run < runs; run++) sum += scores[run][task];
    out[task] = sum / runs;
  }
}

/** Mean over tasks of each task's mean over runs. */
export function aggregateMean(scores: ScoreMatrix): number {
  const { runs, tasks } = checkMatrix(scores, 'scores', 'aggregateMean');
  const means = scratchOf(tasks);
  perTaskMeansInto(scores, runs, tasks, means);
  return sumOf(means) / tasks;
}

/** Median over tasks of each task's mean over runs. */
export function aggregateMedian(scores: ScoreMatrix): number {
  const { runs, tasks } = checkMatrix(scores, 'scores', 'aggregateMedian');
  const means = scratchOf(tasks);
  perTaskMeansInto(scores, runs, tasks, means);
  return medianInPlace(means);
}

/**
 * How far the scores fall short of `gamma` (the score counted as good enough, 1 for normalised
 * scores): gamma − mean(min(score, gamma)) over all runs × tasks. Lower is better; scores above
 * gamma earn nothing extra.
 */
export function aggregateOptimalityGap(scores: ScoreMatrix, gamma = 1): number {
  const { runs, tasks } = checkMatrix(scores, 'scores', 'aggregateOptimalityGap');
  checkFinite(gamma, 'gamma', 'aggregateOptimalityGap');
  let sum = 0;
  for (let run = 0; run < runs; run++) for (let task = 0; task < tasks; task++) sum += lesserOf(scores[run][task], gamma);
  return gamma - sum / (runs * tasks);
}

// ---------------------------------------------------------------------------------------------
// Stratified bootstrap.

/**
 * Draws one stratified resample: for each task (the stratum) independently, `runs` run indices
 * with replacement, written to picks[task · runs + k]. The draw order is fixed, which is what
 * makes a seed reproduce an interval.
 */
function drawStratified(rng: Rng, runs: number, tasks: number, picks: Int32Array): void {
  for (let task = 0; task < tasks; task++) for (let k = 0; k < runs; k++) picks[task * runs + k] = drawIndex(rng, runs);
}

/** Sorts `replicates` in place and returns the percentile interval of coverage `size`. */
function percentileInterval(replicates: Float64Array, size: number): { lower: number; upper: number } {
  replicates.sort();
  return { lower: sortedQuantile(replicates, (1 - size) / 2), upper: sortedQuantile(replicates, (1 + size) / 2) };
}

function checkStatistic(value: number, what: string, where: string): number {
  if (!isFiniteValue(value)) throw new Error(`${where}: ${what} returned ${describe(value)}; expected a finite number`);
  return value;
}

/**
 * `aggregate(scores)` with a 95% (or `options.size`) stratified-bootstrap percentile interval:
 * each repetition resamples the runs with replacement separately within every task, so every
 * task keeps its number of runs, and applies `aggregate` to the resample.
 * The matrix passed to `aggregate` during the bootstrap is one buffer refilled for every
 * repetition; `aggregate` must not keep it.
 */
export function stratifiedBootstrapCI(scores: ScoreMatrix, aggregate: Aggregate, options: BootstrapOptions): IntervalEstimate {
  const where = 'stratifiedBootstrapCI';
  const { runs, tasks } = checkMatrix(scores, 'scores', where);
  if (typeof aggregate !== 'function') throw new Error(`${where}: aggregate is ${describe(aggregate)}; expected a function of a score matrix, such as aggregateIqm`);
  const { reps, size, rng } = checkBootstrapOptions(options, where);
  const estimate = checkStatistic(aggregate(scores), 'aggregate', where);

  const resample: number[][] = Array.from({ length: runs }, () => new Array<number>(tasks).fill(0));
  const replicates = new Float64Array(reps);
  for (let rep = 0; rep < reps; rep++) {
    for (let task = 0; task < tasks; task++) for (let k = 0; k < runs; k++) resample[k][task] = scores[drawIndex(rng, runs)][task];
    replicates[rep] = checkStatistic(aggregate(resample), 'aggregate (on a bootstrap resample)', where);
  }
  return { estimate, ...percentileInterval(replicates, size) };
}

// ---------------------------------------------------------------------------------------------
// Probability of improvement.

/**
 * Mean over tasks of P(x > y) for one run drawn from each, ties counting ½ — per task the
 * Mann–Whitney U of x against y divided by n·m — with runs given by index lists.
 */
function improvementOf(
  x: ScoreMatrix,
  y: ScoreMatrix,
  xPicks: Int32Array,
  yPicks: Int32Array,
  xRuns: number,
  yRuns: number,
  tasks: number,
): number {
  let total = 0;
  for (let task = 0; task < tasks; task++) {
    let wins = 0;
    for (let i = 0; i < xRuns; i++) {
      const xi = x[xPicks[task * xRuns + i]][task];
      for (let j = 0; j < yRuns; j++) {
        const yj = y[yPicks[task * yRuns + j]][task];
        if (xi > yj) wins += 1;
        else if (xi === yj) wins += 0.5;
      }
    }
    total += wins / (xRuns * yRuns);
  }
  return total / tasks;
}

function identityPicks(runs: number, tasks: number): Int32Array {
  const picks = new Int32Array(runs * tasks);
  for (let task = 0; task < tasks; task++) for (let k = 0; k < runs; k++) picks[task * runs + k] = k;
  return picks;
}

function checkPair(x: ScoreMatrix, y: ScoreMatrix, where: string): { xRuns: number; yRuns: number; tasks: number } {
  const { runs: xRuns, tasks } = checkMatrix(x, 'x', where);
  const { runs: yRuns, tasks: yTasks } = checkMatrix(y, 'y', where);
  if (yTasks !== tasks) throw new Error(`${where}: y has ${yTasks} tasks but x has ${tasks}; both must score the same tasks in the same order`);
  return { xRuns, yRuns, tasks };
}

/**
 * Probability that algorithm X beats algorithm Y on a task picked at random: per task, the
 * Mann–Whitney U of X's runs against Y's divided by n_x·n_y (ties count ½, so identical scores
 * give 0.5), averaged over tasks. The run counts of X and Y may differ.
 */
export function probabilityOfImprovement(x: ScoreMatrix, y: ScoreMatrix): number {
  const { xRuns, yRuns, tasks } = checkPair(x, y, 'probabilityOfImprovement');
  return improvementOf(x, y, identityPicks(xRuns, tasks), identityPicks(yRuns, tasks), xRuns, yRuns, tasks);
}

/**
 * `probabilityOfImprovement(x, y)` with a percentile interval from rliable's independent
 * stratified bootstrap: X's runs and Y's runs are resampled separately, each within every task.
 */
export function probabilityOfImprovementCI(x: ScoreMatrix, y: ScoreMatrix, options: BootstrapOptions): IntervalEstimate {
  const where = 'probabilityOfImprovementCI';
  const { xRuns, yRuns, tasks } = checkPair(x, y, where);
  const { reps, size, rng } = checkBootstrapOptions(options, where);
  const xPicks = identityPicks(xRuns, tasks);
  const yPicks = identityPicks(yRuns, tasks);
  const estimate = improvementOf(x, y, xPicks, yPicks, xRuns, yRuns, tasks);
  const replicates = new Float64Array(reps);
  for (let rep = 0; rep < reps; rep++) {
    drawStratified(rng, xRuns, tasks, xPicks);
    drawStratified(rng, yRuns, tasks, yPicks);
    replicates[rep] = improvementOf(x, y, xPicks, yPicks, xRuns, yRuns, tasks);
  }
  return { estimate, ...percentileInterval(replicates, size) };
}

/**
 * A statistic with one value per index (a threshold, a step): its estimate on the runs as given
 * (`picks` the identity) and its interval over `reps` stratified resamples drawn into `picks`.
 * `valuesInto(out, offset, stride)` writes value i, from the current picks, to out[i · stride +
 * offset]. One resample serves every index, so a band is the statistic of the same resampled runs.
 */
function bootstrapVector(
  length: number,
  valuesInto: (out: Float64Array, offset: number, stride: number) => void,
  picks: Int32Array,
  runs: number,
  tasks: number,
  { reps, size, rng }: { reps: number; size: number; rng: Rng },
): IntervalEstimate[] {
  const estimates = new Float64Array(length);
  valuesInto(estimates, 0, 1);
  // Replicates laid out index by index: replicates[i · reps + rep].
  const replicates = new Float64Array(length * reps);
  for (let rep = 0; rep < reps; rep++) {
    drawStratified(rng, runs, tasks, picks);
    valuesInto(replicates, rep, reps);
  }
  return Array.from({ length }, (_, i) => ({ estimate: estimates[i], ...percentileInterval(replicates.subarray(i * reps, (i + 1) * reps), size) }));
}

// ---------------------------------------------------------------------------------------------
// Performance profile.

export interface ProfilePoint extends IntervalEstimate {
  threshold: number;
}

/**
 * For each threshold τ, the fraction of all run × task scores above τ (rliable's score
 * distribution), with stratified-bootstrap intervals. One resample serves every threshold, so
 * the interval band is the profile of the same resampled runs.
 */
export function performanceProfile(scores: ScoreMatrix, thresholds: ReadonlyArray<number>, options: BootstrapOptions): ProfilePoint[] {
  const where = 'performanceProfile';
  const { runs, tasks } = checkMatrix(scores, 'scores', where);
  checkValues(thresholds, 'thresholds', where);
  const { reps, size, rng } = checkBootstrapOptions(options, where);
  const count = runs * tasks;
  const picks = identityPicks(runs, tasks);

  // Writes the fraction above threshold i to out[i · stride + offset].
  const fractionsInto = (out: Float64Array, offset: number, stride: number) => {
    for (let i = 0; i < thresholds.length; i++) {
      let above = 0;
      for (let task = 0; task < tasks; task++) for (let k = 0; k < runs; k++) if (scores[picks[task * runs + k]][task] > thresholds[i]) above++;
      out[i * stride + offset] = above / count;
    }
  };
  const intervals = bootstrapVector(thresholds.length, fractionsInto, picks, runs, tasks, { reps, size, rng });
  return thresholds.map((threshold, i) => ({ threshold, ...intervals[i] }));
}

// ---------------------------------------------------------------------------------------------
// Learning curves: per-seed transfer scalars and the IQM sample-efficiency curve.

function checkCurve(curve: LearningCurve, name: string, where: string): void {
  if (!isArray(curve)) throw new Error(`${where}: ${name} is ${describe(curve)}; expected an array of { step, value } points`);
  if (curve.length === 0) throw new Error(`${where}: ${name} is empty; expected at least one { step, value } point`);
  for (let i = 0; i < curve.length; i++) {
    const point = curve[i];
    if (point === null || typeof point !== 'object') throw new Error(`${where}: ${name}[${i}] is ${describe(point)}; expected a { step, value } point`);
    if (!isFiniteNumber(point.step)) refuseNumber(point.step, `${name}[${i}].step`, where);
    if (!isFiniteNumber(point.value)) refuseNumber(point.value, `${name}[${i}].value`, where);
    if (i > 0 && point.step <= curve[i - 1].step) {
      throw new Error(`${where}: ${name}[${i}].step is ${point.step}, not after ${name}[${i - 1}].step = ${curve[i - 1].step}; steps must increase strictly`);
    }
  }
}

/**
 * Performance at the first evaluation, before (much) learning on the target. The transfer
 * literature's jumpstart is this value with transfer minus the same without; the report takes
 * that difference across conditions.
 */
export function jumpstart(curve: LearningCurve): number {
  checkCurve(curve, 'curve', 'jumpstart');
  return curve[0].value;
}

/** Value at the last evaluation. */
export function finalValue(curve: LearningCurve): number {
  checkCurve(curve, 'curve', 'finalValue');
  return curve[curve.length - 1].value;
}

/** Highest value at any evaluation. */
export function bestValue(curve: LearningCurve): number {
  checkCurve(curve, 'curve', 'bestValue');
  let best = curve[0].value;
  for (const point of curve) best = Math.max(best, point.value);
  return best;
}

/**
 * Area under the curve by the trapezoid rule, divided by the span of steps (last − first), so it
 * is the curve's mean level in the curve's own units (a win rate stays in [0, 1]) and runs with
 * different budgets compare. A single-point curve's area is its value.
 */
export function areaUnderCurve(curve: LearningCurve): number {
  checkCurve(curve, 'curve', 'areaUnderCurve');
  if (curve.length === 1) return curve[0].value;
  let area = 0;
  for (let i = 1; i < curve.length; i++) area += ((curve[i].step - curve[i - 1].step) * (curve[i].value + curve[i - 1].value)) / 2;
  return area / (curve[curve.length - 1].step - curve[0].step);
}

export interface TimeToThreshold {
  /** First step whose value reached the threshold, or the budget if none did. */
  step: number;
  /** True if the threshold was not reached within the budget: the true time is later than `step`. */
  censored: boolean;
}

/**
 * First evaluation step at which the value is ≥ `threshold`, looking only at steps ≤ `budget`.
 * A run that never gets there is censored at the budget (`{ step: budget, censored: true }`),
 * which understates its time: aggregates over censored runs are optimistic for them.
 */
export function timeToThreshold(curve: LearningCurve, threshold: number, budget: number): TimeToThreshold {
  const where = 'timeToThreshold';
  checkCurve(curve, 'curve', where);
  checkFinite(threshold, 'threshold', where);
  checkFinite(budget, 'budget', where);
  for (const point of curve) {
    if (point.step > budget) break;
    if (point.value >= threshold) return { step: point.step, censored: false };
  }
  return { step: budget, censored: true };
}

export interface MinMax {
  min: number;
  max: number;
}

/** Smallest and largest of `values`: for one task, pass every condition's, seed's and step's values. */
export function minMaxBounds(values: ReadonlyArray<number>): MinMax {
  checkValues(values, 'values', 'minMaxBounds');
  let min = values[0];
  let max = values[0];
  for (const value of values) {
    min = Math.min(min, value);
    max = Math.max(max, value);
  }
  return { min, max };
}

/** marl-eval's guard against a task whose values are all equal (max = min). */
const MIN_MAX_EPSILON = 1e-6;

/**
 * Per-task min–max normalisation as in marl-eval: (x − min) / (max − min + 1e-6), with min and
 * max over all algorithms × runs × steps of the task (`minMaxBounds`), so that tasks with
 * different score scales can be aggregated. Results lie in [0, 1) for values within the bounds.
 * marl-eval's running min/max can miss a new maximum on the step that also lowers the minimum;
 * the bounds here are the true ones.
 */
export function minMaxNormalise(values: ReadonlyArray<number>, bounds: MinMax = minMaxBounds(values)): number[] {
  const where = 'minMaxNormalise';
  checkValues(values, 'values', where);
  if (bounds === null || typeof bounds !== 'object') throw new Error(`${where}: bounds is ${describe(bounds)}; expected { min, max }`);
  const min = checkFinite(bounds.min, 'bounds.min', where);
  const max = checkFinite(bounds.max, 'bounds.max', where);
  if (max < min) throw new Error(`${where}: bounds.max (${max}) is below bounds.min (${min})`);
  return values.map((value) => (value - min) / (max - min + MIN_MAX_EPSILON));
}

export interface CurveIntervalPoint extends IntervalEstimate {
  step: number;
}

/**
 * The IQM sample-efficiency curve: at every logged step, the IQM over runs (× tasks) with a
 * stratified-bootstrap interval. `curves` is one curve per run, or `curves[run][task]` for
 * several tasks; all curves must log the same steps. Each repetition resamples whole runs, so
 * a resampled run keeps its whole curve (rliable bootstraps all steps together the same way).
 */
export function sampleEfficiencyCurve(
  curves: ReadonlyArray<LearningCurve> | ReadonlyArray<ReadonlyArray<LearningCurve>>,
  options: BootstrapOptions,
): CurveIntervalPoint[] {
  const where = 'sampleEfficiencyCurve';
  if (!isArray(curves) || curves.length === 0) throw new Error(`${where}: curves is ${isArray(curves) ? 'empty' : describe(curves)}; expected one learning curve per run`);
  const multiTask = isArray(curves[0]) && curves[0].length > 0 && isArray(curves[0][0]);
  const grid = multiTask ? (curves as ReadonlyArray<ReadonlyArray<LearningCurve>>) : (curves as ReadonlyArray<LearningCurve>).map((curve) => [curve]);
  const nameOf = (run: number, task: number) => (multiTask ? `curves[${run}][${task}]` : `curves[${run}]`);
  const runs = grid.length;
  const tasks = grid[0].length;
  for (let run = 0; run < runs; run++) {
    if (!isArray(grid[run]) || grid[run].length !== tasks) {
      throw new Error(`${where}: curves[${run}] has ${isArray(grid[run]) ? grid[run].length : describe(grid[run])} tasks but curves[0] has ${tasks}; every run must have a curve for every task`);
    }
    for (let task = 0; task < tasks; task++) checkCurve(grid[run][task], nameOf(run, task), where);
  }
  const steps = grid[0][0].map((point) => point.step);
  for (let run = 0; run < runs; run++) {
    for (let task = 0; task < tasks; task++) {
      const curve = grid[run][task];
      const differs = curve.length !== steps.length ? -1 : curve.findIndex((point, i) => point.step !== steps[i]);
      if (curve.length !== steps.length || differs >= 0) {
        const detail = differs >= 0 ? `${nameOf(run, task)}[${differs}].step is ${curve[differs].step} where ${nameOf(0, 0)} has ${steps[differs]}` : `${nameOf(run, task)} has ${curve.length} points but ${nameOf(0, 0)} has ${steps.length}`;
        throw new Error(`${where}: the curves log different steps (${detail}); evaluate every run at the same steps`);
      }
    }
  }
  const { reps, size, rng } = checkBootstrapOptions(options, where);

  // values[(run · tasks + task) · S + s]: one flat array, read through the resampled run indices.
  const stepCount = steps.length;
  const values = new Float64Array(runs * tasks * stepCount);
  for (let run = 0; run < runs; run++) for (let task = 0; task < tasks; task++) grid[run][task].forEach((point, s) => (values[(run * tasks + task) * stepCount + s] = point.value));

  const picks = identityPicks(runs, tasks);
  // Writes the IQM at step s to out[s · stride + offset].
  const iqmsInto = (out: Float64Array, offset: number, stride: number) => {
    const buffer = scratchOf(runs * tasks);
    for (let s = 0; s < stepCount; s++) {
      for (let task = 0; task < tasks; task++) for (let k = 0; k < runs; k++) buffer[task * runs + k] = values[(picks[task * runs + k] * tasks + task) * stepCount + s];
      out[s * stride + offset] = trimmedMeanInPlace(buffer);
    }
  };
  const intervals = bootstrapVector(stepCount, iqmsInto, picks, runs, tasks, { reps, size, rng });
  return steps.map((step, s) => ({ step, ...intervals[s] }));
}

// ---------------------------------------------------------------------------------------------
// Linear probes: how much of a quantity a representation holds linearly
// ---------------------------------------------------------------------------------------------

/** A fitted affine map from x (xDim) to y (yDim): y ≈ x·W + b. */
export interface LinearProbe {
  xDim: number;
  yDim: number;
  /** [(xDim + 1) × yDim], the bias row last. */
  weights: Float64Array;
}

/**
 * Ridge regression of rows y [n, yDim] on rows x [n, xDim] with a bias (not penalised):
 * minimises ‖XW + b − Y‖² + λ‖W‖², by the normal equations (solved with partial pivoting).
 */
export function fitLinearProbe(x: ArrayLike<number>, y: ArrayLike<number>, n: number, xDim: number, yDim: number, lambda = 1e-3): LinearProbe {
  if (!Number.isInteger(n) || n < 1) throw new Error(`fitLinearProbe: needs at least one row, got ${n}`);
  if (x.length !== n * xDim || y.length !== n * yDim) throw new Error(`fitLinearProbe: x must hold n·xDim = ${n * xDim} numbers and y n·yDim = ${n * yDim}, got ${x.length} and ${y.length}`);
  const d = xDim + 1;
  const a = new Float64Array(d * d);
  const rhs = new Float64Array(d * yDim);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < xDim; j++) row[j] = x[i * xDim + j];
    row[xDim] = 1;
    for (let p = 0; p < d; p++) {
      for (let q = 0; q < d; q++) a[p * d + q] += row[p] * row[q];
      for (let k = 0; k < yDim; k++) rhs[p * yDim + k] += row[p] * y[i * yDim + k];
    }
  }
  for (let p = 0; p < xDim; p++) a[p * d + p] += lambda;
  return { xDim, yDim, weights: solveLinearSystem(a, rhs, d, yDim) };
}

/** A·X = B for square A [d × d] and B [d × m], by Gaussian elimination with partial pivoting. */
function solveLinearSystem(aIn: Float64Array, bIn: Float64Array, d: number, m: number): Float64Array {
  const a = Float64Array.from(aIn);
  const b = Float64Array.from(bIn);
  for (let col = 0; col < d; col++) {
    let pivot = col;
    for (let r = col + 1; r < d; r++) if (Math.abs(a[r * d + col]) > Math.abs(a[pivot * d + col])) pivot = r;
    if (Math.abs(a[pivot * d + col]) < 1e-12) throw new Error('fitLinearProbe: the system is singular (constant or too few rows); raise lambda');
    if (pivot !== col) {
      for (let c = 0; c < d; c++) [a[col * d + c], a[pivot * d + c]] = [a[pivot * d + c], a[col * d + c]];
      for (let k = 0; k < m; k++) [b[col * m + k], b[pivot * m + k]] = [b[pivot * m + k], b[col * m + k]];
    }
    for (let r = col + 1; r < d; r++) {
      const f = a[r * d + col] / a[col * d + col];
      if (f === 0) continue;
      for (let c = col; c < d; c++) a[r * d + c] -= f * a[col * d + c];
      for (let k = 0; k < m; k++) b[r * m + k] -= f * b[col * m + k];
    }
  }
  const out = new Float64Array(d * m);
  for (let r = d - 1; r >= 0; r--) {
    for (let k = 0; k < m; k++) {
      let s = b[r * m + k];
      for (let c = r + 1; c < d; c++) s -= a[r * d + c] * out[c * m + k];
      out[r * m + k] = s / a[r * d + r];
    }
  }
  return out;
}

/**
 * The coefficient of determination of a probe on rows (x, y): 1 − Σ‖ŷ − y‖² / Σ‖y − ȳ‖², with ȳ
 * the mean of these rows (pooled over y's dimensions). 1 is perfect, 0 is no better than the
 * mean, below 0 worse. NaN when y does not vary.
 */
export function probeR2(probe: LinearProbe, x: ArrayLike<number>, y: ArrayLike<number>, n: number): number {
  const { xDim, yDim, weights } = probe;
  if (x.length !== n * xDim || y.length !== n * yDim) throw new Error(`probeR2: x must hold ${n * xDim} numbers and y ${n * yDim}, got ${x.length} and ${y.length}`);
  const meanY = new Float64Array(yDim);
  let sumSquares = 0;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < yDim; k++) {
      meanY[k] += y[i * yDim + k];
      sumSquares += y[i * yDim + k] ** 2;
    }
  }
  for (let k = 0; k < yDim; k++) meanY[k] /= n;
  let sse = 0;
  let sst = 0;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < yDim; k++) {
      let pred = weights[xDim * yDim + k];
      for (let j = 0; j < xDim; j++) pred += x[i * xDim + j] * weights[j * yDim + k];
      const target = y[i * yDim + k];
      sse += (pred - target) ** 2;
      sst += (target - meanY[k]) ** 2;
    }
  }
  // Rounding leaves a constant y a tiny spread; relative to its size that is no variation at all.
  return sst > 1e-12 * sumSquares ? 1 - sse / sst : NaN;
}
