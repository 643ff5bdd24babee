/**
 * Learner throughput (`troupe bench learner`): how fast the learners learn, separated from how fast envs step.
 *
 * Each algorithm × use_rnn setting gets a real learner for the env's real shape, from the
 * algorithm's own benchmark case (`TrainerDefinition.benchmark` in its trainer file), fed
 * synthetic but valid experience (observations and states sampled from the env's own spaces
 * with a seeded `Rng`, every action legal). Only the update is timed. In the same run the active
 * backend's square float32 matmul speed is measured, so the learners' GFLOP/s can be read as a
 * fraction of what the backend can do at best on this machine.
 *
 * The GFLOP/s come from an analytic count of the networks' matrix-product FLOPs
 * (`agents/networks/flops.ts`); element-wise work (activations, GRU gates, losses, Adam) is not
 * counted, so the figure is an estimate and a lower bound of the arithmetic really done.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { layoutFor, shapeOf } from '../../envs/env-shape';
import type { ParallelEnv } from '../../envs/parallel-env';
import { makeEnv, prepareEnv } from '../../envs/registry';
import { Rng, deriveSeed } from '../core/rng';
import { type BackendPreference, selectBackend } from '../core/tf-backend';
import { ALGO_NAMES } from './run-config';
import { trainerFor } from '../../trainers/index';
import type { LearnerBenchCase, LearnerBenchSettings, TaskSpec } from '../../trainers/learner';
import { SpaceSampler } from '../../trainers/synthetic-experience';

export const DEFAULT_LEARNER_ENV = 'lbf-8x8-2p-2f-coop';
export const DEFAULT_LEARNER_ALGOS: readonly string[] = ['mappo', 'qmix'];
/** Square matmul sizes for the backend's peak; the peak is the best of them. */
export const MATMUL_SIZES = [256, 512] as const;

/**
 * The run-config values every benchmarked trainer shares (everything else is the algorithm's
 * default). One hidden size for all keeps the algorithms comparable (IQL defaults to 128).
 */
export const LEARNER_BENCH_SETTINGS: LearnerBenchSettings = { numEnvs: 8, rolloutLength: 50, hiddenDim: 64, seed: 0 };

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------

export interface MatmulResult {
  n: number;
  /** Median over repeats. */
  msPerMatmul: number;
  gflops: number;
}

export interface LearnerResult {
  algo: string;
  useRnn: boolean;
  /** Median over repeats of each repeat's mean update time. */
  msPerUpdate: number;
  /**
   * Agent-steps one update learns from: T·E·A of the chunk (MAPPO/IPPO), or episode-steps of
   * the sampled batch × agents, B·T·A (QMIX/VDN/IQL).
   */
  samplesPerUpdate: number;
  /** samplesPerUpdate / update time: agent-steps learned per second. */
  samplesPerSec: number;
  /** Adam steps per update: epochs × minibatches (MAPPO/IPPO), 1 (QMIX/VDN/IQL). */
  gradientStepsPerUpdate: number;
  /** Rows pushed forward and backward through the trained networks per second (samples × epochs for MAPPO/IPPO). */
  samplePassesPerSec: number;
  /** Estimated matmul FLOPs of one update (see the FLOP model). */
  flopsPerUpdate: number;
  gflops: number;
  /** gflops / the matmul peak measured in this run, in percent. */
  percentOfPeak: number;
  /** Updates timed over all repeats (after the warm-up). */
  updatesTimed: number;
}

export interface BenchLearnerReport {
  machine: { cpuModel: string; cores: number; node: string; platform: string; tfjs: string; backend: string; backendReason: string; date: string };
  settings: {
    env: string;
    layout: { numAgents: number; obsDim: number; stateDim: number; numActions: number; maxEpisodeSteps: number };
    numEnvs: number;
    rolloutLength: number;
    hiddenDim: number;
    seconds: number;
    repeats: number;
  };
  matmul: { sizes: MatmulResult[]; peakGflops: number };
  results: LearnerResult[];
  flopModel: string;
}

