import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { EpisodeStat, Transition } from '../agents/experience';
import { loadPolicy } from '../agents/load-policy';
import { type Policy, type PolicyBatch, emptyContext } from '../agents/policies/policy';
import { registerBuiltinEnvs } from '../envs/builtin';
import type { VectorLayout } from '../envs/env-shape';
import { readCheckpoint, writeCheckpoint } from '../runtime/core/checkpoint';
import { MetricsLog, type MetricsRecord, WALL_CLOCK_FIELDS } from '../runtime/core/metrics-log';
import { Rng } from '../runtime/core/rng';
import { selectBackend } from '../runtime/core/tf-backend';
import { evaluatePolicy } from '../runtime/rollout/evaluation';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { RunConfigError, parseRunConfig } from '../runtime/training/config-loader';
import { type TrainingRunOptions, runTraining } from '../runtime/training/training-run';
import type { TaskSpec, TrainStats } from '../trainers/learner';
import { DECL_MODEL, type MtmaConfig, MtmaLearner, SOLVED_TASK_WEIGHT, loadDeclWeights, mtmaConfigSchema, taskWeights, tdLambdaTargets } from '../trainers/mtma';

/*
 * MTMA (trainers/mtma.ts): one decision network shared by tasks of different shapes, per-task
 * perception layers and mixers, win-rate-weighted losses, the transfer modes, checkpoints and
 * a two-task run through the training loop with an exact resume.
 */

let root: string;
beforeAll(async () => {
  registerBuiltinEnvs();
  await selectBackend('wasm');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-mtma-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// Hand-made tasks: one env each, episodes of 3 steps whose success the test decides
// ---------------------------------------------------------------------------------------------

function layout(numAgents: number, obsDim: number, numActions: number, stateDim = 0): VectorLayout {
  return {
    numEnvs: 1,
    agentIds: Array.from({ length: numAgents }, (_, i) => `agent_${i}`),
    numAgents,
    obsDim,
    agentObsDims: new Array(numAgents).fill(obsDim),
    actDim: 1,
    numActions,
    agentNumActions: new Array(numAgents).fill(numActions),
    discreteActions: true,
    stateDim,
    maxEpisodeSteps: 3,
    reportsSuccess: true,
    sharedTeamReward: true,
  };
}

// Three shapes: the sources A and B, and a target C unlike either.
const SHAPES = { a: layout(2, 3, 3), b: layout(3, 5, 4, 4), c: layout(2, 7, 6) };

function spec(key: keyof typeof SHAPES, index: number): TaskSpec {
  const l = SHAPES[key];
  return { key, index, env: { id: key }, shape: l, numEnvs: l.numEnvs };
}

function config(over: Record<string, unknown> = {}): MtmaConfig {
  return mtmaConfigSchema.parse({ name: 'mtma', rnn_hidden_dim: 8, decl_hidden_dim: 4, batch_size: 2, buffer_size: 20, lr: 0.01, target_update_interval_or_tau: 4, epsilon_anneal_time: 50, ...over });
}

/** Steps one hand-made env with the learner's collection policy and feeds the learner. */
class FakeTask {
  private t = 0;
  private vectorSteps = 0;
  private obs: Float32Array;
  private rng: Rng;

  constructor(
    readonly task: TaskSpec,
    seed: number,
  ) {
    this.rng = new Rng(seed);
    this.obs = this.observe();
  }

  /** The same env in the same state, stepping on independently. */
  clone(): FakeTask {
    const copy = new FakeTask(this.task, 0);
    copy.rng = Rng.fromState(this.rng.state());
    copy.obs = this.obs.slice();
    copy.t = this.t;
    copy.vectorSteps = this.vectorSteps;
    return copy;
  }

  private observe(): Float32Array {
    const { numAgents: A, obsDim } = this.task.shape;
    return Float32Array.from({ length: A * obsDim }, () => this.rng.next());
  }

  /** One step; the episode ends after 3 steps with `success`. Returns the learner's stats. */
  step(learner: MtmaLearner, success = 0): TrainStats | undefined {
    const s = this.task.shape;
    const A = s.numAgents;
    const masks = new Uint8Array(A * s.numActions).fill(1);
    const alive = new Uint8Array(A).fill(1);
    const batch: PolicyBatch = { obs: this.obs, state: new Float32Array(s.stateDim).fill(0.5), masks, alive, episodeStart: Uint8Array.of(this.t === 0 ? 1 : 0), layout: { ...s, numEnvs: 1 }, context: emptyContext(1) };
    const actions = new Float32Array(A);
    void learner.collectionPolicy(this.task.key).act(batch, actions);
    const done = this.t === 2;
    const nextObs = this.observe();
    const reward = this.rng.next();
    const episodes: EpisodeStat[] = done ? [{ env: 0, step: this.vectorSteps, return: reward, length: 3, success, aborted: false }] : [];
    const item: Transition = {
      kind: 'transition',
      task: this.task.key,
      taskIndex: this.task.index,
      layout: { ...s, numEnvs: 1 },
      step: this.vectorSteps,
      policyVersion: learner.policyVersion(),
      obs: this.obs,
      state: batch.state,
      masks,
      alive,
      episodeStart: batch.episodeStart,
      teamSize: Int32Array.of(A),
      latent: new Float32Array(0),
      actions,
      extras: {},
      rewards: new Float32Array(A).fill(reward),
      terminated: new Uint8Array(A).fill(done ? 1 : 0),
      truncated: new Uint8Array(A),
      nextObs,
      nextState: batch.state,
      nextAlive: alive,
      nextMasks: masks,
      episodeDone: Uint8Array.of(done ? 1 : 0),
      episodeAborted: Uint8Array.of(0),
      episodes,
    };
    this.obs = nextObs;
    this.t = done ? 0 : this.t + 1;
    this.vectorSteps++;
    return learner.observe(item, this.vectorSteps);
  }

  /** Whole episodes, each with its success. */
  episodes(learner: MtmaLearner, successes: number[]): TrainStats[] {
    const out: TrainStats[] = [];
    for (const success of successes) {
      for (let i = 0; i < 3; i++) {
        const s = this.step(learner, success);
        if (s) out.push(s);
      }
    }
    return out;
  }
}

/** Q-values [A, K] of `task` for a fixed input (zero hidden state, no last action). */
function qValues(learner: MtmaLearner, task: string): Float32Array {
  const part = learner.parts.find((p) => p.task.key === task)!;
  const { numAgents: A } = part.task.shape;
  return tf.tidy(() => {
    const x = tf.tensor2d(Float32Array.from({ length: A * part.inputWidth }, (_, i) => ((i * 7) % 5) / 5), [A, part.inputWidth]);
    const h = tf.zeros([A, learner.config.rnn_hidden_dim]) as tf.Tensor2D;
    return learner.decl.score(part.perception.candidates(x, h)).dataSync().slice() as Float32Array;
  });
}

const values = (vars: Record<string, tf.Variable>) => Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, Array.from(v.dataSync())]));

