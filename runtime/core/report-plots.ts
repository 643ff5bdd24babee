import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { writeFileAtomicSync } from './atomic-file';

/*
 * Plots for study and transfer reports, as Vega-Lite specs rendered to SVG by Vega (no canvas
 * needed) and to PNG by resvg. A spec is plain JSON, so the same one can be embedded
 * interactively in an HTML report. The plots draw what the caller computed (aggregates and
 * confidence bounds); they compute no statistics.
 */

/** A JSON value, which is all a Vega-Lite spec is made of. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A top-level Vega-Lite spec (typed loosely on purpose: Vega-Lite's own types do not load from CommonJS). */
export interface VegaLiteSpec {
  $schema: string;
  [key: string]: JsonValue;
}

/** One condition's aggregate over seeds against env steps, with its confidence band. */
export interface ConditionCurve {
  condition: string;
  steps: readonly number[];
  /** The point estimate per step (e.g. the IQM over seeds). */
  estimate: readonly number[];
  /** Lower and upper bounds of the confidence interval per step. */
  lower: readonly number[];
  upper: readonly number[];
}

export interface TargetCurves {
  task: string;
  curves: readonly ConditionCurve[];
}

export interface LearningCurvesData {
  /** One panel per target task, in this order. */
  targets: readonly TargetCurves[];
  /** The y axis title, e.g. 'win rate (IQM over seeds, 95% CI)'. */
  valueLabel: string;
  /** The x axis title; 'env steps' unless given. */
  stepLabel?: string;
  /** Draws a dashed horizontal rule at this value in every panel (e.g. a win-rate threshold). */
  threshold?: number;
}

/** One condition's performance profile: the fraction of runs scoring above τ, for each τ. */
export interface ProfileCurve {
  condition: string;
  taus: readonly number[];
  fraction: readonly number[];
  lower: readonly number[];
  upper: readonly number[];
}

export interface PerformanceProfileData {
  curves: readonly ProfileCurve[];
  /** What τ thresholds, e.g. 'final win rate'. */
  scoreLabel: string;
}

export interface TransferMatrixData {
  /** Row labels. */
  sources: readonly string[];
  /** Column labels. */
  targets: readonly string[];
  /** values[i][j] for source i → target j; null where there is no measurement (drawn blank). */
  values: ReadonlyArray<ReadonlyArray<number | null>>;
  /** What the values are, e.g. 'P(finetune > scratch)'; titles the colour legend. */
  valueLabel: string;
  /** The value the diverging colour scale is centred on (neutral colour): 0.5 for a probability of improvement, 0 for a difference. */
  midpoint: number;
  /** The colour scale's extent; by default symmetric around the midpoint, wide enough for every value. */
  domain?: readonly [number, number];
  /** d3-format string for the printed values; '.2f' unless given. */
  format?: string;
}

export interface PlotOptions {
  title?: string;
  /**
   * The order of the conditions, which fixes their colours, so a condition has the same colour
   * in every plot of a report given the same order. By default, the order of first appearance.
   */
  conditions?: readonly string[];
}

