import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { registerBuiltinEnvs } from '../envs/builtin';
import { checkEnv, formatCheckReport } from '../envs/checker';
import {
  BENCHMARK_SPLITS,
  type BenchmarkSplit,
  ML10,
  MT10,
  benchmarkSplit,
  defineBenchmarkSplit,
  ml1Split,
  splitEnvOptions,
  splitEnvSpec,
  unavailableKinds,
} from '../envs/manipulation/benchmark-split';
import { ARM_AGENT } from '../envs/manipulation/manipulation-env';
import { MultiTaskManipulationEnv, createMultiTaskEnv } from '../envs/manipulation/multi-task-env';
import { OBS } from '../envs/manipulation/observation-layout';
import { sampleTaskParams } from '../envs/manipulation/register';
import { MULTI_TASK_ENV_ID, parseSplitEnvId } from '../envs/manipulation/register-splits';
import { listEnvs, makeEnv, prepareEnv } from '../envs/registry';
import { Rng } from '../runtime/core/rng';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { describeSplits } from '../envs/env-listing';
import { evaluatePerTask } from '../runtime/training/evaluate-policies';

registerBuiltinEnvs();

const EXISTING = ['reach', 'push', 'pick-place'];
/** A multi-task split over the kinds that exist today, for behaviour tests. */
const MT3: BenchmarkSplit = defineBenchmarkSplit({
  name: 'MT3-test',
  setting: 'multi-task',
  description: 'test split',
  trainKinds: EXISTING,
  testKinds: EXISTING,
  goalObservable: true,
  oneHotTaskId: true,
  configurationsPerKind: 5,
  trainSeedOffset: 0,
  testSeedOffset: 0,
});

const makeMulti = (id: string, options: Record<string, unknown> = {}) => makeEnv<Float32Array, Float32Array>(id, options) as unknown as MultiTaskManipulationEnv;
const randomAction = (rng: Rng) => Float32Array.from({ length: 4 }, () => rng.uniform(-1, 1));

beforeAll(async () => {
  await prepareEnv('MT10');
});