/** Writes a checkpoint holding `learner`'s state, as a run of it would (what `transfer.decl_from` names). */
async function saveRun(learner: MtmaLearner, name: string): Promise<string> {
  const state = await learner.captureState();
  const dir = path.join(root, name, 'checkpoints');
  await writeCheckpoint(dir, 'step-1', {
    createdAt: new Date().toISOString(),
    config: { algo: { name: 'mtma' } },
    counters: { envSteps: 0, episodes: 0, updates: 0, logIndex: 0 },
    models: state.models,
    optimizers: state.optimizers,
    rngs: state.rngs,
    arrays: {},
    backend: 'wasm',
    metadata: {},
  });
  return path.join(root, name);
}

/** A source learner on tasks A and B, trained for a few updates. */
function trainedSource(over: Record<string, unknown> = {}): MtmaLearner {
  const learner = new MtmaLearner({ tasks: [spec('a', 0), spec('b', 1)], config: config(over), seed: 1 });
  const a = new FakeTask(learner.tasks[0], 1);
  const b = new FakeTask(learner.tasks[1], 2);
  for (let i = 0; i < 6; i++) {
    a.episodes(learner, [0]);
    b.episodes(learner, [0]);
  }
  expect(learner.updateCount).toBeGreaterThan(0);
  return learner;
}

// ---------------------------------------------------------------------------------------------

