import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Packr } from 'msgpackr';
import YAML from 'yaml';
import { registerBuiltinEnvs } from '../envs/builtin';
import { envTaskFamily } from '../envs/registry';
import { type CollectConfig, type DatasetManifest, collectConfigSchema, collectDatasets, collectTasks } from '../runtime/training/collect-datasets';
import { readDataset } from '../trainers/dataset';
import { expectCleanFailure, runCli } from './helpers/cli-run';

let tmp: string;
beforeAll(() => {
  registerBuiltinEnvs();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-collect-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const config = (raw: Record<string, unknown>): CollectConfig => collectConfigSchema.parse(raw);
const base = {
  env: { id: 'point-robot', options: { goalRange: 0.5 } },
  tasks: ['task03', 'task47'],
  policies: [
    { policy: 'expert', noise: 0.05, episodes: 6 },
    { policy: 'random', episodes: 3 },
  ],
  quality: 'mixed',
  num_envs: 4,
};

describe('task families', () => {
  test('point-robot lists its 50 goals as tasks task00 … task49, 45 train then 5 test, each built by its task option', () => {
    const family = envTaskFamily('point-robot', { goalRange: 0.5 })!;
    expect(family.map((m) => m.key)).toEqual(Array.from({ length: 50 }, (_, i) => `task${String(i).padStart(2, '0')}`));
    expect(family.filter((m) => m.split === 'test').map((m) => m.key)).toEqual(['task45', 'task46', 'task47', 'task48', 'task49']);
    expect(family[7].options).toEqual({ goalRange: 0.5, task: 7 });
    expect(family[7].parameters.task).toBe(7);
    expect(envTaskFamily('combat-3v3')).toBeUndefined();
    expect(() => envTaskFamily('point-robot', { goalrange: 1 })).toThrow(/point-robot: unknown option 'goalrange'.*did you mean 'goalRange'/);
  });

  test("the README's collect config is a valid one", () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('`troupe collect` records'));
    const block = section.slice(section.indexOf('```yaml\n') + 8, section.indexOf('```', section.indexOf('```yaml\n') + 8));
    const parsed = collectConfigSchema.parse(YAML.parse(block));
    expect(parsed.policies.map((p) => p.policy)).toEqual(['expert', 'random', 'checkpoint']);
    expect(collectTasks(parsed)).toHaveLength(50);
  });

  test('a config picks all tasks, a side of the split, or tasks by key; a plain env is one task', () => {
    expect(collectTasks(config({ ...base, tasks: 'all' }))).toHaveLength(50);
    expect(collectTasks(config({ ...base, tasks: 'train' }))).toHaveLength(45);
    expect(collectTasks(config({ ...base, tasks: 'test' })).map((t) => t.split)).toEqual(Array(5).fill('test'));
    expect(collectTasks(config({ ...base, env: { id: 'combat-3v3' }, tasks: 'all' }))).toEqual([{ key: 'combat-3v3', env: { id: 'combat-3v3' }, split: null, parameters: null }]);
    expect(() => collectTasks(config({ ...base, tasks: ['task50'] }))).toThrow(/tasks\[0\]: 'task50' is not a task of point-robot \(its tasks: task00 … task49\)/);
    expect(() => collectTasks(config({ ...base, env: { id: 'combat-3v3' }, tasks: 'test' }))).toThrow(/'combat-3v3' is not a task family/);
    expect(() => collectTasks(config({ ...base, env: { id: 'point-robot', options: { task: 3 } } }))).toThrow(/env\.options: point-robot: option 'task' picks one task, but the task family lists them all; choose tasks by key instead/);
    expect(() => collectTasks(config({ ...base, tasks: ['task03', 'task04', 'task03'] }))).toThrow(/tasks\[2\]: 'task03' is listed twice \(first at tasks\[0\]\)/);
  });
});

