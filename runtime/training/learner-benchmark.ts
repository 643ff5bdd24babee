/**
 * Learner throughput (`troupe bench learner`): how fast the learners learn, separated from how fast envs step.
 *
 * Named cases (`LEARNER_CASES`) fix an algorithm, its env(s), recurrence, width and any config
 * keys, with the shapes of PyTorch's reference (tools' torch_learners.py) where one exists. Each
 * case gets a real learner for the env's real shape, from the algorithm's own benchmark case
 * (`TrainerDefinition.benchmark` in its trainer file), fed synthetic but valid experience
 * (observations and states sampled from the env's own spaces with a seeded `Rng`, every action
 * legal). Only the update is timed. In the same run the backend's square float32 matmul speed is
 * measured, so the learners' GFLOP/s can be read as a fraction of what the backend can do at best.
 *
 * Kernel calls per update come from tf.profile around one update after the warm-up, outside the
 * timed loop (the profiler times every kernel itself): `trainers/synthetic-experience.ts`'s
 * `timed` seam records exactly the update, not the case's input preparation.
 *
 * Several backends (`--backend all` or a list) run in one child process each
 * (`learner-benchmark-child.ts`): each backend gets its own tfjs engine and libtensorflow state,
 * tfjs-node reads its threading variables when it loads (a process that already runs wasm
 * cannot change them), and a backend that fails to load, or crashes, cannot take the others
 * with it. The parent steps the children through the repeats in turn (repeat r of every backend
 * before repeat r + 1), so a slow phase of a shared machine hits every backend alike; a waiting
 * child blocks on its pipe and takes no CPU.
 *
 * The GFLOP/s come from an analytic count of the networks' matrix-product FLOPs
 * (`agents/networks/flops.ts`); element-wise work (activations, GRU gates, losses, Adam) is not
 * counted, so the figure is an estimate and a lower bound of the arithmetic really done.
 */
import { fork } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { layoutFor, shapeOf } from '../../envs/env-shape';
import type { ParallelEnv } from '../../envs/parallel-env';
import { makeEnv, prepareEnv } from '../../envs/registry';
import { Rng, deriveSeed } from '../core/rng';
import { type BackendPreference, selectBackend } from '../core/tf-backend';
import { ALGO_NAMES } from './run-config';
import { trainerFor } from '../../trainers/index';
import type { ExperienceSampler, LearnerBenchCase, LearnerBenchSettings, TaskSpec } from '../../trainers/learner';
import { SpaceSampler, cancelProfileRequest, profileNextTimed, profileRequestPending } from '../../trainers/synthetic-experience';

export const DEFAULT_LEARNER_ENV = 'lbf-8x8-2p-2f-coop';
/** Square matmul sizes for the backend's peak; the peak is the best of them. */
export const MATMUL_SIZES = [256, 512] as const;

/**
 * The run-config values every benchmarked trainer shares (everything else is the algorithm's
 * default, or the case's `config`). One hidden size for all keeps the algorithms comparable.
 */
export const LEARNER_BENCH_SETTINGS: LearnerBenchSettings = { numEnvs: 8, rolloutLength: 50, hiddenDim: 64, seed: 0 };

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

export interface LearnerCaseSpec {
  name: string;
  algo: string;
  /** Envs of the case's tasks (more than one: a multi-task learner's tasks). */
  envs: readonly string[];
  useRnn: boolean;
  hiddenDim: number;
  /** `algo` keys over the benchmark hook's own choices. */
  config?: Readonly<Record<string, unknown>>;
  /** What one update is, for the table's notes. */
  update: string;
  /** Left out, rather than an error, when the hook has no case for it (`--algos` × use_rnn). */
  optional?: boolean;
}