export interface BenchLearnerOptions {
  backend: BackendPreference;
  env: string;
  algos: readonly string[];
  /** use_rnn settings to measure, in order. */
  rnn: readonly boolean[];
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

/** A learner set up for timing, with its algorithm and recurrence. */
interface LearnerCase extends LearnerBenchCase {
  algo: string;
  useRnn: boolean;
}

/** The algorithm's benchmark case, or undefined when `useRnn` does not apply to it. */
async function makeCase(env: ParallelEnv<unknown, unknown>, task: TaskSpec, algo: string, useRnn: boolean, backend: string): Promise<LearnerCase | undefined> {
  const trainer = trainerFor(algo);
  if (!trainer.benchmark) throw new Error(`bench learner: '${algo}' has no benchmark case (algorithms with one: ${BENCHMARKED_ALGOS.join(', ')})`);
  trainer.checkTask?.(algo, task);
  const sampler = new SpaceSampler(env, task.shape, new Rng(deriveSeed('bench-learner', algo, String(useRnn))));
  const c = await trainer.benchmark({ algo, task, settings: LEARNER_BENCH_SETTINGS, useRnn, sampler, backend });
  return c && { ...c, algo, useRnn };
}

/** Algorithms whose trainer defines a benchmark case. */
export const BENCHMARKED_ALGOS: readonly string[] = ALGO_NAMES.filter((name) => trainerFor(name).benchmark !== undefined);

/** Updates for about `seconds` (at least one); returns the mean ms per update and the count. */
async function measureCase(c: LearnerCase, seconds: number): Promise<{ ms: number; count: number }> {
  let total = 0;
  let count = 0;
  const deadline = performance.now() + seconds * 1000;
  while (count < 1 || performance.now() < deadline) {
    total += await c.update();
    count++;
  }
  return { ms: total / count, count };
}

export async function benchLearner(opts: BenchLearnerOptions): Promise<BenchLearnerReport> {
  const { log } = opts;
  const choice = await selectBackend(opts.backend);
  log(`backend: ${choice.backend} (${choice.reason})`);
  registerBuiltinEnvs();
  await prepareEnv(opts.env);
  const env = makeEnv<unknown, unknown>(opts.env);
  const s = LEARNER_BENCH_SETTINGS;
  const layout = layoutFor(env, s.numEnvs);
  const cpus = os.cpus();
  const machine = {
    cpuModel: cpus[0]?.model ?? 'unknown', cores: cpus.length, node: process.version, platform: `${process.platform}-${process.arch}`,
    tfjs: tf.version.tfjs, backend: choice.backend, backendReason: choice.reason, date: new Date().toISOString(),
  };
  log(`machine: ${machine.cores} × ${machine.cpuModel}, node ${machine.node}, tfjs ${machine.tfjs}; medians of ${opts.repeats} × ${opts.seconds}s`);
  log(`env ${opts.env}: ${layout.numAgents} agents, obs ${layout.obsDim}, state ${layout.stateDim}, ${layout.numActions} actions, ${layout.maxEpisodeSteps} steps; num_envs ${s.numEnvs}, rollout_length ${s.rolloutLength}, hidden_dim ${s.hiddenDim}, other keys at their defaults`);

  const task: TaskSpec = { key: opts.env, index: 0, env: { id: opts.env }, shape: shapeOf(layout), numEnvs: s.numEnvs };
  const cases: LearnerCase[] = [];
  const rng = new Rng(deriveSeed('bench-learner', 'matmul'));
  const matrices = MATMUL_SIZES.map((n) => ({ n, a: randomMatrix(n, rng), b: randomMatrix(n, rng) }));
  try {
    for (const algo of opts.algos) {
      for (const useRnn of opts.rnn) {
        const c = await makeCase(env, task, algo, useRnn, choice.backend);
        if (!c) continue;
        cases.push(c);
        // Warm-up: the first update compiles kernels and JITs the JavaScript around them.
        await c.update();
      }
    }
    for (const { a, b } of matrices) timeMatmul(a, b, 0);

    const matmulMs: number[][] = matrices.map(() => []);
    const caseMs: number[][] = cases.map(() => []);
    const caseCounts = cases.map(() => 0);
    // Interleave everything per repeat so slow phases of a shared machine hit the peak and
    // the learners alike, which keeps their ratio honest.
    for (let r = 0; r < opts.repeats; r++) {
      matrices.forEach(({ a, b }, i) => matmulMs[i].push(timeMatmul(a, b, opts.seconds / matrices.length)));
      for (let i = 0; i < cases.length; i++) {
        const { ms, count } = await measureCase(cases[i], opts.seconds);
        caseMs[i].push(ms);
        caseCounts[i] += count;
      }
    }

    const sizes: MatmulResult[] = matrices.map(({ n }, i) => {
      const ms = median(matmulMs[i]);
      return { n, msPerMatmul: ms, gflops: (2 * n ** 3) / (ms * 1e6) };
    });
    const peakGflops = Math.max(...sizes.map((m) => m.gflops));
    const results: LearnerResult[] = cases.map((c, i) => {
      const ms = median(caseMs[i]);
      const gflops = c.flopsPerUpdate / (ms * 1e6);
      return {
        algo: c.algo, useRnn: c.useRnn, msPerUpdate: ms, samplesPerUpdate: c.samplesPerUpdate, samplesPerSec: (c.samplesPerUpdate * 1000) / ms,
        gradientStepsPerUpdate: c.gradientSteps, samplePassesPerSec: (c.samplePasses * 1000) / ms, flopsPerUpdate: c.flopsPerUpdate,
        gflops, percentOfPeak: (100 * gflops) / peakGflops, updatesTimed: caseCounts[i],
      };
    });
    return {
      machine,
      settings: {
        env: opts.env,
        layout: { numAgents: layout.numAgents, obsDim: layout.obsDim, stateDim: layout.stateDim, numActions: layout.numActions, maxEpisodeSteps: layout.maxEpisodeSteps },
        numEnvs: s.numEnvs, rolloutLength: s.rolloutLength, hiddenDim: s.hiddenDim, seconds: opts.seconds, repeats: opts.repeats,
      },
      matmul: { sizes, peakGflops },
      results,
      flopModel: FLOP_MODEL_NOTE,
    };
  } finally {
    for (const c of cases) c.dispose();
    for (const { a, b } of matrices) tf.dispose([a, b]);
    env.close?.();
  }
}
