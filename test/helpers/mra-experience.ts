import type { Transition } from '../../agents/experience';
import type { ParallelEnv } from '../../envs/parallel-env';
import { makeEnv } from '../../envs/registry';
import { deriveSeed } from '../../runtime/core/rng';
import type { TaskSpec } from '../../trainers/learner';
import type { MraLearner } from '../../trainers/mra';

/**
 * Plays `steps` vector steps of `task` with the learner's collection policy and feeds every one
 * to `observe`, as the training loop would (only the fields MRA reads are real).
 */
export async function feedMra(learner: MraLearner, task: TaskSpec, steps: number, seed: string): Promise<Array<Record<string, number>>> {
  const E = task.numEnvs;
  const { numAgents: A, obsDim: D, numActions: U, agentIds } = task.shape;
  const envs: ParallelEnv<Float32Array, number>[] = Array.from({ length: E }, (_, e) => {
    const env = makeEnv<Float32Array, number>(task.env.id);
    return env;
  });
  const obs = new Float32Array(E * A * D);
  envs.forEach((env, e) => {
    const { observations } = env.reset({ seed: deriveSeed(seed, e) });
    agentIds.forEach((a, i) => obs.set(observations[a], (e * A + i) * D));
  });
  const policy = learner.collectionPolicy(task.key);
  const layout = { ...task.shape, numEnvs: E };
  const stats: Array<Record<string, number>> = [];
  const episodeStart = new Uint8Array(E).fill(1);
  for (let t = 0; t < steps; t++) {
    const actions = new Float32Array(E * A);
    const out = await policy.act({ obs, state: new Float32Array(0), masks: new Uint8Array(E * A * U).fill(1), alive: new Uint8Array(E * A).fill(1), episodeStart, layout, context: { taskIndex: new Int32Array(E), teamSize: new Int32Array(E), latent: new Float32Array(0), latentDim: 0 } }, actions);
    const nextObs = new Float32Array(E * A * D);
    const rewards = new Float32Array(E * A);
    const truncated = new Uint8Array(E * A);
    const done = new Uint8Array(E);
    envs.forEach((env, e) => {
      const act: Record<string, number> = {};
      agentIds.forEach((a, i) => (act[a] = actions[e * A + i]));
      const r = env.step(act);
      agentIds.forEach((a, i) => {
        nextObs.set(r.observations[a], (e * A + i) * D);
        rewards[e * A + i] = r.rewards[a];
        truncated[e * A + i] = r.truncations[a] ? 1 : 0;
      });
      done[e] = truncated[e * A];
    });
    const item = {
      kind: 'transition',
      task: task.key,
      taskIndex: task.index,
      layout,
      step: t,
      obs: obs.slice(),
      nextObs,
      actions,
      rewards,
      terminated: new Uint8Array(E * A),
      truncated,
      episodeAborted: new Uint8Array(E),
      episodeDone: done,
      extras: (out as { extras: Record<string, Float32Array> }).extras,
      episodes: [],
    } as unknown as Transition;
    const s = learner.observe(item, (t + 1) * E);
    if (s) stats.push(s);
    episodeStart.fill(0);
    envs.forEach((env, e) => {
      if (done[e]) {
        const { observations } = env.reset();
        agentIds.forEach((a, i) => obs.set(observations[a], (e * A + i) * D));
        episodeStart[e] = 1;
      } else {
        obs.set(nextObs.subarray(e * A * D, (e + 1) * A * D), e * A * D);
      }
    });
  }
  return stats;
}

