import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  compileSpec,
  learningCurvesSpec,
  performanceProfileSpec,
  renderLearningCurves,
  renderPerformanceProfile,
  renderSvg,
  renderTransferMatrix,
  svgToPng,
  transferMatrixSpec,
  writePlot,
  type LearningCurvesData,
  type PerformanceProfileData,
  type TransferMatrixData,
  type VegaLiteSpec,
} from '../runtime/core/report-plots';

/*
 * Jest's VM sandbox cannot import ES modules (Vega) without --experimental-vm-modules, so every
 * render below goes through report-plots' child-process fallback: a plain Node process that
 * does the real import. Specs, validation and PNGs are checked in this process.
 */

const PLOTS_MODULE = path.join(__dirname, '..', 'runtime', 'core', 'report-plots.js');

const STEPS = [0, 25_000, 50_000, 75_000, 100_000];

function curve(condition: string, start: number): LearningCurvesData['targets'][number]['curves'][number] {
  const estimate = STEPS.map((_, i) => Math.min(1, start + 0.2 * i));
  return { condition, steps: STEPS, estimate, lower: estimate.map((v) => Math.max(0, v - 0.1)), upper: estimate.map((v) => Math.min(1, v + 0.1)) };
}

const CURVES: LearningCurvesData = {
  targets: [
    { task: 'combat-4v5', curves: [curve('scratch', 0), curve('frozen', 0.2), curve('finetune', 0.25), curve('random_frozen', 0.05)] },
    { task: 'combat-8v9', curves: [curve('frozen', 0.1), curve('scratch', 0)] },
  ],
  valueLabel: 'win rate (IQM, 95% CI)',
  threshold: 0.8,
};

const TAUS = [0, 0.25, 0.5, 0.75, 1];
const PROFILE: PerformanceProfileData = {
  curves: [
    { condition: 'scratch', taus: TAUS, fraction: [1, 0.8, 0.4, 0.2, 0], lower: [1, 0.6, 0.2, 0, 0], upper: [1, 1, 0.6, 0.4, 0.2] },
    { condition: 'frozen', taus: TAUS, fraction: [1, 1, 0.8, 0.6, 0.2], lower: [1, 0.8, 0.6, 0.4, 0], upper: [1, 1, 1, 0.8, 0.4] },
  ],
  scoreLabel: 'final win rate',
};

const MATRIX: TransferMatrixData = {
  sources: ['combat-3v3', 'combat-5v6', 'combat-2a3b'],
  targets: ['combat-4v5', 'combat-8v9'],
  values: [
    [0.91, 0.42],
    [0.55, null],
    [0.12, 0.7],
  ],
  valueLabel: 'P(frozen > scratch)',
  midpoint: 0.5,
  domain: [0, 1],
};

type Layer = { mark: { type: string }; encoding: Record<string, { field?: string; scale?: { domain?: unknown; range?: unknown } }> };

function layersOf(spec: VegaLiteSpec): Layer[] {
  const holder = (spec.spec ?? spec) as unknown as { layer: Layer[] };
  return holder.layer;
}