describe('collecting', () => {
  let manifest: DatasetManifest;
  const out = () => path.join(tmp, 'inproc');

  beforeAll(async () => {
    ({ manifest } = await collectDatasets(config(base), out(), { workers: 0 }));
  });

  test('one version-2 dataset per task, its header holding the task parameters, split, policy and quality; and the manifest', async () => {
    expect(manifest.tasks.map((t) => [t.key, t.file, t.split, t.episodes])).toEqual([
      ['task03', 'task03.msgpack', 'train', 9],
      ['task47', 'task47.msgpack', 'test', 9],
    ]);
    expect(JSON.parse(fs.readFileSync(path.join(out(), 'dataset.json'), 'utf8'))).toEqual(manifest);
    const data = await readDataset(path.join(out(), 'task47.msgpack'));
    const [goal] = [envTaskFamily('point-robot', { goalRange: 0.5 })![47].parameters.goal];
    expect(data.header).toMatchObject({ task: 'task47', split: 'test', quality: 'mixed', policy: 'expert (noise 0.05) ×6 + random ×3', env: { id: 'point-robot', options: { goalRange: 0.5, task: 47 } } });
    expect(data.header.taskParameters).toEqual({ goal, task: 47 });
    expect(data.episodes).toHaveLength(9);
    for (const ep of data.episodes) expect(ep.rewards).toHaveLength(20);
    // The expert's episodes come first and are far better than the random ones.
    const returns = data.episodes.map((e) => e.return);
    expect(Math.min(...returns.slice(0, 6))).toBeGreaterThan(Math.max(...returns.slice(6)));
    expect(manifest.tasks[1].meanReturn).toBeCloseTo(returns.reduce((a, b) => a + b, 0) / 9, 6);
  });

  test('the same episodes with worker threads, and a task collected alone gets the same episodes as among others', async () => {
    const withWorkers = path.join(tmp, 'workers');
    await collectDatasets(config(base), withWorkers, { workers: 2 });
    const alone = path.join(tmp, 'alone');
    await collectDatasets(config({ ...base, tasks: ['task47'] }), alone, { workers: 0 });
    const a = await readDataset(path.join(out(), 'task47.msgpack'));
    for (const dir of [withWorkers, alone]) {
      const b = await readDataset(path.join(dir, 'task47.msgpack'));
      expect(b.episodes).toEqual(a.episodes);
    }
  });

  test('collecting again keeps complete files; a file of other settings or a damaged one is refused by name', async () => {
    const again = await collectDatasets(config(base), out(), { workers: 0 });
    expect([again.kept, again.collected]).toEqual([['task03', 'task47'], []]);
    await expect(collectDatasets(config({ ...base, quality: 'medium' }), out())).rejects.toThrow(/dataset\.json describes a collection with other settings \(quality "mixed", not "medium"\); collect into another --out folder/);
    await expect(collectDatasets(config({ ...base, policies: [{ policy: 'random', episodes: 9 }] }), out())).rejects.toThrow(/policy "expert \(noise 0\.05\) ×6 \+ random ×3", not "random ×9"/);
    // Without the manifest, each file's header is checked on its own.
    const bare = path.join(tmp, 'bare');
    fs.cpSync(out(), bare, { recursive: true });
    fs.rmSync(path.join(bare, 'dataset.json'));
    await expect(collectDatasets(config({ ...base, quality: 'medium' }), bare)).rejects.toThrow(/task03\.msgpack exists with other settings \(quality 'mixed', not 'medium'\)/);
    await expect(collectDatasets(config({ ...base, num_envs: 2 }), bare)).rejects.toThrow(/task03\.msgpack exists with other settings \(num_envs 4, not 2\)/);
    // num_envs changes which episodes are drawn, so it is a setting too.
    await expect(collectDatasets(config({ ...base, num_envs: 2 }), out())).rejects.toThrow(/dataset\.json describes a collection with other settings \(numEnvs 4, not 2\)/);
    const damaged = path.join(tmp, 'damaged');
    fs.cpSync(out(), damaged, { recursive: true });
    fs.writeFileSync(path.join(damaged, 'task47.msgpack'), fs.readFileSync(path.join(out(), 'task47.msgpack')).subarray(0, 200));
    await expect(collectDatasets(config(base), damaged)).rejects.toThrow(/task47\.msgpack exists but cannot be read \(dataset .* is corrupt or truncated.*\); delete it to collect it again/);
    // A version-1 reader's view: the header fields are plain msgpack, readable by any tool.
    const raw = new Packr({ useRecords: false, mapsAsObjects: true }).unpack(fs.readFileSync(path.join(out(), 'task03.msgpack'))) as { version: number; header: { split: string } };
    expect([raw.version, raw.header.split]).toEqual([2, 'train']);
  });
});

describe('collections over several commands', () => {
  test('tasks collected later join the manifest; the files reproduce byte for byte', async () => {
    const dir = path.join(tmp, 'sides');
    await collectDatasets(config({ ...base, tasks: ['task47'] }), dir);
    const { manifest } = await collectDatasets(config({ ...base, tasks: ['task03'] }), dir);
    expect(manifest.tasks.map((t) => t.key)).toEqual(['task03', 'task47']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'dataset.json'), 'utf8'))).toEqual(manifest);
    expect(fs.readFileSync(path.join(dir, 'task47.msgpack')).equals(fs.readFileSync(path.join(tmp, 'inproc', 'task47.msgpack')))).toBe(true);
    // Option order in the config is not a difference.
    const reordered = await collectDatasets(config({ ...base, tasks: ['task03'], env: { id: 'point-robot', options: { goalRange: 0.5 } } }), dir);
    expect(reordered.kept).toEqual(['task03']);
  });
});

