import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadRunConfig, parseRunConfig, parseSavedRunConfig, RunConfigError, serializeRunConfig } from '../runtime/training/config-loader';
import type { RunConfig } from '../runtime/training/run-config';
import { repoRoot } from './helpers/repo-root';

const quickstart = path.join(repoRoot(), 'configs', 'quickstart.yaml');
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-run-config-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function writeConfig(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

/** The error a load throws, failing the test when it does not throw. */
function loadError(file: string, overrides: string[] = []): RunConfigError {
  try {
    loadRunConfig(file, overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(RunConfigError);
    return error as RunConfigError;
  }
  throw new Error(`expected ${file} ${overrides.join(' ')} to be rejected`);
}

const minimal = 'env:\n  id: lbf-8x8-2p-2f-coop\nalgo:\n  name: qmix\n';

describe('run config', () => {
  test('quickstart loads as MAPPO on lbf-8x8-2p-2f-coop', () => {
    const cfg = loadRunConfig(quickstart, []);
    expect(cfg.env?.id).toBe('lbf-8x8-2p-2f-coop');
    expect(cfg.algo.name).toBe('mappo');
    expect(cfg.run.total_env_steps).toBe(1_000_000);
    expect(cfg.run.num_envs).toBe(8);
  });

  test('defaults fill every section, per algorithm', () => {
    const cfg = loadRunConfig(writeConfig('minimal.yaml', minimal));
    expect(cfg.algo).toMatchObject({
      name: 'qmix',
      lr: 0.0005,
      gamma: 0.99,
      batch_size: 32,
      buffer_size: 5000,
      epsilon_start: 1,
      epsilon_finish: 0.05,
      epsilon_anneal_time: 50000,
      double_q: true,
      mixer: 'qmix',
      mixing_embed_dim: 32,
      hypernet_layers: 2,
      hypernet_embed: 64,
      target_update_interval_or_tau: 200,
    });
    expect(cfg.run).toEqual({
      seed: 0,
      total_env_steps: 2_000_000,
      num_envs: 1,
      workers: 0,
      log_interval: 2000,
      eval_interval: 50000,
      eval_episodes: 20,
      eval_greedy: true,
      checkpoint_interval: 50000,
      backend: 'auto',
      check_finite: true,
      best_checkpoint: 'none',
    });
    const iql = parseRunConfig('env: {id: x}\nalgo: {name: iql}\n', 'inline');
    expect(iql.algo).toMatchObject({ mixer: null, hidden_dim: 128, lr: 0.0003, use_rnn: true, epsilon_anneal_time: 200000 });
    const ippo = parseRunConfig('env: {id: x}\nalgo: {name: ippo}\n', 'inline');
    expect(ippo.algo).toMatchObject({ lr: 0.0003, eps_clip: 0.2, epochs: 4, target_update_interval_or_tau: 0.01 });
    expect(ippo.run.num_envs).toBe(10);
  });

  test('--set overrides nested numbers, booleans, strings and lists', () => {
    const cfg = loadRunConfig(quickstart, [
      'algo.lr=3e-4',
      'algo.use_rnn=false',
      'run.backend=cpu',
      'run.seed=7',
      'env.options.sight=2',
      'env.options.maxEpisodeSteps=25',
      'env.id=lbf-10x10-3p-3f',
    ]);
    // Narrowed to the quickstart's algorithm: not every algorithm has `lr`/`use_rnn` (sac has not).
    expect(cfg.algo.name === 'mappo' && cfg.algo.lr).toBe(0.0003);
    expect(cfg.algo.name === 'mappo' && cfg.algo.use_rnn).toBe(false);
    expect(cfg.run.backend).toBe('cpu');
    expect(cfg.run.seed).toBe(7);
    expect(cfg.env?.id).toBe('lbf-10x10-3p-3f');
    expect(cfg.env?.options).toEqual({ sight: 2, maxEpisodeSteps: 25 });
    const lists = loadRunConfig(writeConfig('lists.yaml', 'env: {id: reach}\nalgo: {name: sac}\n'), ['algo.hidden_dims=[32, 16]']);
    expect(lists.algo.name === 'sac' && lists.algo.hidden_dims).toEqual([32, 16]);
  });

  test('--set can switch algorithm and then set that algorithm\'s keys', () => {
    const file = writeConfig('switch.yaml', 'env: {id: x}\nalgo: {name: vdn}\n');
    const cfg = loadRunConfig(file, ['algo.name=qmix', 'algo.mixing_embed_dim=16']);
    expect(cfg.algo.name === 'qmix' && cfg.algo.mixing_embed_dim).toBe(16);
  });

  test('--set rejects an unknown path, naming it and the valid keys there', () => {
    const error = loadError(quickstart, ['algo.learning_rate=0.1']);
    expect(error.message).toContain('algo.learning_rate');
    expect(error.message).toMatch(/valid at algo: .*\blr\b.*\bgamma\b/);
    expect(loadError(quickstart, ['runn.seed=1']).message).toMatch(/'runn'.*valid at the top level: env, tasks, dataset, datasets, algo, run/);
    expect(loadError(quickstart, ['run.seed.x=1']).message).toContain("'run.seed.x'");
    expect(loadError(quickstart, ['run.seed']).message).toContain('key.path=value');
  });

  test('an unknown key is an error naming its path and the valid keys', () => {
    const file = writeConfig('unknown.yaml', `${minimal}run:\n  seeed: 3\n`);
    const error = loadError(file);
    expect(error.message).toContain(file);
    expect(error.issues).toEqual([expect.stringMatching(/^run\.seeed: unknown key \(valid: seed, total_env_steps, .*backend, remote\); did you mean 'seed'\?$/)]);
  });

  test('a wrong type is an error naming the path, what was expected and what was given', () => {
    const file = writeConfig('type.yaml', `${minimal}  double_q: maybe\nrun:\n  seed: one\n`);
    const error = loadError(file);
    expect(error.issues).toContain('algo.double_q: expected a boolean (true or false), got "maybe"');
    expect(error.issues).toContain('run.seed: expected an integer >= 0, got "one"');
  });

  test('out-of-range values are errors naming the path and the range, all reported at once', () => {
    const error = loadError(quickstart, ['algo.lr=-1', 'algo.gamma=1.5', 'run.total_env_steps=0', 'run.workers=1.5']);
    expect(error.issues).toEqual(
      expect.arrayContaining([
        'algo.lr: expected a finite number > 0, got -1',
        'algo.gamma: expected a number > 0 and <= 1, got 1.5',
        'run.total_env_steps: expected an integer > 0, got 0',
        'run.workers: expected one of an integer >= 0 and <= 256, "auto", got 1.5',
      ]),
    );
    expect(error.issues).toHaveLength(4);
    expect(error.message).toContain(quickstart);
  });

  test('a missing section and an unknown algorithm are reported', () => {
    const error = loadError(writeConfig('noenv.yaml', 'algo: {name: ddpg}\n'));
    expect(error.issues).toContain("env: required: 'env' (one task), 'tasks' (several) or, offline, 'datasets' (a folder of per-task datasets)");
    expect(error.issues).toContain('algo.name: expected one of mappo, ippo, qmix, vdn, iql, sac, bc, mtma, meta_dt, mra, got "ddpg"');
  });

  test('a PPO-only key under qmix is rejected, saying whose key it is', () => {
    const error = loadError(writeConfig('qmix-ppo.yaml', `${minimal}  eps_clip: 0.2\n`));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toMatch(/^algo\.eps_clip: unknown key for qmix \(valid: name, lr, .*mixing_embed_dim.*\); 'eps_clip' is a mappo\/ippo key$/);
    // and the mixer cannot contradict the algorithm
    expect(loadError(writeConfig('vdn-mix.yaml', 'env: {id: x}\nalgo: {name: vdn, mixer: qmix}\n')).issues).toEqual([
      'algo.mixer: expected "vdn", got "qmix"',
    ]);
  });

  test('a YAML syntax error names the file and line', () => {
    const file = writeConfig('broken.yaml', 'env:\n  id: x\nalgo: [mappo\nrun:\n  seed: 1\n');
    const error = loadError(file);
    expect(error.message).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: YAML syntax error`));
    const dup = writeConfig('dup.yaml', 'env: {id: x}\nalgo: {name: mappo}\nalgo: {name: qmix}\n');
    expect(loadError(dup).message).toContain(`${dup}:3:`);
  });

  test('serialize then load gives a deep-equal config', () => {
    const configs: RunConfig[] = [
      loadRunConfig(quickstart, ['env.options.sight=2', 'run.backend=wasm']),
      ...['mappo', 'ippo', 'qmix', 'vdn', 'iql'].map((name) => parseRunConfig(`env: {id: x}\nalgo: {name: ${name}}\n`, 'inline')),
    ];
    for (const cfg of configs) {
      const file = writeConfig(`saved-${cfg.algo.name}.yaml`, serializeRunConfig(cfg));
      expect(loadRunConfig(file)).toEqual(cfg);
    }
  });
});

test('a saved run whose keys conflict only for launching (checks added later) still parses for evaluation, but not for a new run', () => {
  const text = ['env: { id: lbf-8x8-2p-2f-coop }', 'algo: { name: qmix }', 'run: { num_envs: 2, workers: 3, eval_greedy: false }', ''].join('\n');
  expect(() => parseRunConfig(text, 'old.yaml')).toThrow(/run\.workers: 3 worker threads for 2 envs[\s\S]*run\.eval_greedy: false asks evaluation to sample/);
  expect(parseSavedRunConfig(text, 'old.yaml').run).toMatchObject({ workers: 3, num_envs: 2, eval_greedy: false });
  // The schema itself still applies.
  expect(() => parseSavedRunConfig(text.replace('workers: 3', 'workers: -1'), 'old.yaml')).toThrow(/run\.workers: expected one of an integer >= 0/);
});
