import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { registerBuiltinEnvs } from '../envs/builtin';
import { type CheckpointData, decodeCheckpoint, encodeCheckpoint, readCheckpoint } from '../runtime/core/checkpoint';
import { parseRunConfig } from '../runtime/training/config-loader';
import type { Transition } from '../agents/experience';
import { type PolicyBatch, emptyContext } from '../agents/policies/policy';
import { MetricsLog, type MetricsRecord, WALL_CLOCK_FIELDS } from '../runtime/core/metrics-log';
import { Rng } from '../runtime/core/rng';
import type { RunConfig } from '../runtime/training/run-config';
import { selectBackend } from '../runtime/core/tf-backend';
import { runTraining } from '../runtime/training/training-run';
import { type VectorLayout, layoutFor } from '../envs/env-shape';
import { createLearner } from '../trainers/index';
import { Sac, type SacConfig, sacConfigSchema } from '../trainers/sac';
import { type LearnerState, type TrainStats, taskOfLayout } from '../trainers/learner';
import { PointReachEnv } from './fixtures/point-reach-env';

// wasm is the backend SAC trains on, and several times faster than cpu here.
beforeAll(async () => {
  await selectBackend('wasm');
});

/** A full config from the real schema, with test-sized networks. */
function sacConfig(over: Partial<SacConfig> = {}): SacConfig {
  return sacConfigSchema.parse({ name: 'sac', hidden_dims: [32, 32], batch_size: 32, learning_starts: 100, ...over });
}

// ---------------------------------------------------------------------------------------------
// A synchronous env loop over point-reach that feeds the trainer what the experience stream would
// ---------------------------------------------------------------------------------------------

class PointLoop {
  readonly envs: PointReachEnv[];
  readonly layout: VectorLayout;
  private obs: Float32Array;
  private starts: Uint8Array;
  private steps = 0;

  constructor(numEnvs: number, numAgents: number, seed: number) {
    this.envs = Array.from({ length: numEnvs }, () => new PointReachEnv({ numAgents }));
    this.layout = layoutFor(this.envs[0], numEnvs);
    const { obsDim } = this.layout;
    this.obs = new Float32Array(numEnvs * numAgents * obsDim);
    this.envs.forEach((env, e) => {
      const { observations } = env.reset({ seed: seed * 1000 + e });
      env.possibleAgents.forEach((a, i) => this.obs.set(observations[a], (e * numAgents + i) * obsDim));
    });
    this.starts = new Uint8Array(numEnvs).fill(1);
  }

  step(sac: Sac): { actions: Float32Array; stats?: TrainStats } {
    const { numEnvs: E, numAgents: A, obsDim, actDim } = this.layout;
    const alive = new Uint8Array(E * A).fill(1);
    const batch: PolicyBatch = { obs: this.obs, state: new Float32Array(0), masks: new Uint8Array(0), alive, episodeStart: this.starts, layout: this.layout, context: emptyContext(this.layout.numEnvs) };
    const actions = new Float32Array(E * A * actDim);
    void sac.policy.act(batch, actions);
    const rewards = new Float32Array(E * A);
    const truncated = new Uint8Array(E * A);
    const done = new Uint8Array(E);
    const nextObs = new Float32Array(this.obs.length);
    const after = new Float32Array(this.obs.length);
    this.envs.forEach((env, e) => {
      const acts: Record<string, Float32Array> = {};
      env.possibleAgents.forEach((a, i) => (acts[a] = actions.slice((e * A + i) * actDim, (e * A + i + 1) * actDim)));
      const r = env.step(acts);
      env.possibleAgents.forEach((a, i) => {
        const j = e * A + i;
        rewards[j] = r.rewards[a];
        truncated[j] = r.truncations[a] ? 1 : 0;
        nextObs.set(r.observations[a], j * obsDim);
        after.set(r.observations[a], j * obsDim);
      });
      if (env.agents.length === 0) {
        done[e] = 1;
        const { observations } = env.reset();
        env.possibleAgents.forEach((a, i) => after.set(observations[a], (e * A + i) * obsDim));
      }
    });
    const tr: Transition = {
      kind: 'transition', task: 'default', taskIndex: 0, policyVersion: 0, teamSize: new Int32Array(E).fill(A), latent: new Float32Array(0), layout: this.layout, step: this.steps, obs: this.obs, state: new Float32Array(0), masks: new Uint8Array(0), alive,
      episodeStart: this.starts, actions, extras: {}, rewards, terminated: new Uint8Array(E * A), truncated, nextObs, nextState: new Float32Array(0),
      nextAlive: alive, nextMasks: new Uint8Array(0), episodeDone: done, episodeAborted: new Uint8Array(E), episodes: [],
    };
    this.obs = after;
    this.starts = done;
    this.steps++;
    return { actions, stats: sac.observe(tr, this.steps * E) };
  }