const LBF = 'lbf-8x8-2p-2f-coop';
const onPolicy = (algo: string, useRnn: boolean): LearnerCaseSpec => ({
  name: `${algo}-${useRnn ? 'gru' : 'mlp'}`, algo, envs: [LBF], useRnn, hiddenDim: 64,
  update: 'one PPO update of a 50-step chunk of 8 envs (default epochs × minibatches)',
});
const offPolicy = (algo: string, useRnn: boolean): LearnerCaseSpec => ({
  name: `${algo}-${useRnn ? 'gru' : 'mlp'}`, algo, envs: [LBF], useRnn, hiddenDim: 64,
  update: 'one gradient step on 32 sampled episodes',
});
const sac = (width: number): LearnerCaseSpec => ({
  name: `sac${width}`, algo: 'sac', envs: ['reach'], useRnn: false, hiddenDim: width, config: { hidden_dims: [width, width], batch_size: 256, policy_frequency: 1 },
  update: '1 critic step (twin Q) + 1 actor step + 1 α step + Polyak, batch 256 (PyTorch\'s update; policy_frequency 1)',
});

/** Every named case, in the table's order; `--cases` picks among them. */
export const LEARNER_CASES: readonly LearnerCaseSpec[] = [
  onPolicy('mappo', false),
  onPolicy('mappo', true),
  onPolicy('ippo', false),
  onPolicy('ippo', true),
  offPolicy('qmix', false),
  offPolicy('qmix', true),
  offPolicy('vdn', false),
  offPolicy('vdn', true),
  sac(128),
  sac(256),
  {
    // configs/mtma-combat.yaml's setup: two combat tasks of different sizes, one shared DecL.
    name: 'mtma', algo: 'mtma', envs: ['combat-3v3', 'combat-2a3b'], useRnn: false, hiddenDim: 64,
    config: { rnn_hidden_dim: 64, decl_hidden_dim: 32, mixer: 'vdn', td_lambda: 0.6, batch_size: 32 },
    update: 'one gradient step on 32 sampled episodes of each of the 2 tasks',
  },
  {
    // PyTorch reference's decision transformer: no prompt, no task representation, GELU.
    name: 'dt', algo: 'meta_dt', envs: ['reach'], useRnn: false, hiddenDim: 128,
    config: { task_representation: 'none', prompt: 'none', horizon: 20, embed_dim: 128, num_layers: 3, num_heads: 1, activation: 'gelu', dropout: 0.1, batch_size: 64 },
    update: 'one decision-transformer step: 3 layers, 1 head, embed 128, K 20, batch 64 (tokens = 64·3·20)',
  },
];

export const LEARNER_CASE_NAMES: readonly string[] = LEARNER_CASES.map((c) => c.name);

/** Cases named by a comma-separated `list` ('all' or absent: every case), or an error naming the bad value and the valid ones. */
export function resolveLearnerCases(list: string | undefined): LearnerCaseSpec[] {
  if (list === undefined || list.trim() === 'all') return [...LEARNER_CASES];
  const names = list.split(',').map((n) => n.trim()).filter(Boolean);
  if (names.length === 0) throw new Error(`bench learner: --cases names no case (valid: all, ${LEARNER_CASE_NAMES.join(', ')})`);
  return names.map((name) => {
    const c = LEARNER_CASES.find((x) => x.name === name);
    if (!c) throw new Error(`bench learner: unknown case '${name}' in --cases (valid: all, ${LEARNER_CASE_NAMES.join(', ')})`);
    return c;
  });
}

/** Algorithms whose trainer defines a benchmark case. */
export const BENCHMARKED_ALGOS: readonly string[] = ALGO_NAMES.filter((name) => trainerFor(name).benchmark !== undefined);

/**
 * The algorithm × use_rnn cases of `--algos` on one env (the options before named cases), at
 * the shared hidden size and each hook's own sizes; combinations a hook refuses are left out.
 */