export interface PngOptions {
  /** Pixels per SVG unit; 2 unless given. */
  scale?: number;
  /** Load the machine's fonts (default true). Without fonts, text is left out but the PNG is still made. */
  loadSystemFonts?: boolean;
  /** Extra font files to use. */
  fontFiles?: readonly string[];
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Tableau 10: distinguishable, and readable by most colour-blind readers. */
const CONDITION_PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const PANEL_WIDTH = 260;
const PANEL_HEIGHT = 180;
const MAX_PANEL_COLUMNS = 3;

// ---------------------------------------------------------------------------------------------
// Specs

/** Learning curves: one panel per target task, one line with a CI band per condition. */
export function learningCurvesSpec(data: LearningCurvesData, options: PlotOptions = {}): VegaLiteSpec {
  const where = 'learning curves';
  if (!isNonEmptyList(data.targets)) throw new Error(`${where}: 'targets' is empty; expected at least one target task`);
  requireLabel(data.valueLabel, `${where}: 'valueLabel'`);
  if (data.stepLabel !== undefined) requireLabel(data.stepLabel, `${where}: 'stepLabel'`);
  if (data.threshold !== undefined) requireFinite(data.threshold, `${where}: 'threshold'`);

  const rows: Array<{ [key: string]: JsonValue }> = [];
  const seenTasks = new Set<string>();
  data.targets.forEach((target, t) => {
    const at = `${where}: targets[${t}]`;
    requireLabel(target.task, `${at}.task`);
    if (seenTasks.has(target.task)) throw new Error(`${at}: task '${target.task}' appears twice; expected each target task once`);
    seenTasks.add(target.task);
    if (!isNonEmptyList(target.curves)) throw new Error(`${at} ('${target.task}'): 'curves' is empty; expected at least one condition`);
    const seenConditions = new Set<string>();
    target.curves.forEach((curve, c) => {
      const label = `${at} ('${target.task}').curves[${c}]`;
      requireLabel(curve.condition, `${label}.condition`);
      if (seenConditions.has(curve.condition)) throw new Error(`${at} ('${target.task}'): condition '${curve.condition}' appears twice; expected each condition once per target`);
      seenConditions.add(curve.condition);
      const columns = checkBand(`${at} ('${target.task}') condition '${curve.condition}'`, 'steps', curve.steps, 'estimate', curve.estimate, curve.lower, curve.upper);
      for (let i = 0; i < curve.steps.length; i++) {
        rows.push({ kind: 'curve', task: target.task, condition: curve.condition, step: columns.x[i], estimate: columns.estimate[i], lower: columns.lower[i], upper: columns.upper[i] });
      }
    });
  });
  if (data.threshold !== undefined) for (const target of data.targets) rows.push({ kind: 'threshold', task: target.task, threshold: data.threshold });

  const conditions = conditionOrder(where, data.targets.flatMap((t) => t.curves.map((c) => c.condition)), options.conditions);
  const color = conditionColor(conditions);
  const curveOnly: JsonValue = [{ filter: { field: 'kind', equal: 'curve' } }];
  const x = { field: 'step', type: 'quantitative', title: data.stepLabel ?? 'env steps', axis: { format: '~s', labelExpr: "datum.value === 0 ? '0' : datum.label" } };
  const layers: JsonValue[] = [
    {
      transform: curveOnly,
      mark: { type: 'area', opacity: 0.2 },
      encoding: { x, y: { field: 'lower', type: 'quantitative', title: data.valueLabel }, y2: { field: 'upper' }, color },
    },
    {
      transform: curveOnly,
      mark: { type: 'line', strokeWidth: 2 },
      encoding: { x, y: { field: 'estimate', type: 'quantitative', title: data.valueLabel }, color },
    },
  ];
  if (data.threshold !== undefined) {
    const onlyThreshold: JsonValue = [{ filter: { field: 'kind', equal: 'threshold' } }];
    const y = { field: 'threshold', type: 'quantitative' };
    layers.push(
      { transform: onlyThreshold, mark: { type: 'rule', strokeDash: [5, 4], color: '#555555' }, encoding: { y } },
      {
        transform: onlyThreshold,
        // At the left, where learning curves are usually still low, the label rarely covers a line.
        mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 3, dy: -2, color: '#555555', fontSize: 10 },
        encoding: { x: { value: 0 }, y, text: { value: `threshold ${formatNumber(data.threshold)}` } },
      },
    );
  }
  return {
    $schema: SCHEMA,
    ...titled(options.title),
    data: { values: rows },
    facet: { field: 'task', type: 'nominal', title: null, sort: data.targets.map((t) => t.task), header: { labelFontSize: 13, labelFontWeight: 'bold' } },
    columns: Math.min(data.targets.length, MAX_PANEL_COLUMNS),
    spec: { width: PANEL_WIDTH, height: PANEL_HEIGHT, layer: layers },
    config: BASE_CONFIG,
  };
}