  run(sac: Sac, vectorSteps: number): TrainStats[] {
    const out: TrainStats[] = [];
    for (let i = 0; i < vectorSteps; i++) {
      const s = this.step(sac).stats;
      if (s) out.push(s);
    }
    return out;
  }
}

/** A hand-made transition for a layout, with every agent alive unless `alive` says otherwise. */
function transition(layout: VectorLayout, fill: { obs: Float32Array; actions?: Float32Array; reward?: number; terminated?: boolean; truncated?: boolean; alive?: Uint8Array; aborted?: boolean }): Transition {
  const { numEnvs: E, numAgents: A, actDim } = layout;
  const n = E * A;
  return {
    kind: 'transition', task: 'default', taskIndex: 0, policyVersion: 0, teamSize: new Int32Array(E).fill(A), latent: new Float32Array(0), layout, step: 0, obs: fill.obs, state: new Float32Array(0), masks: new Uint8Array(0), alive: fill.alive ?? new Uint8Array(n).fill(1),
    episodeStart: new Uint8Array(E), actions: fill.actions ?? new Float32Array(n * actDim), extras: {}, rewards: new Float32Array(n).fill(fill.reward ?? 0),
    terminated: new Uint8Array(n).fill(fill.terminated ? 1 : 0), truncated: new Uint8Array(n).fill(fill.truncated ? 1 : 0), nextObs: fill.obs,
    nextState: new Float32Array(0), nextAlive: new Uint8Array(n).fill(1), nextMasks: new Uint8Array(0), episodeDone: new Uint8Array(E).fill(fill.terminated || fill.truncated ? 1 : 0),
    episodeAborted: new Uint8Array(E).fill(fill.aborted ? 1 : 0), episodes: [],
  };
}

const withoutClock = (records: MetricsRecord[]) => records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !WALL_CLOCK_FIELDS.includes(k))));

// ---------------------------------------------------------------------------------------------

