import * as tf from '@tensorflow/tfjs';
import { registerBuiltinEnvs } from '../envs/builtin';
import { envShape } from '../envs/env-shape';
import { makeEnv } from '../envs/registry';
import { selectBackend } from '../runtime/core/tf-backend';
import { feedMra as feed } from './helpers/mra-experience';
import { playEpisodes, populationShape, scoreOf } from '../runtime/training/mra-evaluation';
import type { TaskSpec } from '../trainers/learner';
import { MraLearner, type MraConfig, mraConfigSchema, mraTrainer } from '../trainers/mra';

registerBuiltinEnvs();

beforeAll(async () => {
  await selectBackend('wasm');
});

function taskOf(numAgents: number, index: number, numEnvs = 4): TaskSpec {
  const id = `resource-${numAgents}`;
  return { key: id, index, env: { id }, shape: populationShape(numAgents), numEnvs };
}

function learnerFor(populations: number[], overrides: Partial<MraConfig> = {}, seed = 0): MraLearner {
  const config = mraConfigSchema.parse({ name: 'mra', batch_size: 32, buffer_size: 2000, steps_per_update: 40, num_updates: 2, ...overrides });
  return new MraLearner({ tasks: populations.map((n, i) => taskOf(n, i)), config, seed });
}

/** Observations of `resource-N` reset to a hand-made layout. */
function observationsAt(numAgents: number, agents: Array<[number, number]>, resources: Array<[number, number]>): Float32Array {
  const env = makeEnv<Float32Array, number>(`resource-${numAgents}`);
  const shape = envShape(env);
  const { observations } = env.reset({ seed: 1, options: { layout: { agents, resources } } });
  const obs = new Float32Array(numAgents * shape.obsDim);
  shape.agentIds.forEach((a, i) => obs.set(observations[a], i * shape.obsDim));
  return obs;
}

const RESOURCES: Array<[number, number]> = [
  [0.5, 0.5],
  [-0.5, 0.4],
  [0.1, -0.6],
  [-0.7, -0.7],
  [0.8, -0.2],
  [-0.1, 0.9],
];