/** Performance profile: per condition, the fraction of runs with score > τ against τ, with a CI band. */
export function performanceProfileSpec(data: PerformanceProfileData, options: PlotOptions = {}): VegaLiteSpec {
  const where = 'performance profile';
  if (!isNonEmptyList(data.curves)) throw new Error(`${where}: 'curves' is empty; expected at least one condition`);
  requireLabel(data.scoreLabel, `${where}: 'scoreLabel'`);
  const rows: Array<{ [key: string]: JsonValue }> = [];
  const seen = new Set<string>();
  data.curves.forEach((curve, c) => {
    requireLabel(curve.condition, `${where}: curves[${c}].condition`);
    if (seen.has(curve.condition)) throw new Error(`${where}: condition '${curve.condition}' appears twice; expected each condition once`);
    seen.add(curve.condition);
    const at = `${where}: condition '${curve.condition}'`;
    const columns = checkBand(at, 'taus', curve.taus, 'fraction', curve.fraction, curve.lower, curve.upper);
    for (const [name, values] of [['fraction', columns.estimate], ['lower', columns.lower], ['upper', columns.upper]] as const) {
      const bad = values.findIndex((v) => v < 0 || v > 1);
      if (bad >= 0) throw new Error(`${at}: '${name}'[${bad}] is ${values[bad]}; expected a fraction of runs in [0, 1]`);
    }
    for (let i = 0; i < curve.taus.length; i++) {
      rows.push({ condition: curve.condition, tau: columns.x[i], fraction: columns.estimate[i], lower: columns.lower[i], upper: columns.upper[i] });
    }
  });
  const conditions = conditionOrder(where, data.curves.map((c) => c.condition), options.conditions);
  const color = conditionColor(conditions);
  const x = { field: 'tau', type: 'quantitative', title: `τ (${data.scoreLabel})` };
  const yTitle = 'fraction of runs > τ';
  return {
    $schema: SCHEMA,
    ...titled(options.title),
    data: { values: rows },
    width: PANEL_WIDTH + 80,
    height: PANEL_HEIGHT + 40,
    layer: [
      { mark: { type: 'area', opacity: 0.2 }, encoding: { x, y: { field: 'lower', type: 'quantitative', title: yTitle, scale: { domain: [0, 1] } }, y2: { field: 'upper' }, color } },
      { mark: { type: 'line', strokeWidth: 2 }, encoding: { x, y: { field: 'fraction', type: 'quantitative', title: yTitle }, color } },
    ],
    config: BASE_CONFIG,
  };
}