describe('sac end to end with runTraining on point-reach', () => {
  let root: string;
  const fixture = path.join(__dirname, 'fixtures', 'point-reach-env.js');
  beforeAll(() => {
    registerBuiltinEnvs();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-sac-'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  function config(algo: string, run: string, over: string[] = []): RunConfig {
    return parseRunConfig(`env: { id: point-reach, module: ${JSON.stringify(fixture)} }\nalgo: { name: sac, ${algo} }\nrun: { ${run} }\n`, 'test', over);
  }
  let runs = 0;
  async function train(cfg: RunConfig, extra: Partial<Parameters<typeof runTraining>[0]> = {}) {
    const outDir = extra.outDir ?? path.join(root, `run-${runs++}`);
    const summary = await runTraining({ config: cfg, outDir, backend: { name: 'wasm', reason: 'test' }, ...extra });
    return { outDir, summary, metrics: MetricsLog.read(path.join(outDir, 'metrics.jsonl')) };
  }

  test('learns to reach the goal: evaluation return and success far above random', async () => {
    // Random actions: return ≈ −20, success ≈ 0.1 (the first log interval is all random).
    const cfg = config(
      'hidden_dims: [64, 64], batch_size: 64, learning_starts: 300, gamma: 0.9, q_lr: 0.001, policy_lr: 0.001',
      'seed: 0, total_env_steps: 2000, num_envs: 1, log_interval: 300, eval_interval: 2000, eval_episodes: 20, checkpoint_interval: 2000',
    );
    const { summary, metrics } = await train(cfg);
    const first = metrics.find((r) => r.kind === 'train')!;
    expect(first.return_mean as number).toBeLessThan(-12);
    expect(summary.updates).toBe(1700);
    expect(summary.final_eval!.return_mean).toBeGreaterThan(-6);
    expect(summary.final_eval!.win_rate!).toBeGreaterThanOrEqual(0.8);
    const last = metrics.filter((r) => r.kind === 'train').pop()!;
    for (const key of ['qf1_loss', 'qf2_loss', 'qf_loss', 'qf1_values', 'actor_loss', 'alpha', 'alpha_loss', 'entropy']) expect(Number.isFinite(last[key])).toBe(true);
  }, 240000);

  test('identical metrics with 0 and 1 worker threads, and a Ctrl-C resume matches the uninterrupted run', async () => {
    const cfg = config(
      'hidden_dims: [16, 16], batch_size: 16, learning_starts: 100',
      'seed: 2, total_env_steps: 400, num_envs: 2, log_interval: 50, eval_interval: 200, eval_episodes: 2, checkpoint_interval: 200',
    );
    const zero = await train(cfg);
    const one = await train(config('hidden_dims: [16, 16], batch_size: 16, learning_starts: 100', 'seed: 2, total_env_steps: 400, num_envs: 2, log_interval: 50, eval_interval: 200, eval_episodes: 2, checkpoint_interval: 200, workers: 1'));
    expect(zero.metrics.filter((r) => r.kind === 'train').length).toBe(8);
    expect(withoutClock(one.metrics)).toEqual(withoutClock(zero.metrics));
    // Stopped mid-segment (updates, replay and RNGs in flight), then resumed.
    const part = await train(cfg, { shouldStop: (p) => p.envSteps >= 290 });
    expect(part.summary.interrupted).toBe(true);
    const data = await readCheckpoint(part.summary.checkpoint!);
    const resumed = await train(cfg, { outDir: part.outDir, resume: { data, path: part.summary.checkpoint! } });
    expect(withoutClock(resumed.metrics)).toEqual(withoutClock(zero.metrics));
    // And another seed differs, so the comparisons can fail.
    const other = await train(config('hidden_dims: [16, 16], batch_size: 16, learning_starts: 100', 'seed: 3, total_env_steps: 400, num_envs: 2, log_interval: 50, eval_interval: 200, eval_episodes: 2, checkpoint_interval: 200'));
    expect(withoutClock(other.metrics)).not.toEqual(withoutClock(zero.metrics));
  }, 240000);
});

describe('the update', () => {
  test('terminated transitions do not bootstrap, truncated ones do', () => {
    // One-step episodes with reward 1 and constant observation: Q → 1 when terminated,
    // Q → 1 + γ·V(s') ≈ 1 / (1 − γ) = 2 when truncated (α negligible).
    const layout: VectorLayout = { ...layoutFor(new PointReachEnv(), 1) };
    const obs = Float32Array.of(0.1, 0.2, 0.3, 0.4);
    const qAfter = (end: 'terminated' | 'truncated') => {
      const sac = new Sac({ layout, config: sacConfig({ gamma: 0.5, autotune: false, alpha: 1e-4, learning_starts: 0, q_lr: 0.01, tau: 0.1 }), seed: 1 });
      let stats: TrainStats[] = [];
      for (let i = 0; i < 400; i++) {
        const s = sac.observe(transition(layout, { obs, reward: 1, [end]: true }), i + 1);
        if (s) stats = [s];
      }
      sac.dispose();
      return stats[0].qf1_values;
    };
    expect(qAfter('terminated')).toBeCloseTo(1, 1);
    expect(qAfter('truncated')).toBeGreaterThan(1.7);
  });

  test('dead agents and aborted episodes add no transitions; each live agent adds one', () => {
    const layout = layoutFor(new PointReachEnv({ numAgents: 3 }), 2);
    const sac = new Sac({ layout, config: sacConfig({ learning_starts: 1000 }), seed: 0 });
    const obs = new Float32Array(2 * 3 * 4).map((_, i) => i / 10);
    sac.observe(transition(layout, { obs, alive: Uint8Array.of(1, 0, 1, 0, 0, 1) }), 2);
    expect(sac.replay.size).toBe(3);
    expect(Array.from(sac.replay.agent.subarray(0, 3))).toEqual([0, 2, 2]);
    expect(Array.from(sac.replay.obs.subarray(4, 8))).toEqual(Array.from(obs.subarray(8, 12)));
    sac.observe(transition(layout, { obs, aborted: true }), 4);
    expect(sac.replay.size).toBe(3);
    sac.dispose();
  });

  test("dead agents' action slots are zeroed, whether acting randomly or through the actor", () => {
    const layout = layoutFor(new PointReachEnv({ numAgents: 3 }), 2);
    const sac = new Sac({ layout, config: sacConfig({ learning_starts: 1000 }), seed: 0 });
    const alive = Uint8Array.of(1, 0, 1, 0, 0, 1);
    const batch: PolicyBatch = { obs: new Float32Array(2 * 3 * 4).fill(0.3), state: new Float32Array(0), masks: new Uint8Array(0), alive, episodeStart: new Uint8Array(2), layout, context: emptyContext(2) };
    for (const policy of [sac.policy, sac.evaluationPolicy('default', layout.numEnvs, 'e'), sac.evaluationPolicy('default', layout.numEnvs, 'e', { sample: true })]) {
      // A reused buffer holding last step's actions (7 is outside the Box, so any survivor shows).
      const actions = new Float32Array(12).fill(7);
      void policy.act(batch, actions);
      for (let i = 0; i < 6; i++) {
        const slot = Array.from(actions.subarray(i * 2, i * 2 + 2));
        if (alive[i]) expect(slot.every((a) => Math.abs(a) <= 1)).toBe(true);
        else expect(slot).toEqual([0, 0]);
      }
    }
    sac.dispose();
  });

  test('actions are scaled onto the Box bounds and stored back in [−1, 1]', () => {
    const base = layoutFor(new PointReachEnv(), 4);
    const layout: VectorLayout = { ...base, actionLow: [0, -3], actionHigh: [1, 5] };
    const sac = new Sac({ layout, config: sacConfig({ learning_starts: 1000 }), seed: 0 });
    const obs = new Float32Array(16);
    const actions = new Float32Array(8);
    const batch: PolicyBatch = { obs, state: new Float32Array(0), masks: new Uint8Array(0), alive: new Uint8Array(4).fill(1), episodeStart: new Uint8Array(4), layout, context: emptyContext(4) };
    const seen: number[][] = [[], []];
    for (let t = 0; t < 50; t++) {
      void sac.policy.act(batch, actions);
      for (let i = 0; i < 8; i++) seen[i % 2].push(actions[i]);
      sac.observe(transition(layout, { obs, actions }), (t + 1) * 4);
    }
    expect(Math.min(...seen[0])).toBeGreaterThanOrEqual(0);
    expect(Math.max(...seen[0])).toBeLessThanOrEqual(1);
    expect(Math.min(...seen[1])).toBeLessThan(-2);
    expect(Math.max(...seen[1])).toBeGreaterThan(4);
    const stored = Array.from(sac.replay.actions.subarray(0, 400));
    expect(Math.min(...stored)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...stored)).toBeLessThanOrEqual(1);
    // Row 0 of the replay is env 0's first action, mapped back.
    expect(sac.replay.actions[0]).toBeCloseTo(seen[0][0] * 2 - 1, 5);
    expect(sac.replay.actions[1]).toBeCloseTo((seen[1][0] - 1) / 4, 5);
    sac.dispose();
    expect(() => new Sac({ layout: { ...base, actionLow: [-Infinity, 0], actionHigh: [Infinity, 1] }, config: sacConfig(), seed: 0 })).toThrow(/agent 'point_0' action dimension 0 has bounds \[-Infinity, Infinity\].*finite/);
  });
});