describe('mra: networks over entity sets', () => {
  test.each([false, true])('shuffling the agents permutes their action distributions and nothing else (pair_values %s)', (pairValues) => {
    const learner = learnerFor([2, 3], { pair_values: pairValues });
    try {
      const agents: Array<[number, number]> = [
        [0.1, 0.2],
        [-0.4, 0.3],
        [0.6, -0.5],
        [-0.2, -0.8],
      ];
      const perm = [2, 0, 3, 1]; // new agent k is old agent perm[k]
      const obs = observationsAt(4, agents, RESOURCES);
      const obsShuffled = observationsAt(
        4,
        perm.map((p) => agents[p]),
        RESOURCES,
      );
      const latents = Int32Array.of(0, 3, 5, 1);
      const latentsShuffled = Int32Array.from(perm, (p) => latents[p]);
      const probs = learner.actionProbs(obs, latents, 1, 4);
      const shuffled = learner.actionProbs(obsShuffled, latentsShuffled, 1, 4);
      const U = learner.numActions;
      perm.forEach((p, k) => {
        for (let u = 0; u < U; u++) expect(shuffled[k * U + u]).toBeCloseTo(probs[p * U + u], 5);
      });
      // Not a vacuous check: the agents do act differently.
      expect(Math.abs(probs[0] - probs[U])).toBeGreaterThan(1e-4);
    } finally {
      learner.dispose();
    }
  });

  test('z changes what an agent attends to, hence its action distribution', () => {
    const learner = learnerFor([2, 3]);
    try {
      const obs = observationsAt(3, [
        [0.1, 0.2],
        [-0.4, 0.3],
        [0.6, -0.5],
      ], RESOURCES);
      const a = learner.actionProbs(obs, Int32Array.of(0, 0, 0), 1, 3);
      const b = learner.actionProbs(obs, Int32Array.of(4, 4, 4), 1, 3);
      let diff = 0;
      for (let k = 0; k < a.length; k++) diff += Math.abs(a[k] - b[k]);
      expect(diff).toBeGreaterThan(1e-5);
    } finally {
      learner.dispose();
    }
  });

  test('acts in populations it never trained on (larger and smaller) with p(z | N) queried at the new N', async () => {
    const learner = learnerFor([2, 3]);
    try {
      for (const N of [2, 5, 12]) {
        const probs = learner.latentProbs(N);
        expect(probs).toHaveLength(6);
        expect(probs.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 5);
        const shape = populationShape(N);
        const episodes = await playEpisodes(`resource-${N}`, learner.latentPolicy(shape, 2, 'unseen', { kind: 'prior' }), 3, 'unseen');
        expect(episodes).toHaveLength(3);
        for (const e of episodes) {
          expect(e.steps).toBe(20);
          expect(e.latents).toHaveLength(N);
          expect(Number.isFinite(e.teamReturn)).toBe(true);
        }
        expect(scoreOf(episodes).agentsPerResource).toHaveLength(6);
      }
    } finally {
      learner.dispose();
    }
  });

  test('refuses envs without entity observations, lone agents, and two tasks of the same N', () => {
    const lbf = makeEnv('lbf-8x8-2p-2f-coop');
    const shape = envShape(lbf);
    expect(() => mraTrainer.checkTask!('mra', { key: 'lbf', index: 0, env: { id: 'lbf-8x8-2p-2f-coop' }, shape, numEnvs: 1 })).toThrow(/entityObservation/);
    const config = mraConfigSchema.parse({ name: 'mra' });
    expect(() => new MraLearner({ tasks: [taskOf(3, 0), { ...taskOf(3, 1), key: 'again' }], config, seed: 0 })).toThrow(/same number of agents/);
    expect(() => mraTrainer.checkTask!('mra', taskOf(1, 0))).toThrow(/populations start at 2 agents/);
  });
});

