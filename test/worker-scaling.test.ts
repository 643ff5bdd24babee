import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RandomPolicy } from '../agents/policies/random-policy';
import { registerBuiltinEnvs } from '../envs/builtin';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { AUTO_MIN_SPEEDUP, WORKER_STEP_OVERHEAD_MICROS, chooseWorkers, decideWorkers, parseWorkerSetting } from '../runtime/rollout/worker-count';
import { parseRunConfig } from '../runtime/training/config-loader';
import { expectCleanFailure, runCli } from './helpers/cli-run';

beforeAll(() => registerBuiltinEnvs());

/**
 * Steps a vector with per-env random legal actions through the group API (each group is sent
 * as soon as its actions are written, as a double-buffered consumer would) and hashes every
 * buffer after every step.
 */
async function trace(id: string, numEnvs: number, workers: number, groups: number, steps: number): Promise<string> {
  const vec = await VectorEnv.create({ env: { id }, numEnvs, workers, groups, seed: 7 });
  const hash = createHash('sha256');
  try {
    const policy = new RandomPolicy(vec.layout, 'scaling');
    const b = vec.buffers;
    await vec.reset();
    for (let t = 0; t < steps; t++) {
      for (let g = 0; g < groups; g++) {
        const [start, end] = vec.groupRanges[g];
        policy.writeActions(b.masks, b.alive, b.actions, start, end);
        vec.sendStep(g);
      }
      for (let g = 0; g < groups; g++) await vec.awaitStep(g);
      for (const array of Object.values(b)) hash.update(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
    }
  } finally {
    await vec.close();
  }
  return hash.digest('hex');
}

describe('worker threads that scale', () => {
  it.each([
    ['lbf-8x8-2p-2f-coop', 8, 120],
    ['reach', 4, 40],
  ])('%s: every worker count and group count gives the in-process results, bit for bit', async (id, numEnvs, steps) => {
    const reference = await trace(id, numEnvs, 0, 1, steps);
    for (const [workers, groups] of [[0, 2], [1, 1], [1, 2], [2, 1], [2, 2]]) {
      expect({ workers, groups, hash: await trace(id, numEnvs, workers, groups, steps) }).toEqual({ workers, groups, hash: reference });
    }
  }, 60_000);

  it('auto picks in-process where a step is cheaper than the hand-off, one worker per core where it pays', () => {
    const cheap = decideWorkers('cheap', 64, 1.5, 2);
    expect(cheap.workers).toBe(0);
    expect(cheap.reason).toMatch(/64 'cheap' envs takes 96 µs in-process.*×0\.\d\d.*in-process$/);
    const heavy = decideWorkers('heavy', 64, 40, 2);
    expect(heavy.workers).toBe(2);
    expect(heavy.reason).toMatch(/2\.6 ms in-process.*so 2 workers$/);
    expect(decideWorkers('heavy', 64, 40, 8).workers).toBe(8);
    // Never more workers than envs, never threads on one core or for one env.
    expect(decideWorkers('heavy', 3, 4000, 8).workers).toBe(3);
    expect(decideWorkers('heavy', 64, 40, 1)).toMatchObject({ workers: 0, reason: expect.stringMatching(/one CPU core/) });
    expect(decideWorkers('heavy', 1, 4000, 2)).toMatchObject({ workers: 0, reason: expect.stringMatching(/one env/) });
    // The threshold: a vector step T pays over 2 workers when T / (T/2 + overhead) reaches the margin.
    const threshold = (AUTO_MIN_SPEEDUP * WORKER_STEP_OVERHEAD_MICROS) / (1 - AUTO_MIN_SPEEDUP / 2);
    expect(decideWorkers('edge', 1, threshold * 0.98, 2).workers).toBe(0);
    expect(decideWorkers('edge', 2, (threshold * 1.02) / 2, 2).workers).toBe(2);
  });

  it('chooseWorkers times the real env in-process and says why', async () => {
    const choice = await chooseWorkers({ id: 'lbf-8x8-2p-2f-coop' }, 16, { cores: 2, measureMs: 40 });
    // 16 lbf envs step in ~20 µs, far below what 2 workers need to pay (~350 µs with 120 µs of hand-off).
    expect(choice.workers).toBe(0);
    expect(choice.inProcessStepMicros).toBeGreaterThan(0);
    expect(choice.reason).toMatch(/a vector step of 16 'lbf-8x8-2p-2f-coop' envs takes .* in-process/);
  }, 30_000);

  it('run.workers and tasks.N.workers accept auto; anything else names the key', () => {
    expect(parseRunConfig('env: {id: lbf-8x8-2p-2f-coop}\nalgo: {name: mappo}\nrun: {workers: auto}', 'test').run.workers).toBe('auto');
    const tasks = parseRunConfig('tasks: [{id: combat-3v3, workers: auto}, {id: combat-5v6, workers: 1}]\nalgo: {name: mappo}\nrun: {num_envs: 4}', 'test').tasks;
    expect(tasks?.map((t) => t.workers)).toEqual(['auto', 1]);
    expect(() => parseRunConfig('env: {id: lbf-8x8-2p-2f-coop}\nalgo: {name: mappo}\nrun: {workers: fast}', 'test')).toThrow(/run\.workers: expected one of an integer >= 0 and <= 256, "auto", got "fast"/);
    expect(() => parseRunConfig('tasks: [{id: combat-3v3, workers: -1}]\nalgo: {name: mappo}', 'test')).toThrow(/tasks\.0\.workers: expected .*"auto", got -1/);
    expect(parseWorkerSetting('auto', 'x')).toBe('auto');
    expect(parseWorkerSetting('3', 'x')).toBe(3);
    expect(() => parseWorkerSetting(1.5, 'run.workers')).toThrow(/run\.workers: expected a non-negative integer .* or 'auto', got 1\.5/);
  });

  it('troupe train --workers auto prints the choice and records it with its reason in run.json', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-auto-'));
    try {
      const config = path.join(__dirname, '..', '..', 'configs', 'quickstart.yaml');
      const sets = ['run.total_env_steps=400', 'run.num_envs=4', 'run.log_interval=400', 'run.eval_interval=100000', 'run.eval_episodes=4', 'algo.rollout_length=20', 'run.backend=cpu'];
      const result = runCli(['train', config, '--workers', 'auto', '--out', path.join(out, 'run'), '--no-progress', ...sets.flatMap((s) => ['--set', s])], { timeoutMs: 120_000 });
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(/workers: auto → [02]: a vector step of 4 'lbf-8x8-2p-2f-coop' envs takes/);
      const info = JSON.parse(fs.readFileSync(path.join(out, 'run', 'run.json'), 'utf8'));
      expect(info.workers_auto).toMatchObject({ workers: info.workers, reason: expect.stringMatching(/lbf-8x8-2p-2f-coop/) });
      expect(info.workers_auto.in_process_step_us).toBeGreaterThan(0);
      expectCleanFailure(runCli(['train', config, '--workers', 'fast', '--out', path.join(out, 'bad')]), /--workers must be a non-negative integer or 'auto', got 'fast'/);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 150_000);
});