/** Critic k's weight `name` [in, out] as a separate MLP holds it. */
function criticWeights(sac: Sac, k: number, name: string): number[][] {
  const tensors = sac.critic.memberTensors(k);
  const out = tensors[name].arraySync() as number[][];
  tf.dispose(Object.values(tensors));
  return out;
}

describe('multi-task', () => {
  // 2 agents whose observations are [x, y, task one-hot (3)].
  const layout: VectorLayout = {
    numEnvs: 2, agentIds: ['a', 'b'], numAgents: 2, obsDim: 5, agentObsDims: [5, 5], actDim: 2, numActions: 0, agentNumActions: [0, 0],
    discreteActions: false, stateDim: 0, maxEpisodeSteps: 10, reportsSuccess: false, sharedTeamReward: false, numTasks: 3,
  };
  const taskObs = (task: number, rng: Rng) => {
    const o = new Float32Array(2 * 2 * 5);
    for (let i = 0; i < 4; i++) {
      o[i * 5] = rng.uniform(-1, 1);
      o[i * 5 + 1] = rng.uniform(-1, 1);
      o[i * 5 + 2 + task] = 1;
    }
    return o;
  };

  test('multi_head + per_task_alpha: one head and one α per task, and only the tasks in the data learn', () => {
    const sac = new Sac({ layout, config: sacConfig({ multi_head: true, per_task_alpha: true, learning_starts: 10, batch_size: 16, policy_frequency: 1 }), seed: 0 });
    const vars = () => ({ actorOut: sac.actor.namedVariables()['fc2/w'].arraySync() as number[][], qOut: criticWeights(sac, 0, 'fc2/w') });
    const before = vars();
    const initialAlpha = tf.tidy(() => tf.exp(sac.logAlpha).dataSync()[0]);
    expect(before.actorOut[0].length).toBe(3 * 2 * 2); // 3 heads × (mean, log-std) × 2 dims
    expect(before.qOut[0].length).toBe(3);
    const rng = new Rng(4);
    let last: TrainStats | undefined;
    // Only task 1 in the data.
    for (let t = 0; t < 30; t++) last = sac.observe(transition(layout, { obs: taskObs(1, rng), actions: new Float32Array(8).map(() => rng.uniform(-1, 1)), reward: rng.next() }), (t + 1) * 2) ?? last;
    expect(last).toBeDefined();
    // Untouched to the bit: Adam on a zero gradient moves nothing.
    expect(last!.alpha_task_0).toBe(initialAlpha);
    expect(last!.alpha_task_2).toBe(initialAlpha);
    expect(initialAlpha).toBeCloseTo(0.2, 6);
    expect(last!.alpha_task_1).not.toBeCloseTo(0.2, 4);
    const after = vars();
    const column = (m: number[][], c: number) => m.map((row) => row[c]);
    // Critic head columns: task 1's moved, tasks 0 and 2's did not.
    expect(column(after.qOut, 0)).toEqual(column(before.qOut, 0));
    expect(column(after.qOut, 2)).toEqual(column(before.qOut, 2));
    expect(column(after.qOut, 1)).not.toEqual(column(before.qOut, 1));
    // Actor heads: 4 columns each (mean, log-std × 2 dims); columns 4..7 are task 1's.
    for (let c = 0; c < 12; c++) {
      if (c >= 4 && c < 8) expect(column(after.actorOut, c)).not.toEqual(column(before.actorOut, c));
      else expect(column(after.actorOut, c)).toEqual(column(before.actorOut, c));
    }
    // The deterministic evaluation policy acts per task through its head.
    const policy = sac.evaluationPolicy('default', layout.numEnvs, 'eval');
    const act = (task: number) => {
      const a = new Float32Array(8);
      void policy.act({ obs: taskObs(task, new Rng(9)), state: new Float32Array(0), masks: new Uint8Array(0), alive: new Uint8Array(4).fill(1), episodeStart: new Uint8Array(2), layout, context: emptyContext(2) }, a);
      return Array.from(a);
    };
    expect(act(0)).not.toEqual(act(1));
    sac.dispose();
  });

  test('a task one-hot that is missing is an error naming the agent; multi-task keys need a multi-task env', () => {
    const sac = new Sac({ layout, config: sacConfig({ multi_head: true }), seed: 0 });
    expect(() => sac.observe(transition(layout, { obs: new Float32Array(20) }), 2)).toThrow(/agent 'a' observation does not end with a task one-hot of length 3/);
    sac.dispose();
    const single = layoutFor(new PointReachEnv(), 1);
    expect(() => new Sac({ layout: single, config: sacConfig({ per_task_alpha: true }), seed: 0 })).toThrow(/algo\.per_task_alpha needs a multi-task env/);
  });
});

