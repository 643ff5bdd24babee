import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { iqm, probabilityOfImprovement } from '../runtime/core/statistics';
import { buildTransferReport, transferReportMarkdown, writeTransferReport } from '../runtime/training/transfer-report';
import type { SeedResult, TransferResults } from '../runtime/training/transfer-results';
import { transferStudySchema } from '../runtime/training/transfer-study';

/* The report's numbers on a tiny fixed input, worked out by hand. */

const study = transferStudySchema.parse({
  base: { algo: { name: 'mtma' } },
  sources: [{ id: 'a' }],
  targets: [{ id: 't' }],
  pretrain: { seeds: 1, total_env_steps: 100 },
  target: { seeds: 3, total_env_steps: 300 },
  report: { threshold: 0.5, bootstrap_reps: 500 },
});

function seeds(curves: number[][], absolute: number[] | null): SeedResult[] {
  return curves.map((values, seed) => ({
    seed,
    run: `target/t/x/seed${seed}`,
    dir: '/nowhere',
    curve: values.map((value, i) => ({ step: (i + 1) * 100, value })),
    absolute: absolute ? { value: absolute[seed], episodes: 200, envSteps: 300 } : null,
  }));
}

const results: TransferResults = {
  metric: 'win_rate',
  targets: {
    t: {
      scratch: seeds([[0, 0.2, 0.6], [0, 0.1, 0.4], [0.1, 0.3, 0.5]], [0.55, 0.45, 0.5]),
      frozen: seeds([[0.3, 0.7, 0.9], [0.2, 0.6, 0.8], [0.4, 0.8, 0.9]], [0.9, 0.85, 0.95]),
      random_frozen: seeds([[0, 0.1, 0.3], [0, 0.2, 0.4], [0.1, 0.2, 0.2]], [0.3, 0.35, 0.25]),
    },
  },
  matrix: {},
  baselines: { qmix: { t: seeds([[0, 0.1, 0.3], [0, 0.1, 0.2]], null) } },
  multiTask: {},
  missing: [],
};

test('per-seed measures, their IQMs and the probability of beating scratch, by hand', () => {
  const report = buildTransferReport(results, study);
  const scratch = report.targets.t.scratch!;
  const frozen = report.targets.t.frozen!;
  expect(scratch.measures.final!.values).toEqual([0.6, 0.4, 0.5]);
  // n = 3: the IQM trims nothing, so it is the mean.
  expect(scratch.measures.final!.estimate).toBeCloseTo(0.5, 12);
  expect(scratch.measures.jumpstart!.values).toEqual([0, 0, 0.1]);
  // AUC as a mean level: trapezoid over 100..300 divided by 200.
  expect(frozen.measures.auc!.values[0]).toBeCloseTo(((0.3 + 0.7) / 2 + (0.7 + 0.9) / 2) / 2, 12);
  // Time to 0.5: scratch seeds 300, censored (300), 300; frozen 200, 200, 200.
  expect(scratch.measures.time_to_threshold!.values).toEqual([300, 300, 300]);
  expect(scratch.censored).toBe(1);
  expect(frozen.measures.time_to_threshold!.values).toEqual([200, 200, 200]);
  expect(frozen.measures.absolute!.estimate).toBeCloseTo(iqm([0.9, 0.85, 0.95]), 12);
  // Every frozen run beats every scratch run on the final and absolute numbers and is faster.
  expect(frozen.improvement!.final!.estimate).toBe(1);
  expect(frozen.improvement!.time_to_threshold!.estimate).toBe(1);
  expect(report.targets.t.random_frozen!.improvement!.absolute!.estimate).toBe(probabilityOfImprovement([[0.3], [0.35], [0.25]], [[0.55], [0.45], [0.5]]));
  expect(report.targets.t.random_frozen!.improvement!.absolute!.estimate).toBe(0);
  expect(scratch.improvement).toBeUndefined();
  for (const m of Object.values(frozen.measures)) expect(m!.lower).toBeLessThanOrEqual(m!.upper);
  expect(frozen.curve.map((p) => p.step)).toEqual([100, 200, 300]);
  expect(report.verdicts.t).toMatch(/frozen reaches win_rate 0\.5 sooner than scratch .*and ends higher/);
  expect(report.verdicts.t).toMatch(/random_frozen reaches win_rate 0\.5 .* ends lower/);
  expect(report.overall?.measure).toBe('absolute');
  expect(report.baselines.t.algos.qmix.values).toEqual([0.3, 0.2]);
  // The same runs give the same report, bit for bit.
  expect(JSON.stringify(buildTransferReport(results, study))).toBe(JSON.stringify(report));
});

test('report.md, report.json and the plots are written', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-report-'));
  try {
    const report = buildTransferReport(results, study);
    const files = await writeTransferReport(report, results, study, dir, 'fixture');
    expect(files.map((f) => path.basename(f)).sort()).toEqual(['curves.png', 'curves.svg', 'profile.png', 'profile.svg', 'report.json', 'report.md']);
    const md = fs.readFileSync(path.join(dir, 'report.md'), 'utf8');
    expect(md).toContain('| frozen | 3 |');
    expect(md).toMatch(/\| scratch \| 3 \(1 never reached\) \|/);
    expect(transferReportMarkdown(report, 'fixture')).toBe(md);
    expect(fs.readFileSync(path.join(dir, 'curves.svg'), 'utf8')).toContain('random_frozen');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