/** Source × target heatmap with each cell's value printed, on a diverging scale centred at `midpoint`. */
export function transferMatrixSpec(data: TransferMatrixData, options: Pick<PlotOptions, 'title'> = {}): VegaLiteSpec {
  const where = 'transfer matrix';
  requireLabels(data.sources, `${where}: 'sources'`, 'source task');
  requireLabels(data.targets, `${where}: 'targets'`, 'target task');
  requireLabel(data.valueLabel, `${where}: 'valueLabel'`);
  requireFinite(data.midpoint, `${where}: 'midpoint'`);
  if (data.format !== undefined) requireLabel(data.format, `${where}: 'format'`);
  if (!Array.isArray(data.values) || data.values.length !== data.sources.length) {
    throw new Error(`${where}: 'values' has ${Array.isArray(data.values) ? data.values.length : 'no'} rows but 'sources' has ${data.sources.length}; expected one row per source`);
  }
  const rows: Array<{ [key: string]: JsonValue }> = [];
  let farthest = 0;
  data.values.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== data.targets.length) {
      throw new Error(`${where}: values[${i}] (source '${data.sources[i]}') has ${Array.isArray(row) ? row.length : 'no'} entries but 'targets' has ${data.targets.length}; expected one per target`);
    }
    row.forEach((value, j) => {
      if (value === null) return;
      requireFinite(value, `${where}: values[${i}][${j}] (source '${data.sources[i]}', target '${data.targets[j]}')`);
      farthest = Math.max(farthest, Math.abs(value - data.midpoint));
      rows.push({ source: data.sources[i], target: data.targets[j], value });
    });
  });
  if (rows.length === 0) throw new Error(`${where}: every entry of 'values' is null; expected at least one measured pair`);
  let domain: [number, number];
  if (data.domain !== undefined) {
    const [low, high] = data.domain;
    requireFinite(low, `${where}: 'domain'[0]`);
    requireFinite(high, `${where}: 'domain'[1]`);
    if (!(low < data.midpoint && data.midpoint < high)) throw new Error(`${where}: 'domain' [${low}, ${high}] must contain 'midpoint' ${data.midpoint} strictly inside`);
    domain = [low, high];
  } else {
    const halfWidth = farthest > 0 ? farthest : 1;
    domain = [data.midpoint - halfWidth, data.midpoint + halfWidth];
  }
  // Dark cells (far from the midpoint) get white text so the printed value stays readable.
  const darkBeyond = 0.6 * Math.max(data.midpoint - domain[0], domain[1] - data.midpoint);
  // Explicit domains keep a source or target whose values are all null on its axis, as an empty row or column.
  const x = { field: 'target', type: 'nominal', title: 'target task', scale: { domain: [...data.targets] }, axis: { labelAngle: -30 } };
  const y = { field: 'source', type: 'nominal', title: 'source task', scale: { domain: [...data.sources] } };
  return {
    $schema: SCHEMA,
    ...titled(options.title),
    data: { values: rows },
    width: { step: 64 },
    height: { step: 40 },
    layer: [
      {
        mark: { type: 'rect', stroke: '#ffffff', strokeWidth: 1 },
        encoding: {
          x,
          y,
          color: { field: 'value', type: 'quantitative', title: data.valueLabel, scale: { scheme: 'redblue', domain, domainMid: data.midpoint, clamp: true } },
        },
      },
      {
        mark: { type: 'text', fontSize: 12 },
        encoding: {
          x,
          y,
          text: { field: 'value', type: 'quantitative', format: data.format ?? '.2f' },
          color: { condition: { test: `abs(datum.value - ${data.midpoint}) > ${darkBeyond}`, value: '#ffffff' }, value: '#000000' },
        },
      },
    ],
    config: BASE_CONFIG,
  };
}

const BASE_CONFIG: { [key: string]: JsonValue } = {
  background: '#ffffff',
  view: { stroke: '#cccccc' },
  legend: { orient: 'right', labelLimit: 220 },
};

function titled(title: string | undefined): { title?: JsonValue } {
  if (title === undefined) return {};
  requireLabel(title, "plot option 'title'");
  return { title: { text: title, anchor: 'start', fontSize: 15 } };
}

/** The colour channel shared by a plot's layers; the legend shows solid strokes like the lines, not the bands' pale fill. */
function conditionColor(conditions: readonly string[]): JsonValue {
  return {
    field: 'condition',
    type: 'nominal',
    title: 'condition',
    sort: [...conditions],
    legend: { symbolType: 'stroke', symbolOpacity: 1, symbolStrokeWidth: 3 },
    scale: { domain: [...conditions], range: conditions.map((_, i) => CONDITION_PALETTE[i % CONDITION_PALETTE.length]) },
  };
}

function conditionOrder(where: string, present: readonly string[], given: readonly string[] | undefined): string[] {
  const seen = [...new Set(present)];
  if (given === undefined) return seen;
  requireLabels(given, `${where}: option 'conditions'`, 'condition');
  const missing = seen.filter((c) => !given.includes(c));
  if (missing.length > 0) throw new Error(`${where}: option 'conditions' lacks ${missing.map((c) => `'${c}'`).join(', ')}; expected every plotted condition in it`);
  return [...given];
}