describe('checkpoints', () => {
  test('capture → restore into a new trainer continues with bit-identical actions, stats and weights', async () => {
    const config = sacConfig({ learning_starts: 60, policy_frequency: 2, target_network_frequency: 2, updates_per_step: 0.75 });
    const loop = new PointLoop(2, 2, 7);
    const sac = new Sac({ layout: loop.layout, config, seed: 'ckpt' });
    loop.run(sac, 51); // mid-episode, replay partly filled, an odd number of updates owed
    const state = await sac.captureState();
    const data: CheckpointData = {
      createdAt: new Date(0).toISOString(), config: {}, counters: { envSteps: 0, episodes: 0, updates: 0, logIndex: 0 },
      models: state.models, optimizers: state.optimizers, rngs: state.rngs, arrays: state.arrays, backend: tf.getBackend(), metadata: state.json,
    };
    const back = decodeCheckpoint(encodeCheckpoint(data), 'mem.ckpt');
    const restored: LearnerState = { models: back.models, optimizers: back.optimizers, rngs: back.rngs, arrays: back.arrays, json: back.metadata };
    // The same env states for every continuation: loops driven to the same point by a same-seed trainer.
    const advanced = () => {
      const l = new PointLoop(2, 2, 7);
      const driver = new Sac({ layout: l.layout, config, seed: 'ckpt' });
      l.run(driver, 51);
      driver.dispose();
      return l;
    };
    const loop2 = advanced();

    const trace = (s: Sac, l: PointLoop) => {
      const actions: number[] = [];
      const stats: TrainStats[] = [];
      for (let i = 0; i < 30; i++) {
        const r = l.step(s);
        actions.push(...r.actions);
        if (r.stats) stats.push(r.stats);
      }
      return { actions, stats };
    };
    const original = trace(sac, loop);
    const resumed = new Sac({ layout: loop.layout, config, seed: 'ckpt' });
    await resumed.restoreState(restored);
    const again = trace(resumed, loop2);
    expect(original.stats.length).toBe(30);
    expect(again.actions).toEqual(original.actions);
    expect(again.stats).toEqual(original.stats);
    const bits = (s: Sac) => [s.actor, s.critic, s.criticTarget].flatMap((n) => Object.values(n.namedVariables())).concat([s.logAlpha]).map((v) => Array.from(new Uint32Array(v.dataSync().slice().buffer)));
    expect(bits(resumed)).toEqual(bits(sac));

    // Without the restore the same seed does not continue the same way, so the test has teeth.
    const fresh = new Sac({ layout: loop.layout, config, seed: 'ckpt' });
    expect(trace(fresh, advanced()).actions).not.toEqual(original.actions);
    // What is missing is named.
    const { qf2_target: _gone, ...noTarget } = state.models;
    await expect(fresh.restoreState({ ...state, models: noTarget })).rejects.toThrow(/no model 'qf2_target'/);
    await expect(fresh.restoreState({ ...state, json: { ...state.json, algo: 'qmix' } })).rejects.toThrow(/captured by 'qmix'/);
    for (const s of [sac, resumed, fresh]) s.dispose();
  });
});

