import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expectCleanFailure, runCli } from './helpers/cli-run';

/* run.best_checkpoint keeps the policy of the best evaluation, for the "absolute" metric of transfer reports. */

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-best-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const config = (best: string) =>
  ['env: { id: combat-3v3 }', 'algo: { name: mappo, rollout_length: 25 }', `run: { total_env_steps: 1000, num_envs: 2, eval_interval: 200, eval_episodes: 4, log_interval: 200, checkpoint_interval: 500, best_checkpoint: ${best} }`, ''].join('\n');

test('best.ckpt holds the policy of the best evaluation by the chosen number; it evaluates but does not resume; none keeps none', () => {
  const file = path.join(tmp, 'best.yaml');
  fs.writeFileSync(file, config('return_mean'));
  const out = path.join(tmp, 'run');
  expect(runCli(['train', file, '--out', out, '--no-progress']).status).toBe(0);
  const evals = fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { kind: string; env_steps: number; return_mean: number })
    .filter((r) => r.kind === 'eval');
  // The first evaluation with the highest return (later ties do not replace it).
  const best = evals.reduce((b, r) => (r.return_mean > b.return_mean ? r : b));
  const bestFile = path.join(out, 'checkpoints', 'best.ckpt');
  const evaluated = runCli(['eval', bestFile, '--episodes', '4', '--json']);
  expect(evaluated.status).toBe(0);
  expect(JSON.parse(evaluated.stdout)).toMatchObject({ algo: 'mappo', trainedEnvSteps: best.env_steps, episodes: 4 });
  expectCleanFailure(runCli(['train', '--resume', bestFile]), /not a training checkpoint \(metadata\.loop is missing\)/);
  // The run directory still resumes and evaluates from its newest training checkpoint.
  expect(JSON.parse(runCli(['eval', out, '--episodes', '2', '--json']).stdout)).toMatchObject({ trainedEnvSteps: 1000 });

  const plain = path.join(tmp, 'plain.yaml');
  fs.writeFileSync(plain, config('none'));
  expect(runCli(['train', plain, '--out', path.join(tmp, 'plain'), '--no-progress']).status).toBe(0);
  expect(fs.existsSync(path.join(tmp, 'plain', 'checkpoints', 'best.ckpt'))).toBe(false);
});
