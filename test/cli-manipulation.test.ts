import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/*
 * The manipulation family end to end through the CLI, as a user on a clean clone runs it: the
 * listing with its benchmark splits, the conformance checker, scripted experts and random
 * policies under `eval`, per-task evaluation of a split, and SAC and Gaussian MAPPO training runs
 * that are then evaluated from their run directories.
 */

const cli = path.join(__dirname, '..', 'scripts', 'troupe.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 240000 });
const json = <T>(...args: string[]): T => JSON.parse(execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 240000 })) as T;

interface EvalJson {
  episodes: number;
  successRate: number | null;
  meanReturn: number;
  meanLength: number;
}

describe('troupe CLI on the manipulation family', () => {
  test('envs lists every MT10 and ML10 kind, the multi-arm tasks and the splits', () => {
    const ids = json<Array<{ id: string; family: string }>>('envs', '--json').map((l) => l.id);
    const kinds = ['reach', 'push', 'pick-place', 'door-open', 'door-close', 'drawer-open', 'drawer-close', 'button-press-topdown', 'peg-insert-side', 'window-open', 'window-close', 'sweep-into', 'lever-pull', 'sweep', 'basketball', 'shelf-place'];
    for (const id of [...kinds, 'handover', 'bar-lift', 'bar-lift-3arms', 'MT10', 'ML10', 'ML10:test']) expect(ids).toContain(id);
    const splits = json<{ splits: Array<{ name: string; trainKinds: string[]; testKinds: string[] }> }>('envs', '--splits', '--json');
    const ml10 = splits.splits.find((s) => s.name === 'ML10')!;
    expect(ml10.testKinds).toEqual(expect.arrayContaining(['door-close', 'sweep-into', 'lever-pull']));
  });

  test('check-env passes a split env and a two-arm task', () => {
    for (const id of ['MT10', 'handover']) {
      const result = run('check-env', id, '--episodes', '1');
      expect({ id, status: result.status, stderr: result.stderr }).toEqual({ id, status: 0, stderr: '' });
      expect(result.stdout).toMatch(/PASSED/);
    }
  });

  test('eval: the scripted expert succeeds where a random policy fails, for one task, per task of MT10, and for a two-arm team', () => {
    const expert = json<EvalJson>('eval', 'pick-place', '--policy', 'expert', '--episodes', '6', '--envs', '3', '--json');
    const random = json<EvalJson>('eval', 'pick-place', '--policy', 'random', '--episodes', '6', '--envs', '3', '--json');
    expect(expert.successRate).toBe(1);
    expect(random.successRate).toBe(0);
    expect(expert.meanReturn).toBeGreaterThan(random.meanReturn);

    const perTask = json<{ tasks: Array<{ kind: string; successRate: number }>; meanSuccessRate: number }>('eval', 'MT10', '--policy', 'expert', '--per-task', '--episodes', '2', '--envs', '2', '--json');
    expect(perTask.tasks.map((t) => t.kind)).toHaveLength(10);
    expect(perTask.meanSuccessRate).toBeGreaterThanOrEqual(0.9);

    const team = json<EvalJson>('eval', 'bar-lift', '--policy', 'expert', '--episodes', '2', '--envs', '2', '--json');
    expect(team.successRate).toBe(1);

    const hidden = run('eval', 'ML10', '--policy', 'expert', '--episodes', '1');
    expect(hidden.status).not.toBe(0);
    expect(hidden.stderr).toMatch(/need the goal/);
  });

  test('train SAC on reach and MAPPO on bar-lift from configs, then evaluate the run directories', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-manip-'));
    try {
      const sacConfig = path.join(dir, 'reach-sac.yaml');
      fs.writeFileSync(
        sacConfig,
        [
          'env: { id: reach, options: { horizon: 20 } }',
          'algo: { name: sac, hidden_dims: [16, 16], batch_size: 16, learning_starts: 40 }',
          'run: { seed: 1, total_env_steps: 120, num_envs: 2, log_interval: 40, eval_interval: 120, eval_episodes: 2, checkpoint_interval: 120 }',
        ].join('\n'),
      );
      const sac = run('train', sacConfig, '--out', path.join(dir, 'sac'), '--no-progress');
      expect({ status: sac.status, stderr: sac.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
      expect(sac.stdout).toMatch(/sac on reach/);
      const sacEval = json<EvalJson>('eval', path.join(dir, 'sac'), '--episodes', '2', '--envs', '2', '--json');
      expect(sacEval.episodes).toBe(2);
      expect(sacEval.meanLength).toBe(20);

      const mappoConfig = path.join(dir, 'bar-lift-mappo.yaml');
      fs.writeFileSync(
        mappoConfig,
        [
          'env: { id: bar-lift, options: { horizon: 10 } }',
          'algo: { name: mappo, use_rnn: false, hidden_dim: 16, rollout_length: 10 }',
          'run: { seed: 1, total_env_steps: 80, num_envs: 4, log_interval: 40, eval_interval: 80, eval_episodes: 2, checkpoint_interval: 80 }',
        ].join('\n'),
      );
      const mappo = run('train', mappoConfig, '--out', path.join(dir, 'mappo'), '--no-progress');
      expect({ status: mappo.status, stderr: mappo.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
      const metrics = fs.readFileSync(path.join(dir, 'mappo', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(metrics.some((m) => m.kind === 'eval')).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 240000);
});