describe('mra: the latent objectives', () => {
  test('I(a; z | o): a policy that ignores z scores 0, one that reads its teammates strongly scores more, and MI steps raise it', async () => {
    const learner = learnerFor([3, 4], { steps_per_update: 1_000_000, weight_decay: 0, pi_lr: 3e-3 });
    const scaleAll = (vars: Record<string, tf.Variable>, by: number) => Object.values(vars).forEach((v) => v.assign(tf.mul(v, by)));
    try {
      const task = learner.tasks[0];
      await feed(learner, task, 40, 'mi');
      // A policy that reads z: its teammates' value embeddings amplified, so whom it attends to matters.
      for (const net of [learner.policy, learner.targetPolicy]) scaleAll(net.valueOthers.namedVariables(), 3);
      const reading = learner.latentEvidence(task.key, 8)!.informationEstimate;
      learner.informationSteps(task.key, 300);
      const trained = learner.latentEvidence(task.key, 8)!.informationEstimate;
      expect(trained).toBeGreaterThan(reading + 0.001);
      // Ignoring z: the teammates' value embeddings zeroed, so the relation weights nothing.
      for (const net of [learner.policy, learner.targetPolicy]) scaleAll(net.valueOthers.namedVariables(), 0);
      expect(Math.abs(learner.latentEvidence(task.key, 8)!.informationEstimate)).toBeLessThan(1e-6);
    } finally {
      learner.dispose();
    }
  });

  test('the game classifier learns to tell the training populations apart (p(z | N) trained through the Gumbel sample)', async () => {
    const learner = learnerFor([2, 3], { num_updates: 1, steps_per_update: 4, q_lr: 3e-3 });
    try {
      const encodeBefore = learner.latentLogProbs(2);
      // The tasks take turns, as the training loop interleaves them.
      const stats: Array<Record<string, number>> = [];
      for (let round = 0; round < 30; round++) for (const t of learner.tasks) stats.push(...(await feed(learner, t, 5, `cls-${round}-${t.key}`)));
      const losses = stats.map((s) => s.classifier_loss);
      expect(losses.length).toBeGreaterThan(20);
      expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
      const accuracies = learner.tasks.map((t) => learner.latentEvidence(t.key, 8)!.classifierAccuracy);
      expect(accuracies.reduce((a, b) => a + b, 0) / accuracies.length).toBeGreaterThan(0.8); // chance is 0.5
      // The classifier's gradient reached p(z | N).
      const encodeAfter = learner.latentLogProbs(2);
      expect(Array.from(encodeAfter)).not.toEqual(Array.from(encodeBefore));
    } finally {
      learner.dispose();
    }
  });

  test('an update round leaks no tensors, and a restored learner continues bit for bit', async () => {
    const learner = learnerFor([2, 3]);
    const twin = learnerFor([2, 3]);
    try {
      await feed(learner, learner.tasks[0], 20, 'resume');
      await twin.restoreState(await learner.captureState());
      const before = tf.memory().numTensors;
      const a = await feed(learner, learner.tasks[0], 20, 'after');
      expect(tf.memory().numTensors).toBe(before);
      const b = await feed(twin, twin.tasks[0], 20, 'after');
      expect(a.length).toBeGreaterThan(0);
      expect(b).toEqual(a);
    } finally {
      learner.dispose();
      twin.dispose();
    }
  });

  test('a checkpoint mid-episode keeps every agent\'s z: the restored policy continues the episode as the original does', async () => {
    const learner = learnerFor([2, 3]);
    const twin = learnerFor([2, 3]);
    try {
      const task = learner.tasks[1];
      const E = task.numEnvs;
      const { numAgents: A, obsDim: D, numActions: U } = task.shape;
      const env = makeEnv<Float32Array, number>(task.env.id);
      const { observations } = env.reset({ seed: 3 });
      const obs = new Float32Array(E * A * D);
      for (let e = 0; e < E; e++) task.shape.agentIds.forEach((a, i) => obs.set(observations[a], (e * A + i) * D));
      const batch = (start: number) => ({
        obs,
        state: new Float32Array(0),
        masks: new Uint8Array(E * A * U).fill(1),
        alive: new Uint8Array(E * A).fill(1),
        episodeStart: new Uint8Array(E).fill(start),
        layout: { ...task.shape, numEnvs: E },
        context: { taskIndex: new Int32Array(E), teamSize: new Int32Array(E), latent: new Float32Array(0), latentDim: 0 },
      });
      const policy = learner.collectionPolicy(task.key) as unknown as { act: (b: ReturnType<typeof batch>, a: Float32Array) => { extras: Record<string, Float32Array> } };
      policy.act(batch(1), new Float32Array(E * A)); // the episode starts: z drawn
      await twin.restoreState(await learner.captureState());
      const twinPolicy = twin.collectionPolicy(task.key) as unknown as typeof policy;
      for (let t = 0; t < 3; t++) {
        const a = new Float32Array(E * A);
        const b = new Float32Array(E * A);
        const za = policy.act(batch(0), a).extras.latent;
        const zb = twinPolicy.act(batch(0), b).extras.latent;
        expect(Array.from(zb)).toEqual(Array.from(za));
        expect(Array.from(b)).toEqual(Array.from(a));
      }
    } finally {
      learner.dispose();
      twin.dispose();
    }
  });

  test('a one-hot in the policy context fixes every agent\'s z in that env; a context of another width is refused', () => {
    const learner = learnerFor([2, 3]);
    try {
      const shape = populationShape(3);
      const E = 2;
      const obs = new Float32Array(E * 3 * shape.obsDim);
      obs.set(observationsAt(3, [[0.1, 0.2], [-0.4, 0.3], [0.6, -0.5]], RESOURCES));
      obs.set(observationsAt(3, [[0.5, 0.2], [-0.1, 0.3], [0.2, -0.5]], RESOURCES), 3 * shape.obsDim);
      const latent = new Float32Array(E * 6);
      latent[4] = 1; // env 0: z = 4
      latent[6 + 1] = 1; // env 1: z = 1
      const batch = (latentDim: number, values: Float32Array) => ({
        obs,
        state: new Float32Array(0),
        masks: new Uint8Array(E * 3 * 5).fill(1),
        alive: new Uint8Array(E * 3).fill(1),
        episodeStart: new Uint8Array(E).fill(1),
        layout: { ...shape, numEnvs: E },
        context: { taskIndex: new Int32Array(E), teamSize: new Int32Array(E).fill(3), latent: values, latentDim },
      });
      const policy = learner.latentPolicy(shape, E, 'context', { kind: 'prior' });
      const out = policy.act(batch(6, latent), new Float32Array(E * 3));
      expect(Array.from(out.extras!.latent)).toEqual([4, 4, 4, 1, 1, 1]);
      expect(() => policy.act(batch(2, new Float32Array(E * 2)), new Float32Array(E * 3))).toThrow(/one-hot of num_latents = 6/);
    } finally {
      learner.dispose();
    }
  });

  test('unimodal (num_latents 1): no MI or classifier steps', async () => {
    const learner = learnerFor([2, 3], { num_latents: 1 });
    try {
      const stats = await feed(learner, learner.tasks[0], 20, 'uni');
      expect(stats.length).toBeGreaterThan(0);
      for (const s of stats) {
        expect(s.mi_estimate).toBeUndefined();
        expect(s.classifier_loss).toBeUndefined();
        expect(s.grad_steps).toBe(4);
      }
      expect(learner.latentProbs(7)).toEqual([1]);
    } finally {
      learner.dispose();
    }
  });
});