/** Checks one band's columns (finite numbers, equal lengths, lower ≤ upper) and returns them. */
function checkBand(
  at: string,
  xName: string,
  x: readonly number[],
  estimateName: string,
  estimate: readonly number[],
  lower: readonly number[],
  upper: readonly number[],
): { x: readonly number[]; estimate: readonly number[]; lower: readonly number[]; upper: readonly number[] } {
  const columns: Array<[string, readonly number[]]> = [[xName, x], [estimateName, estimate], ['lower', lower], ['upper', upper]];
  for (const [name, values] of columns) {
    if (!Array.isArray(values)) throw new Error(`${at}: '${name}' is ${describe(values)}; expected an array of numbers`);
  }
  if (x.length === 0) throw new Error(`${at}: '${xName}' is empty; expected at least one point`);
  for (const [name, values] of columns) {
    if (values.length !== x.length) throw new Error(`${at}: '${name}' has ${values.length} values but '${xName}' has ${x.length}; expected one per point`);
    values.forEach((v, i) => requireFinite(v, `${at}: '${name}'[${i}]`));
  }
  const crossed = lower.findIndex((low, i) => low > upper[i]);
  if (crossed >= 0) throw new Error(`${at}: 'lower'[${crossed}] = ${lower[crossed]} is above 'upper'[${crossed}] = ${upper[crossed]}; expected lower ≤ upper`);
  return { x, estimate, lower, upper };
}

/** Not a type guard on purpose: `Array.isArray` would narrow a readonly array to `any[]`. */
function isNonEmptyList(value: unknown): boolean {
  return Array.isArray(value) && value.length > 0;
}