describe('the shared decision network', () => {
  test.each(['vdn', 'qmix'] as const)('%s: one set of DecL weights: a step on task A\'s loss alone changes task B\'s Q-values, not B\'s perception', (mixer) => {
    // Replays filled, but no update yet: Adam's moments are zero, so a zero gradient moves nothing.
    const learner = new MtmaLearner({ tasks: [spec('a', 0), spec('b', 1)], config: config({ mixer, updates_per_episode: 0.01 }), seed: 1 });
    new FakeTask(learner.tasks[0], 1).episodes(learner, [0, 0, 0]);
    new FakeTask(learner.tasks[1], 2).episodes(learner, [0, 0, 0]);
    expect(learner.updateCount).toBe(0);
    try {
      const part = learner.parts[1];
      const mixerBefore = part.mixer && values(part.mixer.namedVariables());
      const perceptionBefore = values(part.perception.namedVariables());
      const qBefore = qValues(learner, 'b');
      learner.update([1, 0]);
      // B's loss had weight 0: its perception got zero gradients and Adam moved nothing…
      expect(values(part.perception.namedVariables())).toEqual(perceptionBefore);
      if (part.mixer) expect(values(part.mixer.namedVariables())).toEqual(mixerBefore);
      // …but the DecL A trained is B's too.
      const qAfter = qValues(learner, 'b');
      expect(Array.from(qAfter)).not.toEqual(Array.from(qBefore));
      // Tasks of different shapes: A's Q-vector has 3 candidates per agent, B's 4.
      expect(qValues(learner, 'a').length).toBe(2 * 3);
      expect(qAfter.length).toBe(3 * 4);
    } finally {
      learner.dispose();
    }
  });

  test('acting only picks legal actions, and the greedy evaluation policy is deterministic', () => {
    const learner = trainedSource();
    try {
      const shape = SHAPES.b;
      const E = 3;
      const masks = new Uint8Array(E * shape.numAgents * shape.numActions);
      // Only action 2 legal for every agent.
      for (let i = 0; i < E * shape.numAgents; i++) masks[i * shape.numActions + 2] = 1;
      const batch: PolicyBatch = { obs: new Float32Array(E * shape.numAgents * shape.obsDim).fill(0.3), state: new Float32Array(E * 4), masks, alive: new Uint8Array(E * 3).fill(1), episodeStart: new Uint8Array(E).fill(1), layout: { ...shape, numEnvs: E }, context: emptyContext(E) };
      const act = (p: Policy) => {
        const actions = new Float32Array(E * 3);
        void p.act(batch, actions);
        return Array.from(actions);
      };
      expect(act(learner.evaluationPolicy('b', E, 'x'))).toEqual(new Array(9).fill(2));
      masks.fill(1);
      const greedy = act(learner.evaluationPolicy('b', E, 'x'));
      expect(act(learner.evaluationPolicy('b', E, 'y'))).toEqual(greedy);
      expect(greedy.every((a) => Number.isInteger(a) && a >= 0 && a < shape.numActions)).toBe(true);
    } finally {
      learner.dispose();
    }
  });

  test('TD(λ) targets: λ = 0 is one-step TD, λ = 1 the discounted return; the last real step bootstraps fully', () => {
    // One episode of 3 steps padded to 4 (B = 1), not terminated: a time-limit cut.
    const reward = Float32Array.of(1, 2, 3, 0);
    const notDone = Float32Array.of(1, 1, 1, 1);
    const filled = Float32Array.of(1, 1, 1, 0);
    const next = [10, 20, 30, 99];
    const g = 0.5;
    expect(Array.from(tdLambdaTargets(reward, notDone, filled, next, 1, 4, g, 0)).slice(0, 3)).toEqual([1 + g * 10, 2 + g * 20, 3 + g * 30]);
    const last = 3 + g * 30;
    const mid = 2 + g * last;
    expect(Array.from(tdLambdaTargets(reward, notDone, filled, next, 1, 4, g, 1)).slice(0, 3)).toEqual([1 + g * mid, mid, last]);
    // Terminated at the last step: no bootstrap there.
    expect(tdLambdaTargets(reward, Float32Array.of(1, 1, 0, 1), filled, next, 1, 4, g, 0.6)[2]).toBe(3);
  });
});