export function algoCases(env: string, algos: readonly string[], rnn: readonly boolean[]): LearnerCaseSpec[] {
  for (const a of algos) {
    if (!BENCHMARKED_ALGOS.includes(a)) throw new Error(`bench learner: unknown algo '${a}' in --algos (algorithms with a benchmark case: ${BENCHMARKED_ALGOS.join(', ')})`);
  }
  return algos.flatMap((algo) => rnn.map((useRnn) => ({ name: `${algo}-${useRnn ? 'gru' : 'mlp'}`, algo, envs: [env], useRnn, hiddenDim: LEARNER_BENCH_SETTINGS.hiddenDim, update: 'the algorithm\'s benchmark case', optional: true })));
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

export interface MatmulResult {
  n: number;
  /** Median over repeats. */
  msPerMatmul: number;
  gflops: number;
}

export interface LearnerResult {
  case: string;
  algo: string;
  envs: string[];
  useRnn: boolean;
  /** Median over repeats of each repeat's mean update time. */
  msPerUpdate: number;
  /**
   * Agent-steps one update learns from: T·E·A of the chunk (MAPPO/IPPO), episode-steps of the
   * sampled batch × agents, B·T·A (QMIX/VDN/IQL/MTMA, summed over tasks), transitions (SAC),
   * sequence steps B·K (DT).
   */
  samplesPerUpdate: number;
  samplesPerSec: number;
  /** Adam steps per update. */
  gradientStepsPerUpdate: number;
  /** Rows pushed forward and backward through the trained networks per second (samples × epochs for MAPPO/IPPO). */
  samplePassesPerSec: number;
  /** Decision-transformer cases: tokens per update (B·3·(K + prompt)) and per second, as PyTorch's DT counts them. */
  tokensPerUpdate?: number;
  tokensPerSec?: number;
  /** Estimated matmul FLOPs of one update (see the FLOP model). */
  flopsPerUpdate: number;
  gflops: number;
  /** gflops / this backend's matmul peak measured in this run, in percent. */
  percentOfPeak: number;
  /** Kernel calls of one update (tf.profile after the warm-up), and their count by kernel name, most frequent first. */
  kernelsPerUpdate: number;
  kernelsByName: Record<string, number>;
  /** Updates timed over all repeats (after the warm-up). */
  updatesTimed: number;
}

/** The variables libtensorflow reads its threads and oneDNN use from when it loads. */
export const THREADING_VARIABLES = ['TF_ENABLE_ONEDNN_OPTS', 'TF_NUM_INTRAOP_THREADS', 'TF_NUM_INTEROP_THREADS', 'OMP_NUM_THREADS'] as const;

export interface BackendResults {
  /** The tfjs backend active: 'tensorflow', 'wasm' or 'cpu'. */
  backend: string;
  /** Why it is active (selectBackend's reason). */
  reason: string;
  matmul: { sizes: MatmulResult[]; peakGflops: number };
  results: LearnerResult[];
  /** `THREADING_VARIABLES` set in the process once the backend was loaded (tfjs-node reads its threading and oneDNN choice from them). */
  threadingEnv: Record<string, string>;
}

export interface CaseSettings {
  name: string;
  algo: string;
  envs: string[];
  useRnn: boolean;
  hiddenDim: number;
  config: Record<string, unknown>;
  update: string;
  /** The first env's layout. */
  layout: { numAgents: number; obsDim: number; stateDim: number; numActions: number; actDim: number; maxEpisodeSteps: number };
}

export interface BenchLearnerReport {
  machine: { cpuModel: string; cores: number; node: string; platform: string; tfjs: string; date: string };
  settings: { cases: CaseSettings[]; numEnvs: number; rolloutLength: number; seconds: number; repeats: number };
  /** One entry per backend measured, in the order asked. */
  backends: BackendResults[];
  /** Backends asked for that did not load (or failed), with the reason. */
  skipped: { backend: string; reason: string }[];
  flopModel: string;
}

/** The backends `--backend` may name; `all` = tensorflow and wasm (cpu, the plain-JS fallback, takes seconds per GRU update). */
export const BENCH_BACKENDS: readonly Exclude<BackendPreference, 'auto'>[] = ['tensorflow', 'wasm', 'cpu'];
export const ALL_BACKENDS: readonly Exclude<BackendPreference, 'auto'>[] = ['tensorflow', 'wasm'];

export interface BenchLearnerOptions {
  /** One backend preference (measured in this process), or several (one child process each). */
  backends: readonly BackendPreference[];
  cases: readonly LearnerCaseSpec[];
  seconds: number;
  repeats: number;
  log: (line: string) => void;
}

const FLOP_MODEL_NOTE =
  'GFLOP/s are an estimate from matmul FLOPs only (2 per multiply-add; weight and input gradients in backward, ' +
  'target networks forward only); element-wise work is not counted.';

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------------------------------------
// One backend, in this process
// ---------------------------------------------------------------------------------------------

/** One n×n float32 product's time in ms, averaged over a loop of about `seconds`. */
function timeMatmul(a: tf.Tensor2D, b: tf.Tensor2D, seconds: number): number {
  let count = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  // At least 3 products, so one slow scheduling hiccup cannot make the whole measurement.
  while (count < 3 || performance.now() < deadline) {
    const c = tf.matMul(a, b);
    c.dataSync(); // forces completion on backends that queue work
    c.dispose();
    count++;
  }
  return (performance.now() - start) / count;
}

function randomMatrix(n: number, rng: Rng): tf.Tensor2D {
  return tf.tensor2d(Float32Array.from({ length: n * n }, () => rng.uniform(-1, 1)), [n, n]);
}

/** A case's task of env `id`, with its experience sampler; `envs` collects the env for closing. */
async function benchTask(id: string, index: number, caseName: string, envs: ParallelEnv<unknown, unknown>[]): Promise<{ task: TaskSpec; sampler: ExperienceSampler }> {
  await prepareEnv(id);
  const env = makeEnv<unknown, unknown>(id);
  envs.push(env);
  const layout = layoutFor(env, LEARNER_BENCH_SETTINGS.numEnvs);
  const task: TaskSpec = { key: id, index, env: { id }, shape: shapeOf(layout), numEnvs: LEARNER_BENCH_SETTINGS.numEnvs };
  return { task, sampler: new SpaceSampler(env, task.shape, new Rng(deriveSeed('bench-learner', caseName, id))) };
}

/** The case's learner from its algorithm's benchmark hook; an error names the case when the hook refuses it. */
async function makeCase(spec: LearnerCaseSpec, backend: string, envs: ParallelEnv<unknown, unknown>[]): Promise<LearnerBenchCase | undefined> {
  const trainer = trainerFor(spec.algo);
  if (!trainer.benchmark) throw new Error(`bench learner: '${spec.algo}' has no benchmark case (algorithms with one: ${BENCHMARKED_ALGOS.join(', ')})`);
  const tasks = [];
  for (const [i, id] of spec.envs.entries()) tasks.push(await benchTask(id, i, spec.name, envs));
  for (const t of tasks) trainer.checkTask?.(spec.algo, t.task);
  const settings = { ...LEARNER_BENCH_SETTINGS, hiddenDim: spec.hiddenDim };
  const c = await trainer.benchmark({ algo: spec.algo, task: tasks[0].task, sampler: tasks[0].sampler, settings, useRnn: spec.useRnn, backend, config: spec.config, tasks: tasks.length > 1 ? tasks : undefined });
  if (!c && !spec.optional) throw new Error(`bench learner: case '${spec.name}': ${spec.algo} has no benchmark case with use_rnn ${spec.useRnn} on ${spec.envs.join(', ')}`);
  return c;
}

/** Kernel calls of one update, by name (most frequent first). */
async function profileUpdate(spec: LearnerCaseSpec, c: LearnerBenchCase): Promise<{ total: number; byName: Record<string, number> }> {
  const profile = profileNextTimed();
  await c.update();
  if (profileRequestPending()) {
    cancelProfileRequest();
    throw new Error(`bench learner: case '${spec.name}': its update never ran through timed() (trainers/synthetic-experience.ts), so its kernels cannot be counted`);
  }
  const info = await profile;
  const counts = new Map<string, number>();
  for (const k of info.kernels) counts.set(k.name, (counts.get(k.name) ?? 0) + 1);
  const byName = Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  return { total: info.kernels.length, byName };
}

/** Updates for about `seconds` (at least one); returns the mean ms per update and the count. */
async function measureCase(c: LearnerBenchCase, seconds: number): Promise<{ ms: number; count: number }> {
  let total = 0;
  let count = 0;
  const deadline = performance.now() + seconds * 1000;
  while (count < 1 || performance.now() < deadline) {
    total += await c.update();
    count++;
  }
  return { ms: total / count, count };
}

/** One repeat's measurements of one backend: the matmul sizes' ms, and each case's mean ms and update count. */
export interface RepeatResult {
  matmulMs: number[];
  caseMs: number[];
  caseCounts: number[];
}

/**
 * Every case of one backend, in this process: `prepare` selects the backend, builds the cases,
 * warms them up and counts their kernels; each `repeat` times one round; `finish` summarises.
 */
export class BackendSession {
  private cases: LearnerBenchCase[] = [];
  private kernels: { total: number; byName: Record<string, number> }[] = [];
  private envs: ParallelEnv<unknown, unknown>[] = [];
  private matrices: { n: number; a: tf.Tensor2D; b: tf.Tensor2D }[] = [];
  private repeats: RepeatResult[] = [];
  /** The specs measured: all, less optional ones the hooks have no case for. */
  private measured: LearnerCaseSpec[] = [];
  backend = '';
  reason = '';
  settings: CaseSettings[] = [];

  constructor(
    private readonly preference: BackendPreference,
    private readonly specs: readonly LearnerCaseSpec[],
  ) {}

  async prepare(): Promise<void> {
    const choice = await selectBackend(this.preference);
    this.backend = choice.backend;
    this.reason = choice.reason;
    registerBuiltinEnvs();
    const rng = new Rng(deriveSeed('bench-learner', 'matmul'));
    this.matrices = MATMUL_SIZES.map((n) => ({ n, a: randomMatrix(n, rng), b: randomMatrix(n, rng) }));
    for (const { a, b } of this.matrices) timeMatmul(a, b, 0);
    for (const spec of this.specs) {
      const firstEnv = this.envs.length;
      const c = await makeCase(spec, this.backend, this.envs);
      if (!c) continue;
      this.measured.push(spec);
      this.cases.push(c);
      // Warm-up: the first updates compile kernels and JIT the JavaScript around them.
      await c.update();
      await c.update();
      this.kernels.push(await profileUpdate(spec, c));
      const layout = layoutFor(this.envs[firstEnv], LEARNER_BENCH_SETTINGS.numEnvs);
      this.settings.push({
        name: spec.name, algo: spec.algo, envs: [...spec.envs], useRnn: spec.useRnn, hiddenDim: spec.hiddenDim, config: { ...spec.config }, update: spec.update,
        layout: { numAgents: layout.numAgents, obsDim: layout.obsDim, stateDim: layout.stateDim, numActions: layout.numActions, actDim: layout.actDim, maxEpisodeSteps: layout.maxEpisodeSteps },
      });
    }
    if (this.cases.length === 0) throw new Error(`bench learner: no benchmark case applies (${this.specs.map((c) => c.name).join(', ')})`);
  }

  async repeat(seconds: number): Promise<RepeatResult> {
    const matmulMs = this.matrices.map(({ a, b }) => timeMatmul(a, b, seconds / this.matrices.length));
    const caseMs: number[] = [];
    const caseCounts: number[] = [];
    for (const c of this.cases) {
      const { ms, count } = await measureCase(c, seconds);
      caseMs.push(ms);
      caseCounts.push(count);
    }
    const r = { matmulMs, caseMs, caseCounts };
    this.repeats.push(r);
    return r;
  }

  finish(): BackendResults {
    const sizes: MatmulResult[] = this.matrices.map(({ n }, i) => {
      const ms = median(this.repeats.map((r) => r.matmulMs[i]));
      return { n, msPerMatmul: ms, gflops: (2 * n ** 3) / (ms * 1e6) };
    });
    const peakGflops = Math.max(...sizes.map((m) => m.gflops));
    const results: LearnerResult[] = this.cases.map((c, i) => {
      const spec = this.measured[i];
      const ms = median(this.repeats.map((r) => r.caseMs[i]));
      const gflops = c.flopsPerUpdate / (ms * 1e6);
      return {
        case: spec.name, algo: spec.algo, envs: [...spec.envs], useRnn: spec.useRnn,
        msPerUpdate: ms, samplesPerUpdate: c.samplesPerUpdate, samplesPerSec: (c.samplesPerUpdate * 1000) / ms,
        gradientStepsPerUpdate: c.gradientSteps, samplePassesPerSec: (c.samplePasses * 1000) / ms,
        ...(c.tokensPerUpdate !== undefined ? { tokensPerUpdate: c.tokensPerUpdate, tokensPerSec: (c.tokensPerUpdate * 1000) / ms } : {}),
        flopsPerUpdate: c.flopsPerUpdate, gflops, percentOfPeak: (100 * gflops) / peakGflops,
        kernelsPerUpdate: this.kernels[i].total, kernelsByName: this.kernels[i].byName,
        updatesTimed: this.repeats.reduce((sum, r) => sum + r.caseCounts[i], 0),
      };
    });
    const threadingEnv: Record<string, string> = {};
    for (const key of THREADING_VARIABLES) if (process.env[key] !== undefined) threadingEnv[key] = process.env[key];
    return { backend: this.backend, reason: this.reason, matmul: { sizes, peakGflops }, results, threadingEnv };
  }

  dispose(): void {
    for (const c of this.cases) c.dispose();
    for (const { a, b } of this.matrices) tf.dispose([a, b]);
    for (const env of this.envs) env.close?.();
    this.cases = [];
    this.matrices = [];
    this.envs = [];
  }
}

// ---------------------------------------------------------------------------------------------
// Several backends: one child process each
// ---------------------------------------------------------------------------------------------

/** Parent → child messages of `learner-benchmark-child.ts`. */
export type ChildRequest = { kind: 'prepare'; backend: BackendPreference; cases: LearnerCaseSpec[] } | { kind: 'repeat'; seconds: number } | { kind: 'finish' };
/** Child → parent messages. */
export type ChildReply =
  | { kind: 'prepared'; backend: string; reason: string; settings: CaseSettings[] }
  | { kind: 'repeated'; result: RepeatResult }
  | { kind: 'finished'; results: BackendResults }
  | { kind: 'failed'; error: string };

/** What the parent needs of one backend's measurements, wherever they run. */
interface BackendRunner {
  prepare(): Promise<{ backend: string; reason: string; settings: CaseSettings[] }>;
  repeat(seconds: number): Promise<void>;
  finish(): Promise<BackendResults>;
  close(): void;
}

function inProcessRunner(preference: BackendPreference, cases: readonly LearnerCaseSpec[]): BackendRunner {
  const session = new BackendSession(preference, cases);
  return {
    async prepare() {
      await session.prepare();
      return { backend: session.backend, reason: session.reason, settings: session.settings };
    },
    async repeat(seconds) {
      await session.repeat(seconds);
    },
    async finish() {
      return session.finish();
    },
    close: () => session.dispose(),
  };
}

function childRunner(preference: BackendPreference, cases: readonly LearnerCaseSpec[]): BackendRunner {
  const child = fork(path.join(__dirname, 'learner-benchmark-child.js'), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  let exited: string | undefined;
  const waiting: { resolve: (r: ChildReply) => void; reject: (e: Error) => void }[] = [];
  child.on('message', (m: ChildReply) => waiting.shift()?.resolve(m));
  child.on('exit', (code, signal) => {
    exited = `the ${preference} child process exited (${signal ?? `code ${code}`})${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`;
    for (const w of waiting.splice(0)) w.reject(new Error(exited));
  });
  const ask = (request: ChildRequest): Promise<ChildReply> =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error(exited));
      waiting.push({ resolve, reject });
      child.send(request);
    });
  const expect = async <K extends ChildReply['kind']>(request: ChildRequest, kind: K): Promise<Extract<ChildReply, { kind: K }>> => {
    const reply = await ask(request);
    if (reply.kind === 'failed') throw new Error(reply.error);
    if (reply.kind !== kind) throw new Error(`bench learner: the ${preference} child answered '${reply.kind}' to '${request.kind}'`);
    return reply as Extract<ChildReply, { kind: K }>;
  };
  return {
    async prepare() {
      const r = await expect({ kind: 'prepare', backend: preference, cases: [...cases] }, 'prepared');
      return { backend: r.backend, reason: r.reason, settings: r.settings };
    },
    async repeat(seconds) {
      await expect({ kind: 'repeat', seconds }, 'repeated');
    },
    async finish() {
      return (await expect({ kind: 'finish' }, 'finished')).results;
    },
    close: () => {
      if (!exited) child.kill();
    },
  };
}