function requireFinite(value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${what} is ${describe(value)}; expected a finite number`);
}

function requireLabel(value: unknown, what: string): void {
  if (typeof value !== 'string' || value.trim() === '') throw new Error(`${what} is ${describe(value)}; expected a non-empty string`);
}

function requireLabels(values: readonly string[], what: string, noun: string): void {
  if (!isNonEmptyList(values)) throw new Error(`${what} is empty; expected at least one ${noun}`);
  values.forEach((v, i) => requireLabel(v, `${what}[${i}]`));
  const duplicate = values.find((v, i) => values.indexOf(v) !== i);
  if (duplicate !== undefined) throw new Error(`${what} names '${duplicate}' twice; expected each ${noun} once`);
}

function describe(value: unknown): string {
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return value === '' ? 'an empty string' : `'${value}'`;
  if (value === undefined || value === null) return String(value);
  return Array.isArray(value) ? 'an array' : typeof value;
}

function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
}

// ---------------------------------------------------------------------------------------------
// Rendering

/** The parts of Vega and Vega-Lite used here (their own types do not load from CommonJS). */
interface VegaModule {
  parse(spec: object): object;
  View: new (runtime: object, options: { renderer: 'none' }) => VegaView;
}
interface VegaView {
  toSVG(scaleFactor?: number): Promise<string>;
  finalize(): VegaView;
}
interface VegaLiteModule {
  compile(spec: object, options?: { logger?: VegaLiteLogger }): { spec: object };
}
interface VegaLiteLogger {
  level(level?: number): number | VegaLiteLogger;
  error(...args: unknown[]): VegaLiteLogger;
  warn(...args: unknown[]): VegaLiteLogger;
  info(...args: unknown[]): VegaLiteLogger;
  debug(...args: unknown[]): VegaLiteLogger;
}

/**
 * A real `import()`: the project compiles to CommonJS, where tsc would turn `import()` into
 * `require()`, and Vega is an ES module with top-level await, which `require` cannot load.
 */
const nativeImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

/** Thrown by Node when the running context (jest's VM sandbox) cannot do a dynamic import. */
const NO_DYNAMIC_IMPORT = new Set(['ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING', 'ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING_FLAG']);

class DynamicImportUnavailable extends Error {}

let plotLibraries: Promise<{ vega: VegaModule; vegaLite: VegaLiteModule }> | undefined;

function loadPlotLibraries(): Promise<{ vega: VegaModule; vegaLite: VegaLiteModule }> {
  plotLibraries ??= Promise.all([importPlotLibrary('vega'), importPlotLibrary('vega-lite')]).then(([vega, vegaLite]) => ({
    vega: vega as VegaModule,
    vegaLite: vegaLite as VegaLiteModule,
  }));
  // A failed load is not cached, so a later call reports the problem again rather than a stale promise.
  plotLibraries.catch(() => {
    plotLibraries = undefined;
  });
  return plotLibraries;
}

async function importPlotLibrary(name: string): Promise<unknown> {
  try {
    return await nativeImport(name);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && NO_DYNAMIC_IMPORT.has(code)) throw new DynamicImportUnavailable(String((err as Error).message));
    throw new Error(`plots need the '${name}' package, which could not be loaded: ${(err as Error).message}`, { cause: err });
  }
}

export interface CompiledSpec {
  /** The Vega spec. */
  vega: object;
  warnings: string[];
}

/** Compiles a Vega-Lite spec to Vega, returning Vega-Lite's warnings (a clean spec has none). */
export async function compileSpec(spec: VegaLiteSpec): Promise<CompiledSpec> {
  let vegaLite: VegaLiteModule;
  try {
    ({ vegaLite } = await loadPlotLibraries());
  } catch (err) {
    if (err instanceof DynamicImportUnavailable) return JSON.parse(await runPlotChild({ operation: 'compile', spec })) as CompiledSpec;
    throw err;
  }
  const warnings: string[] = [];
  const logger: VegaLiteLogger = {
    level: () => logger,
    error: (...args) => {
      throw new Error(`vega-lite: ${args.map(String).join(' ')}`);
    },
    warn: (...args) => {
      warnings.push(args.map(String).join(' '));
      return logger;
    },
    info: () => logger,
    debug: () => logger,
  };
  let compiled: object;
  try {
    compiled = vegaLite.compile(spec, { logger }).spec;
  } catch (err) {
    throw new Error(`vega-lite could not compile the plot spec: ${(err as Error).message}`, { cause: err });
  }
  return { vega: compiled, warnings };
}

/**
 * Renders a Vega-Lite spec to an SVG string. The same spec gives byte-identical SVG.
 *
 * Where dynamic import is unavailable (jest runs tests in a VM sandbox that needs
 * --experimental-vm-modules for it), the rendering runs in a child Node process instead, so
 * code that writes reports works the same under test.
 */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  let libraries: { vega: VegaModule; vegaLite: VegaLiteModule };
  try {
    libraries = await loadPlotLibraries();
  } catch (err) {
    if (err instanceof DynamicImportUnavailable) return runPlotChild({ operation: 'svg', spec });
    throw err;
  }
  const { vega: compiled } = await compileSpec(spec);
  const view = new libraries.vega.View(libraries.vega.parse(compiled), { renderer: 'none' });
  try {
    return stableIds(await view.toSVG());
  } finally {
    view.finalize();
  }
}

/**
 * Vega numbers clip paths and gradients from a counter shared by every view in the process,
 * so the second render of a plot would differ from the first. Renumber them in order of
 * appearance, prefixed with a hash of the rest of the SVG so that two different plots inlined
 * into one HTML page still have distinct ids.
 */
function stableIds(svg: string): string {
  const ids: string[] = [];
  for (const m of svg.matchAll(/\sid="([^"]+)"/g)) if (!ids.includes(m[1])) ids.push(m[1]);
  if (ids.length === 0) return svg;
  const prefix = `plot-${createHash('sha256').update(renameIds(svg, () => '')).digest('hex').slice(0, 8)}-`;
  const renamed = new Map(ids.map((id, i) => [id, `${prefix}${i}`]));
  return renameIds(svg, (id) => renamed.get(id) ?? id);
}

/** Rewrites every id and every reference to one (`url(#id)`, `href="#id"`). */
function renameIds(svg: string, rename: (id: string) => string): string {
  return svg.replace(/(\sid="|url\(#|href="#)([^")]+)/g, (_whole, lead: string, id: string) => `${lead}${rename(id)}`);
}

const CHILD_SCRIPT = path.join(__dirname, 'report-plots-child.js');

/** What the child script (report-plots-child.ts) accepts on stdin. */
export interface PlotChildRequest {
  operation: 'svg' | 'compile';
  spec: VegaLiteSpec;
}

/** Runs report-plots-child.js in a fresh Node process; resolves with its stdout. */
function runPlotChild(request: PlotChildRequest): Promise<string> {
  if (path.resolve(process.argv[1] ?? '') === CHILD_SCRIPT) {
    return Promise.reject(new Error('cannot render plots: this Node process cannot import ES modules (vega)'));
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (err) => reject(new Error(`could not start a Node process to render the plot: ${err.message}`, { cause: err })));
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(stdout).toString('utf8'));
      else reject(new Error(Buffer.concat(stderr).toString('utf8').trim() || `the plot-rendering process exited with code ${code}`));
    });
    child.stdin.end(JSON.stringify(request));
  });
}