describe('loss weighting', () => {
  test('the formula: w ∝ 1 − win rate, 0.01 for tasks at 100%, also when all are', () => {
    const w = taskWeights([0.5, 0.8, 1], 'win_rate');
    expect(w[0]).toBeCloseTo(0.5 / 0.7, 12);
    expect(w[1]).toBeCloseTo(0.2 / 0.7, 12);
    expect(w[2]).toBe(SOLVED_TASK_WEIGHT);
    expect(taskWeights([1, 1], 'win_rate')).toEqual([0.01, 0.01]);
    expect(taskWeights([0, 0], 'win_rate')).toEqual([0.5, 0.5]);
    expect(taskWeights([0.5, 1, 0.9], 'equal')).toEqual([1 / 3, 1 / 3, 1 / 3]);
  });

  test('win rates come from each task\'s recent training episodes (a window), and the updates report the weights they used', () => {
    const learner = new MtmaLearner({ tasks: [spec('a', 0), spec('b', 1)], config: config({ win_rate_window: 3, batch_size: 4 }), seed: 2 });
    try {
      const a = new FakeTask(learner.tasks[0], 1);
      const b = new FakeTask(learner.tasks[1], 2);
      a.episodes(learner, [0, 1, 1, 0]);
      b.episodes(learner, [0, 0, 0, 0]);
      // A's last 3 episodes: 1, 1, 0 → 2/3; B never won.
      expect(learner.currentWeights()).toEqual(taskWeights([2 / 3, 0], 'win_rate'));
      expect(learner.currentWeights()[0]).toBeCloseTo(0.25, 12);
      a.episodes(learner, [1, 1, 1]);
      // A at 100% over its window: 0.01; B takes all the rest.
      expect(learner.currentWeights()).toEqual([0.01, 1]);
      b.episodes(learner, [1, 1, 1]);
      expect(learner.currentWeights()).toEqual([0.01, 0.01]);
      // The next update reports the weights and win rates it used, on each task's own item.
      const statsA = a.episodes(learner, [1]);
      const statsB = b.episodes(learner, [1]);
      const lastA = statsA.at(-1)!;
      const lastB = statsB.at(-1)!;
      expect(lastA.task_weight).toBe(0.01);
      expect(lastA.task_win_rate).toBe(1);
      expect(lastB.task_weight).toBe(0.01);
      expect(typeof lastB.loss).toBe('number');
      expect(lastA.loss).not.toBe(lastB.loss);
    } finally {
      learner.dispose();
    }
  });

  test('equal weighting (the ablation) ignores win rates', () => {
    const learner = new MtmaLearner({ tasks: [spec('a', 0), spec('b', 1)], config: config({ task_weighting: 'equal' }), seed: 2 });
    try {
      new FakeTask(learner.tasks[0], 1).episodes(learner, [1, 1]);
      new FakeTask(learner.tasks[1], 2).episodes(learner, [0, 0]);
      expect(learner.currentWeights()).toEqual([0.5, 0.5]);
    } finally {
      learner.dispose();
    }
  });
});

