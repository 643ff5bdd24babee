/**
 * `troupe bench learner`: how fast the trainers learn, separated from how fast envs step.
 *
 * Each algorithm × use_rnn setting gets a real trainer from `createTrainer` for the env's real
 * `VectorLayout`, fed synthetic but valid experience (observations and states sampled from the
 * env's own spaces with a seeded `Rng`, every action legal). Only the update is timed: for
 * MAPPO/IPPO `observe(chunk)` (GAE, then epochs × minibatches Adam steps), for QMIX/VDN/IQL
 * `update()` on a batch sampled from a filled replay. In the same run the active backend's
 * square float32 matmul speed is measured, so the learners' GFLOP/s can be read as a fraction
 * of what the backend can do at best on this machine.
 *
 * The GFLOP/s come from an analytic count of the networks' matrix-product FLOPs (see
 * "FLOP model" below); element-wise work (activations, GRU gates, losses, Adam) is not
 * counted, so the figure is an estimate and a lower bound of the arithmetic really done.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { registerBuiltinEnvs } from '../../envs/builtin';
import type { ParallelEnv } from '../../envs/parallel-env';
import { makeEnv, prepareEnv } from '../../envs/registry';
import { flatten } from '../../envs/spaces/flatten';
import { parseRunConfig } from '../../runtime/training/config-loader';
import type { EpisodeFinal, PolicyOutput, TrajectoryChunk } from '../../runtime/rollout/experience';
import { Rng, deriveSeed } from '../../runtime/core/rng';
import { ALGO_NAMES, type AlgoName, type RunConfig } from '../../runtime/training/run-config';
import { type BackendPreference, selectBackend } from '../../runtime/core/tf-backend';
import { type VectorLayout, layoutFor } from '../../runtime/rollout/vector-layout';
import { createTrainer } from '../../trainers/create-trainer';
import type { Episode } from '../../trainers/episode-replay';
import { Mappo } from '../../trainers/mappo';
import { QLearner } from '../../trainers/qmix';

export const DEFAULT_LEARNER_ENV = 'lbf-8x8-2p-2f-coop';
export const DEFAULT_LEARNER_ALGOS: readonly AlgoName[] = ['mappo', 'qmix'];
/** Square matmul sizes for the backend's peak; the peak is the best of them. */
export const MATMUL_SIZES = [256, 512] as const;

/**
 * The run-config values every benchmarked trainer shares (everything else is the algorithm's
 * default). One hidden size for all keeps the algorithms comparable (IQL defaults to 128).
 */
export const LEARNER_BENCH_SETTINGS = { numEnvs: 8, rolloutLength: 50, hiddenDim: 64, seed: 0 } as const;

// ---------------------------------------------------------------------------------------------
// FLOP model
// ---------------------------------------------------------------------------------------------
//
// Counted: matrix products only, at 2 FLOPs per multiply-add, so a dense layer costs
// 2·in·out per row forward. In backward, a layer costs 2·in·out per row for its weight
// gradient and another 2·in·out for its input gradient, but tfjs only differentiates towards
// inputs that depend on a trained variable: a layer fed with data (the first layer, a
// hypernetwork reading the state, the GRU's hidden matmul at the first step of a sequence,
// whose state comes from data) costs only its weight gradient. Target networks run forward
// only. Biases, activations, GRU gate arithmetic, softmax, losses, gradient clipping and
// Adam are element-wise and not counted.
//
//  - Agent network, feed-forward: fc1 D→H, fc2 H→H, out H→K.
//  - Agent network, GRU: fc1 D→H, input gates H→3H, hidden gates H→3H (one per unroll step),
//    out H→K.
//  - MAPPO/IPPO, per update: every epoch runs each of the T·E·A rows once through the actor
//    (GRU or MLP) and the critic (MLP, output 1), forward and backward (the minibatches of an
//    epoch partition the rows); plus the critic's forward pass for the bootstrap row and for
//    the final observation of every episode that ended inside the chunk.
//  - QMIX/VDN/IQL, per update on B episodes of T steps: the online agent forward and backward
//    over (T+1)·B·A rows, the target agent forward over the same rows; for QMIX the online
//    mixer forward and backward and the target mixer forward over T·B rows. The mixer counts
//    its hypernetworks (state → |W1| [A×embed], state → |W_final| [embed], each one layer or
//    two with hypernet_embed between), b1 and V(s) (state → embed → 1), and the per-row
//    products q·W1 (A·embed multiply-adds) and hidden·W_final (embed), which tfjs computes as
//    broadcast multiply-and-sum rather than matmul but are the same arithmetic.

