import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expertPolicyFor } from '../agents/policies/experts/expert-policy';
import type { Policy, PolicyBatch } from '../agents/policies/policy';
import { registerBuiltinEnvs } from '../envs/builtin';
import { layoutFor } from '../envs/env-shape';
import { OBS } from '../envs/manipulation/observation-layout';
import type { MultiTaskManipulationEnv } from '../envs/manipulation/multi-task-env';
import { ml1PinnedConfiguration } from '../envs/manipulation/register-splits';
import { envTaskFamily, makeEnv, prepareEnv } from '../envs/registry';
import { selectBackend } from '../runtime/core/tf-backend';
import { loadCollectConfig } from '../runtime/training/collect-datasets';
import { loadRunConfig } from '../runtime/training/config-loader';
import { resolveDatasetSet } from '../runtime/training/dataset-sets';
import type { TaskInferenceResults } from '../runtime/training/task-inference-evaluation';
import { TASK_INFERENCE_FILE, runTraining } from '../runtime/training/training-run';
import { readDataset } from '../trainers/dataset';

/*
 * `ML1-reach` as a task family for offline meta-RL (Meta-DT's ML1 set-up): each task one
 * configuration whose goal the observation hides, the reach expert told the goal by the env
 * options, and Meta-DT run from the smoke configs.
 */

const REPO = path.join(__dirname, '..', '..');
const CONFIGS = path.join(REPO, 'configs', 'meta-dt');