describe('resources', () => {
  test('tf.memory().numTensors stays flat over 150 updates with acting in between', () => {
    const loop = new PointLoop(1, 2, 1);
    const sac = new Sac({ layout: loop.layout, config: sacConfig({ learning_starts: 20, batch_size: 8, hidden_dims: [8], policy_frequency: 2 }), seed: 1 });
    loop.run(sac, 25);
    const before = tf.memory().numTensors;
    const stats = loop.run(sac, 150);
    expect(stats.length).toBe(150);
    expect(sac.updateCount).toBe(155);
    expect(tf.memory().numTensors).toBe(before);
    sac.dispose();
  });
});

describe.each(['wasm', 'cpu'] as const)('on the %s backend', (backend) => {
  afterAll(async () => {
    await selectBackend('wasm');
  });

  test('a few updates run and move the weights', async () => {
    await selectBackend(backend);
    expect(tf.getBackend()).toBe(backend);
    const loop = new PointLoop(2, 1, 3);
    const sac = new Sac({ layout: loop.layout, config: sacConfig({ learning_starts: 40, batch_size: 16 }), seed: 5 });
    const w0 = sac.actor.namedVariables()['fc0/w'].dataSync().slice();
    const stats = loop.run(sac, 24);
    expect(stats.length).toBe(4);
    expect(stats.every((s) => Number.isFinite(s.qf_loss) && Number.isFinite(s.alpha))).toBe(true);
    expect(Array.from(sac.actor.namedVariables()['fc0/w'].dataSync())).not.toEqual(Array.from(w0));
    sac.dispose();
  });
});