describe('split definitions', () => {
  test("MT10 and ML10 name exactly Meta-World's members, with its settings", () => {
    expect([...MT10.trainKinds]).toEqual(['reach', 'push', 'pick-place', 'door-open', 'drawer-open', 'drawer-close', 'button-press-topdown', 'peg-insert-side', 'window-open', 'window-close']);
    expect([...MT10.testKinds]).toEqual([...MT10.trainKinds]);
    expect(MT10).toMatchObject({ setting: 'multi-task', goalObservable: true, oneHotTaskId: true, configurationsPerKind: 50, trainSeedOffset: 0, testSeedOffset: 0 });
    expect([...ML10.trainKinds]).toEqual(['reach', 'push', 'pick-place', 'door-open', 'drawer-close', 'button-press-topdown', 'peg-insert-side', 'window-open', 'sweep', 'basketball']);
    expect([...ML10.testKinds]).toEqual(['drawer-open', 'door-close', 'shelf-place', 'sweep-into', 'lever-pull']);
    expect(ML10).toMatchObject({ setting: 'meta-learning', goalObservable: false, oneHotTaskId: false, configurationsPerKind: 50, trainSeedOffset: 0, testSeedOffset: 1 });
    expect(BENCHMARK_SPLITS.map((s) => s.name)).toEqual(['MT10', 'ML10']);
    expect(ml1Split('push')).toMatchObject({ name: 'ML1-push', trainKinds: ['push'], testKinds: ['push'], goalObservable: false, oneHotTaskId: false, testSeedOffset: 1 });
    expect(benchmarkSplit('ML10')).toBe(ML10);
  });

  test('split env ids and specs', () => {
    expect(splitEnvSpec(ML10, 'test', { seed: 4 })).toEqual({ id: 'ML10:test', options: { seed: 4 } });
    expect(splitEnvSpec(MT10, 'train', { kind: 'push', horizon: 100 })).toEqual({ id: 'MT10/push', options: { horizon: 100 } });
    expect(splitEnvSpec(ml1Split('reach'), 'test')).toEqual({ id: 'ML1-reach:test', options: {} });
    expect(splitEnvOptions(ML10, 'test', { seed: 7 })).toMatchObject({ id: 'ML10:test', kinds: [...ML10.testKinds], seed: 8, goalObservable: false, oneHot: false, configurations: 50 });
    expect(parseSplitEnvId('ML10:test/lever-pull')).toMatchObject({ split: ML10, role: 'test', kind: 'lever-pull' });
    expect(parseSplitEnvId('lbf-8x8-2p-2f-coop')).toBeUndefined();
  });

  test('unknown splits, kinds, sides and options give clear errors', () => {
    expect(() => benchmarkSplit('MT11')).toThrow(/unknown benchmark split 'MT11' \(known: MT10, ML10/);
    expect(() => ml1Split('fly')).toThrow(/unknown manipulation task 'fly' \(known: reach, push, pick-place/);
    expect(() => makeEnv('ML1-fly')).toThrow(/unknown manipulation task 'fly'/);
    expect(() => makeEnv('MT10/sweep')).toThrow(/'sweep' is not one of MT10's tasks \(reach, push/);
    expect(() => makeEnv('MT10:test')).toThrow(/MT10 is a multi-task split, evaluated on its training tasks; use 'MT10'/);
    expect(() => makeEnv('ML1-push', { goalObservable: true })).toThrow(/ML1-push: unknown option 'goalObservable' \(known options: seed, horizon, kind, side, configuration, numTrainTasks, numTestTasks\)/);
    expect(() => makeEnv('ML1-push', { seed: -1 })).toThrow(/ML1-push: invalid option 'seed'/);
    expect(() => makeEnv('ML1-push/push', { kind: 'reach' })).toThrow(/option 'kind' is 'reach' but the id fixes 'push'/);
    expect(() => createMultiTaskEnv({ kinds: ['reach', 'fly'] })).toThrow(/invalid option 'kinds\[1\]': unknown manipulation task 'fly'/);
    expect(() => createMultiTaskEnv({ kinds: ['reach', 'reach'] })).toThrow(/task kinds must be distinct/);
    expect(() => createMultiTaskEnv({ kinds: ['reach'], kind: 'push' })).toThrow(/option 'kind' is 'push', which is not one of its tasks \(reach\)/);
    expect(() => makeMulti('MT3-test').reset({ options: { kind: 'door-open' } })).toThrow(/reset option 'kind' 'door-open' is not one of its tasks/);
    expect(() => defineBenchmarkSplit({ ...MT3, name: 'MT10' })).toThrow(/built-in split name/);
    expect(() => defineBenchmarkSplit({ ...MT3, name: 'MT3-bad', testKinds: ['reach'] })).toThrow(/testKinds must equal trainKinds/);
    const missing = unavailableKinds(MT10);
    if (missing.length > 0) {
      // Until every member kind is registered, the split cannot be made and is not listed.
      expect(() => makeEnv('MT10')).toThrow(new RegExp(`MT10: task kinds ${missing.join(', ')} of MT10 are not registered`));
      expect(listEnvs().map((e) => e.id)).not.toContain('MT10');
    } else {
      expect(listEnvs()).toContainEqual(expect.objectContaining({ id: 'MT10', family: 'manipulation/benchmarks' }));
    }
  });
});

describe('configurations', () => {
  const configs = (id: string, seed: number, kind = 'push') => [...makeMulti(id, { seed }).configurations(kind)];

  test('ML1 train and test configurations differ, and come from seeds s and s + 1', () => {
    const train = configs('ML1-push', 3);
    const test = configs('ML1-push:test', 3);
    expect(train).toHaveLength(50);
    expect(test).toHaveLength(50);
    expect(train).toEqual(sampleTaskParams('push', 50, 3));
    expect(test).toEqual(sampleTaskParams('push', 50, 4));
    const key = (p: unknown) => JSON.stringify(p);
    expect(test.filter((p) => train.map(key).includes(key(p)))).toEqual([]);
    expect(configs('ML1-push', 3)).toEqual(train); // reproducible
    expect(configs('ML1-push', 4)).toEqual(test); // train from s equals test from s − 1
    expect(configs('ML1-push', 5)).not.toEqual(train);
  });

  test('resets draw from the configuration list', () => {
    const env = makeMulti('ML1-pick-place', { seed: 2 });
    const list = env.configurations('pick-place').map((p) => JSON.stringify(p));
    const seen = new Set<string>();
    env.reset({ seed: 0 });
    for (let i = 0; i < 40; i++) {
      const current = JSON.stringify(env.currentTask());
      expect(list).toContain(current);
      seen.add(current);
      env.reset();
    }
    expect(seen.size).toBeGreaterThan(15);
    env.close();
  });
});

describe('observations', () => {
  test('the goal is zeroed in ML mode and visible in MT mode', () => {
    const ml = makeMulti('ML1-reach');
    const mt = makeMulti('MT3-test/reach');
    const rng = new Rng(1);
    for (let episode = 0; episode < 3; episode++) {
      const mlObs = ml.reset({ seed: episode }).observations[ARM_AGENT];
      const mtObs = mt.reset({ seed: episode }).observations[ARM_AGENT];
      expect(mlObs).toHaveLength(39);
      expect(Array.from(mlObs.subarray(OBS.GOAL, OBS.GOAL + 3))).toEqual([0, 0, 0]);
      const goal = (mt.currentTask() as unknown as { goalPosition: number[] }).goalPosition;
      expect(Array.from(mtObs.subarray(OBS.GOAL, OBS.GOAL + 3))).toEqual(Array.from(Float32Array.from(goal)));
      expect(goal.some((v) => v !== 0)).toBe(true);
      for (let t = 0; t < 5; t++) {
        const step = ml.step({ [ARM_AGENT]: randomAction(rng) });
        expect(Array.from(step.observations[ARM_AGENT].subarray(OBS.GOAL, OBS.GOAL + 3))).toEqual([0, 0, 0]);
      }
    }
    ml.close();
    mt.close();
  });

  test('the one-hot task id is the last numTasks entries and matches info.task; ML envs have none', () => {
    const env = makeMulti('MT3-test');
    expect(env.metadata.numTasks).toBe(3);
    expect(env.metadata.family).toBe('manipulation/benchmarks');
    expect(env.observationSpace(ARM_AGENT).shape).toEqual([42]);
    const rng = new Rng(2);
    let { observations, infos } = env.reset({ seed: 5 });
    const kinds = new Set<string>();
    for (let episode = 0; episode < 12; episode++) {
      const kind = infos[ARM_AGENT].task as string;
      kinds.add(kind);
      expect(env.currentKind()).toBe(kind);
      const expected = EXISTING.map((k) => (k === kind ? 1 : 0));
      expect(Array.from(observations[ARM_AGENT].subarray(39))).toEqual(expected);
      const step = env.step({ [ARM_AGENT]: randomAction(rng) });
      expect(step.infos[ARM_AGENT]).toMatchObject({ task: kind, task_index: EXISTING.indexOf(kind) });
      expect(Array.from(step.observations[ARM_AGENT].subarray(39))).toEqual(expected);
      expect(env.observationSpace(ARM_AGENT).contains(step.observations[ARM_AGENT])).toBe(true);
      expect(Array.from(env.state().subarray(39))).toEqual(expected);
      ({ observations, infos } = env.reset());
    }
    expect(kinds.size).toBe(3);
    const ml = makeMulti('ML1-push');
    expect(ml.metadata.numTasks).toBeUndefined();
    expect(ml.observationSpace(ARM_AGENT).shape).toEqual([39]);
    env.close();
    ml.close();
  });

  test('MT3-test/<kind> always plays that kind with the split\'s one-hot layout', () => {
    for (const kind of EXISTING) {
      const env = makeMulti(`MT3-test/${kind}`);
      expect(env.metadata.numTasks).toBe(3);
      let result = env.reset({ seed: 9 });
      for (let i = 0; i < 15; i++) {
        expect(result.infos[ARM_AGENT].task).toBe(kind);
        expect(result.observations[ARM_AGENT][39 + EXISTING.indexOf(kind)]).toBe(1);
        result = env.reset();
      }
      env.close();
    }
    const viaOption = createMultiTaskEnv({ kinds: EXISTING, kind: 'pick-place' });
    viaOption.reset({ seed: 0 });
    expect(viaOption.currentKind()).toBe('pick-place');
    expect(viaOption.reset({ options: { kind: 'reach' } }).infos[ARM_AGENT].task).toBe('reach');
    viaOption.close();
  });

  test('kinds are sampled roughly uniformly', () => {
    const env = createMultiTaskEnv({ kinds: EXISTING, configurations: 3 });
    const counts: Record<string, number> = { reach: 0, push: 0, 'pick-place': 0 };
    env.reset({ seed: 'uniform' });
    const n = 600;
    for (let i = 0; i < n; i++) {
      counts[env.currentKind()!]++;
      env.reset();
    }
    // Binomial(600, 1/3): sd ≈ 11.5, so ±50 is over 4 sd.
    for (const kind of EXISTING) expect(Math.abs(counts[kind] - n / 3)).toBeLessThan(50);
    env.close();
  });
});

describe('setTask on a split env', () => {
  test('fixes kind and configuration until cleared; reset options still override; bad params are refused', () => {
    const env = makeMulti('MT10');
    const params = sampleTaskParams('push', 1, 7)[0];
    env.setTask(params);
    for (let episode = 0; episode < 4; episode++) {
      const { infos } = env.reset({ seed: episode });
      expect(infos[ARM_AGENT].task).toBe('push');
      expect(env.currentTask()).toEqual(params);
    }
    env.reset({ options: { kind: 'reach' } });
    expect(env.currentKind()).toBe('reach');
    env.setTask(null);
    const kinds = new Set<string>();
    for (let episode = 0; episode < 20; episode++) kinds.add(env.reset({ seed: 100 + episode }).infos[ARM_AGENT].task as string);
    expect(kinds.size).toBeGreaterThan(3);
    expect(() => env.setTask({ kind: 'sweep' })).toThrow(/sweep/);
    expect(() => env.setTask({ ...params, objectPosition: [9, 9, 9] } as typeof params)).toThrow(/setTask/);
    env.close();
  });
});

describe('conformance and determinism', () => {
  test.each([
    ['MT mode', { kinds: EXISTING, horizon: 25 }],
    ['ML mode', { kinds: EXISTING, horizon: 25, goalObservable: false, oneHot: false }],
  ])('checkEnv passes on a multi-task env (%s)', (_name, options) => {
    const report = checkEnv(() => createMultiTaskEnv(options), { seed: 3, episodes: 2 });
    if (!report.passed) throw new Error(formatCheckReport(report));
    expect(report.passed).toBe(true);
  });

  test('the same seed replays the same episodes', () => {
    const run = () => {
      const env = createMultiTaskEnv({ kinds: EXISTING, horizon: 10 });
      const rng = new Rng(4);
      const trace: number[] = [];
      env.reset({ seed: 11 });
      for (let episode = 0; episode < 4; episode++) {
        for (let t = 0; t < 10; t++) {
          const step = env.step({ [ARM_AGENT]: randomAction(rng) });
          trace.push(step.rewards[ARM_AGENT], ...step.observations[ARM_AGENT]);
        }
        trace.push(EXISTING.indexOf(env.currentKind()!));
        env.reset();
      }
      env.close();
      return trace;
    };
    expect(run()).toEqual(run());
  });

  test('a VectorEnv over 2 workers gives exactly the in-process results', async () => {
    const spec = { id: MULTI_TASK_ENV_ID, options: { kinds: EXISTING, horizon: 12, configurations: 10 } };
    const rollout = async (workers: number) => {
      const vec = await VectorEnv.create({ env: spec, numEnvs: 4, workers, seed: 21 });
      try {
        const rng = new Rng('actions');
        const trace: number[] = [];
        await vec.reset();
        for (let t = 0; t < 40; t++) {
          for (let i = 0; i < vec.buffers.actions.length; i++) vec.buffers.actions[i] = rng.uniform(-1, 1);
          await vec.step();
          trace.push(...vec.buffers.obs, ...vec.buffers.rewards, ...vec.buffers.episodeDone, ...vec.buffers.episodeSuccess.map((v) => (Number.isNaN(v) ? -1 : v)));
        }
        return trace;
      } finally {
        await vec.close();
      }
    };
    const inProcess = await rollout(0);
    expect(inProcess.length).toBeGreaterThan(0);
    expect(await rollout(2)).toEqual(inProcess);
  });
});

describe('per-task evaluation', () => {
  test('evaluatePerTask evaluates each member kind on <split>/<kind> and averages', async () => {
    const summary = await evaluatePerTask('MT3-test', { isCheckpoint: false, episodes: 2, seed: '1', numEnvs: 2, workers: 0, log: () => undefined });
    expect(summary.env).toBe('MT3-test');
    expect(summary.tasks.map((t) => [t.kind, t.env])).toEqual(EXISTING.map((k) => [k, `MT3-test/${k}`]));
    for (const t of summary.tasks) {
      expect(t.episodes).toBe(2);
      expect(t.successRate).not.toBeNull();
    }
    expect(summary.meanSuccessRate).toBeCloseTo(summary.tasks.reduce((a, t) => a + t.successRate!, 0) / 3, 10);
    expect(summary.meanReturn).toBeCloseTo(summary.tasks.reduce((a, t) => a + t.meanReturn, 0) / 3, 10);
    await expect(evaluatePerTask('combat-3v3', { isCheckpoint: false, episodes: 1, seed: '0', numEnvs: 1, workers: 0, log: () => undefined })).rejects.toThrow(/--per-task needs a benchmark split env/);
    await expect(evaluatePerTask('MT3-test/push', { isCheckpoint: false, episodes: 1, seed: '0', numEnvs: 1, workers: 0, log: () => undefined })).rejects.toThrow(/already fixed to one task/);
  });

  test('troupe envs --splits describes the splits; the CLI runs eval --per-task', () => {
    const cli = path.join(__dirname, '..', 'scripts', 'troupe.js');
    const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120000 });
    const listing = describeSplits(); // what `troupe envs --splits --json` prints
    expect(listing.splits.map((s) => s.name)).toEqual(['MT10', 'ML10']);
    expect(listing.splits[1].testKinds).toEqual([...ML10.testKinds]);
    expect(listing.splits[0]).toMatchObject({ trainEnvId: 'MT10', testEnvId: 'MT10', oneHotTaskId: true, goalObservable: true });
    expect(listing.splits[1]).toMatchObject({ trainEnvId: 'ML10', testEnvId: 'ML10:test', testSeedOffset: 1, goalObservable: false });
    expect(listing.ml1).toMatchObject({ trainEnvId: 'ML1-<kind>', testEnvId: 'ML1-<kind>:test', testSeedOffset: 1 });
    expect(listing.ml1.kinds).toEqual(expect.arrayContaining(EXISTING));
    const evaluated = run('eval', 'ML1-reach:test', '--per-task', '--episodes', '2', '--envs', '2', '--json');
    if (evaluated.status !== 0) throw new Error(evaluated.stderr);
    const summary = JSON.parse(evaluated.stdout) as { env: string; tasks: Array<{ kind: string; env: string }>; meanSuccessRate: number };
    expect(summary.env).toBe('ML1-reach:test');
    expect(summary.tasks.map((t) => t.env)).toEqual(['ML1-reach:test/reach']);
    expect(typeof summary.meanSuccessRate).toBe('number');
  });
});