export async function benchLearner(opts: BenchLearnerOptions): Promise<BenchLearnerReport> {
  const { log } = opts;
  if (opts.backends.length === 0) throw new Error('bench learner: no backend to measure');
  if (opts.cases.length === 0) throw new Error('bench learner: no case to measure');
  const cpus = os.cpus();
  const machine = { cpuModel: cpus[0]?.model ?? 'unknown', cores: cpus.length, node: process.version, platform: `${process.platform}-${process.arch}`, tfjs: tf.version.tfjs, date: new Date().toISOString() };
  log(`machine: ${machine.cores} × ${machine.cpuModel}, node ${machine.node}, tfjs ${machine.tfjs}; medians of ${opts.repeats} × ${opts.seconds}s`);
  const separate = opts.backends.length > 1;
  const running: { preference: BackendPreference; runner: BackendRunner }[] = [];
  const skipped: { backend: string; reason: string }[] = [];
  let settings: CaseSettings[] = [];
  try {
    // Prepared one after another, so no backend's warm-up competes with another's.
    for (const preference of opts.backends) {
      const runner = separate ? childRunner(preference, opts.cases) : inProcessRunner(preference, opts.cases);
      try {
        const ready = await runner.prepare();
        log(`backend ${preference}: ${ready.backend} (${ready.reason})`);
        settings = ready.settings;
        running.push({ preference, runner });
      } catch (error) {
        runner.close();
        if (!separate) throw error;
        skipped.push({ backend: preference, reason: message(error) });
        log(`backend ${preference}: skipped (${message(error)})`);
      }
    }
    if (running.length === 0) throw new Error(`bench learner: no backend could be measured (${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')})`);
    // Repeat r of every backend before repeat r + 1: a slow phase of the machine hits them alike.
    for (let r = 0; r < opts.repeats; r++) {
      for (const entry of [...running]) {
        try {
          await entry.runner.repeat(opts.seconds);
        } catch (error) {
          if (!separate) throw error;
          entry.runner.close();
          running.splice(running.indexOf(entry), 1);
          skipped.push({ backend: entry.preference, reason: `failed while measuring: ${message(error)}` });
        }
      }
    }
    const backends: BackendResults[] = [];
    for (const { runner } of running) backends.push(await runner.finish());
    return {
      machine,
      settings: { cases: settings, numEnvs: LEARNER_BENCH_SETTINGS.numEnvs, rolloutLength: LEARNER_BENCH_SETTINGS.rolloutLength, seconds: opts.seconds, repeats: opts.repeats },
      backends,
      skipped,
      flopModel: FLOP_MODEL_NOTE,
    };
  } finally {
    for (const { runner } of running) runner.close();
  }
}