/** FLOPs of one pass over a batch of rows: forward, and backward (weight plus input gradients). */
export interface PassFlops {
  forward: number;
  backward: number;
}

export interface NetworkShape {
  inputDim: number;
  hiddenDim: number;
  outputDim: number;
  recurrent: boolean;
}

/**
 * Matmul FLOPs of an `AgentNetwork` over `rows` rows that form `sequences` unrolled sequences
 * (rows = steps × sequences; a feed-forward network ignores the split).
 */
export function agentNetworkFlops(net: NetworkShape, rows: number, sequences: number): PassFlops {
  const { inputDim: D, hiddenDim: H, outputDim: O } = net;
  const fc1 = 2 * D * H * rows;
  const out = 2 * H * O * rows;
  if (!net.recurrent) {
    const fc2 = 2 * H * H * rows;
    return { forward: fc1 + fc2 + out, backward: fc1 + 2 * fc2 + 2 * out };
  }
  const gates = 2 * H * 3 * H * rows;
  // The hidden matmul's input gradient is skipped at each sequence's first step (h0 is data).
  const hiddenInputGrad = 2 * H * 3 * H * (rows - sequences);
  return { forward: fc1 + 2 * gates + out, backward: fc1 + 2 * gates + gates + hiddenInputGrad + 2 * out };
}

export interface MixerShape {
  numAgents: number;
  stateDim: number;
  embedDim: number;
  hypernetLayers: 1 | 2;
  hypernetEmbed: number;
}

/** Matmul FLOPs of the QMIX mixer over `rows` (time step, episode) rows. */
export function mixerFlops(m: MixerShape, rows: number): PassFlops {
  const { numAgents: A, stateDim: S, embedDim: E, hypernetEmbed: Hh } = m;
  // Layers that read the state (data) need only weight gradients; later ones need both.
  let fromState: number;
  let fromHidden: number;
  if (m.hypernetLayers === 1) {
    fromState = S * E * A + S * E;
    fromHidden = 0;
  } else {
    fromState = 2 * S * Hh;
    fromHidden = Hh * E * A + Hh * E;
  }
  fromState += 2 * S * E; // b1 and V's hidden layer
  fromHidden += E; // V's output
  const products = A * E + E;
  const forward = 2 * rows * (fromState + fromHidden + products);
  const backward = 2 * rows * (fromState + 2 * fromHidden + 2 * products);
  return { forward, backward };
}

/** Matmul FLOPs of one MAPPO/IPPO update on a chunk of T rows with `finals` episode ends. */
export function mappoUpdateFlops(trainer: Mappo, T: number, finals: number): number {
  const { numEnvs: E, numAgents: A, numActions: K } = trainer.layout;
  const cfg = trainer.config;
  const S = E * A;
  const actor = agentNetworkFlops({ inputDim: trainer.actorInDim, hiddenDim: cfg.hidden_dim, outputDim: K, recurrent: cfg.use_rnn }, T * S, S);
  const criticShape = { inputDim: trainer.criticInDim, hiddenDim: cfg.hidden_dim, outputDim: 1, recurrent: false };
  const critic = agentNetworkFlops(criticShape, T * S, S);
  const perEpoch = actor.forward + actor.backward + critic.forward + critic.backward;
  const bootstrap = agentNetworkFlops(criticShape, S + finals * A, S).forward;
  return cfg.epochs * perEpoch + bootstrap;
}

