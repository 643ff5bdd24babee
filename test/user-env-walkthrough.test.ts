import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from './helpers/cli-run';

/*
 * A new user's path, from a folder outside the repository: the README's env example as written
 * (importing from 'troupe'), checked, trained from a config beside it, evaluated, and a random
 * policy evaluated on it; and an ES module that imports troupe, run in worker threads.
 */

const repoRoot = path.join(__dirname, '..', '..');
let folder: string;

beforeAll(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-user-'));
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Define your own environment'));
  const start = section.indexOf('```ts\n') + 6;
  fs.mkdirSync(path.join(folder, 'envs'));
  fs.writeFileSync(path.join(folder, 'envs', 'coin-match.ts'), section.slice(start, section.indexOf('```', start)));
  fs.writeFileSync(
    path.join(folder, 'train.yaml'),
    ['env:', '  module: envs/coin-match.ts', 'algo:', '  name: mappo', 'run:', '  total_env_steps: 3000', '  num_envs: 4', '  eval_interval: 1500', '  eval_episodes: 4', '  checkpoint_interval: 1500', ''].join('\n'),
  );
});

afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

test("the README's env example, in the user's own folder: check-env, train, eval, random policy", () => {
  expect(folder.startsWith(repoRoot)).toBe(false);
  const check = runCli(['check-env', 'envs/coin-match.ts'], { cwd: folder });
  expect([check.status, check.stdout]).toEqual([0, expect.stringMatching(/check-env coin-match[\s\S]*PASSED: all \d+ checks/)]);

  // Started from another folder: the module path is relative to the config's folder, not to the cwd.
  const train = runCli(['train', path.join(folder, 'train.yaml'), '--out', path.join(folder, 'run'), '--no-progress'], { cwd: os.tmpdir() });
  expect([train.status, train.stderr]).toEqual([0, '']);
  expect(train.stdout).toMatch(/mappo on coin-match, 3000 env steps/);
  const saved = fs.readFileSync(path.join(folder, 'run', 'config.yaml'), 'utf8');
  expect(saved).toContain(`module: ${path.join(folder, 'envs', 'coin-match.ts')}`);
  expect(saved).toContain('id: coin-match');

  const evalRun = runCli(['eval', 'run', '--episodes', '6', '--json'], { cwd: folder });
  expect(evalRun.status).toBe(0);
  expect(JSON.parse(evalRun.stdout)).toMatchObject({ env: 'coin-match', algo: 'mappo', episodes: 6, meanLength: 10 });

  const random = runCli(['eval', 'envs/coin-match.ts', '--policy', 'random', '--episodes', '6', '--json'], { cwd: folder });
  expect(random.status).toBe(0);
  expect(JSON.parse(random.stdout)).toMatchObject({ env: 'coin-match', policy: 'random', episodes: 6, meanLength: 10 });
});

test('an ES module importing troupe loads in worker threads, with options from the command line', () => {
  fs.writeFileSync(
    path.join(folder, 'scaled.mjs'),
    `import { BaseParallelEnv, Box, Discrete } from 'troupe';

class ScaledCoin extends BaseParallelEnv {
  constructor(options = {}) {
    super({ metadata: { id: String(options.id ?? 'scaled'), family: 'examples', maxEpisodeSteps: 5 }, agents: ['a', 'b'], observationSpace: new Box(0, 1, [2]), actionSpace: new Discrete(2) });
    this.scale = Number(options.scale ?? 1);
    this.t = 0;
  }
  reset(args = {}) {
    this.seedRng(args);
    this.startEpisode();
    this.t = 0;
    return { observations: { a: Float32Array.of(0, this.rng.next()), b: Float32Array.of(0, this.rng.next()) }, infos: { a: {}, b: {} } };
  }
  step(actions) {
    const acting = this.beginStep(actions);
    this.t++;
    const out = { observations: {}, rewards: {}, terminations: {}, truncations: {}, infos: {} };
    for (const agent of acting) {
      out.observations[agent] = Float32Array.of(this.t / 5, this.rng.next());
      out.rewards[agent] = actions.a === actions.b ? this.scale : 0;
      out.terminations[agent] = false;
      out.truncations[agent] = this.t >= 5;
      out.infos[agent] = {};
    }
    return this.finishStep(out);
  }
  render() {
    return 't=' + this.t;
  }
}

export default (options) => new ScaledCoin(options);
`,
  );
  const check = runCli(['check-env', './scaled.mjs', '--option', 'scale=2'], { cwd: folder });
  expect([check.status, check.stdout]).toEqual([0, expect.stringMatching(/PASSED/)]);
  const evalArgs = ['eval', './scaled.mjs', '--episodes', '8', '--envs', '4', '--json'];
  const one = JSON.parse(runCli([...evalArgs, '--option', 'scale=1'], { cwd: folder }).stdout) as { meanReturn: number };
  const workers = runCli([...evalArgs, '--options', '{"scale": 3}', '--workers', '2'], { cwd: folder });
  expect(workers.status).toBe(0);
  const three = JSON.parse(workers.stdout) as { meanReturn: number };
  // The same seeded random actions, rewards scaled by the option.
  expect(three.meanReturn).toBeCloseTo(3 * one.meanReturn, 4);
  expect(one.meanReturn).toBeGreaterThan(0);
});
