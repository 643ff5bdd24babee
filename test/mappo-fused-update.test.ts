import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import type { TrajectoryChunk, Transition } from '../agents/experience';
import { type PolicyBatch, emptyContext } from '../agents/policies/policy';
import type { VectorLayout } from '../envs/env-shape';
import { restoreTensors } from '../runtime/core/checkpoint-format';
import { Rng } from '../runtime/core/rng';
import { selectBackend } from '../runtime/core/tf-backend';
import type { ExperienceSampler, OnlineLearner, TaskSpec, TrainStats } from '../trainers/learner';
import { Mappo, type MappoHyperparams, ippoConfigSchema, mappoConfigSchema } from '../trainers/mappo';
import { MtmaLearner, mtmaConfigSchema } from '../trainers/mtma';
import { SyntheticChunks } from '../trainers/synthetic-experience';

/*
 * The MAPPO/IPPO and MTMA updates were rewritten to make far fewer kernel calls (batched
 * critic bootstraps, loss terms fused, one read-back per update). The fixture holds what the
 * OLD updates (commit 35d2519) gave on wasm for small seeded learners: the stats and every
 * model tensor after 1 and 2 updates. The rewrite must reproduce them to float tolerance.
 *
 * Regenerate (only with the old code checked out!): WRITE_MAPPO_FIXTURE=1 npx jest dist/test/mappo-fused-update.test.js
 */

const FIXTURE = path.join(__dirname, '..', '..', 'test', 'fixtures', 'mappo-fused-update.json');
const WRITE = process.env.WRITE_MAPPO_FIXTURE === '1';

beforeAll(async () => {
  await selectBackend('wasm');
});

// ---------------------------------------------------------------------------------------------
// Seeded inputs
// ---------------------------------------------------------------------------------------------

/** Two agents, the second with one action fewer (a padded, always illegal action); short episodes so chunks hold episode ends. */
const LAYOUT: VectorLayout = {
  numEnvs: 2,
  agentIds: ['a', 'b'],
  numAgents: 2,
  obsDim: 3,
  agentObsDims: [3, 3],
  actDim: 1,
  numActions: 4,
  agentNumActions: [4, 3],
  discreteActions: true,
  stateDim: 5,
  maxEpisodeSteps: 5,
  reportsSuccess: false,
  sharedTeamReward: false,
};

class SeededSampler implements ExperienceSampler {
  constructor(private readonly rng: Rng) {}
  obs(n: number): Float32Array {
    return Float32Array.from({ length: n * LAYOUT.numAgents * LAYOUT.obsDim }, () => this.rng.next() * 2 - 1);
  }
  state(n: number): Float32Array {
    return Float32Array.from({ length: n * LAYOUT.stateDim }, () => this.rng.next());
  }
  masks(n: number): Uint8Array {
    const { numAgents: A, numActions: K, agentNumActions } = LAYOUT;
    const out = new Uint8Array(n * A * K);
    for (let r = 0; r < n; r++) for (let a = 0; a < A; a++) out.fill(1, (r * A + a) * K, (r * A + a) * K + agentNumActions[a]);
    return out;
  }
  reward(): number {
    return this.rng.next() < 0.3 ? this.rng.next() : 0;
  }
  discreteAction(agent: number): number {
    return this.rng.int(LAYOUT.agentNumActions[agent]);
  }
}

interface PpoCase {
  name: string;
  over: Record<string, unknown>;
}

const PPO_CASES: PpoCase[] = [
  { name: 'mappo-mlp', over: { name: 'mappo', use_rnn: false, epochs: 2, num_minibatches: 1, entropy_coef: 0.05 } },
  { name: 'mappo-gru', over: { name: 'mappo', use_rnn: true, epochs: 2, num_minibatches: 2, obs_last_action: true, standardise_returns: true } },
  { name: 'ippo-mlp', over: { name: 'ippo', use_rnn: false, epochs: 2, num_minibatches: 2, parameter_sharing: false } },
  { name: 'ippo-gru', over: { name: 'ippo', use_rnn: true, epochs: 3, num_minibatches: 1, entropy_coef: 0.05 } },
  // Later epochs see V − V_old inside the value clip range with values near 0 (standardised returns), where V_old + (V − V_old) ≠ V by rounding and the clipped branch can win the max.
  { name: 'mappo-gru-4-epochs', over: { name: 'mappo', use_rnn: true, epochs: 4, num_minibatches: 1, obs_last_action: true, standardise_returns: true } },
];

