import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RandomPolicy } from '../agents/policies/random-policy';
import { actionMaskProblem, firstNonFinite, observationCheckFor, observationProblem, rewardProblem, stateProblem } from '../envs/env-output-check';
import { Box, Discrete } from '../envs/spaces';
import { MetricsLog, type MetricsRecord } from '../runtime/core/metrics-log';
import { readCheckpoint } from '../runtime/core/checkpoint';
import { selectBackend } from '../runtime/core/tf-backend';
import { FALLBACK_EVAL_STEP_CAP, defaultEvalStepCap, evaluatePolicy } from '../runtime/rollout/evaluation';
import { VectorEnv, VectorEnvError } from '../runtime/rollout/vector-env';
import { parseRunConfig } from '../runtime/training/config-loader';
import { runTraining } from '../runtime/training/training-run';
import { createLearner } from '../trainers/index';
import type { LearnerState, OnlineLearner } from '../trainers/learner';
import { runCli } from './helpers/cli-run';
import { writeCoinModule } from './helpers/coin-env-module';

let dir: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-env-output-validation-'));
  await selectBackend('cpu');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const SHORT_OBS_AT_3 = "{ step: (out, env) => { if (env.t === 3) out.observations.a1 = out.observations.a1.subarray(0, 3); return out; } }";
const NAN_OBS_AT_3 = '{ step: (out, env) => { if (env.t === 3) out.observations.a0[2] = NaN; return out; } }';
/** Never terminates or truncates anyone, though it declares maxEpisodeSteps 10. */
const NEVER_ENDS = '{ step: (out, env) => { for (const a of env.possibleAgents) out.truncations[a] = false; env.agents = [...env.possibleAgents]; return out; } }';

async function stepUntilFailure(vec: VectorEnv, steps: number): Promise<Error | undefined> {
  const policy = new RandomPolicy(vec.layout, 0);
  const batch = vec.policyBatch(new Uint8Array(vec.numEnvs));
  try {
    await vec.reset();
    for (let s = 0; s < steps; s++) {
      await policy.act(batch, vec.buffers.actions);
      await vec.step();
    }
  } catch (error) {
    return error as Error;
  }
  return undefined;
}

describe('the checks (envs/env-output-check.ts)', () => {
  test('Box observations: exact length and numbers; other spaces: contains', () => {
    const box = observationCheckFor('a1', new Box(0, 1, [3]));
    expect(observationProblem(box, new Float32Array(3))).toBeUndefined();
    expect(observationProblem(box, [0, 0.5, 1])).toBeUndefined();
    expect(observationProblem(box, new Float32Array(2))).toBe("observation of agent 'a1' has length 2, expected 3 (observation space Box(0, 1, [3], float32))");
    expect(observationProblem(box, new Float32Array(4))).toMatch(/has length 4, expected 3/);
    expect(observationProblem(box, 'abc')).toMatch(/is abc, expected an array of 3 numbers/);
    expect(observationProblem(box, [0, null, 1])).toMatch(/has null at index 1, expected a number/);
    const discrete = observationCheckFor('a0', new Discrete(4));
    expect(observationProblem(discrete, 3)).toBeUndefined();
    expect(observationProblem(discrete, 4)).toBe("observation of agent 'a0' is 4, outside its observation space Discrete(4)");
  });

  test('finiteness, rewards, masks and state', () => {
    expect(firstNonFinite(Float32Array.from([1, 2, NaN, Infinity]), 0, 2)).toBe(-1);
    expect(firstNonFinite(Float32Array.from([1, 2, NaN, Infinity]), 1, 3)).toBe(1);
    expect(firstNonFinite(Float32Array.from([1, -Infinity]), 0, 2)).toBe(1);
    expect(rewardProblem('a', 0.5, true)).toBeUndefined();
    expect(rewardProblem('a', NaN, false)).toBeUndefined();
    expect(rewardProblem('a', Infinity, true)).toBe("reward of agent 'a' is Infinity, expected a finite number");
    expect(rewardProblem('a', null, true)).toBe("reward of agent 'a' is null (null), expected a number");
    const space = new Discrete(3);
    expect(actionMaskProblem('a', Uint8Array.from([0, 0, 1]), 3, space)).toBeUndefined();
    expect(actionMaskProblem('a', Uint8Array.from([0, 0, 0]), 3, space)).toMatch(/allows no action/);
    expect(actionMaskProblem('a', undefined, 3, space)).toMatch(/actionMask\('a'\) returned undefined, expected a Uint8Array of 3 entries/);
    expect(stateProblem(new Float32Array(2), 2, true, 'Box(2)')).toBeUndefined();
    expect(stateProblem(Float32Array.from([0, NaN]), 2, false, 'Box(2)')).toBeUndefined();
    expect(stateProblem(Float32Array.from([0, NaN]), 2, true, 'Box(2)')).toBe('state() has NaN at index 1, expected finite numbers');
    expect(stateProblem(new Float32Array(3), 2, true, 'Box(2)')).toBe('state() has length 3, expected 2 (stateSpace Box(2))');
  });
});

