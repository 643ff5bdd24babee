import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';

const cli = path.join(__dirname, '..', 'scripts', 'troupe.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 60000 });

describe('troupe CLI', () => {
  test('envs --json lists every family with agents and spaces', () => {
    const listings = JSON.parse(execFileSync(process.execPath, [cli, 'envs', '--json'], { encoding: 'utf8' })) as Array<{
      id: string;
      family: string;
      possibleAgents: string[];
      observationSpaces: Record<string, { type: string }>;
      actionSpaces: Record<string, { type: string; n?: number }>;
    }>;
    const lbf = listings.find((l) => l.id === 'lbf-8x8-2p-2f-coop')!;
    expect(lbf.possibleAgents).toEqual(['agent_0', 'agent_1']);
    expect(lbf.actionSpaces['*']).toMatchObject({ type: 'Discrete', n: 6 });
    expect(lbf.observationSpaces['*'].type).toBe('Box');
    for (const id of ['combat-3v3', 'combat-5v6', 'combat-2a3b', 'spread-2', 'spread-8', 'lbf-15x15-4p-5f']) {
      expect(listings.map((l) => l.id)).toContain(id);
    }
  });

  test('check-env passes a built-in env and a good module, fails a broken module with a non-zero exit', () => {
    const good = run('check-env', 'lbf-2s-8x8-2p-2f-coop');
    expect(good.status).toBe(0);
    expect(good.stdout).toMatch(/PASSED/);
    const goodModule = run('check-env', path.join(__dirname, 'fixtures', 'good-env.js'));
    expect(goodModule.status).toBe(0);
    const bad = run('check-env', path.join(__dirname, 'fixtures', 'accepts-bad-actions-env.js'));
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/✗ rejects-out-of-space-action/);
    const unknown = run('check-env', 'lbf-nope');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/Unknown env id 'lbf-nope'/);
  });

  test('eval --policy random reports return, length and success rate, independent of the worker count', () => {
    const args = ['eval', 'combat-3v3', '--policy', 'random', '--episodes', '20', '--seed', '5', '--json'];
    const inProcess = JSON.parse(execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8' }));
    const workers = JSON.parse(execFileSync(process.execPath, [cli, ...args, '--workers', '2'], { encoding: 'utf8' }));
    expect(inProcess).toEqual(workers);
    expect(inProcess.episodes).toBe(20);
    expect(inProcess.successRate).toBeGreaterThanOrEqual(0);
    expect(inProcess.meanLength).toBeGreaterThan(0);
    const lbf = JSON.parse(execFileSync(process.execPath, [cli, 'eval', 'lbf-8x8-2p-2f-coop', '--episodes', '10', '--json'], { encoding: 'utf8' }));
    expect(lbf.successRate).toBeNull();
    expect(lbf.meanReturn).toBeGreaterThanOrEqual(0);
    expect(lbf.meanReturn).toBeLessThanOrEqual(1);
  });

  test("a user's TypeScript env module runs in worker threads", () => {
    // A child process: jest replaces Node's module loader, which the TypeScript hook relies on.
    const source = path.join(__dirname, '..', '..', 'test', 'fixtures', 'good-env.ts');
    const script = `
      const { VectorEnv } = require(${JSON.stringify(path.join(__dirname, '..', 'runtime', 'vector-env.js'))});
      const { RandomPolicy } = require(${JSON.stringify(path.join(__dirname, '..', 'agents', 'random-policy.js'))});
      (async () => {
        const vec = await VectorEnv.create({ env: { id: 'user-ts-env', module: ${JSON.stringify(source)} }, numEnvs: 4, workers: 2, seed: 1 });
        const policy = new RandomPolicy(vec.layout, 's');
        const b = vec.buffers;
        await vec.reset();
        let episodes = 0;
        for (let t = 0; t < 100; t++) {
          policy.writeActions(b.masks, b.alive, b.actions);
          await vec.step();
          for (let e = 0; e < 4; e++) episodes += b.episodeDone[e];
        }
        await vec.close();
        process.stdout.write(String(episodes));
      })().catch((error) => { process.stderr.write(error.message); process.exit(1); });`;
    const res = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 });
    expect(res.stderr).toBe('');
    expect(Number(res.stdout)).toBeGreaterThan(0);
  });

  test('bad flags get a clear error', () => {
    const res = run('eval', 'lbf-8x8-2p-2f-coop', '--episodes', 'ten');
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/--episodes must be a positive integer, got 'ten'/);
  });
});
