import * as tf from '@tensorflow/tfjs';
import type { VectorLayout } from '../../envs/env-shape';
import { Rng } from '../../runtime/core/rng';
import { algoConfigSchema } from '../../runtime/training/run-config';
import type { Episode } from '../../trainers/episode-replay';
import { type QConfig, QLearner } from '../../trainers/qmix';

/**
 * Small QMIX/VDN/IQL learners on a seeded synthetic replay, for pinning the update's numbers:
 * episodes of different lengths (so batches are padded), dead agents, illegal actions,
 * terminated and time-limited endings, an env state or none (the mixer then mixes on the
 * concatenated observations).
 */
export interface QUpdateCase {
  name: string;
  config: Record<string, unknown>;
  stateDim: number;
}

export const Q_UPDATE_CASES: readonly QUpdateCase[] = [
  { name: 'qmix-mlp-polyak', config: { name: 'qmix', use_rnn: false, target_update_interval_or_tau: 0.2 }, stateDim: 7 },
  { name: 'qmix-gru', config: { name: 'qmix', use_rnn: true, obs_last_action: true }, stateDim: 7 },
  { name: 'qmix-1layer-noDoubleQ-obsState', config: { name: 'qmix', use_rnn: false, hypernet_layers: 1, double_q: false, standardise_returns: true }, stateDim: 0 },
  { name: 'vdn-mlp-stdReturns-clipped', config: { name: 'vdn', use_rnn: false, standardise_returns: true, max_grad_norm: 0.05 }, stateDim: 7 },
  { name: 'vdn-gru-polyak', config: { name: 'vdn', use_rnn: true, target_update_interval_or_tau: 0.2 }, stateDim: 0 },
  { name: 'iql-gru', config: { name: 'iql', use_rnn: true, obs_last_action: true }, stateDim: 7 },
  { name: 'iql-mlp-noSharing', config: { name: 'iql', use_rnn: false, parameter_sharing: false }, stateDim: 7 },
];

const A = 3;
const OBS = 5;
const K = 4;
const MAX_T = 6;

function layoutOf(stateDim: number): VectorLayout {
  return {
    numEnvs: 1,
    agentIds: ['a', 'b', 'c'],
    numAgents: A,
    obsDim: OBS,
    agentObsDims: [OBS, OBS, OBS],
    actDim: 1,
    numActions: K,
    agentNumActions: [K, K, K],
    discreteActions: true,
    stateDim,
    maxEpisodeSteps: MAX_T,
    reportsSuccess: false,
    sharedTeamReward: true,
  };
}

function syntheticEpisode(rng: Rng, stateDim: number): Episode {
  const T = 2 + rng.int(MAX_T - 1);
  const obs = Float32Array.from({ length: (T + 1) * A * OBS }, () => rng.normal());
  const state = Float32Array.from({ length: (T + 1) * stateDim }, () => rng.normal());
  const alive = new Uint8Array((T + 1) * A).fill(1);
  // Agent 2 dies partway through some episodes and stays dead.
  if (rng.next() < 0.5) for (let t = 1 + rng.int(T); t <= T; t++) alive[t * A + 2] = 0;
  const avail = new Uint8Array((T + 1) * A * K);
  for (let i = 0; i < (T + 1) * A; i++) {
    if (!alive[i]) continue;
    for (let k = 0; k < K; k++) avail[i * K + k] = rng.next() < 0.7 ? 1 : 0;
    avail[i * K + rng.int(K)] = 1;
  }
  const actions = new Int32Array(T * A);
  for (let i = 0; i < T * A; i++) {
    const legal = [...Array(K).keys()].filter((k) => avail[i * K + k]);
    actions[i] = legal.length ? legal[rng.int(legal.length)] : 0;
  }
  const reward = Float32Array.from({ length: T }, () => (rng.next() < 0.4 ? rng.normal() : 0));
  const terminated = new Uint8Array(T);
  if (rng.next() < 0.5) terminated[T - 1] = 1;
  return { length: T, obs, state, avail, alive, actions, reward, terminated };
}

export function qUpdateConfig(c: QUpdateCase): QConfig {
  return algoConfigSchema.parse({
    hidden_dim: 16,
    batch_size: 4,
    buffer_size: 8,
    lr: 0.01,
    ...(c.config.name === 'qmix' ? { hypernet_embed: 16, mixing_embed_dim: 8 } : {}),
    ...c.config,
  }) as QConfig;
}

/** A learner with 8 seeded episodes in its replay (reward statistics updated as `observe` would). */
export function qUpdateLearner(c: QUpdateCase): QLearner {
  const layout = layoutOf(c.stateDim);
  const learner = new QLearner({ layout, config: qUpdateConfig(c), seed: 11 });
  const rng = new Rng(`q-update-${c.name}`);
  for (let i = 0; i < 8; i++) {
    const ep = syntheticEpisode(rng, c.stateDim);
    learner.replay.insert(ep);
    learner.rewardStats.update(ep.reward);
  }
  return learner;
}

/** Trained variables (agent, then mixer) as plain arrays. */
export function trainedParams(learner: QLearner): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const add = (prefix: string, vars: Record<string, tf.Variable>) => {
    for (const [k, v] of Object.entries(vars)) out[prefix + k] = Array.from(v.dataSync());
  };
  add('agent/', learner.agent.namedVariables());
  if (learner.mixer) add('mixer/', learner.mixer.namedVariables());
  return out;
}

export interface QUpdateRecord {
  /** Stats of updates 1, 2 and 3. */
  stats: Array<Record<string, number>>;
  afterOne: Record<string, number[]>;
  afterThree: Record<string, number[]>;
}

export function runQUpdateCase(c: QUpdateCase): QUpdateRecord {
  const learner = qUpdateLearner(c);
  try {
    const stats: Array<Record<string, number>> = [];
    stats.push({ ...learner.update() });
    const afterOne = trainedParams(learner);
    stats.push({ ...learner.update() });
    stats.push({ ...learner.update() });
    return { stats, afterOne, afterThree: trainedParams(learner) };
  } finally {
    learner.dispose();
  }
}