let root: string;
beforeAll(async () => {
  registerBuiltinEnvs();
  await prepareEnv('ML1-reach');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-ml1-reach-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const goalKey = (g: unknown) => (g as number[]).map((v) => v.toFixed(6)).join();

function member(key: string, options: Record<string, unknown> = {}) {
  const found = envTaskFamily('ML1-reach', options)!.find((m) => m.key === key);
  if (!found) throw new Error(`no member ${key}`);
  return found;
}

/** Runs one episode of `env` (slot 0 of the policy; any other slots see the same observations). */
function episode(env: MultiTaskManipulationEnv, policy: Policy, numEnvs: number, seed: number) {
  const agent = env.possibleAgents[0];
  let obs = env.reset({ seed }).observations[agent];
  const actions = new Float32Array(4 * numEnvs);
  const taken: number[] = [];
  let firstSuccess = -1;
  let ret = 0;
  for (let t = 0; ; t++) {
    const tiled = new Float32Array(OBS.SIZE * numEnvs);
    for (let e = 0; e < numEnvs; e++) tiled.set(obs, e * OBS.SIZE);
    policy.act({ obs: tiled, alive: new Uint8Array(numEnvs).fill(1) } as unknown as PolicyBatch, actions);
    taken.push(...actions.subarray(0, 4));
    const step = env.step({ [agent]: actions.slice(0, 4) });
    obs = step.observations[agent];
    ret += step.rewards[agent];
    if (firstSuccess < 0 && step.infos[agent].success === true) firstSuccess = t + 1;
    if (step.truncations[agent] || step.terminations[agent]) return { taken, firstSuccess, ret, steps: t + 1 };
  }
}

describe('the ML1-reach task family', () => {
  test("Meta-DT's 15 train / 5 test single-configuration tasks: keys, splits, goals, options", () => {
    const family = envTaskFamily('ML1-reach')!;
    expect(family.map((m) => m.key)).toEqual([...Array.from({ length: 15 }, (_, i) => `train${String(i).padStart(2, '0')}`), 'test00', 'test01', 'test02', 'test03', 'test04']);
    expect(family.filter((m) => m.split === 'test').map((m) => m.key)).toEqual(['test00', 'test01', 'test02', 'test03', 'test04']);
    expect(family[3].options).toEqual({ side: 'train', configuration: 3 });
    expect(family[16].options).toEqual({ side: 'test', configuration: 1 });
    expect(family[16].parameters).toMatchObject({ task: 1, goal: expect.any(Array), params: { kind: 'reach' } });
    // What defines a reach task is its goal: the configuration's goal position.
    for (const m of family) expect(m.parameters.goal).toEqual((m.parameters.params as { goalPosition: number[] }).goalPosition);
    const train = new Set(family.filter((m) => m.split === 'train').map((m) => goalKey(m.parameters.goal)));
    const test = family.filter((m) => m.split === 'test').map((m) => goalKey(m.parameters.goal));
    expect(train.size).toBe(15);
    expect(new Set(test).size).toBe(5);
    for (const g of test) expect(train.has(g)).toBe(false);

    // Family options pass through to every member; sizes up to the 50 configurations of a side.
    const sized = envTaskFamily('ML1-reach', { seed: 2, horizon: 60, numTrainTasks: 50, numTestTasks: 0 })!;
    expect(sized).toHaveLength(50);
    expect(sized[49]).toMatchObject({ key: 'train49', split: 'train', options: { seed: 2, horizon: 60, side: 'train', configuration: 49 } });
    // Another benchmark seed, other goals; the same seed, the same goals (the first of a longer list).
    expect(goalKey(sized[0].parameters.goal)).not.toBe(goalKey(family[0].parameters.goal));
    expect(goalKey(envTaskFamily('ML1-reach', { numTrainTasks: 40 })![14].parameters.goal)).toBe(goalKey(family[14].parameters.goal));
    // Every ML1 kind is a family; without a goal position in its configurations, their positions define a task.
    const door = envTaskFamily('ML1-door-open')![0];
    expect(door.parameters).toEqual({ fixturePosition: expect.any(Array), task: 0, params: { kind: 'door-open', fixturePosition: door.parameters.fixturePosition } });
  });

  test('bad family options are errors naming the option', () => {
    expect(() => envTaskFamily('ML1-reach', { numTrainTasks: 51 })).toThrow(/ML1-reach: invalid option 'numTrainTasks' = 51: at most 50, the configurations of a side/);
    expect(() => envTaskFamily('ML1-reach', { numTestTasks: -1 })).toThrow(/invalid option 'numTestTasks' = -1/);
    expect(() => envTaskFamily('ML1-reach', { numTrainTasks: 0, numTestTasks: 0 })).toThrow(/both 0; the family would have no task/);
    expect(() => envTaskFamily('ML1-reach', { configuration: 2 })).toThrow(/option 'configuration' picks one task, but the task family lists them all/);
    expect(() => envTaskFamily('ML1-reach', { side: 'test' })).toThrow(/option 'side' picks one task/);
    expect(() => envTaskFamily('ML1-reach', { horizon: 0 })).toThrow(/ML1-reach: invalid option 'horizon' = 0/);
    expect(() => envTaskFamily('ML1-reach', { kind: 'push' })).toThrow(/ML1-reach: option 'kind' is 'push', which is not one of ML1-reach's tasks \(reach\)/);
    expect(() => makeEnv('ML1-reach', { kind: 'push', configuration: 0 })).toThrow(/option 'kind' is 'push', which is not one of/);
    expect(() => envTaskFamily('ML1-reach', { numTrainTask: 3 })).toThrow(/unknown option 'numTrainTask'.*did you mean 'numTrainTasks'/);
    // The sizes mean nothing to an env, and the test side's id is not a family of its own.
    expect(() => makeEnv('ML1-reach', { numTrainTasks: 3 })).toThrow(/option 'numTrainTasks' sizes the ML1 task family .* not an env/);
    expect(envTaskFamily('ML1-reach:test')).toBeUndefined();
    expect(() => makeEnv('ML1-reach', { configuration: 50 })).toThrow(/invalid option 'configuration' = 50: configurations are indexed 0 to 49/);
    expect(() => makeEnv('ML1-reach:test', { side: 'train', configuration: 0 })).toThrow(/option 'side' is 'train' but the id names the test side; use 'ML1-reach'/);
    expect(() => makeEnv('MT10', { side: 'test' })).toThrow(/MT10 is a multi-task split/);
    expect(() => makeEnv('MT10', { configuration: 1 })).toThrow(/option 'configuration' = 1 indexes one kind's configurations, so it needs option 'kind'/);
  });

  test("a member's env plays its one configuration every episode, goal hidden; members are the split envs' configurations", () => {
    const m = member('test02', { horizon: 30 });
    const env = makeEnv('ML1-reach', m.options) as unknown as MultiTaskManipulationEnv;
    expect(env.metadata.maxEpisodeSteps).toBe(30);
    const agent = env.possibleAgents[0];
    for (let seed = 0; seed < 4; seed++) {
      const obs = env.reset({ seed }).observations[agent];
      expect(env.currentTask()).toEqual(m.parameters.params);
      expect(Array.from(obs.subarray(OBS.GOAL, OBS.GOAL + 3))).toEqual([0, 0, 0]);
      expect(Array.from(env.step({ [agent]: new Float32Array(4) }).observations[agent].subarray(OBS.GOAL, OBS.GOAL + 3))).toEqual([0, 0, 0]);
    }
    // Member k of a side is configuration k of ML1-reach (train) or ML1-reach:test, which draw per reset.
    const testSide = makeEnv('ML1-reach:test') as unknown as MultiTaskManipulationEnv;
    expect(testSide.configurations('reach')[2]).toEqual(m.parameters.params);
    const trainSide = makeEnv('ML1-reach') as unknown as MultiTaskManipulationEnv;
    expect(trainSide.configurations('reach')[7]).toEqual(member('train07').parameters.params);
    const drawn = new Set<string>();
    for (let seed = 0; seed < 6; seed++) {
      trainSide.reset({ seed });
      drawn.add(JSON.stringify(trainSide.currentTask()));
    }
    expect(drawn.size).toBeGreaterThan(1);
    // setTask still overrides the pinned configuration, and clearing it returns to it.
    env.setTask(testSide.configurations('reach')[4]);
    env.reset({ seed: 0 });
    expect(env.currentTask()).toEqual(testSide.configurations('reach')[4]);
    env.setTask(null);
    env.reset({ seed: 0 });
    expect(env.currentTask()).toEqual(m.parameters.params);
    for (const e of [env, testSide, trainSide]) e.close();
    expect(ml1PinnedConfiguration('ML1-reach', m.options)).toEqual({ kind: 'reach', side: 'test', configuration: 2, params: m.parameters.params });
  });
});

describe('the hidden-goal reach expert', () => {
  test('reaches every member goal within a 40-step episode (success in info) without noise', () => {
    for (const m of envTaskFamily('ML1-reach', { horizon: 40 })!) {
      const env = makeEnv('ML1-reach', m.options) as unknown as MultiTaskManipulationEnv;
      const policy = expertPolicyFor('ML1-reach', layoutFor(env, 1), { envOptions: m.options, seed: 1 });
      const run = episode(env, policy, 1, 5);
      expect([m.key, run.steps]).toEqual([m.key, 40]);
      expect([m.key, run.firstSuccess > 0 && run.firstSuccess <= 30]).toEqual([m.key, true]);
      env.close();
    }
  });

  test.each(['push', 'pick-place'])('the %s expert is told its hidden goal the same way and succeeds on train and test members', async (kind) => {
    const id = `ML1-${kind}`;
    await prepareEnv(id);
    const family = envTaskFamily(id, { horizon: 150 })!;
    for (const m of [family[0], family[family.length - 1]]) {
      const env = makeEnv(id, m.options) as unknown as MultiTaskManipulationEnv;
      const run = episode(env, expertPolicyFor(id, layoutFor(env, 1), { envOptions: m.options, seed: 1 }), 1, 2);
      expect([m.key, run.firstSuccess > 0]).toEqual([m.key, true]);
      env.close();
    }
  });

  test('is deterministic per seed and env index, whatever the number of envs; noise acts', () => {
    const m = member('train05', { horizon: 25 });
    const env = makeEnv('ML1-reach', m.options) as unknown as MultiTaskManipulationEnv;
    const run = (numEnvs: number, noise: number, seed: number) => episode(env, expertPolicyFor('ML1-reach', layoutFor(env, numEnvs), { envOptions: m.options, noise, seed }), numEnvs, 9);
    const alone = run(1, 0.5, 3);
    expect(run(1, 0.5, 3).taken).toEqual(alone.taken);
    expect(run(4, 0.5, 3).taken).toEqual(alone.taken);
    expect(run(1, 0.5, 4).taken).not.toEqual(alone.taken);
    const clean = run(1, 0, 3);
    expect(clean.taken).not.toEqual(alone.taken);
    // With noise 0 the seed plays no part.
    expect(run(1, 0, 8).taken).toEqual(clean.taken);
    env.close();
  });

  test('needs a pinned configuration of a kind it knows; clear errors otherwise', () => {
    const env = makeEnv('ML1-reach');
    const layout = layoutFor(env, 1);
    env.close?.();
    expect(() => expertPolicyFor('ML1-reach', layout, {})).toThrow(/ML1-reach: the scripted experts need the goal, which ML1-reach hides.*option 'configuration'.*kinds: reach, push, pick-place/);
    expect(() => expertPolicyFor('ML1-door-open', layout, { envOptions: { configuration: 0 } })).toThrow(/ML1-door-open: no scripted expert for a hidden door-open goal \(hidden-goal experts: reach, push, pick-place\)/);
    expect(() => expertPolicyFor('ML1-reach', layout, { envOptions: { configuration: 0 }, noise: -1 })).toThrow(/noise must be a finite number ≥ 0/);
  });
});

describe('Meta-DT on ML1-reach from the smoke configs', () => {
  test('the benchmark configs validate', () => {
    const collect = loadCollectConfig(path.join(CONFIGS, 'ml1-reach-collect.yaml'));
    expect(collect.env).toEqual({ id: 'ML1-reach', options: { horizon: 100, numTrainTasks: 15, numTestTasks: 5 } });
    const run = loadRunConfig(path.join(CONFIGS, 'ml1-reach.yaml'));
    expect(run.datasets?.collect).toBe(path.join(CONFIGS, 'ml1-reach-collect.yaml'));
    expect(run.algo).toMatchObject({ name: 'meta_dt', return_scale: 100 });
  });

  test('collects the datasets when missing and trains, evaluating every mode on train and held-out goals', async () => {
    await selectBackend('wasm');
    const dir = path.join(root, 'data');
    const overrides = [`datasets.dir=${dir}`, 'algo.world_model_steps=20', 'algo.warm_train_steps=10', 'algo.warmup_steps=10', 'run.total_gradient_steps=50', 'run.eval_interval=50', 'run.checkpoint_interval=50', 'run.log_interval=10'];
    const config = await resolveDatasetSet(loadRunConfig(path.join(CONFIGS, 'ml1-reach-smoke.yaml'), overrides));
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'dataset.json'), 'utf8')) as { tasks: Array<{ key: string; split: string; episodes: number; env: { options: Record<string, unknown> }; parameters: { goal: number[] } }> };
    expect(manifest.tasks.map((t) => t.key)).toEqual(['test00', 'test01', 'train00', 'train01', 'train02', 'train03']);
    expect(manifest.tasks.every((t) => t.episodes === 10 && t.parameters.goal.length === 3)).toBe(true);
    expect(manifest.tasks[1].env.options).toEqual({ horizon: 40, side: 'test', configuration: 1 });
    // The expert knew the goal; the recorded observations (and state) never show it.
    const recorded = await readDataset(path.join(dir, 'test01.msgpack'));
    let goalSlots = 0;
    for (const ep of recorded.episodes) {
      for (const field of [ep.obs, ep.state]) {
        for (let row = 0; row + OBS.SIZE <= field.length; row += OBS.SIZE) for (let i = 0; i < 3; i++) goalSlots += Math.abs(field[row + OBS.GOAL + i]);
      }
    }
    expect(goalSlots).toBe(0);

    const outDir = path.join(root, 'run');
    const summary = await runTraining({ config, outDir, backend: { name: 'wasm', reason: 'test' } });
    expect(summary.interrupted).toBeFalsy();
    const inference = JSON.parse(fs.readFileSync(path.join(outDir, TASK_INFERENCE_FILE), 'utf8')) as TaskInferenceResults;
    expect(inference.modes).toEqual(['zero-shot', 'few-shot', 'demo']);
    expect(inference.tasks.test01.split).toBe('test');
    for (const t of Object.values(inference.tasks)) {
      for (const mode of inference.modes) expect(Number.isFinite(t[mode]!.return_mean)).toBe(true);
    }
    expect(inference.summary.test['zero-shot']!.tasks).toBe(2);
    expect(inference.summary.train['zero-shot']!.tasks).toBe(4);
    // The probe's target is the hidden goal alone (not the task index nor the observed puck).
    expect(inference.probe).toMatchObject({ target: ['goal[0]', 'goal[1]', 'goal[2]'] });
  }, 90000);
});