describe('transfer', () => {
  let sourceDir: string;
  let sourceDecl: Record<string, number[]>;
  let scratchInit: Record<string, number[]>;
  beforeAll(async () => {
    const source = trainedSource();
    sourceDecl = values(source.decl.namedVariables());
    sourceDir = await saveRun(source, 'source');
    source.dispose();
    const fresh = new MtmaLearner({ tasks: [spec('c', 0)], config: config(), seed: 5 });
    scratchInit = values(fresh.decl.namedVariables());
    fresh.dispose();
  });

  /** A learner on target C (other obs and action sizes than A and B), trained for some updates. */
  function target(transfer: Record<string, unknown>, over: Record<string, unknown> = {}) {
    const learner = new MtmaLearner({ tasks: [spec('c', 0)], config: config({ transfer, ...over }), seed: 5 });
    const perception = values(learner.parts[0].perception.namedVariables());
    const decl = values(learner.decl.namedVariables());
    const task = new FakeTask(learner.tasks[0], 3);
    const train = () => task.episodes(learner, [0, 0, 0, 0, 0, 0]);
    return { learner, perception, decl, train };
  }

  test('loadDeclWeights reads only the DecL from a run directory or a .ckpt, and says when a file holds none', async () => {
    const loaded = loadDeclWeights(sourceDir);
    expect(loaded.inputDim).toBe(8);
    expect(loaded.hiddenDim).toBe(4);
    expect(Object.keys(loaded.weights).sort()).toEqual(['fc0/b', 'fc0/w', 'fc1/b', 'fc1/w']);
    expect(loadDeclWeights(loaded.file).weights['fc0/w']).toEqual(loaded.weights['fc0/w']);
    const data = await readCheckpoint(loaded.file);
    expect(Object.keys(data.models)).toContain(DECL_MODEL);
    const other = path.join(root, 'not-mtma');
    await writeCheckpoint(other, 'x', { ...data, config: { algo: { name: 'qmix' } }, models: { agent: {} } });
    expect(() => loadDeclWeights(other)).toThrow(/holds no MTMA decision network \(model 'mtma\/decl'\): it is a checkpoint of a 'qmix' run/);
    expect(() => loadDeclWeights(path.join(root, 'nowhere'))).toThrow(/nowhere does not exist/);
  });

  test('frozen: the loaded DecL acts in a task of other sizes and stays bit-identical while perception trains', () => {
    const { learner, perception, decl, train } = target({ mode: 'frozen', decl_from: sourceDir });
    try {
      expect(decl).toEqual(sourceDecl);
      const stats = train();
      expect(learner.updateCount).toBeGreaterThan(0);
      expect(values(learner.decl.namedVariables())).toEqual(sourceDecl);
      expect(values(learner.targetDecl.namedVariables())).toEqual(sourceDecl);
      expect(values(learner.parts[0].perception.namedVariables())).not.toEqual(perception);
      // No optimiser for the DecL, so no gradient norm of it either.
      expect(stats.some((s) => 'decl_grad_norm' in s)).toBe(false);
      expect(qValues(learner, 'c').length).toBe(2 * 6);
    } finally {
      learner.dispose();
    }
  });

  test('finetune: the loaded DecL trains, at finetune_lr_scale × lr', () => {
    const { learner, decl, train } = target({ mode: 'finetune', decl_from: sourceDir, finetune_lr_scale: 0.1 });
    try {
      expect(decl).toEqual(sourceDecl);
      expect(learner.declLearningRate()).toBeCloseTo(0.001, 12);
      train();
      expect(values(learner.decl.namedVariables())).not.toEqual(sourceDecl);
    } finally {
      learner.dispose();
    }
  });

  test('random_frozen: the seeded random DecL scratch starts from, never the loaded one, and fixed', () => {
    const { learner, decl, train } = target({ mode: 'random_frozen' });
    try {
      expect(decl).toEqual(scratchInit);
      expect(decl).not.toEqual(sourceDecl);
      train();
      expect(values(learner.decl.namedVariables())).toEqual(scratchInit);
    } finally {
      learner.dispose();
    }
    const scratch = target({ mode: 'scratch' });
    try {
      scratch.train();
      expect(values(scratch.learner.decl.namedVariables())).not.toEqual(scratchInit);
    } finally {
      scratch.learner.dispose();
    }
  });

  test('a DecL of another hidden size is refused, naming both sizes and the file', () => {
    expect(() => new MtmaLearner({ tasks: [spec('c', 0)], config: config({ rnn_hidden_dim: 16, transfer: { mode: 'frozen', decl_from: sourceDir } }), seed: 5 })).toThrow(
      /algo\.transfer\.decl_from: the decision network in .*step-1\.ckpt reads hidden size 8, but this run's algo\.rnn_hidden_dim is 16/,
    );
  });

  test('impossible transfer keys are refused by the config check', () => {
    const run = (algo: string) => parseRunConfig(`env: { id: combat-3v3 }\nalgo: ${algo}\n`, 'test');
    expect(() => run('{ name: mtma, transfer: { mode: frozen } }')).toThrow(RunConfigError);
    expect(() => run('{ name: mtma, transfer: { mode: finetune } }')).toThrow(/algo\.transfer: mode 'finetune' loads a pretrained decision network: give transfer\.decl_from/);
    expect(() => run('{ name: mtma, transfer: { mode: scratch, decl_from: x } }')).toThrow(/algo\.transfer: decl_from is only read by modes 'frozen' and 'finetune'/);
    expect(() => run('{ name: mtma, transfer: { mode: frozn } }')).toThrow(/algo\.transfer\.mode/);
    expect(() => run('{ name: mtma, batch_size: 64, buffer_size: 32 }')).toThrow(/algo\.batch_size: 64 episodes per update exceed algo\.buffer_size 32/);
  });
});

