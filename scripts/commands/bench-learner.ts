import type { BackendPreference } from '../../runtime/core/tf-backend';
import { type BenchLearnerReport, benchLearner } from '../../runtime/training/learner-benchmark';
import { ALGO_NAMES } from '../../runtime/training/run-config';

export { BENCHMARKED_ALGOS, DEFAULT_LEARNER_ALGOS, DEFAULT_LEARNER_ENV } from '../../runtime/training/learner-benchmark';

/** `troupe bench learner`: parses the options, runs the benchmark, prints a table or JSON. */
export interface BenchLearnerCommandOptions {
  backend?: string;
  env: string;
  algos: string;
  /** true: only use_rnn; false: only feed-forward; unset: both. */
  rnn?: boolean;
  seconds: string;
  repeats: string;
  json?: boolean;
}

const BACKENDS: readonly BackendPreference[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

function formatTable(report: BenchLearnerReport): string[] {
  const fmt = (x: number, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const lines: string[] = [];
  lines.push(`matmul peak (${report.machine.backend}): ${report.matmul.sizes.map((m) => `${m.n}² ${fmt(m.gflops, 1)} GFLOP/s (${fmt(m.msPerMatmul, 2)} ms)`).join(', ')} → peak ${fmt(report.matmul.peakGflops, 1)} GFLOP/s`);
  const head = ['algo', 'rnn', 'ms/update', 'samples/update', 'samples/s', 'grad steps', 'sample-passes/s', 'MFLOP/update', 'GFLOP/s', '% of peak'];
  const rows = report.results.map((r) => [
    r.algo, r.useRnn ? 'gru' : 'mlp', fmt(r.msPerUpdate, 1), fmt(r.samplesPerUpdate), fmt(r.samplesPerSec), String(r.gradientStepsPerUpdate),
    fmt(r.samplePassesPerSec), fmt(r.flopsPerUpdate / 1e6, 1), fmt(r.gflops, 2), fmt(r.percentOfPeak, 1),
  ]);
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((row) => row[k].length)));
  const line = (cells: string[]) => cells.map((c, k) => (k < 2 ? c.padEnd(widths[k]) : c.padStart(widths[k]))).join('  ');
  lines.push(line(head));
  for (const row of rows) lines.push(line(row));
  lines.push('samples = agent-steps learned from per update (MAPPO/IPPO: T·E·A of the chunk; QMIX/VDN/IQL: B·T·A of the sampled batch; SAC: batch_size × policy_frequency transitions, one actor/critic cycle; Meta-DT: B·K sequence steps of one decision-transformer step with a k-step prompt, i.e. 3·B·(K + k) tokens);');
  lines.push('sample-passes = samples × epochs (rows through forward+backward); grad steps = Adam steps per update (epochs × minibatches).');
  lines.push(report.flopModel);
  return lines;
}

export async function runBenchLearnerCommand(opts: BenchLearnerCommandOptions): Promise<void> {
  const backend = (opts.backend ?? 'auto') as BackendPreference;
  if (!BACKENDS.includes(backend)) throw new Error(`bench learner: --backend must be one of ${BACKENDS.join(', ')}`);
  const algos = opts.algos.split(',').map((a) => a.trim()).filter(Boolean);
  if (algos.length === 0) throw new Error('bench learner: --algos names no algorithm');
  for (const a of algos) if (!(ALGO_NAMES as readonly string[]).includes(a)) throw new Error(`bench learner: unknown algo '${a}' (one of ${ALGO_NAMES.join(', ')})`);
  const seconds = Number(opts.seconds);
  const repeats = Number(opts.repeats);
  if (!(seconds > 0)) throw new Error('bench learner: --seconds must be a positive number');
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error('bench learner: --repeats must be a positive integer');
  const rnn = opts.rnn === undefined ? [false, true] : [opts.rnn];
  const log = opts.json ? () => undefined : (line: string) => process.stdout.write(`${line}\n`);
  const report = await benchLearner({ backend, env: opts.env, algos, rnn, seconds, repeats, log });
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else for (const line of formatTable(report)) log(line);
}
