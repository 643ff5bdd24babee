import { emptyContext } from '../../agents/policies/policy';
import { instantiateEnv, prepareEnvSpec } from '../../envs/env-from-spec';
import { layoutFor, shapeOf } from '../../envs/env-shape';
import { trainerFor } from '../../trainers/index';
import type { LearnerBenchSettings, OnlineLearner, TaskSpec } from '../../trainers/learner';
import { SpaceSampler } from '../../trainers/synthetic-experience';
import { type BackendName, type BackendWorkload, type CallTime, type PreparedWorkload, timeCall } from '../core/backend-choice';
import { Rng, deriveSeed } from '../core/rng';
import { type RunConfig, runTasks } from './run-config';

/*
 * The run's own workload for `backend: auto` (`chooseBackend`): one learner update as the
 * algorithm's `benchmark` hook builds it (synthetic experience from the env's own spaces) at the
 * run's env shape, number of envs, hidden size, recurrence and rollout length, and one batched
 * act of the run's own collection policy (the learner built from the run's resolved config) for
 * all its envs. The update cadence of the config turns both into ms per env step.
 *
 * The hooks get the run's `algo` keys, so the timed update has the run's batch size, epochs,
 * minibatches and layer widths; a SAC benchmark update is one `policy_frequency` cycle.
 */

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
  if (trainer.kind === 'offline') return offlineWorkload(config, algo);
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
  const { name: _name, ...algoKeys } = algo;
  const { numAgents: A, numEnvs: E } = { numAgents: task.shape.numAgents, numEnvs: task.numEnvs };
  const description = `${algo.name}${useRnn ? ' (rnn)' : ''} on ${task.key}: ${E} envs × ${A} agents, hidden ${settings.hiddenDim}; ${cadence.toPrecision(3)} updates per env step`;

  const prepare = async (backend: BackendName): Promise<PreparedWorkload> => {
    const sampler = new SpaceSampler(env, task.shape, new Rng(deriveSeed('backend-choice', backend)));
    // The run's own keys (batch size, epochs, minibatches, layer widths, SAC's policy_frequency
    // cycle), so the timed update is the run's update.
    const bench = await trainer.benchmark!({ algo: algo.name, task, settings, useRnn, sampler, backend, config: algoKeys });
    if (!bench) throw new Error(`${algo.name} has no benchmark case with use_rnn ${useRnn}`);
    let acting: OnlineLearner | undefined;
    try {
      acting = makeActing();
      const policy = acting.collectionPolicy(task.key);
      const batch = {
        obs: sampler.obs(E), state: sampler.state(E), masks: sampler.masks(E), alive: new Uint8Array(E * A).fill(1),
        episodeStart: new Uint8Array(E), rewards: new Float32Array(E * A), layout, context: emptyContext(E),
      };
      const actions = new Float32Array(E * A * task.shape.actDim);
      const act = () => timeCall(() => policy.act(batch, actions));
      // A benchmark case times its update alone and prepares the next input (MAPPO: a synthetic
      // chunk, acted for) outside that time, inside the same call. The update's CPU time is the
      // call's, scaled by the share of the call's wall time the case timed.
      const update = async (): Promise<CallTime> => {
        let timedMs = 0;
        const call = await timeCall(async () => (timedMs = await bench.update()));
        return { wallMs: timedMs, cpuMs: call.cpuMs * Math.min(1, timedMs / Math.max(call.wallMs, 1e-9)) };
      };
      // Warm-up: kernels compile and the JavaScript around them JITs.
      const warmupUpdate = await update();
      await act();
      const learner = acting;
      return { warmupUpdate, update, act, dispose: () => (bench.dispose(), learner.dispose()) };
    } catch (error) {
      bench.dispose();
      acting?.dispose();
      throw error;
    }
  };
  return { workload: { description, updatesPerEnvStep: cadence, envStepsPerAct: E, prepare }, close: () => env.close?.() };
}

/**
 * An offline run's workload: its gradient step alone (acting is only evaluation), as the
 * algorithm's benchmark hook builds it with the run's own `algo` keys (network sizes, context
 * length, batch size) on synthetic data. The data's shape is the run's env when the config names
 * one; a run over a dataset folder names its envs only in the datasets' headers, read after the
 * backend is active, so `reach` (obs 39, act 4) stands in: the input and output layers are a small
 * part of these networks' work, and the backends' ratio is what is compared.
 */
async function offlineWorkload(config: RunConfig, algo: { name: string } & Record<string, unknown>): Promise<{ workload: BackendWorkload; close: () => void }> {
  const trainer = trainerFor(algo.name);
  const envSpec = config.env ?? (config.tasks && config.tasks.length === 1 && !config.datasets ? runTasks(config)[0].env : { id: 'reach' });
  await prepareEnvSpec(envSpec);
  const env = instantiateEnv(envSpec);
  const layout = layoutFor(env, 1);
  const task: TaskSpec = { key: envSpec.id, index: 0, env: envSpec, shape: shapeOf(layout), numEnvs: 1 };
  const seed = config.run.seed;
  const settings: LearnerBenchSettings = {
    numEnvs: 1,
    rolloutLength: 50,
    hiddenDim: numberKey(algo, 'embed_dim') ?? numberKey(algo, 'hidden_dim') ?? 128,
    seed: typeof seed === 'number' ? seed : 0,
  };
  const { name: _name, ...keys } = algo;
  // The hook times the decision transformer's steady state: one world-model step, no warm phase.
  const overrides = { ...keys, ...('world_model_steps' in keys ? { world_model_steps: 1 } : {}), ...('warm_train_steps' in keys ? { warm_train_steps: 0 } : {}) };
  const description = `${algo.name} gradient step (offline) with the run's algo keys on ${task.key}'s shape`;
  const prepare = async (backend: BackendName): Promise<PreparedWorkload> => {
    const sampler = new SpaceSampler(env, task.shape, new Rng(deriveSeed('backend-choice', backend)));
    const bench = await trainer.benchmark!({ algo: algo.name, task, settings, useRnn: false, sampler, backend, config: overrides });
    if (!bench) throw new Error(`${algo.name} has no benchmark case for ${task.key}`);
    const update = async (): Promise<CallTime> => {
      let timedMs = 0;
      const call = await timeCall(async () => (timedMs = await bench.update()));
      return { wallMs: timedMs, cpuMs: call.cpuMs * Math.min(1, timedMs / Math.max(call.wallMs, 1e-9)) };
    };
    const warmupUpdate = await update();
    // No acting to weigh: evaluation episodes are a small part of an offline run.
    const act = async (): Promise<CallTime> => ({ wallMs: 0, cpuMs: 0 });
    return { warmupUpdate, update, act, dispose: () => bench.dispose() };
  };
  return { workload: { description, updatesPerEnvStep: 1, envStepsPerAct: 1, prepare }, close: () => env.close?.() };
}