describe('resources and state', () => {
  test('no tensors leak: flat over updates and acting, none left after dispose', () => {
    const before = tf.memory().numTensors;
    const learner = new MtmaLearner({ tasks: [spec('a', 0), spec('b', 1)], config: config({ mixer: 'qmix', use_rnn: true }), seed: 3 });
    const a = new FakeTask(learner.tasks[0], 1);
    const b = new FakeTask(learner.tasks[1], 2);
    const round = () => {
      a.episodes(learner, [0, 1]);
      b.episodes(learner, [1, 0]);
    };
    round();
    round();
    const during = tf.memory().numTensors;
    const updates = learner.updateCount;
    round();
    round();
    void learner.evaluationPolicy('a', 2, 'e');
    expect(learner.updateCount).toBeGreaterThan(updates);
    expect(tf.memory().numTensors).toBe(during);
    learner.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('capture → restore into a new learner continues with bit-identical stats and weights', async () => {
    const make = () => new MtmaLearner({ tasks: [spec('a', 0), spec('b', 1)], config: config({ mixer: 'qmix' }), seed: 4 });
    const learner = make();
    const a = new FakeTask(learner.tasks[0], 1);
    const b = new FakeTask(learner.tasks[1], 2);
    a.episodes(learner, [0, 1, 0]);
    b.episodes(learner, [1, 0, 0]);
    // Stop inside episodes and between a task's items (pending stats, partial episodes, hidden states).
    a.step(learner);
    const state = await learner.captureState();
    const restored = make();
    await restored.restoreState(state);
    const continued = (l: MtmaLearner, ta: FakeTask, tb: FakeTask) => [...tb.episodes(l, [0, 1]), ...ta.episodes(l, [1, 0])];
    // Clones of the fake envs so both learners see the same observations.
    const [a2, b2] = [a.clone(), b.clone()];
    const one = continued(learner, a, b);
    const two = continued(restored, a2, b2);
    expect(one.length).toBeGreaterThan(0);
    expect(two).toEqual(one);
    expect(values(restored.decl.namedVariables())).toEqual(values(learner.decl.namedVariables()));
    // A learner of another transfer mode refuses the state, saying why.
    const frozen = new MtmaLearner({ tasks: [spec('a', 0), spec('b', 1)], config: config({ mixer: 'qmix', transfer: { mode: 'random_frozen' } }), seed: 4 });
    await expect(frozen.restoreState(state)).rejects.toThrow(/transfer\.mode 'scratch', this run uses 'random_frozen'/);
    for (const l of [learner, restored, frozen]) l.dispose();
  });
});

// ---------------------------------------------------------------------------------------------
// Through the training loop
// ---------------------------------------------------------------------------------------------

const withoutClock = (records: MetricsRecord[]) => records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !WALL_CLOCK_FIELDS.includes(k))));

// combat-3v3: 3 agents, 9 actions; combat-2a3b: 5 agents, 11 actions; other observation sizes too.
const TWO_COMBAT_TASKS = `
tasks:
  - { id: combat-3v3, num_envs: 2 }
  - { id: combat-2a3b, num_envs: 2 }
algo: { name: mtma, rnn_hidden_dim: 16, decl_hidden_dim: 8, batch_size: 4, buffer_size: 50, epsilon_anneal_time: 1500, target_update_interval_or_tau: 10 }
run: { seed: 1, total_env_steps: 1600, log_interval: 400, eval_interval: 800, eval_episodes: 2, checkpoint_interval: 800 }
`;

let count = 0;
async function train(yaml: string, over: string[] = [], extra: Partial<TrainingRunOptions> = {}) {
  const cfg = parseRunConfig(yaml, 'test', over);
  const outDir = extra.outDir ?? path.join(root, `run-${count++}`);
  const summary = await runTraining({ config: cfg, outDir, backend: { name: 'wasm', reason: 'test' }, ...extra });
  return { outDir, summary, metrics: MetricsLog.read(path.join(outDir, 'metrics.jsonl')) };
}