describe('mra: fast adaptation', () => {
  async function snapshot(learner: MraLearner): Promise<Record<string, number[]>> {
    const state = await learner.captureState();
    const out: Record<string, number[]> = {};
    for (const [model, tensors] of Object.entries(state.models)) for (const [name, t] of Object.entries(tensors)) out[`${model}/${name}`] = Array.from(new Float32Array(t.data.buffer.slice(0)) as ArrayLike<number>);
    return out;
  }

  test.each([
    [['latent_logits'] as const, true, false],
    [['policy_head'] as const, false, true],
    [['latent_logits', 'policy_head'] as const, true, true],
  ])('adapting %j changes only that (the learner never)', async (params, logitsMove, headMoves) => {
    const learner = learnerFor([2, 3]);
    try {
      const before = await snapshot(learner);
      const N = 5;
      const adapter = learner.createAdapter(N, { params: [...params], lr: 0.5 });
      const logits0 = Array.from(adapter.logits);
      const head0 = Array.from(adapter.head.w.dataSync());
      const shape = populationShape(N);
      for (let s = 0; s < 2; s++) {
        const episodes = await playEpisodes(`resource-${N}`, adapter.policy(shape, 2, `adapt${s}`, { sample: true }), 4, `adapt${s}`, true);
        adapter.update(episodes);
      }
      const logitsChanged = Array.from(adapter.logits).some((x, i) => x !== logits0[i]);
      const headChanged = Array.from(adapter.head.w.dataSync()).some((x, i) => x !== head0[i]);
      expect(logitsChanged).toBe(logitsMove);
      expect(headChanged).toBe(headMoves);
      expect(await snapshot(learner)).toEqual(before);
      adapter.dispose();
    } finally {
      learner.dispose();
    }
  });

  test('bad adaptation settings are refused by name', () => {
    const learner = learnerFor([2, 3]);
    try {
      expect(() => learner.createAdapter(4, { params: ['everything' as 'latent_logits'], lr: 0.1 })).toThrow(/unknown parameter 'everything'/);
      expect(() => learner.createAdapter(4, { params: ['latent_logits'], lr: 0 })).toThrow(/lr must be a positive number/);
    } finally {
      learner.dispose();
    }
  });
});
