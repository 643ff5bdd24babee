import type { BackendPreference } from '../../runtime/core/tf-backend';
import {
  ALL_BACKENDS,
  BENCH_BACKENDS,
  type BenchLearnerReport,
  LEARNER_CASES,
  type LearnerCaseSpec,
  algoCases,
  benchLearner,
  resolveLearnerCases,
} from '../../runtime/training/learner-benchmark';

export { BENCHMARKED_ALGOS, DEFAULT_LEARNER_ENV, LEARNER_CASE_NAMES } from '../../runtime/training/learner-benchmark';

/** `troupe bench learner`: parses the options, runs the benchmark, prints a table or JSON. */
export interface BenchLearnerCommandOptions {
  backend?: string;
  /** Named cases (comma-separated, or 'all'). */
  cases?: string;
  /** Instead of named cases: algorithm × use_rnn on `env` (each hook's own sizes). */
  algos?: string;
  env?: string;
  /** With `algos`: true only use_rnn, false only feed-forward, unset both. */
  rnn?: boolean;
  seconds: string;
  repeats: string;
  json?: boolean;
}

/**
 * `--backend`: auto, one backend, `all` (tensorflow and wasm: every one that loads), or a
 * comma-separated list; more than one runs in one child process each.
 */
export function parseBackends(value: string | undefined): BackendPreference[] {
  const raw = (value ?? 'auto').split(',').map((b) => b.trim()).filter(Boolean);
  const valid = ['auto', 'all', ...BENCH_BACKENDS];
  const out: BackendPreference[] = [];
  for (const b of raw) {
    if (!valid.includes(b)) throw new Error(`bench learner: unknown backend '${b}' in --backend (valid: ${valid.join(', ')}, or a comma-separated list such as all,cpu)`);
    const add: BackendPreference[] = b === 'all' ? [...ALL_BACKENDS] : [b as BackendPreference];
    for (const x of add) if (!out.includes(x)) out.push(x);
  }
  if (out.length === 0) throw new Error('bench learner: --backend names no backend');
  if (out.length > 1 && out.includes('auto')) throw new Error('bench learner: --backend auto picks one backend; it cannot be combined with others');
  return out;
}

/** The cases the options ask for: `--cases`, or the `--algos`/`--env`/`--rnn` matrix (not both). */
export function casesOf(opts: BenchLearnerCommandOptions): LearnerCaseSpec[] {
  const byAlgo = opts.algos !== undefined || opts.env !== undefined || opts.rnn !== undefined;
  if (byAlgo && opts.cases !== undefined) throw new Error('bench learner: give either --cases or --algos/--env/--rnn, not both');
  if (!byAlgo) return resolveLearnerCases(opts.cases);
  const algos = (opts.algos ?? 'mappo,qmix').split(',').map((a) => a.trim()).filter(Boolean);
  if (algos.length === 0) throw new Error('bench learner: --algos names no algorithm');
  const rnn = opts.rnn === undefined ? [false, true] : [opts.rnn];
  return algoCases(opts.env ?? 'lbf-8x8-2p-2f-coop', algos, rnn);
}

const fmt = (x: number, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function table(head: string[], rows: string[][], leftColumns: number): string[] {
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((row) => row[k].length)));
  const line = (cells: string[]) => cells.map((c, k) => (k < leftColumns ? c.padEnd(widths[k]) : c.padStart(widths[k]))).join('  ');
  return [line(head), ...rows.map(line)];
}

export function formatReport(report: BenchLearnerReport): string[] {
  const lines: string[] = [];
  for (const b of report.backends) {
    const env = Object.entries(b.threadingEnv).map(([k, v]) => `${k}=${v}`).join(' ');
    lines.push(`matmul peak (${b.backend}): ${b.matmul.sizes.map((m) => `${m.n}² ${fmt(m.gflops, 1)} GFLOP/s (${fmt(m.msPerMatmul, 2)} ms)`).join(', ')} → peak ${fmt(b.matmul.peakGflops, 1)} GFLOP/s${b.backend === 'tensorflow' ? `; ${env || 'threading variables unset'}` : ''}`);
  }
  for (const s of report.skipped) lines.push(`skipped ${s.backend}: ${s.reason}`);
  // One row per case; per backend its ms/update, kernels/update, GFLOP/s and % of peak side by side.
  const per = ['ms/update', 'kernels', 'GFLOP/s', '% peak'];
  const multi = report.backends.length > 1;
  const head = ['case', 'samples/update', 'MFLOP/update', ...report.backends.flatMap((b) => per.map((p) => (multi ? `${b.backend} ${p}` : p))), 'samples/s', 'tokens/s'];
  const first = report.backends[0];
  const rows = (first?.results ?? []).map((r0, i) => [
    r0.case, fmt(r0.samplesPerUpdate), fmt(r0.flopsPerUpdate / 1e6, 1),
    ...report.backends.flatMap((b) => {
      const r = b.results[i];
      return [fmt(r.msPerUpdate, 1), String(r.kernelsPerUpdate), fmt(r.gflops, 2), fmt(r.percentOfPeak, 1)];
    }),
    // Throughput columns of the first backend (the others follow from their ms/update).
    fmt(r0.samplesPerSec), r0.tokensPerSec !== undefined ? fmt(r0.tokensPerSec) : '',
  ]);
  lines.push(...table(head, rows, 1));
  if (multi) lines.push(`samples/s and tokens/s: ${first.backend}.`);
  for (const c of report.settings.cases) lines.push(`${c.name}: ${c.algo} on ${c.envs.join(' + ')}, ${c.algo === 'meta_dt' ? 'decision transformer' : c.useRnn ? 'GRU' : 'MLP'}, width ${c.hiddenDim}; one update = ${c.update}`);
  lines.push('samples = agent-steps learned from per update (MAPPO/IPPO: T·E·A of the chunk; QMIX/VDN/MTMA: B·T·A of the sampled episodes; SAC: transitions; DT: B·K sequence steps; tokens = 3·B·K, as PyTorch\'s DT counts them);');
  lines.push('kernels = tfjs kernel calls of one update (tf.profile after the warm-up, not timed); --json lists them by kernel name.');
  lines.push(report.flopModel);
  return lines;
}

export async function runBenchLearnerCommand(opts: BenchLearnerCommandOptions): Promise<void> {
  const backends = parseBackends(opts.backend);
  const cases = casesOf(opts);
  const seconds = Number(opts.seconds);
  const repeats = Number(opts.repeats);
  if (!(seconds > 0)) throw new Error(`bench learner: --seconds must be a positive number, got '${opts.seconds}'`);
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`bench learner: --repeats must be a positive integer, got '${opts.repeats}'`);
  const log = opts.json ? () => undefined : (line: string) => process.stdout.write(`${line}\n`);
  const report = await benchLearner({ backends, cases, seconds, repeats, log });
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else for (const line of formatReport(report)) log(line);
}

/** For `troupe bench learner --help`. */
export const CASES_HELP = LEARNER_CASES.map((c) => c.name).join(', ');
