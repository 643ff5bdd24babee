import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import type { Experience } from '../agents/experience';
import { loadPolicy } from '../agents/load-policy';
import type { Policy, PolicyBatch } from '../agents/policies/policy';
import { registerBuiltinEnvs } from '../envs/builtin';
import { readCheckpoint } from '../runtime/core/checkpoint';
import { MetricsLog, type MetricsRecord, WALL_CLOCK_FIELDS } from '../runtime/core/metrics-log';
import { selectBackend } from '../runtime/core/tf-backend';
import { evaluatePolicy } from '../runtime/rollout/evaluation';
import { consumeEach, taskExperienceStream } from '../runtime/rollout/experience-stream';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { RunConfigError, parseRunConfig } from '../runtime/training/config-loader';
import { runTasks } from '../runtime/training/run-config';
import { type TrainingRunOptions, runTraining } from '../runtime/training/training-run';

/*
 * Several tasks in one run: experience keyed by task through one stream, each task with its own
 * envs, shape, workers and evaluation, one learner (here MAPPO, one set of networks per task).
 */

let root: string;
beforeAll(async () => {
  registerBuiltinEnvs();
  await selectBackend('wasm');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-multitask-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const withoutClock = (records: MetricsRecord[]) => records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !WALL_CLOCK_FIELDS.includes(k))));

// Two tasks whose observations (12 vs 14 numbers) and action counts (6 vs 5) differ.
const TWO_TASKS = `
tasks:
  - { id: lbf-8x8-2p-2f-coop, num_envs: 4 }
  - { id: spread-3, name: spread, num_envs: 2 }
algo: { name: mappo, hidden_dim: 16, rollout_length: 10, use_rnn: true, obs_last_action: true }
run: { seed: 3, total_env_steps: 1500, log_interval: 300, eval_interval: 600, eval_episodes: 2, checkpoint_interval: 600, num_envs: 4 }
`;

let count = 0;
async function train(yaml: string, over: string[] = [], extra: Partial<TrainingRunOptions> = {}) {
  const config = parseRunConfig(yaml, 'test', over);
  const outDir = extra.outDir ?? path.join(root, `run-${count++}`);
  const summary = await runTraining({ config, outDir, backend: { name: 'wasm', reason: 'test' }, ...extra });
  return { outDir, summary, metrics: MetricsLog.read(path.join(outDir, 'metrics.jsonl')) };
}

