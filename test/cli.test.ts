import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';

const cli = path.join(__dirname, '..', 'scripts', 'troupe.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120000 });

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
      const { VectorEnv } = require(${JSON.stringify(path.join(__dirname, '..', 'runtime', 'rollout', 'vector-env.js'))});
      const { RandomPolicy } = require(${JSON.stringify(path.join(__dirname, '..', 'agents', 'policies', 'random-policy.js'))});
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

describe('troupe train / eval of a run', () => {
  const fs = require('node:fs') as typeof import('node:fs');
  const os = require('node:os') as typeof import('node:os');
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-cli-train-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = path.join(__dirname, '..', '..', 'configs', 'quickstart.yaml');
  const small = ['--set', 'run.total_env_steps=1600', '--set', 'run.log_interval=400', '--set', 'run.eval_interval=800', '--set', 'run.eval_episodes=4', '--set', 'run.checkpoint_interval=800', '--backend', 'cpu', '--no-progress'];

  test('train writes a complete run directory; eval evaluates it greedily; a finished run can be extended', () => {
    const out = path.join(dir, 'run');
    const res = run('train', config, ...small, '--out', out);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^backend: cpu \(requested 'cpu'/);
    expect(res.stdout).toMatch(/\[train\] 400\/1600 env steps/);
    expect(res.stdout).toMatch(/final greedy evaluation: return/);
    for (const f of ['config.yaml', 'run.json', 'metrics.jsonl', 'summary.json', 'learning-curve.svg', 'checkpoints/latest']) expect(fs.existsSync(path.join(out, f))).toBe(true);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(summary).toMatchObject({ env: 'lbf-8x8-2p-2f-coop', algo: 'mappo', backend: 'cpu', interrupted: false });
    expect(JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8')).backend).toBe('cpu');

    const evalRes = run('eval', out, '--episodes', '6', '--json', '--backend', 'cpu');
    expect(evalRes.status).toBe(0);
    const ev = JSON.parse(evalRes.stdout);
    expect(ev).toMatchObject({ env: 'lbf-8x8-2p-2f-coop', algo: 'mappo', episodes: 6, trainedEnvSteps: summary.env_steps });
    // Another LBF scenario with the same agents and spaces is accepted; a differently shaped one is refused, by name.
    expect(run('eval', out, '--env', 'lbf-8x8-2p-2f', '--episodes', '2', '--backend', 'cpu').status).toBe(0);
    const misfit = run('eval', out, '--env', 'combat-3v3', '--episodes', '2', '--backend', 'cpu');
    expect(misfit.status).toBe(1);
    expect(misfit.stderr).toMatch(/trained on 'lbf-8x8-2p-2f-coop', whose networks do not fit 'combat-3v3'/);

    const more = run('train', '--resume', out, '--set', 'run.total_env_steps=2400', '--backend', 'cpu', '--no-progress');
    expect(more.status).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')).env_steps).toBeGreaterThanOrEqual(2400);
    const changed = run('train', '--resume', out, '--set', 'algo.lr=0.1', '--backend', 'cpu');
    expect(changed.status).toBe(1);
    expect(changed.stderr).toMatch(/cannot resume .* with a different config: algo.lr differ/);
    const again = run('train', config, '--out', out, '--backend', 'cpu');
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already holds a run; continue it with --resume/);
    const garbage = path.join(dir, 'garbage.ckpt');
    fs.writeFileSync(garbage, 'not a checkpoint');
    const foreign = run('eval', garbage, '--backend', 'cpu');
    expect(foreign.status).toBe(1);
    expect(foreign.stderr).toMatch(/garbage\.ckpt is not a troupe checkpoint/);
  }, 300000);

  test('Ctrl-C saves a checkpoint and exits cleanly; resuming finishes with the same metrics as an uninterrupted run', async () => {
    const { spawn } = require('node:child_process') as typeof import('node:child_process');
    const args = [...small, '--set', 'run.total_env_steps=4000', '--set', 'run.checkpoint_interval=4000'];
    const full = path.join(dir, 'full');
    expect(run('train', config, ...args, '--out', full).status).toBe(0);
    const cut = path.join(dir, 'cut');
    const child = spawn(process.execPath, [cli, 'train', config, ...args, '--out', cut], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let interrupted = false;
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        // One Ctrl-C: a second one means "quit at once, no checkpoint".
        if (!interrupted && stdout.includes('[train] 800/')) {
          interrupted = true;
          child.kill('SIGINT');
        }
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(stderr).toMatch(/interrupt: saving a checkpoint/);
    expect(code).toBe(0);
    expect(stdout).toMatch(/stopped at \d+ env steps; continue with: npx troupe train --resume/);
    expect(fs.readFileSync(path.join(cut, 'checkpoints', 'latest'), 'utf8')).toMatch(/interrupted\.ckpt/);
    expect(run('train', '--resume', cut, '--backend', 'cpu', '--no-progress').status).toBe(0);
    const strip = (file: string) =>
      fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => {
        const r = JSON.parse(l);
        for (const k of ['time_s', 'steps_per_s', 'eval_time_s']) delete r[k];
        return r;
      });
    expect(strip(path.join(cut, 'metrics.jsonl'))).toEqual(strip(path.join(full, 'metrics.jsonl')));
  }, 300000);
});