describe('VectorEnv checks env output where it enters the buffers', () => {
  test('in-process and in worker threads alike, naming env, task, index and step', async () => {
    const module = writeCoinModule(dir, 'short-obs', SHORT_OBS_AT_3);
    const messages: string[] = [];
    for (const workers of [0, 2]) {
      const vec = await VectorEnv.create({ env: { id: 'coin', module }, numEnvs: 4, workers, seed: 0, task: 'k' });
      try {
        const error = await stepUntilFailure(vec, 5);
        expect(error).toBeInstanceOf(VectorEnvError);
        expect((error as VectorEnvError).envIndex).toBe(0);
        messages.push(error!.message);
      } finally {
        await vec.close();
      }
    }
    expect(messages[0]).toBe("env 'coin' (task 'k') #0 at episode step 3: observation of agent 'a1' has length 3, expected 4 (observation space Box(0, 1, [4], float32)) (vector step 2)");
    expect(messages[1]).toBe(messages[0]);
  });

  test('checkFinite: false lets NaN observations into the buffers; lengths are still checked', async () => {
    const nan = writeCoinModule(dir, 'nan-obs', NAN_OBS_AT_3);
    const strict = await VectorEnv.create({ env: { id: 'coin', module: nan }, numEnvs: 2, seed: 0 });
    const lax = await VectorEnv.create({ env: { id: 'coin', module: nan }, numEnvs: 2, seed: 0, checkFinite: false });
    try {
      expect((await stepUntilFailure(strict, 3))?.message).toMatch(/env 'coin' #0 at episode step 3: observation of agent 'a0' has NaN at index 2/);
      expect(await stepUntilFailure(lax, 3)).toBeUndefined();
      expect(Number.isNaN(lax.buffers.obs[2])).toBe(true);
    } finally {
      await strict.close();
      await lax.close();
    }
    const short = writeCoinModule(dir, 'short-obs-lax', SHORT_OBS_AT_3);
    const laxShort = await VectorEnv.create({ env: { id: 'coin', module: short }, numEnvs: 2, seed: 0, checkFinite: false });
    try {
      expect((await stepUntilFailure(laxShort, 5))?.message).toMatch(/has length 3, expected 4/);
    } finally {
      await laxShort.close();
    }
  });
});

describe('evaluation has a step cap', () => {
  test('the default rule: twice what the declared episode limit needs, or a fixed number', () => {
    expect(defaultEvalStepCap(10, 20, 8)).toBe(2 * 3 * 11);
    expect(defaultEvalStepCap(10, 1, 8)).toBe(22);
    expect(defaultEvalStepCap(Number.NaN, 20, 8)).toBe(FALLBACK_EVAL_STEP_CAP);
    expect(defaultEvalStepCap(0, 20, 8)).toBe(FALLBACK_EVAL_STEP_CAP);
    expect(defaultEvalStepCap(1e9, 20, 8)).toBe(FALLBACK_EVAL_STEP_CAP);
  });

  test('an env that never ends stops at the cap and says so; an env that ends does not', async () => {
    const never = writeCoinModule(dir, 'never-ends', NEVER_ENDS);
    const vec = await VectorEnv.create({ env: { id: 'coin', module: never }, numEnvs: 2, seed: 0 });
    try {
      const capped = await evaluatePolicy(vec, new RandomPolicy(vec.layout, 0), 4);
      expect(capped.episodes).toBe(0);
      expect(capped.stepCapHit).toEqual({ maxSteps: defaultEvalStepCap(10, 4, 2), requestedEpisodes: 4 });
      expect(vec.steps).toBe(44);
      const explicit = await evaluatePolicy(vec, new RandomPolicy(vec.layout, 0), 4, 0, { maxSteps: 7 });
      expect(explicit.stepCapHit).toEqual({ maxSteps: 7, requestedEpisodes: 4 });
      expect(vec.steps).toBe(7);
    } finally {
      await vec.close();
    }
    const good = writeCoinModule(dir, 'good');
    const ok = await VectorEnv.create({ env: { id: 'coin', module: good }, numEnvs: 2, seed: 0 });
    try {
      const result = await evaluatePolicy(ok, new RandomPolicy(ok.layout, 0), 4);
      expect(result.episodes).toBe(4);
      expect(result.meanLength).toBe(10);
      expect('stepCapHit' in result).toBe(false);
      // A cap that cuts the last episodes short: the finished ones count.
      const cut = await evaluatePolicy(ok, new RandomPolicy(ok.layout, 0), 4, 0, { maxSteps: 15 });
      expect(cut.episodes).toBe(2);
      expect(cut.stepCapHit).toEqual({ maxSteps: 15, requestedEpisodes: 4 });
    } finally {
      await ok.close();
    }
  });
});

function coinConfig(module: string, extra = ''): string {
  return [`env: { id: coin, module: ${JSON.stringify(module)} }`, 'algo: { name: mappo, hidden_dim: 16, rollout_length: 10 }', `run: { total_env_steps: 200, num_envs: 2, log_interval: 100, eval_interval: 100, eval_episodes: 2, checkpoint_interval: 100${extra} }`, ''].join('\n');
}

describe('training', () => {
  test('a capped evaluation is flagged in its metrics row and reaches onRecord; normal rows stay as they were', async () => {
    const never = writeCoinModule(dir, 'never-ends-train', NEVER_ENDS);
    const good = writeCoinModule(dir, 'good-train');
    const evalRows = async (module: string, name: string, extra = ''): Promise<MetricsRecord[]> => {
      const seen: MetricsRecord[] = [];
      const out = path.join(dir, name);
      await runTraining({ config: parseRunConfig(coinConfig(module, extra), name), outDir: out, backend: { name: 'cpu', reason: 'test' }, onRecord: (r) => seen.push(r) });
      const rows = MetricsLog.read(path.join(out, 'metrics.jsonl')).filter((r) => r.kind === 'eval');
      // The file holds JSON (NaN means of no episodes are null there).
      expect(JSON.parse(JSON.stringify(seen.filter((r) => r.kind === 'eval')))).toEqual(rows);
      return rows;
    };
    const capped = await evalRows(never, 'never');
    expect(capped.length).toBeGreaterThan(0);
    for (const row of capped) expect(row).toMatchObject({ episodes: 0, step_cap: 22, episodes_requested: 2, return_mean: null });
    const configured = await evalRows(never, 'never-configured', ', eval_max_steps: 5');
    for (const row of configured) expect(row).toMatchObject({ step_cap: 5 });
    const normal = await evalRows(good, 'good');
    for (const row of normal) {
      expect(Object.keys(row).sort()).toEqual(['env_steps', 'episodes', 'eval_time_s', 'kind', 'length_mean', 'return_mean', 'return_std', 'win_rate']);
      expect(row.episodes).toBe(2);
    }
  }, 120000);

  test('a multi-task run names the task of the env that broke', async () => {
    const good = writeCoinModule(dir, 'good-mt');
    const bad = writeCoinModule(dir, 'short-mt', SHORT_OBS_AT_3);
    const yaml = [
      'tasks:',
      `  - { id: coin, name: fine, module: ${JSON.stringify(good)} }`,
      `  - { id: coin, name: broken, module: ${JSON.stringify(bad)} }`,
      'algo: { name: mappo, hidden_dim: 16, rollout_length: 10 }',
      'run: { total_env_steps: 200, num_envs: 2, eval_interval: 100000, eval_episodes: 2 }',
      '',
    ].join('\n');
    await expect(runTraining({ config: parseRunConfig(yaml, 'mt'), outDir: path.join(dir, 'mt'), backend: { name: 'cpu', reason: 'test' } })).rejects.toThrow(
      /env 'coin' \(task 'broken'\) #0 at episode step 3: observation of agent 'a1' has length 3, expected 4/,
    );
  }, 60000);

  /** A real MAPPO learner whose stats or weights turn NaN after `after` updates. */
  function poisonedLearner(poison: 'stats' | 'weights', after: number) {
    return ({ config, tasks }: { config: ReturnType<typeof parseRunConfig>; tasks: Parameters<typeof createLearner>[0]['tasks'] }) => {
      const learner = createLearner({ config: config.algo, tasks, seed: config.run.seed }) as OnlineLearner;
      let updates = 0;
      const observe = learner.observe.bind(learner);
      learner.observe = (item, envSteps) => {
        const stats = observe(item, envSteps);
        if (stats) updates++;
        return stats && poison === 'stats' && updates > after ? { ...stats, value_loss: NaN } : stats;
      };
      const capture = learner.captureState.bind(learner);
      learner.captureState = async (): Promise<LearnerState> => {
        const state = await capture();
        if (poison !== 'weights' || updates <= after) return state;
        const [model] = Object.keys(state.models);
        const [tensor] = Object.keys(state.models[model]);
        const t = state.models[model][tensor];
        const values = new Float32Array(t.data.slice().buffer);
        values[1] = Number.POSITIVE_INFINITY;
        state.models[model][tensor] = { ...t, data: new Uint8Array(values.buffer) };
        return state;
      };
      return learner;
    };
  }

  test('a learner whose loss turns NaN stops the run, naming the stat, the step and the last good checkpoint', async () => {
    const good = writeCoinModule(dir, 'good-nan-stats');
    const out = path.join(dir, 'nan-stats');
    // Updates every 20 env steps (2 envs × 10 steps); checkpoints every 100: the 8th update is at 160.
    const run = runTraining({ config: parseRunConfig(coinConfig(good), 'nan'), outDir: out, backend: { name: 'cpu', reason: 'test' }, createLearner: poisonedLearner('stats', 7) });
    const last = path.join(out, 'checkpoints', 'step-0000000100.ckpt');
    await expect(run).rejects.toThrow(
      `mappo diverged at env step 160 (after 7 finite updates): its 'value_loss' is NaN, expected a finite number. Training stopped without writing a checkpoint; the last good checkpoint is ${last}; resume from it with: troupe train --resume ${last} (add --set to change e.g. algo.lr)`,
    );
    expect(fs.readdirSync(path.join(out, 'checkpoints')).filter((f) => f.endsWith('.ckpt'))).toEqual(['step-0000000100.ckpt']);
    const metrics = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8');
    expect(metrics).not.toMatch(/NaN|null,"value_loss"|"value_loss":null/);
  }, 60000);

  test('a checkpoint with non-finite weights is never written', async () => {
    const good = writeCoinModule(dir, 'good-nan-weights');
    const out = path.join(dir, 'nan-weights');
    const run = runTraining({ config: parseRunConfig(coinConfig(good), 'nan'), outDir: out, backend: { name: 'cpu', reason: 'test' }, createLearner: poisonedLearner('weights', 5) });
    await expect(run).rejects.toThrow(/^mappo diverged at env step 200 \(after 10 finite updates\): weight '.+' of model '.+' has Infinity at index 1, expected a finite number\. .*the last good checkpoint is .*step-0000000100\.ckpt/);
    const files = fs.readdirSync(path.join(out, 'checkpoints')).filter((f) => f.endsWith('.ckpt'));
    expect(files).toEqual(['step-0000000100.ckpt']);
    const kept = await readCheckpoint(path.join(out, 'checkpoints', files[0]));
    expect(kept.counters.envSteps).toBe(100);
  }, 60000);
});

describe('troupe eval and train say when evaluation hit its step cap', () => {
  test('train warns; eval --max-steps stops and says so', () => {
    const never = writeCoinModule(dir, 'never-ends-cli', NEVER_ENDS);
    const config = path.join(dir, 'never.yaml');
    fs.writeFileSync(config, coinConfig(never));
    const out = path.join(dir, 'never-cli');
    const trained = runCli(['train', config, '--out', out, '--backend', 'cpu', '--no-progress']);
    expect(trained.status).toBe(0);
    expect(trained.stderr).toMatch(/warning: evaluation stopped at its step cap of 22 vector steps with 0 of 2 episodes ended; does the env end its episodes\? \(raise the cap with run\.eval_max_steps\)/);
    const evaluated = runCli(['eval', out, '--max-steps', '30', '--episodes', '3', '--envs', '2', '--backend', 'cpu']);
    expect(evaluated.status).toBe(0);
    expect(evaluated.stdout).toMatch(/step cap hit {4}stopped after 30 vector steps with 0 of 3 episodes ended/);
    expect(evaluated.stdout).toMatch(/team return {5}— \(no episode ended\)/);
  }, 120000);
});
