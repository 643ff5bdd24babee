import { emptyContext } from '../../agents/policies/policy';
import { instantiateEnv, prepareEnvSpec } from '../../envs/env-from-spec';
import { layoutFor, shapeOf } from '../../envs/env-shape';
import { trainerFor } from '../../trainers/index';
import type { LearnerBenchSettings, OnlineLearner, TaskSpec } from '../../trainers/learner';
import { SpaceSampler } from '../../trainers/synthetic-experience';
import type { BackendName, BackendWorkload, WorkloadTiming } from '../core/backend-choice';
import { Rng, deriveSeed } from '../core/rng';
import { type RunConfig, runTasks } from './run-config';

/*
 * The run's own workload for `backend: auto` (`chooseBackend`): one learner update as the
 * algorithm's `benchmark` hook builds it (synthetic experience from the env's own spaces) at the
 * run's env shape, number of envs, hidden size, recurrence and rollout length, and one batched
 * act of the run's own collection policy (the learner built from the run's resolved config) for
 * all its envs. The update cadence of the config turns both into ms per env step.
 *
 * Keys the benchmark hooks do not take (batch_size, epochs, minibatches) are at the algorithm's
 * defaults in the timed update: the choice needs the ratio between backends, which depends on the
 * network shapes far more than on those counts.
 */

/** Seconds of timed updates per backend (after one warm-up update); acting takes a fraction of it. */
const UPDATE_SECONDS = 0.6;
const ACT_SECONDS = 0.15;
const MIN_TIMED = 2;
const MAX_TIMED = 8;

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Runs `once` (returning its ms) until `seconds` pass, at least MIN_TIMED and at most MAX_TIMED times. */
async function timeRepeatedly(once: () => Promise<number>, seconds: number): Promise<number[]> {
  const times: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  while (times.length < MIN_TIMED || (times.length < MAX_TIMED && performance.now() < deadline)) times.push(await once());
  return times;
}

const numberKey = (algo: Record<string, unknown>, key: string): number | undefined => (typeof algo[key] === 'number' ? (algo[key] as number) : undefined);

/**
 * Benchmark updates per env step, from the config's cadence: PPO-style learners update once per
 * collected chunk (chunk length × envs env steps); episode-replay learners `updates_per_episode`
 * times per episode (taken at the env's longest episode, so a lower bound); SAC
 * `updates_per_step` gradient steps per env step, its benchmark update being `policy_frequency`
 * of them. Undefined when the algorithm's cadence is none of these.
 */
function updatesPerEnvStep(algo: Record<string, unknown>, learner: OnlineLearner, task: TaskSpec): number | undefined {
  const collection = learner.collection(task.key);
  if (collection.mode === 'chunk') return 1 / (collection.chunkLength * task.numEnvs);
  const perEpisode = numberKey(algo, 'updates_per_episode');
  if (perEpisode !== undefined) return perEpisode / task.shape.maxEpisodeSteps;
  const perStep = numberKey(algo, 'updates_per_step');
  if (perStep !== undefined) return perStep / (numberKey(algo, 'policy_frequency') ?? 1);
  return undefined;
}

/** The run's workload, or why it cannot be timed (then `auto` takes wasm untimed). */
export async function runWorkload(config: RunConfig): Promise<{ workload: BackendWorkload; close: () => void } | { untimedWhy: string }> {
  const algo = config.algo as { name: string } & Record<string, unknown>;
  const trainer = trainerFor(algo.name);
  if (!trainer.benchmark) return { untimedWhy: `${algo.name} has no benchmark case to time` };
  if (trainer.kind === 'offline') return { untimedWhy: `${algo.name} trains offline (no acting; its benchmark case is not at the run's sizes)` };
  const tasks = runTasks(config);
  if (tasks.length !== 1) return { untimedWhy: `a run of ${tasks.length} tasks is not timed` };
  const runTask = tasks[0];
  await prepareEnvSpec(runTask.env);
  const env = instantiateEnv(runTask.env);
  const layout = layoutFor(env, runTask.numEnvs);
  const task: TaskSpec = { key: runTask.key, index: 0, env: runTask.env, shape: shapeOf(layout), numEnvs: runTask.numEnvs };
  trainer.checkTask?.(algo.name, task);
  const seed = config.run.seed;
  // Acting as in the run from its first update on: SAC's uniform actions before learning_starts skip the actor.
  const actingConfig = 'learning_starts' in algo ? { ...algo, learning_starts: 0 } : algo;
  const makeActing = () => trainer.createLearner({ tasks: [task], config: actingConfig, seed }) as OnlineLearner;
  // The cadence needs only the config's arithmetic; this learner is built on the active backend and dropped.
  const probe = makeActing();
  const cadence = updatesPerEnvStep(algo, probe, task);
  const collection = probe.collection(task.key);
  probe.dispose();
  if (cadence === undefined) {
    env.close?.();
    return { untimedWhy: `${algo.name}'s update cadence is not known to the backend timing` };
  }
  const hiddenDims = algo.hidden_dims;
  const settings: LearnerBenchSettings = {
    numEnvs: task.numEnvs,
    rolloutLength: collection.mode === 'chunk' ? collection.chunkLength : 50,
    hiddenDim: numberKey(algo, 'hidden_dim') ?? (Array.isArray(hiddenDims) && typeof hiddenDims[0] === 'number' ? hiddenDims[0] : 64),
    seed: typeof seed === 'number' ? seed : 0,
  };
  const useRnn = algo.use_rnn === true;
  const { numAgents: A, numEnvs: E } = { numAgents: task.shape.numAgents, numEnvs: task.numEnvs };
  const description = `${algo.name}${useRnn ? ' (rnn)' : ''} on ${task.key}: ${E} envs × ${A} agents, hidden ${settings.hiddenDim}; ${cadence.toPrecision(3)} updates per env step`;

  const time = async (backend: BackendName): Promise<WorkloadTiming> => {
    const sampler = new SpaceSampler(env, task.shape, new Rng(deriveSeed('backend-choice', backend)));
    const bench = await trainer.benchmark!({ algo: algo.name, task, settings, useRnn, sampler, backend });
    if (!bench) throw new Error(`${algo.name} has no benchmark case with use_rnn ${useRnn}`);
    const acting = makeActing();
    try {
      await bench.update(); // warm-up: kernels compile, the JavaScript around them JITs
      const updates = await timeRepeatedly(() => bench.update(), UPDATE_SECONDS);
      const policy = acting.collectionPolicy(task.key);
      const batch = {
        obs: sampler.obs(E), state: sampler.state(E), masks: sampler.masks(E), alive: new Uint8Array(E * A).fill(1),
        episodeStart: new Uint8Array(E), rewards: new Float32Array(E * A), layout, context: emptyContext(E),
      };
      const actions = new Float32Array(E * A * task.shape.actDim);
      const actOnce = async () => {
        const began = performance.now();
        await policy.act(batch, actions);
        return performance.now() - began;
      };
      await actOnce();
      const acts = await timeRepeatedly(actOnce, ACT_SECONDS);
      return { updateMs: median(updates), actMs: median(acts), updatesTimed: updates.length, actsTimed: acts.length };
    } finally {
      bench.dispose();
      acting.dispose();
    }
  };
  return { workload: { description, updatesPerEnvStep: cadence, envStepsPerAct: E, time }, close: () => env.close?.() };
}