describe('multi-task config', () => {
  test('tasks: items take env keys plus name, num_envs, workers; the run lists them with defaults', () => {
    const cfg = parseRunConfig(TWO_TASKS, 'test');
    expect(runTasks(cfg)).toEqual([
      { key: 'lbf-8x8-2p-2f-coop', env: { id: 'lbf-8x8-2p-2f-coop' }, numEnvs: 4, workers: 0 },
      { key: 'spread', env: { id: 'spread-3' }, numEnvs: 2, workers: 0 },
    ]);
    // `env:` stays valid and means one task keyed by its id.
    expect(runTasks(parseRunConfig('env: { id: combat-3v3 }\nalgo: { name: qmix }\n', 'test'))).toEqual([{ key: 'combat-3v3', env: { id: 'combat-3v3' }, numEnvs: 1, workers: 0 }]);
    // --set reaches into list items.
    expect(runTasks(parseRunConfig(TWO_TASKS, 'test', ['tasks.1.num_envs=3', 'tasks.0.workers=2']))[1].numEnvs).toBe(3);
    expect(runTasks(parseRunConfig(TWO_TASKS, 'test', ['tasks.0.workers=2']))[0].workers).toBe(2);
  });

  test.each([
    ['env and tasks together', `env: { id: spread-3 }\n${TWO_TASKS}`, /tasks: give either 'env' \(one task\) or 'tasks', not both/],
    ['neither', 'algo: { name: mappo }\n', /env: required: 'env' \(one task\), 'tasks' \(several\) or, offline, 'datasets'/],
    ['two tasks with one key', 'tasks: [{ id: spread-3 }, { id: spread-3 }]\nalgo: { name: mappo }\n', /tasks\.1\.name: task key 'spread-3' is also tasks\.0's/],
    ['an unknown task key', 'tasks: [{ id: spread-3, envs: 2 }]\nalgo: { name: mappo }\n', /tasks\.0\.envs: unknown key/],
    ['a dataset beside tasks', 'tasks: [{ id: spread-3 }]\ndataset: x.msgpack\nalgo: { name: bc }\n', /dataset: belongs with 'env'/],
  ])('refused: %s', (_name, yaml, message) => {
    expect(() => parseRunConfig(yaml, 'test')).toThrow(RunConfigError);
    expect(() => parseRunConfig(yaml, 'test')).toThrow(message);
  });
});

describe('one stream, several tasks', () => {
  test('items carry their task; rounds interleave the tasks in order; each source keeps its own collection mode', async () => {
    const a = await VectorEnv.create({ env: { id: 'lbf-8x8-2p-2f-coop' }, numEnvs: 3, seed: 1 });
    const b = await VectorEnv.create({ env: { id: 'spread-3' }, numEnvs: 2, seed: 2 });
    const seen: Array<{ task: string; taskIndex: number; context: number[] }> = [];
    const probe = (task: string): Policy => ({
      act: (batch: PolicyBatch) => {
        seen.push({ task, taskIndex: batch.context.taskIndex[0], context: Array.from(batch.context.latent) });
      },
    });
    const latent = { values: Float32Array.of(0.5, -1), dim: 1 };
    try {
      const items = await lastValueFrom(
        taskExperienceStream(
          [
            { vec: a, policy: probe('lbf'), collection: { mode: 'chunk', chunkLength: 3 }, task: 'lbf', taskIndex: 0 },
            { vec: b, policy: probe('spread'), collection: { mode: 'transition' }, task: 'spread', taskIndex: 1, latent, policyVersion: () => 7 },
          ],
          { rounds: 2, bufferSize: 1 },
        ).pipe(consumeEach((item: Experience) => item), toArray()),
      );
      expect(items.map((i) => [i.task, i.taskIndex, i.kind])).toEqual([
        ['lbf', 0, 'chunk'],
        ['spread', 1, 'transition'],
        ['lbf', 0, 'chunk'],
        ['spread', 1, 'transition'],
      ]);
      expect(items[0].layout.obsDim).not.toBe(items[1].layout.obsDim);
      // The policies saw their task's index and latent; the items recorded them and the policy version.
      expect(seen.filter((s) => s.task === 'spread').every((s) => s.taskIndex === 1 && s.context.join() === '0.5,-1')).toBe(true);
      expect(seen.filter((s) => s.task === 'lbf').every((s) => s.taskIndex === 0 && s.context.length === 0)).toBe(true);
      const tr = items[1];
      expect(tr.kind === 'transition' && tr.policyVersion).toBe(7);
      expect(Array.from(tr.latent)).toEqual([0.5, -1]);
      expect(Array.from(tr.teamSize)).toEqual([3, 3]);
      // firstSource: a round can start at a later task (what a resume inside a round needs).
      const resumed = await lastValueFrom(
        taskExperienceStream(
          [
            { vec: a, policy: probe('lbf'), collection: { mode: 'transition' }, task: 'lbf' },
            { vec: b, policy: probe('spread'), collection: { mode: 'transition' }, task: 'spread' },
          ],
          { rounds: 2, firstSource: 1, bufferSize: 1 },
        ).pipe(consumeEach((item: Experience) => item.task), toArray()),
      );
      expect(resumed).toEqual(['spread', 'lbf', 'spread']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('sources must have distinct keys and envs', async () => {
    const a = await VectorEnv.create({ env: { id: 'spread-3' }, numEnvs: 1, seed: 1 });
    const policy: Policy = { act: () => undefined };
    try {
      expect(() => taskExperienceStream([{ vec: a, policy, collection: { mode: 'transition' } }, { vec: a, policy, collection: { mode: 'transition' }, task: 'b' }])).toThrow(/own VectorEnv/);
      expect(() => taskExperienceStream([{ vec: a, policy, collection: { mode: 'transition' }, task: 'x', latent: { values: new Float32Array(3), dim: 2 } }])).toThrow(/latent must hold E·dim = 1·2 numbers, got 3/);
    } finally {
      await a.close();
    }
  });
});

describe('a two-task training run', () => {
  let full: Awaited<ReturnType<typeof train>>;
  beforeAll(async () => {
    full = await train(TWO_TASKS);
  }, 120000);

  test('trains two policies of different shapes through one stream: per-task metrics, evaluations and summary', () => {
    const { metrics, summary } = full;
    // Rounds of 4·10 + 2·10 env steps: ⌈1500 / 60⌉ = 25 rounds.
    expect(summary.env_steps).toBe(1500);
    const train = metrics.filter((r) => r.kind === 'train');
    const evals = metrics.filter((r) => r.kind === 'eval');
    expect(new Set(train.map((r) => r.task))).toEqual(new Set(['lbf-8x8-2p-2f-coop', 'spread']));
    expect(evals.map((r) => [r.task, r.env_steps])).toEqual([
      ['lbf-8x8-2p-2f-coop', 600],
      ['spread', 600],
      ['lbf-8x8-2p-2f-coop', 1200],
      ['spread', 1200],
      ['lbf-8x8-2p-2f-coop', 1500],
      ['spread', 1500],
    ]);
    const last = (task: string) => train.filter((r) => r.task === task).at(-1)!;
    // Each task's own env steps: 4 envs vs 2 envs, the same number of rounds.
    expect(last('lbf-8x8-2p-2f-coop').task_env_steps).toBe(1000);
    expect(last('spread').task_env_steps).toBe(500);
    // Both learners updated once per round: 25 each.
    expect(last('lbf-8x8-2p-2f-coop').task_updates).toBe(25);
    expect(last('spread').task_updates).toBe(25);
    expect(typeof last('spread').policy_loss).toBe('number');
    expect(Object.keys(summary.tasks!)).toEqual(['lbf-8x8-2p-2f-coop', 'spread']);
    expect(summary.tasks!.spread.env_steps).toBe(500);
    expect(summary.final_eval).not.toBeNull();
  });

  test('the checkpoint holds both policies, each loadable on its own for any number of envs', async () => {
    const data = await readCheckpoint(full.summary.checkpoint!);
    expect(Object.keys(data.metadata.policies as object)).toEqual(['lbf-8x8-2p-2f-coop', 'spread']);
    expect(Object.keys(data.models).sort()).toEqual(['tasks/lbf-8x8-2p-2f-coop/actor', 'tasks/lbf-8x8-2p-2f-coop/critic', 'tasks/spread/actor', 'tasks/spread/critic']);
    await expect(loadPolicy(full.outDir, { numEnvs: 2 })).rejects.toThrow(/holds the policies of 2 tasks \(lbf-8x8-2p-2f-coop, spread\); name one/);
    const policy = await loadPolicy(full.outDir, { numEnvs: 3, task: 'spread' });
    const vec = await VectorEnv.create({ env: { id: 'spread-3' }, numEnvs: 3, seed: 5 });
    try {
      expect(policy.spec.shape.obsDim).toBe(vec.layout.obsDim);
      const result = await evaluatePolicy(vec, policy, 3);
      expect(result.episodes).toBe(3);
    } finally {
      policy.dispose();
      await vec.close();
    }
  });

  test('a resume may change a task\'s worker count, nothing else of it', async () => {
    const { prepareRun } = await import('../runtime/training/run-setup');
    const ok = await prepareRun(undefined, ['tasks.1.workers=1'], { resume: full.outDir, out: path.join(root, 'resume-plan') });
    expect(runTasks(ok.config)[1].workers).toBe(1);
    await expect(prepareRun(undefined, ['tasks.1.num_envs=3'], { resume: full.outDir, out: path.join(root, 'resume-plan2') })).rejects.toThrow(/tasks\.1\.num_envs differ from the saved run \(a resume may only change .*tasks\.N\.workers\)/);
  });

  test('identical metrics whatever each task\'s worker count', async () => {
    const threaded = await train(TWO_TASKS, ['tasks.0.workers=2', 'tasks.1.workers=1']);
    expect(withoutClock(threaded.metrics)).toEqual(withoutClock(full.metrics));
  }, 120000);

  test('stopped inside a round and resumed = uninterrupted', async () => {
    // 430 env steps: after the 7th round (420) and lbf's next chunk (40) → inside round 8, mid-segment.
    const part = await train(TWO_TASKS, [], { shouldStop: (p) => p.envSteps >= 430 });
    expect(part.summary.interrupted).toBe(true);
    const data = await readCheckpoint(part.summary.checkpoint!);
    expect((data.metadata.loop as { roundPosition: number }).roundPosition).toBe(1);
    expect(Object.keys(data.arrays).filter((k) => k.startsWith('run/'))).toEqual(['run/tasks/lbf-8x8-2p-2f-coop/actions-since-segment-start', 'run/tasks/spread/actions-since-segment-start']);
    const resumed = await train(TWO_TASKS, [], { outDir: part.outDir, resume: { data, path: part.summary.checkpoint! } });
    expect(withoutClock(resumed.metrics)).toEqual(withoutClock(full.metrics));
    // A different seed is different: the comparisons above can fail.
    const other = await train(TWO_TASKS, ['run.seed=4', 'run.total_env_steps=600']);
    expect(withoutClock(other.metrics).slice(0, 2)).not.toEqual(withoutClock(full.metrics).slice(0, 2));
  }, 180000);

  test('a single-task checkpoint cannot resume a multi-task run, and the message says so', async () => {
    const single = await train('env: { id: spread-3 }\nalgo: { name: mappo, hidden_dim: 8, rollout_length: 10 }\nrun: { total_env_steps: 40, num_envs: 2, eval_episodes: 1, checkpoint_interval: 40 }\n');
    const data = await readCheckpoint(single.summary.checkpoint!);
    await expect(train(TWO_TASKS, [], { resume: { data, path: 'single.ckpt' } })).rejects.toThrow(/single\.ckpt: (field 'metadata\.loop\.tasks\.lbf-8x8-2p-2f-coop' is missing|cannot restore)/);
  }, 60000);
});

describe('PerTaskLearner', () => {
  // A learner that acts with action 0 (legal in lbf and spread) and records what it observes.
  const recording = (key: string, seen: Array<[string, number]>) => ({
    kind: 'online' as const,
    tasks: [],
    collection: () => ({ mode: 'transition' as const }),
    collectionPolicy: () => ({ act: () => undefined }),
    policyVersion: () => 0,
    observe: (_item: Experience, envSteps: number) => {
      seen.push([key, envSteps]);
      return undefined;
    },
    episodesReset: () => undefined,
    evaluationPolicy: () => ({ act: () => undefined }),
    policySpecs: () => ({}),
    captureState: async () => ({ models: { m: {} }, optimizers: {}, rngs: {}, arrays: {}, json: { key } }),
    restoreState: async () => undefined,
    dispose: () => undefined,
  });

  test('routes items by task and keeps each task under its own escaped checkpoint prefix', async () => {
    const { PerTaskLearner } = await import('../trainers/per-task-learner');
    const seen: Array<[string, number]> = [];
    const task = (key: string, index: number) => ({ key, index, env: { id: key }, shape: {} as never, numEnvs: 1 });
    const learner = new PerTaskLearner([task('a/b', 0), task('a', 1)], (t) => recording(t.key, seen), 0);
    const item = (t: string) => ({ task: t, kind: 'transition', layout: { numEnvs: 3 } }) as unknown as Experience;
    learner.observe(item('a'), 3);
    learner.observe(item('a/b'), 10);
    expect(seen).toEqual([['a', 3], ['a/b', 10]]);
    const state = await learner.captureState();
    // Keys are escaped, so task 'a' never captures task 'a/b''s entries.
    expect(Object.keys(state.models)).toEqual(['tasks/a%2Fb/m', 'tasks/a/m']);
    expect(Object.keys(state.json.tasks as object)).toEqual(['a/b', 'a']);
  });

  test("in a run, each task's learner sees its own task's env steps (for ε and learning_starts), across a resume too", async () => {
    const { PerTaskLearner } = await import('../trainers/per-task-learner');
    const run = async (seen: Array<[string, number]>, extra: Partial<TrainingRunOptions> = {}) =>
      train(TWO_TASKS, ['run.total_env_steps=120', 'run.checkpoint_interval=60', 'run.eval_interval=120'], {
        createLearner: ({ tasks }) => new PerTaskLearner(tasks, (t) => recording(t.key, seen), 0),
        ...extra,
      });
    const seen: Array<[string, number]> = [];
    await run(seen);
    // Rounds of one transition of each task: 4 lbf envs, 2 spread envs.
    expect(seen.filter(([k]) => k === 'spread').map(([, n]) => n)).toEqual(Array.from({ length: 20 }, (_, i) => 2 * (i + 1)));
    expect(seen.filter(([k]) => k === 'lbf-8x8-2p-2f-coop').map(([, n]) => n)).toEqual(Array.from({ length: 20 }, (_, i) => 4 * (i + 1)));
    const part: Array<[string, number]> = [];
    const stopped = await run(part, { shouldStop: (p) => p.envSteps >= 70 });
    const data = await readCheckpoint(stopped.summary.checkpoint!);
    const rest: Array<[string, number]> = [];
    await run(rest, { outDir: stopped.outDir, resume: { data, path: stopped.summary.checkpoint! } });
    expect([...part, ...rest]).toEqual(seen);
  }, 60000);
});