describe('troupe collect', () => {
  test('writes the datasets with a summary line per task', () => {
    const file = path.join(tmp, 'cli.yaml');
    fs.writeFileSync(file, 'env: { id: point-robot }\ntasks: [task00]\npolicies:\n  - { policy: expert, episodes: 4 }\nquality: expert\n');
    const result = runCli(['collect', file, '--out', path.join(tmp, 'cli-out'), '--no-progress']);
    expect([result.status, result.stderr]).toEqual([0, '']);
    expect(result.stdout).toMatch(/task00 \(train\): 4 episodes, mean return -\d+\.\d{3}/);
    expect(result.stdout).toMatch(/1 datasets \(expert \(noise 0\) ×4, quality expert\)/);
  });

  test('a trained checkpoint per task ({task} in its path) collects sampled actions', async () => {
    const runConfig = path.join(tmp, 'sac.yaml');
    fs.writeFileSync(runConfig, 'env: { id: point-robot, options: { task: 2 } }\nalgo: { name: sac, hidden_dims: [16, 16], batch_size: 32, learning_starts: 100 }\nrun: { total_env_steps: 200, num_envs: 2, eval_interval: 200, eval_episodes: 2, checkpoint_interval: 200, backend: wasm }\n');
    const trained = runCli(['train', runConfig, '--out', path.join(tmp, 'sac', 'task02'), '--no-progress']);
    expect([trained.status, trained.stderr]).toEqual([0, '']);
    const { manifest } = await collectDatasets(config({ ...base, tasks: ['task02'], policies: [{ policy: 'checkpoint', path: path.join(tmp, 'sac', '{task}'), episodes: 3 }], backend: 'wasm' }), path.join(tmp, 'from-ckpt'));
    expect(manifest.tasks[0]).toMatchObject({ key: 'task02', episodes: 3 });
    const data = await readDataset(path.join(tmp, 'from-ckpt', 'task02.msgpack'));
    // The run directory resolves to its newest checkpoint file, recorded in the header.
    expect(data.header.policy).toMatch(new RegExp(`^checkpoint ${path.join(tmp, 'sac', 'task02', 'checkpoints').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/.+\\.ckpt \\(sample\\) ×3$`));
    // Sampled actions of a policy: inside the action box, and not all the same.
    const actions = Array.from(data.episodes[0].actions);
    expect(Math.max(...actions.map(Math.abs))).toBeLessThanOrEqual(0.1 + 1e-7);
    expect(new Set(actions).size).toBeGreaterThan(10);
  });

  test('bad configs are refused naming the key', () => {
    const write = (name: string, text: string) => {
      const file = path.join(tmp, name);
      fs.writeFileSync(file, text);
      return file;
    };
    expectCleanFailure(runCli(['collect', path.join(tmp, 'nope.yaml')]), /cannot read collect config .*nope\.yaml: no such file/);
    expectCleanFailure(runCli(['collect', write('k.yaml', 'env: { id: point-robot }\npolicies: [{ policy: expert, episodes: 2 }]\nquality: x\nepisodes: 3\n')]), /invalid collect config .*k\.yaml/, /\(top level\): unknown key\(s\) 'episodes'/);
    expectCleanFailure(runCli(['collect', write('p.yaml', 'env: { id: point-robot }\npolicies: [{ policy: sac, episodes: 2 }]\nquality: x\n')]), /policies\.0\.policy: Invalid discriminator value. Expected 'random' \| 'expert' \| 'checkpoint'/);
    expectCleanFailure(runCli(['collect', write('e.yaml', 'env: { id: point-robot }\npolicies: [{ policy: expert }]\nquality: x\n')]), /policies\.0\.episodes: required, missing/);
    expectCleanFailure(runCli(['collect', write('t.yaml', 'env: { id: point-robot }\ntasks: [task50]\npolicies: [{ policy: expert, episodes: 2 }]\nquality: x\n'), '--out', path.join(tmp, 't-out')]), /invalid collect config .*t\.yaml: tasks\[0\]: 'task50' is not a task of point-robot/);
    expectCleanFailure(runCli(['collect', write('o.yaml', 'env: { id: point-robot, options: { goal_range: 1 } }\npolicies: [{ policy: expert, episodes: 2 }]\nquality: x\n')]), /point-robot: unknown option 'goal_range'.*did you mean 'goalRange'/);
    expectCleanFailure(runCli(['collect', write('x.yaml', 'env: { id: combat-3v3 }\npolicies: [{ policy: expert, episodes: 2 }]\nquality: x\n'), '--out', path.join(tmp, 'x-out')]), /policies\[0\] for task 'combat-3v3': no scripted expert for env 'combat-3v3'/);
    expectCleanFailure(
      runCli(['collect', write('c.yaml', 'env: { id: point-robot }\ntasks: [task01]\npolicies: [{ policy: checkpoint, path: "missing-runs/{task}", episodes: 2 }]\nquality: x\nbackend: wasm\n'), '--out', path.join(tmp, 'c-out')]),
      /policies\[0\] for task 'task01': missing-runs\/task01 does not exist/,
    );
  });
});