function ppoLearner(c: PpoCase): Mappo {
  const schema = c.over.name === 'ippo' ? ippoConfigSchema : mappoConfigSchema;
  const config = schema.parse({ hidden_dim: 16, rollout_length: 8, lr: 0.003, ...c.over }) as MappoHyperparams;
  const task: TaskSpec = { key: 'default', index: 0, env: { id: 'fake' }, shape: LAYOUT, numEnvs: 2 };
  return new Mappo({ layout: LAYOUT, task, config, seed: 7 });
}

/** Runs `updates` updates of the case on seeded synthetic chunks; some rows dead or without a legal action. */
async function runPpo(c: PpoCase, updates: number, each: (learner: Mappo, stats: TrainStats) => Promise<void>): Promise<void> {
  const learner = ppoLearner(c);
  try {
    const chunks = new SyntheticChunks(LAYOUT, 2, learner.collectionPolicy('default'), new SeededSampler(new Rng(11)), 'default');
    for (let u = 0; u < updates; u++) {
      const chunk = await chunks.next(8);
      const { numAgents: A, numActions: K } = LAYOUT;
      // Agent 1 of env 0 dead at rows 2–3; agent 0 of env 1 alive without a legal action at row 5.
      for (const t of [2, 3]) chunk.alive[(t * 2 + 0) * A + 1] = 0;
      chunk.masks.fill(0, ((5 * 2 + 1) * A + 0) * K, ((5 * 2 + 1) * A + 1) * K);
      const stats = learner.update(chunk);
      if (!stats) throw new Error('no update');
      await each(learner, stats);
    }
  } finally {
    learner.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// MTMA: two hand-made tasks stepped with the learner's own collection policy
// ---------------------------------------------------------------------------------------------

function mtmaLayout(numAgents: number, obsDim: number, numActions: number, stateDim: number): VectorLayout {
  return {
    numEnvs: 1, agentIds: Array.from({ length: numAgents }, (_, i) => `agent_${i}`), numAgents, obsDim, agentObsDims: new Array(numAgents).fill(obsDim),
    actDim: 1, numActions, agentNumActions: new Array(numAgents).fill(numActions), discreteActions: true, stateDim, maxEpisodeSteps: 3, reportsSuccess: true, sharedTeamReward: true,
  };
}

const MTMA_TASKS: TaskSpec[] = [
  { key: 'a', index: 0, env: { id: 'a' }, shape: mtmaLayout(2, 3, 3, 0), numEnvs: 1 },
  { key: 'b', index: 1, env: { id: 'b' }, shape: mtmaLayout(3, 5, 4, 4), numEnvs: 1 },
];

interface MtmaCase {
  name: string;
  over: Record<string, unknown>;
}

const MTMA_CASES: MtmaCase[] = [
  { name: 'mtma-gru-qmix', over: { mixer: 'qmix', mixing_embed_dim: 8, hypernet_embed: 8 } },
  { name: 'mtma-mlp-vdn', over: { mixer: 'vdn', use_rnn: false } },
];

function mtmaLearner(c: MtmaCase): MtmaLearner {
  const config = mtmaConfigSchema.parse({ name: 'mtma', rnn_hidden_dim: 16, decl_hidden_dim: 8, batch_size: 2, buffer_size: 20, lr: 0.01, target_update_interval_or_tau: 4, epsilon_anneal_time: 50, ...c.over });
  return new MtmaLearner({ tasks: MTMA_TASKS, config, seed: 3 });
}

/** Steps both tasks in turn (3-step episodes) until `updates` updates ran; `each` after every one of them. */
async function runMtma(c: MtmaCase, updates: number, each: (learner: MtmaLearner, stats: TrainStats[]) => Promise<void>): Promise<void> {
  const learner = mtmaLearner(c);
  const rng = new Rng(5);
  const t = [0, 0];
  const steps = [0, 0];
  const obs = MTMA_TASKS.map((task) => Float32Array.from({ length: task.shape.numAgents * task.shape.obsDim }, () => rng.next()));
  try {
    let stats: TrainStats[] = [];
    for (let i = 0; learner.updateCount < updates && i < 1000; i++) {
      const k = Math.floor(i / 3) % 2;
      const task = MTMA_TASKS[k];
      const s = task.shape;
      const A = s.numAgents;
      const masks = new Uint8Array(A * s.numActions).fill(1);
      const alive = new Uint8Array(A).fill(1);
      const state = Float32Array.from({ length: s.stateDim }, () => rng.next());
      const batch: PolicyBatch = { obs: obs[k], state, masks, alive, episodeStart: Uint8Array.of(t[k] === 0 ? 1 : 0), layout: { ...s, numEnvs: 1 }, context: emptyContext(1) };
      const actions = new Float32Array(A);
      void learner.collectionPolicy(task.key).act(batch, actions);
      const done = t[k] === 2;
      const nextObs = Float32Array.from({ length: A * s.obsDim }, () => rng.next());
      const reward = rng.next();
      const item: Transition = {
        kind: 'transition', task: task.key, taskIndex: task.index, layout: { ...s, numEnvs: 1 }, step: steps[k], policyVersion: learner.policyVersion(),
        obs: obs[k], state, masks, alive, episodeStart: batch.episodeStart, teamSize: Int32Array.of(A), latent: new Float32Array(0), actions, extras: {},
        rewards: new Float32Array(A).fill(reward), terminated: new Uint8Array(A).fill(done ? 1 : 0), truncated: new Uint8Array(A), nextObs, nextState: state,
        nextAlive: alive, nextMasks: masks, episodeDone: Uint8Array.of(done ? 1 : 0), episodeAborted: Uint8Array.of(0),
        episodes: done ? [{ env: 0, step: steps[k], return: reward, length: 3, success: rng.next() < 0.5 ? 1 : 0, aborted: false }] : [],
      };
      obs[k] = nextObs;
      t[k] = done ? 0 : t[k] + 1;
      steps[k]++;
      const before = learner.updateCount;
      const out = learner.observe(item, steps[k]);
      if (out) stats.push(out);
      if (learner.updateCount > before) {
        await each(learner, stats);
        stats = [];
      }
    }
    if (learner.updateCount < updates) throw new Error('mtma ran too few updates');
  } finally {
    learner.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Snapshots and comparison
// ---------------------------------------------------------------------------------------------

/** Every model tensor of the learner's checkpoint, by `model/name`, as float32 values. */
async function modelValues(learner: OnlineLearner): Promise<Record<string, Float32Array>> {
  const state = await learner.captureState();
  const out: Record<string, Float32Array> = {};
  for (const [model, data] of Object.entries(state.models)) {
    const tensors = restoreTensors(data);
    for (const [name, t] of Object.entries(tensors)) out[`${model}/${name}`] = Float32Array.from(t.dataSync());
    tf.dispose(Object.values(tensors));
  }
  // Adam's first moments are running averages of the gradients, so they show a changed
  // gradient even where Adam's normalised step hides it.
  for (const [opt, data] of Object.entries(state.optimizers)) {
    const tensors = restoreTensors(Object.fromEntries(data.weights.map((w) => [w.name, w.tensor])));
    for (const [name, t] of Object.entries(tensors)) if (name.endsWith('/m')) out[`${SLOT_PREFIX}${opt}/${name}`] = Float32Array.from(t.dataSync());
    tf.dispose(Object.values(tensors));
  }
  return out;
}

const SLOT_PREFIX = 'optimizer:';

interface Snapshot {
  stats: TrainStats[];
  params: Record<string, string>;
}
type Fixture = Record<string, Snapshot[]>;

const encode = (a: Float32Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
function decode(s: string): Float32Array {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

async function ppoSnapshots(c: PpoCase): Promise<{ stats: TrainStats[]; params: Record<string, Float32Array> }[]> {
  const out: { stats: TrainStats[]; params: Record<string, Float32Array> }[] = [];
  await runPpo(c, 2, async (learner, stats) => {
    out.push({ stats: [stats], params: await modelValues(learner) });
  });
  return out;
}

async function mtmaSnapshots(c: MtmaCase): Promise<{ stats: TrainStats[]; params: Record<string, Float32Array> }[]> {
  const out: { stats: TrainStats[]; params: Record<string, Float32Array> }[] = [];
  await runMtma(c, 2, async (learner, stats) => {
    out.push({ stats, params: await modelValues(learner) });
  });
  return out;
}

/*
 * Tolerances. The rewrite computes the same maths in another float32 order (means as sums of
 * rows pre-weighted by 1/live-count, bootstraps in one batch, hand-derived gradients of the
 * loss head), so losses and gradients differ from the old ones by a few ulps (~1e-7 relative).
 * Adam then divides by √v: where a gradient is tiny, a relative change of 1e-6 in it can move
 * its first steps by up to ~lr·1e-3, so parameters get 2e-5 + 1e-4·|p| (the first rewrite
 * stayed within 1e-7 + 1e-6·|p|; the margin is for further reorderings, e.g. fused kernels).
 * Adam's normalised step hides the gradient's scale, so the first moments (running means of
 * the gradients) are compared too, within 1e-4 of their tensor's largest value (the rewrite:
 * within 1e-6): a value-loss coefficient off by 1% or an entropy coefficient off by 5% fails.
 * The last test checks each fixture update moves parameters far beyond the tolerance.
 */
const PARAM_ABS = 2e-5;
const PARAM_REL = 1e-4;
/** Adam's first moments: within SLOT_REL of the tensor's largest moment, or SLOT_REL relative. */
const SLOT_REL = 1e-4;
const STAT_ABS = 1e-5;
const STAT_REL = 1e-4;

function expectClose(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length).toBe(want.length);
  // Moments (gradient-sized) are judged against their tensor's scale.
  const scale = what.includes(SLOT_PREFIX) ? want.reduce((m, x) => Math.max(m, Math.abs(x)), 0) : 1;
  const abs = what.includes(SLOT_PREFIX) ? SLOT_REL * scale : PARAM_ABS;
  const rel = what.includes(SLOT_PREFIX) ? SLOT_REL : PARAM_REL;
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const excess = Math.abs(got[i] - want[i]) - (abs + rel * Math.abs(want[i]));
    if (!(excess <= worst)) {
      worst = Number.isNaN(excess) ? Infinity : excess;
      at = i;
    }
  }
  if (at >= 0) throw new Error(`${what}[${at}]: got ${got[at]}, want ${want[at]} (beyond tolerance ${abs} + ${rel}·|want|)`);
}

function expectStatsClose(got: TrainStats[], want: TrainStats[], what: string): void {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    expect(Object.keys(g).sort()).toEqual(Object.keys(want[i]).sort());
    for (const [k, w] of Object.entries(want[i])) {
      const v = g[k] as number;
      if (!(Math.abs(v - (w as number)) <= STAT_ABS + STAT_REL * Math.abs(w as number))) throw new Error(`${what} stat ${k}: got ${v}, want ${w}`);
    }
  });
}

// ---------------------------------------------------------------------------------------------

if (WRITE) {
  test('writes the fixture (old code)', async () => {
    const fixture: Fixture = {};
    const toSnap = (s: { stats: TrainStats[]; params: Record<string, Float32Array> }): Snapshot => ({
      stats: s.stats,
      params: Object.fromEntries(Object.entries(s.params).map(([k, v]) => [k, encode(v)])),
    });
    for (const c of PPO_CASES) fixture[c.name] = (await ppoSnapshots(c)).map(toSnap);
    for (const c of MTMA_CASES) fixture[c.name] = (await mtmaSnapshots(c)).map(toSnap);
    fs.writeFileSync(FIXTURE, JSON.stringify(fixture) + '\n');
  });
} else {
  const fixture = (): Fixture => JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as Fixture;

  const compare = (name: string, got: { stats: TrainStats[]; params: Record<string, Float32Array> }[]) => {
    const want = fixture()[name];
    expect(got.length).toBe(want.length);
    got.forEach((g, u) => {
      expectStatsClose(g.stats, want[u].stats, `${name} update ${u + 1}`);
      // Same checkpoint tensors under the same names.
      expect(Object.keys(g.params).sort()).toEqual(Object.keys(want[u].params).sort());
      for (const [k, v] of Object.entries(want[u].params)) expectClose(g.params[k], decode(v), `${name} update ${u + 1} ${k}`);
    });
  };

  describe.each(PPO_CASES)('$name', (c) => {
    test('matches the old update to float tolerance after 1 and 2 updates', async () => {
      compare(c.name, await ppoSnapshots(c));
    });

    test('is bit-identical run to run and leaks no tensors', async () => {
      const first = await ppoSnapshots(c);
      const counts: number[] = [];
      await runPpo(c, 2, async () => {
        counts.push(tf.memory().numTensors);
      });
      expect(counts[1]).toBe(counts[0]);
      const second = await ppoSnapshots(c);
      expect(second.map((s) => s.stats)).toEqual(first.map((s) => s.stats));
      first.forEach((s, u) => {
        for (const [k, v] of Object.entries(s.params)) expect(Buffer.from(second[u].params[k].buffer).equals(Buffer.from(v.buffer))).toBe(true);
      });
    });
  });

  describe.each(MTMA_CASES)('$name', (c) => {
    test('matches the old update to float tolerance after 1 and 2 updates', async () => {
      compare(c.name, await mtmaSnapshots(c));
    });

    test('is bit-identical run to run and leaks no tensors', async () => {
      const first = await mtmaSnapshots(c);
      const counts: number[] = [];
      await runMtma(c, 3, async () => {
        counts.push(tf.memory().numTensors);
      });
      expect(counts[2]).toBe(counts[1]);
      const second = await mtmaSnapshots(c);
      expect(second.map((s) => s.stats)).toEqual(first.map((s) => s.stats));
      first.forEach((s, u) => {
        for (const [k, v] of Object.entries(s.params)) expect(Buffer.from(second[u].params[k].buffer).equals(Buffer.from(v.buffer))).toBe(true);
      });
    });
  });

  // A chunk recorded from a real lbf-8x8-2p-2f-coop run (the format-2-mappo-gru fixture's
  // config: illegal actions, values near 0), and what the OLD update made of it. Recorded once
  // with the old code (tmp probe: the run's first chunk, typed arrays as {__t, d}).
  test('matches the old update on a recorded lbf chunk', async () => {
    const recorded = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'test', 'fixtures', 'mappo-lbf-chunk-update.json'), 'utf8')) as {
      config: Record<string, unknown>;
      seed: number;
      chunk: unknown;
      stats: TrainStats;
      params: Record<string, string>;
    };
    const revive = (x: unknown): unknown => {
      if (Array.isArray(x)) return x.map(revive);
      if (x === null || typeof x !== 'object') return x;
      const o = x as Record<string, unknown>;
      if (typeof o.__t === 'string') return new (globalThis as unknown as Record<string, new (d: unknown) => unknown>)[o.__t](o.d);
      return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, revive(v)]));
    };
    const chunk = revive(recorded.chunk) as TrajectoryChunk;
    const { numTasks: _unused, ...shape } = chunk.layout as VectorLayout & { numTasks?: number };
    void _unused;
    const task: TaskSpec = { key: chunk.task, index: 0, env: { id: 'lbf-8x8-2p-2f-coop' }, shape, numEnvs: shape.numEnvs };
    const learner = new Mappo({ layout: shape, task, config: mappoConfigSchema.parse(recorded.config), seed: recorded.seed });
    try {
      const stats = learner.update(chunk)!;
      expectStatsClose([stats], [recorded.stats], 'lbf chunk');
      const got = await modelValues(learner);
      expect(Object.keys(got).sort()).toEqual(Object.keys(recorded.params).sort());
      for (const [k, v] of Object.entries(recorded.params)) expectClose(got[k], decode(v), `lbf chunk ${k}`);
    } finally {
      learner.dispose();
    }
  });

  test('the tolerance is tight: each fixture update moves parameters far beyond it', () => {
    for (const [name, snaps] of Object.entries(fixture())) {
      let moved = 0;
      for (const [k, v] of Object.entries(snaps[1].params)) {
        if (k.startsWith(SLOT_PREFIX)) continue;
        const a = decode(snaps[0].params[k]);
        const b = decode(v);
        for (let i = 0; i < a.length; i++) moved = Math.max(moved, Math.abs(b[i] - a[i]) / (PARAM_ABS + PARAM_REL * Math.abs(a[i])));
      }
      if (!(moved > 50)) throw new Error(`${name}: update 2 moved parameters only ${moved}× the tolerance`);
    }
  });
}
