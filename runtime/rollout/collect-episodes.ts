import type { Policy } from '../../agents/policies/policy';
import type { DatasetEpisode } from '../../trainers/dataset';
import type { VectorEnv } from './vector-env';

/** One env's episode under way: rows appended step by step. */
interface OpenEpisode {
  obs: number[];
  state: number[];
  actions: number[];
  rewards: number[];
  alive: number[];
  masks: number[];
}

function openEpisode(): OpenEpisode {
  return { obs: [], state: [], actions: [], rewards: [], alive: [], masks: [] };
}

function push(into: number[], from: ArrayLike<number>, start: number, end: number): void {
  for (let i = start; i < end; i++) into.push(from[i]);
}

/**
 * Records `episodes` complete episodes of `policy` acting in `vec` (from a reset in epoch
 * `resetEpoch`), as offline-dataset episodes: the observation before every step and the final
 * one, states, actions, rewards, who acted and their legal actions. Episodes are taken in
 * (step, env index) order, so which ones are recorded does not depend on the worker count;
 * episodes cut by a worker restart are skipped.
 */
export async function collectEpisodes(vec: VectorEnv, policy: Policy, episodes: number, resetEpoch = 0, onEpisode?: (count: number) => void): Promise<DatasetEpisode[]> {
  if (!Number.isInteger(episodes) || episodes < 1) throw new Error(`collectEpisodes: episodes must be a positive integer, got ${episodes}`);
  const b = vec.buffers;
  const { numEnvs: E, numAgents: A, obsDim, stateDim, actDim, numActions: K } = vec.layout;
  const episodeStart = new Uint8Array(E).fill(1);
  const batch = vec.policyBatch(episodeStart);
  const open = Array.from({ length: E }, openEpisode);
  const done: DatasetEpisode[] = [];
  await vec.reset(resetEpoch);
  while (done.length < episodes) {
    for (let e = 0; e < E; e++) {
      const ep = open[e];
      push(ep.obs, b.obs, e * A * obsDim, (e + 1) * A * obsDim);
      push(ep.state, b.state, e * stateDim, (e + 1) * stateDim);
      push(ep.alive, b.alive, e * A, (e + 1) * A);
      push(ep.masks, b.masks, e * A * K, (e + 1) * A * K);
    }
    b.actions.fill(0);
    await policy.act(batch, b.actions);
    await vec.step();
    episodeStart.set(b.episodeDone);
    for (let e = 0; e < E; e++) {
      const ep = open[e];
      push(ep.actions, b.actions, e * A * actDim, (e + 1) * A * actDim);
      push(ep.rewards, b.rewards, e * A, (e + 1) * A);
      if (!b.episodeDone[e]) continue;
      open[e] = openEpisode();
      if (b.episodeAborted[e] || done.length >= episodes) continue;
      push(ep.obs, b.finalObs, e * A * obsDim, (e + 1) * A * obsDim);
      push(ep.state, b.finalState, e * stateDim, (e + 1) * stateDim);
      let truncated = false;
      for (let a = 0; a < A; a++) truncated ||= b.truncated[e * A + a] === 1;
      done.push({
        obs: Float32Array.from(ep.obs),
        state: Float32Array.from(ep.state),
        actions: Float32Array.from(ep.actions),
        rewards: Float32Array.from(ep.rewards),
        alive: Uint8Array.from(ep.alive),
        masks: Uint8Array.from(ep.masks),
        terminated: truncated ? 0 : 1,
        return: b.episodeReturn[e],
        success: b.episodeSuccess[e],
      });
      onEpisode?.(done.length);
    }
  }
  return done;
}