/** Rasterises an SVG to PNG. Text uses the machine's fonts (sans-serif → DejaVu Sans where installed). */
export function svgToPng(svg: string, options: PngOptions = {}): Buffer {
  const scale = options.scale ?? 2;
  if (!Number.isFinite(scale) || scale <= 0) throw new Error(`PNG option 'scale' is ${describe(scale)}; expected a positive number`);
  if (typeof svg !== 'string' || !svg.trimStart().startsWith('<svg')) throw new Error(`svgToPng: 'svg' is not an SVG document (it does not start with '<svg')`);
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    font: {
      loadSystemFonts: options.loadSystemFonts ?? true,
      fontFiles: options.fontFiles ? [...options.fontFiles] : undefined,
      defaultFontFamily: 'DejaVu Sans',
      sansSerifFamily: 'DejaVu Sans',
    },
  });
  return resvg.render().asPng();
}

/**
 * Writes the plot as `svgFile` and as a PNG beside it (same name, `.png`), each atomically, and
 * returns both paths.
 */
export async function writePlot(svgFile: string, spec: VegaLiteSpec, options: PngOptions = {}): Promise<{ svgFile: string; pngFile: string }> {
  if (path.extname(svgFile).toLowerCase() !== '.svg') throw new Error(`plot file '${svgFile}' must end in .svg (the PNG copy is written beside it)`);
  const svg = await renderSvg(spec);
  const png = svgToPng(svg, options);
  const pngFile = svgFile.slice(0, -'.svg'.length) + '.png';
  fs.mkdirSync(path.dirname(path.resolve(svgFile)), { recursive: true });
  writeFileAtomicSync(svgFile, svg);
  writeFileAtomicSync(pngFile, png);
  return { svgFile, pngFile };
}

export async function renderLearningCurves(data: LearningCurvesData, options: PlotOptions = {}): Promise<string> {
  return renderSvg(learningCurvesSpec(data, options));
}

export async function renderPerformanceProfile(data: PerformanceProfileData, options: PlotOptions = {}): Promise<string> {
  return renderSvg(performanceProfileSpec(data, options));
}

export async function renderTransferMatrix(data: TransferMatrixData, options: Pick<PlotOptions, 'title'> = {}): Promise<string> {
  return renderSvg(transferMatrixSpec(data, options));
}