/** Matmul FLOPs of one QMIX/VDN/IQL update on B episodes padded to T steps. */
export function qUpdateFlops(trainer: QLearner, B: number, T: number): number {
  const { numAgents: A } = trainer.layout;
  const spec = trainer.agent.spec;
  const agentRows = (T + 1) * B * A;
  const online = agentNetworkFlops(spec, agentRows, B * A);
  const target = agentNetworkFlops(spec, agentRows, B * A);
  let total = online.forward + online.backward + target.forward;
  if (trainer.mixer) {
    const mix = mixerFlops(trainer.mixer.spec, T * B);
    total += mix.forward + mix.backward + mix.forward;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Synthetic experience
// ---------------------------------------------------------------------------------------------

/** Samples observations, states and legal-action masks from an env's own spaces. */
export class SpaceSampler {
  constructor(
    private readonly env: ParallelEnv<unknown, unknown>,
    private readonly layout: VectorLayout,
    private readonly rng: Rng,
  ) {}

  /** [n, A, obsDim]: each agent's observation padded to the layout's width, as VectorEnv does. */
  obs(n: number): Float32Array {
    const { numAgents: A, obsDim, agentIds } = this.layout;
    const out = new Float32Array(n * A * obsDim);
    for (let r = 0; r < n; r++) {
      for (let a = 0; a < A; a++) {
        const space = this.env.observationSpace(agentIds[a]);
        out.set(flatten(space, space.sample(this.rng)), (r * A + a) * obsDim);
      }
    }
    return out;
  }

  /** [n, stateDim] */
  state(n: number): Float32Array {
    const { stateDim } = this.layout;
    const out = new Float32Array(n * stateDim);
    const space = this.env.stateSpace;
    if (stateDim === 0 || !space) return out;
    for (let r = 0; r < n; r++) out.set(space.sample(this.rng), r * stateDim);
    return out;
  }

  /** [n, A, numActions]: every action of each agent's own space legal, padding illegal. */
  masks(n: number): Uint8Array {
    const { numAgents: A, numActions: K, agentNumActions } = this.layout;
    const out = new Uint8Array(n * A * K);
    for (let r = 0; r < n; r++) for (let a = 0; a < A; a++) out.fill(1, (r * A + a) * K, (r * A + a) * K + agentNumActions[a]);
    return out;
  }

  reward(): number {
    // Sparse small rewards, as in foraging tasks; the values only matter for being finite.
    return this.rng.next() < 0.05 ? this.rng.next() : 0;
  }

  action(agent: number): number {
    return this.rng.int(this.layout.agentNumActions[agent]);
  }
}

/**
 * Trajectory chunks as the experience stream would deliver them, acted by the trainer's own
 * policy so the `logp`, `value`, `h` and `last_action` extras match the chunk. Every env's
 * episode is truncated at the step limit; the envs' episodes are staggered so ends (and their
 * final-observation bootstraps) spread over chunks as in a real run.
 */
export class SyntheticChunks {
  private readonly remaining: Int32Array;
  private started: Uint8Array;
  private obs: Float32Array;
  private state: Float32Array;
  private index = 0;
  private step = 0;

  constructor(
    private readonly trainer: Mappo,
    private readonly sampler: SpaceSampler,
  ) {
    const { numEnvs: E, maxEpisodeSteps: L } = trainer.layout;
    this.remaining = Int32Array.from({ length: E }, (_, e) => L - Math.floor((e * L) / E));
    this.started = new Uint8Array(E).fill(1);
    this.obs = sampler.obs(E);
    this.state = sampler.state(E);
  }

  async next(T: number): Promise<TrajectoryChunk> {
    const L = this.trainer.layout;
    const { numEnvs: E, numAgents: A, obsDim, stateDim, numActions: K, actDim } = L;
    const rows = E * A;
    const chunk: TrajectoryChunk = {
      kind: 'chunk', layout: L, index: this.index++, startStep: this.step, length: T,
      obs: new Float32Array(T * rows * obsDim), state: new Float32Array(T * E * stateDim), masks: this.sampler.masks(T * E),
      alive: new Uint8Array(T * rows).fill(1), episodeStart: new Uint8Array(T * E), actions: new Float32Array(T * rows * actDim),
      extras: {}, rewards: new Float32Array(T * rows), terminated: new Uint8Array(T * rows), truncated: new Uint8Array(T * rows),
      episodeDone: new Uint8Array(T * E), episodeAborted: new Uint8Array(T * E), finals: [],
      bootstrap: { obs: new Float32Array(0), state: new Float32Array(0), alive: new Uint8Array(rows).fill(1), masks: this.sampler.masks(E), episodeStart: new Uint8Array(E) },
      episodes: [],
    };
    const finals: EpisodeFinal[] = [];
    for (let t = 0; t < T; t++) {
      chunk.obs.set(this.obs, t * rows * obsDim);
      chunk.state.set(this.state, t * E * stateDim);
      chunk.episodeStart.set(this.started, t * E);
      const actions = new Float32Array(rows * actDim);
      const out = (await this.trainer.policy.act(
        {
          obs: this.obs, state: this.state, masks: chunk.masks.subarray(t * rows * K, (t + 1) * rows * K),
          alive: chunk.alive.subarray(t * rows, (t + 1) * rows), episodeStart: this.started, layout: L,
        },
        actions,
      )) as PolicyOutput | undefined;
      chunk.actions.set(actions, t * rows * actDim);
      for (const [key, value] of Object.entries(out?.extras ?? {})) {
        chunk.extras[key] ??= new Float32Array(T * value.length);
        chunk.extras[key].set(value, t * value.length);
      }
      for (let i = 0; i < rows; i++) chunk.rewards[t * rows + i] = this.sampler.reward();
      this.obs = this.sampler.obs(E);
      this.state = this.sampler.state(E);
      this.started = new Uint8Array(E);
      for (let e = 0; e < E; e++) {
        if (--this.remaining[e] > 0) continue;
        // Step limit: a truncation, so GAE bootstraps from the episode's final observation.
        chunk.truncated.fill(1, (t * E + e) * A, (t * E + e + 1) * A);
        chunk.episodeDone[t * E + e] = 1;
        finals.push({ t, env: e, obs: this.sampler.obs(1), state: this.sampler.state(1) });
        this.remaining[e] = L.maxEpisodeSteps;
        this.started[e] = 1;
      }
    }
    chunk.finals = finals;
    chunk.bootstrap.obs = this.obs;
    chunk.bootstrap.state = this.state;
    chunk.bootstrap.episodeStart = this.started.slice();
    this.step += T;
    return chunk;
  }
}

/** A whole episode that runs to the step limit (the longest, so the costliest to learn from). */
export function syntheticEpisode(layout: VectorLayout, sampler: SpaceSampler): Episode {
  const { numAgents: A, maxEpisodeSteps: T } = layout;
  const actions = new Int32Array(T * A);
  for (let i = 0; i < T * A; i++) actions[i] = sampler.action(i % A);
  return {
    length: T,
    obs: sampler.obs(T + 1),
    state: sampler.state(T + 1),
    avail: sampler.masks(T + 1),
    alive: new Uint8Array((T + 1) * A).fill(1),
    actions,
    reward: Float32Array.from({ length: T }, () => sampler.reward()),
    terminated: new Uint8Array(T),
  };
}

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
  algo: AlgoName;
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
  algos: readonly AlgoName[];
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

/** A trainer set up for timing, with what it needs to run one more update. */
interface LearnerCase {
  algo: AlgoName;
  useRnn: boolean;
  samplesPerUpdate: number;
  gradientSteps: number;
  samplePasses: number;
  flopsPerUpdate: number;
  /** Runs one update, returning its time in ms (preparing its input is not timed). */
  update(): Promise<number>;
  dispose(): void;
}

function benchConfig(env: string, algo: AlgoName, useRnn: boolean, backend: string): RunConfig {
  const s = LEARNER_BENCH_SETTINGS;
  const ppo = algo === 'mappo' || algo === 'ippo';
  const text = [
    `env: {id: ${JSON.stringify(env)}}`,
    `algo: {name: ${algo}, hidden_dim: ${s.hiddenDim}, use_rnn: ${useRnn}${ppo ? `, rollout_length: ${s.rolloutLength}` : ''}}`,
    `run: {seed: ${s.seed}, num_envs: ${s.numEnvs}, backend: ${backend}}`,
  ].join('\n');
  return parseRunConfig(text, 'bench learner');
}

async function makeCase(envId: string, env: ParallelEnv<unknown, unknown>, layout: VectorLayout, algo: AlgoName, useRnn: boolean, backend: string): Promise<LearnerCase> {
  const config = benchConfig(envId, algo, useRnn, backend);
  const trainer = createTrainer(layout, config);
  const sampler = new SpaceSampler(env, layout, new Rng(deriveSeed('bench-learner', algo, String(useRnn))));
  const timed = (fn: () => void): number => {
    const start = performance.now();
    fn();
    return performance.now() - start;
  };
  if (trainer instanceof Mappo) {
    const T = trainer.collection.chunkLength;
    const chunks = new SyntheticChunks(trainer, sampler);
    const { numEnvs: E, numAgents: A } = layout;
    const samples = T * E * A;
    const mbCount = Math.min(trainer.config.num_minibatches, E * A);
    // Episode ends per chunk vary with the stagger; count them from a chunk about to be used.
    let pending = await chunks.next(T);
    const flops = mappoUpdateFlops(trainer, T, pending.finals.length);
    return {
      algo, useRnn, samplesPerUpdate: samples, gradientSteps: trainer.config.epochs * mbCount,
      samplePasses: samples * trainer.config.epochs, flopsPerUpdate: flops,
      update: async () => {
        const chunk = pending;
        const ms = timed(() => {
          if (!trainer.observe(chunk, (chunk.startStep + T) * E)) throw new Error(`bench learner: ${algo} ran no update on a chunk`);
        });
        pending = await chunks.next(T);
        return ms;
      },
      dispose: () => trainer.dispose(),
    };
  }
  if (trainer instanceof QLearner) {
    const B = trainer.config.batch_size;
    // Twice the batch, so consecutive updates sample different episodes as from a real replay.
    for (let i = 0; i < 2 * B; i++) trainer.replay.insert(syntheticEpisode(layout, sampler));
    const T = layout.maxEpisodeSteps;
    const samples = B * T * layout.numAgents;
    return {
      algo, useRnn, samplesPerUpdate: samples, gradientSteps: 1, samplePasses: samples,
      flopsPerUpdate: qUpdateFlops(trainer, B, T),
      update: async () => timed(() => void trainer.update()),
      dispose: () => trainer.dispose(),
    };
  }
  throw new Error(`bench learner: no benchmark for trainer of '${algo}'`);
}

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

  const cases: LearnerCase[] = [];
  const rng = new Rng(deriveSeed('bench-learner', 'matmul'));
  const matrices = MATMUL_SIZES.map((n) => ({ n, a: randomMatrix(n, rng), b: randomMatrix(n, rng) }));
  try {
    for (const algo of opts.algos) {
      for (const useRnn of opts.rnn) {
        const c = await makeCase(opts.env, env, layout, algo, useRnn, choice.backend);
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

// ---------------------------------------------------------------------------------------------
// Command
// ---------------------------------------------------------------------------------------------

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
  lines.push('samples = agent-steps learned from per update (MAPPO/IPPO: T·E·A of the chunk; QMIX/VDN/IQL: B·T·A of the sampled batch);');
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
  const report = await benchLearner({ backend, env: opts.env, algos: algos as AlgoName[], rnn, seconds, repeats, log });
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else for (const line of formatTable(report)) log(line);
}