describe('configuration', () => {
  const env = 'env: { id: lbf-8x8-2p-2f-coop }\n';
  beforeAll(() => registerBuiltinEnvs());

  test('defaults are CleanRL\'s', () => {
    const cfg = parseRunConfig(`${env}algo: { name: sac }\n`, 'test');
    expect(cfg.algo).toMatchObject({ policy_lr: 3e-4, q_lr: 1e-3, gamma: 0.99, tau: 0.005, alpha: 0.2, autotune: true, buffer_size: 1_000_000, batch_size: 256, learning_starts: 5000, policy_frequency: 2, target_network_frequency: 1, hidden_dims: [256, 256] });
    expect(cfg.run.num_envs).toBe(1);
  });

  test('bad values and keys are errors naming the key', () => {
    expect(() => parseRunConfig(`${env}algo: { name: sac, tau: 2 }\n`, 'test')).toThrow(/algo\.tau: expected a number > 0 and <= 1, got 2/);
    expect(() => parseRunConfig(`${env}algo: { name: sac, lr: 0.1 }\n`, 'test')).toThrow(/algo\.lr: unknown key for sac/);
    expect(() => parseRunConfig(`${env}algo: { name: sac, hidden_dims: 256 }\n`, 'test')).toThrow(/algo\.hidden_dims/);
    expect(() => parseRunConfig(`${env}algo: { name: sac, learning_starts: -1 }\n`, 'test')).toThrow(/algo\.learning_starts/);
    expect(() => new Sac({ layout: layoutFor(new PointReachEnv(), 1), config: sacConfig({ log_std_min: 2, log_std_max: -5 }), seed: 0 })).toThrow(/algo\.log_std_min \(2\) must be below algo\.log_std_max/);
  });

  test('sac refuses discrete actions and the Q-learners still refuse continuous ones', () => {
    const discrete = parseRunConfig(`${env}algo: { name: sac }\n`, 'test');
    const lbf = layoutFor(new PointReachEnv(), 1);
    const task = (l: VectorLayout) => taskOfLayout(l, 'lbf-8x8-2p-2f-coop', { id: 'lbf-8x8-2p-2f-coop' });
    expect(() => createLearner({ config: discrete.algo, tasks: [task({ ...lbf, discreteActions: true, numActions: 5 })], seed: 0 })).toThrow(/algo 'sac' needs continuous actions, but env 'lbf-8x8-2p-2f-coop' has discrete action spaces/);
    const qmix = parseRunConfig(`${env}algo: { name: qmix }\n`, 'test');
    expect(() => createLearner({ config: qmix.algo, tasks: [task(lbf)], seed: 0 })).toThrow(/algo 'qmix' needs discrete actions/);
  });
});