/** Renders `spec` twice in one plain Node process (where Vega's id counter is shared between renders). */
function renderTwiceInOneProcess(spec: VegaLiteSpec): [string, string] {
  const script = `
    const plots = require(${JSON.stringify(PLOTS_MODULE)});
    let input = '';
    process.stdin.on('data', (d) => (input += d)).on('end', async () => {
      const spec = JSON.parse(input);
      process.stdout.write(JSON.stringify([await plots.renderSvg(spec), await plots.renderSvg(spec)]));
    });`;
  const result = spawnSync(process.execPath, ['-e', script], { input: JSON.stringify(spec), encoding: 'utf8', timeout: 60_000 });
  if (result.status !== 0) throw new Error(`render process failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as [string, string];
}

function pngSize(png: Buffer): { width: number; height: number } {
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

function svgSize(svg: string): { width: number; height: number } {
  const m = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
  if (!m) throw new Error('no size on the svg element');
  return { width: Number(m[1]), height: Number(m[2]) };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe('report plot specs', () => {
  test('learning curves: one panel per target, a CI band and a line per condition, the threshold as a rule', () => {
    const spec = learningCurvesSpec(CURVES, { title: 'Transfer to held-out tasks' });
    expect(spec.facet).toMatchObject({ field: 'task', sort: ['combat-4v5', 'combat-8v9'] });
    const layers = layersOf(spec);
    expect(layers.map((l) => l.mark.type)).toEqual(['area', 'line', 'rule', 'text']);
    expect(layers[0].encoding.y.field).toBe('lower');
    expect(layers[0].encoding.y2.field).toBe('upper');
    expect(layers[1].encoding.y.field).toBe('estimate');
    expect(layers[1].encoding.x.field).toBe('step');
    // Colours follow the order of first appearance, whatever the order within later panels.
    expect(layers[1].encoding.color.scale?.domain).toEqual(['scratch', 'frozen', 'finetune', 'random_frozen']);
    const rows = (spec.data as { values: Array<Record<string, unknown>> }).values;
    expect(rows.filter((r) => r.kind === 'curve')).toHaveLength(6 * STEPS.length);
    expect(rows.filter((r) => r.kind === 'threshold').map((r) => r.threshold)).toEqual([0.8, 0.8]);

    const noThreshold = learningCurvesSpec({ ...CURVES, threshold: undefined });
    expect(layersOf(noThreshold).map((l) => l.mark.type)).toEqual(['area', 'line']);
  });

  test('a given condition order fixes the colours, so the curves and the profile agree', () => {
    const order = ['frozen', 'scratch', 'finetune', 'random_frozen'];
    const curves = layersOf(learningCurvesSpec(CURVES, { conditions: order }))[1].encoding.color.scale;
    const profile = layersOf(performanceProfileSpec(PROFILE, { conditions: order }))[1].encoding.color.scale;
    expect(curves?.domain).toEqual(order);
    expect(profile).toEqual(curves);
  });

  test('performance profile: fraction against τ with a band; transfer matrix: cells on a diverging scale with printed values', () => {
    const profile = layersOf(performanceProfileSpec(PROFILE));
    expect(profile.map((l) => l.mark.type)).toEqual(['area', 'line']);
    expect(profile[1].encoding.x.field).toBe('tau');
    expect(profile[1].encoding.y.field).toBe('fraction');

    const matrix = transferMatrixSpec(MATRIX);
    const [cells, labels] = layersOf(matrix);
    expect(cells.mark.type).toBe('rect');
    expect(cells.encoding.color.scale).toMatchObject({ domain: [0, 1], domainMid: 0.5 });
    expect(labels.mark.type).toBe('text');
    expect(labels.encoding.text.field).toBe('value');
    // The null pair is left out, not drawn as 0, but its source and target keep their places.
    expect((matrix.data as { values: unknown[] }).values).toHaveLength(5);
    expect(cells.encoding.x.scale?.domain).toEqual(MATRIX.targets);
    expect(cells.encoding.y.scale?.domain).toEqual(MATRIX.sources);
    // Without a domain, the scale is symmetric around the midpoint.
    const differences = transferMatrixSpec({ ...MATRIX, domain: undefined, midpoint: 0, values: [[0.3, -0.1], [0.05, null], [-0.2, 0]] });
    expect(layersOf(differences)[0].encoding.color.scale).toMatchObject({ domain: [-0.3, 0.3], domainMid: 0 });
  });

  test('each spec compiles to Vega without warnings', async () => {
    for (const spec of [learningCurvesSpec(CURVES, { title: 't' }), performanceProfileSpec(PROFILE), transferMatrixSpec(MATRIX)]) {
      const { vega, warnings } = await compileSpec(spec);
      expect(warnings).toEqual([]);
      expect(vega).toHaveProperty('marks');
    }
  });
});

describe('rendering', () => {
  let curvesSvg: string;
  beforeAll(async () => {
    curvesSvg = await renderLearningCurves(CURVES, { title: 'Transfer to held-out tasks' });
  });

  test('the curves SVG names every condition and target task', () => {
    expect(curvesSvg.startsWith('<svg')).toBe(true);
    for (const text of ['scratch', 'frozen', 'finetune', 'random_frozen', 'combat-4v5', 'combat-8v9', 'Transfer to held-out tasks', 'threshold 0.8']) {
      expect(curvesSvg).toContain(`>${text}<`);
    }
  });

  test('the profile and matrix SVGs show their conditions, tasks and printed values', async () => {
    const profile = await renderPerformanceProfile(PROFILE);
    for (const text of ['scratch', 'frozen', 'τ (final win rate)']) expect(profile).toContain(`>${text}<`);
    const unmeasured = { ...MATRIX, targets: [...MATRIX.targets, 'pursuit'], values: MATRIX.values.map((row) => [...row, null]) };
    const matrix = await renderTransferMatrix(unmeasured);
    for (const text of [...unmeasured.sources, ...unmeasured.targets, '0.91', '0.12', 'P(frozen &gt; scratch)']) expect(matrix).toContain(`>${text}<`);
  });

  test('the same data gives byte-identical SVG, across processes and within one', () => {
    const spec = transferMatrixSpec(MATRIX);
    const [first, second] = renderTwiceInOneProcess(spec);
    // The matrix's colour legend is a gradient, whose id Vega numbers from a process-wide counter.
    const ids = [...first.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    expect(ids.length).toBeGreaterThanOrEqual(1);
    expect([...second.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1])).toEqual(ids);
    expect(second === first).toBe(true);
    for (const [, ref] of first.matchAll(/url\(#([^)]+)\)/g)) expect(ids).toContain(ref);

    const [again] = renderTwiceInOneProcess(learningCurvesSpec(CURVES, { title: 'Transfer to held-out tasks' }));
    expect(again === curvesSvg).toBe(true);
  });

  test('PNG: a real image at the requested scale, with text from the system fonts, and still made without fonts', () => {
    const png = svgToPng(curvesSvg, { scale: 2 });
    expect(png.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(png.length).toBeGreaterThan(20_000);
    const svg = svgSize(curvesSvg);
    expect(pngSize(png)).toEqual({ width: Math.round(svg.width * 2), height: Math.round(svg.height * 2) });

    const withoutFonts = svgToPng(curvesSvg, { scale: 2, loadSystemFonts: false });
    expect(withoutFonts.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    // Titles and labels add pixels only when a font is found.
    expect(png.length).toBeGreaterThan(withoutFonts.length * 1.2);

    expect(() => svgToPng(curvesSvg, { scale: 0 })).toThrow(/'scale' is 0; expected a positive number/);
    expect(() => svgToPng('not svg')).toThrow(/not an SVG document/);
  });

  test('writePlot writes the SVG and a PNG beside it, leaving no temporary files', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-plots-'));
    try {
      const spec = performanceProfileSpec(PROFILE);
      const out = await writePlot(path.join(dir, 'report', 'profile.svg'), spec);
      expect(out.pngFile).toBe(path.join(dir, 'report', 'profile.png'));
      expect(fs.readdirSync(path.join(dir, 'report')).sort()).toEqual(['profile.png', 'profile.svg']);
      expect(fs.readFileSync(out.svgFile, 'utf8')).toContain('>frozen<');
      expect(fs.readFileSync(out.pngFile).subarray(0, 8)).toEqual(PNG_SIGNATURE);
      await expect(writePlot(path.join(dir, 'profile.png'), spec)).rejects.toThrow(/must end in \.svg/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an invalid spec is refused with a message saying so, not a crash', async () => {
    const broken = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', data: { values: [] }, mark: 'no-such-mark' } as VegaLiteSpec;
    await expect(renderSvg(broken)).rejects.toThrow(/^vega-lite could not compile the plot spec: /);
  });
});

describe('bad inputs name the field', () => {
  const nanCurve = { ...curve('frozen', 0), estimate: [0, Number.NaN, 0.4, 0.6, 0.8] };
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['no targets', () => learningCurvesSpec({ ...CURVES, targets: [] }), /learning curves: 'targets' is empty/],
    ['a target without curves', () => learningCurvesSpec({ ...CURVES, targets: [{ task: 'combat-4v5', curves: [] }] }), /targets\[0\] \('combat-4v5'\): 'curves' is empty/],
    ['NaN in an estimate', () => learningCurvesSpec({ ...CURVES, targets: [{ task: 'combat-4v5', curves: [nanCurve] }] }), /condition 'frozen': 'estimate'\[1\] is NaN; expected a finite number/],
    [
      'lower shorter than steps',
      () => learningCurvesSpec({ ...CURVES, targets: [{ task: 'combat-8v9', curves: [{ ...curve('scratch', 0), lower: [0, 0] }] }] }),
      /'combat-8v9'\) condition 'scratch': 'lower' has 2 values but 'steps' has 5/,
    ],
    ['lower above upper', () => learningCurvesSpec({ ...CURVES, targets: [{ task: 'x', curves: [{ ...curve('scratch', 0), lower: [0.5, 0, 0, 0, 0], upper: [0.1, 1, 1, 1, 1] }] }] }), /'lower'\[0\] = 0.5 is above 'upper'\[0\] = 0.1/],
    ['a condition twice in a target', () => learningCurvesSpec({ ...CURVES, targets: [{ task: 'x', curves: [curve('scratch', 0), curve('scratch', 0.1)] }] }), /condition 'scratch' appears twice/],
    ['a threshold that is not a number', () => learningCurvesSpec({ ...CURVES, threshold: Number.POSITIVE_INFINITY }), /'threshold' is Infinity; expected a finite number/],
    ['a condition order missing a condition', () => learningCurvesSpec(CURVES, { conditions: ['scratch', 'frozen'] }), /option 'conditions' lacks 'finetune', 'random_frozen'/],
    ['an empty profile', () => performanceProfileSpec({ ...PROFILE, curves: [] }), /performance profile: 'curves' is empty/],
    ['a fraction above 1', () => performanceProfileSpec({ ...PROFILE, curves: [{ ...PROFILE.curves[0], fraction: [1.5, 0.8, 0.4, 0.2, 0], upper: [1.6, 1, 0.6, 0.4, 0.2] }] }), /condition 'scratch': 'fraction'\[0\] is 1.5; expected a fraction of runs in \[0, 1\]/],
    ['mismatched τ lengths', () => performanceProfileSpec({ ...PROFILE, curves: [{ ...PROFILE.curves[0], taus: [0, 1] }] }), /'fraction' has 5 values but 'taus' has 2/],
    ['matrix rows ≠ sources', () => transferMatrixSpec({ ...MATRIX, values: MATRIX.values.slice(0, 2) }), /transfer matrix: 'values' has 2 rows but 'sources' has 3/],
    ['a short matrix row', () => transferMatrixSpec({ ...MATRIX, values: [[0.1, 0.2], [0.3], [0.4, 0.5]] }), /values\[1\] \(source 'combat-5v6'\) has 1 entries but 'targets' has 2/],
    ['NaN in the matrix', () => transferMatrixSpec({ ...MATRIX, values: [[0.1, 0.2], [Number.NaN, 0.3], [0.4, 0.5]] }), /values\[1\]\[0\] \(source 'combat-5v6', target 'combat-4v5'\) is NaN/],
    ['no sources', () => transferMatrixSpec({ ...MATRIX, sources: [], values: [] }), /transfer matrix: 'sources' is empty/],
    ['a domain not around the midpoint', () => transferMatrixSpec({ ...MATRIX, domain: [0.6, 1] }), /'domain' \[0.6, 1\] must contain 'midpoint' 0.5/],
    ['a target named twice', () => transferMatrixSpec({ ...MATRIX, targets: ['a', 'a'] }), /'targets' names 'a' twice/],
  ];
  test.each(cases)('%s', (_name, build, message) => {
    expect(build).toThrow(message);
  });
});