describe('a two-task combat run', () => {
  let full: Awaited<ReturnType<typeof train>>;
  beforeAll(async () => {
    full = await train(TWO_COMBAT_TASKS);
  }, 60000);

  test('trains both tasks through one learner: per-task metrics rows with weights and losses, per-task evaluations', async () => {
    const { metrics, summary } = full;
    expect(summary.env_steps).toBe(1600);
    const rows = metrics.filter((r) => r.kind === 'train');
    expect(new Set(rows.map((r) => r.task))).toEqual(new Set(['combat-3v3', 'combat-2a3b']));
    for (const task of ['combat-3v3', 'combat-2a3b']) {
      const last = rows.filter((r) => r.task === task).at(-1)!;
      expect(last.task_env_steps).toBe(800);
      expect(typeof last.loss).toBe('number');
      expect(typeof last.task_weight).toBe('number');
      expect(typeof last.decl_grad_norm).toBe('number');
    }
    expect(summary.updates).toBeGreaterThan(10);
    // Each update is counted once, by the task whose item triggered it.
    const taskUpdates = (task: string) => Number(rows.filter((r) => r.task === task).at(-1)!.task_updates);
    expect(taskUpdates('combat-3v3') + taskUpdates('combat-2a3b')).toBe(summary.updates);
    expect(metrics.filter((r) => r.kind === 'eval').map((r) => r.task)).toEqual(['combat-3v3', 'combat-2a3b', 'combat-3v3', 'combat-2a3b']);
    const data = await readCheckpoint(summary.checkpoint!);
    expect(Object.keys(data.models)).toEqual(expect.arrayContaining([DECL_MODEL, 'tasks/combat-3v3/policy', 'tasks/combat-2a3b/policy']));
  });

  test('loadPolicy acts with the MTMA policy of either task, for any number of envs', async () => {
    for (const task of ['combat-3v3', 'combat-2a3b']) {
      const policy = await loadPolicy(full.outDir, { numEnvs: 3, task });
      const vec = await VectorEnv.create({ env: { id: task }, numEnvs: 3, seed: 5 });
      try {
        expect(policy.spec.kind).toBe('action-conditioned-q');
        const result = await evaluatePolicy(vec, policy, 3);
        expect(result.episodes).toBe(3);
      } finally {
        policy.dispose();
        await vec.close();
      }
    }
  }, 30000);

  test('stopped inside a round and resumed = uninterrupted', async () => {
    const part = await train(TWO_COMBAT_TASKS, [], { shouldStop: (p) => p.envSteps >= 1002 });
    expect(part.summary.interrupted).toBe(true);
    const data = await readCheckpoint(part.summary.checkpoint!);
    expect((data.metadata.loop as { roundPosition: number }).roundPosition).toBe(1);
    const resumed = await train(TWO_COMBAT_TASKS, [], { outDir: part.outDir, resume: { data, path: part.summary.checkpoint! } });
    expect(withoutClock(resumed.metrics)).toEqual(withoutClock(full.metrics));
    const other = await train(TWO_COMBAT_TASKS, ['run.seed=2', 'run.total_env_steps=400', 'run.log_interval=200']);
    expect(withoutClock(other.metrics).slice(0, 2)).not.toEqual(withoutClock(full.metrics).slice(0, 2));
  }, 90000);

  test('a frozen transfer run on a held-out task of other sizes keeps the source DecL bit for bit', async () => {
    const source = await readCheckpoint(full.summary.checkpoint!);
    const yaml = `env: { id: combat-4v5 }\nalgo: { name: mtma, rnn_hidden_dim: 16, decl_hidden_dim: 8, batch_size: 4, buffer_size: 50, transfer: { mode: frozen, decl_from: ${JSON.stringify(full.outDir)} } }\nrun: { seed: 3, total_env_steps: 600, num_envs: 2, log_interval: 300, eval_interval: 600, eval_episodes: 1, checkpoint_interval: 600 }\n`;
    const run = await train(yaml);
    expect(run.summary.updates).toBeGreaterThan(0);
    const data = await readCheckpoint(run.summary.checkpoint!);
    expect(data.models[DECL_MODEL]).toEqual(source.models[DECL_MODEL]);
    expect(data.optimizers.decl).toBeUndefined();
  }, 60000);
});
