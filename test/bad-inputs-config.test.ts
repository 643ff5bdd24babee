import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registerBuiltinEnvs } from '../envs/builtin';
import { envOptionKeys, listEnvs, makeEnv } from '../envs/registry';
import { collectTasks, loadCollectConfig } from '../runtime/training/collect-datasets';
import { loadRunConfig, RunConfigError } from '../runtime/training/config-loader';
import { loadMraStudy, planMraStudy, studyMethodOf } from '../runtime/training/mra-study';
import { expectCleanFailure, runCli } from './helpers/cli-run';
import { repoRoot } from './helpers/repo-root';

/*
 * Bad run configs and `troupe train` / `troupe eval` flags: each is refused before any training
 * (and before a run directory exists) with a message naming the key, flag or option at fault —
 * and the valid neighbour of each class still works. Cases are in-process where the config
 * loader alone decides, and through the CLI where the flag, exit code and printed message are
 * the point.
 */

const ROOT = repoRoot();
let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bad-config-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let fileCount = 0;
function writeConfig(text: string, name = `config-${fileCount++}.yaml`): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

/** The tiny valid run every case starts from (one round is 2 envs × 25 steps = 50 env steps). */
const TINY = 'env: {id: lbf-8x8-2p-2f-coop}\nalgo: {name: mappo, hidden_dim: 8, rollout_length: 25}\nrun: {total_env_steps: 1000, num_envs: 2, eval_episodes: 2, log_interval: 500, eval_interval: 1000, checkpoint_interval: 1000}\n';
const QMIX = 'env: {id: lbf-8x8-2p-2f-coop}\nalgo: {name: qmix, hidden_dim: 8, batch_size: 2, buffer_size: 20}\nrun: {total_env_steps: 200, num_envs: 1, eval_episodes: 2, log_interval: 100, eval_interval: 200, checkpoint_interval: 200}\n';
const SAC = 'env: {id: reach, options: {horizon: 20}}\nalgo: {name: sac, hidden_dims: [8, 8], batch_size: 16, learning_starts: 40}\nrun: {total_env_steps: 200, num_envs: 2}\n';

/** The error `loadRunConfig` throws, failing the test when the config loads. */
function loadError(file: string, overrides: readonly string[] = []): RunConfigError {
  try {
    loadRunConfig(file, overrides);
  } catch (error) {
    expect(error).toBeInstanceOf(RunConfigError);
    return error as RunConfigError;
  }
  throw new Error(`expected ${file} ${overrides.join(' ')} to be refused`);
}

describe('run configs refused by the loader, naming the key', () => {
  // [what, config text, --set overrides, patterns the message must match]
  const cases: ReadonlyArray<[string, string, string[], RegExp[]]> = [
    ['learning rate .inf', TINY, ['algo.lr=.inf'], [/algo\.lr: expected a finite number > 0, got Infinity/]],
    ['learning rate .nan', TINY, ['algo.lr=.nan'], [/algo\.lr: expected a finite number > 0, got NaN/]],
    ['negative learning rate', TINY, ['algo.lr=-0.001'], [/algo\.lr: expected a finite number > 0, got -0\.001/]],
    ['zero learning rate', TINY, ['algo.lr=0'], [/algo\.lr: .*> 0, got 0/]],
    ['gamma above 1', TINY, ['algo.gamma=1.01'], [/algo\.gamma: expected a number > 0 and <= 1, got 1\.01/]],
    ['gamma 0', TINY, ['algo.gamma=0'], [/algo\.gamma: .*got 0/]],
    ['infinite clip', TINY, ['algo.eps_clip=.inf'], [/algo\.eps_clip: expected a finite number > 0, got Infinity/]],
    ['negative entropy coefficient', TINY, ['algo.entropy_coef=-0.01'], [/algo\.entropy_coef: expected a finite number >= 0, got -0\.01/]],
    ['infinite log-std', TINY, ['algo.log_std_init=.inf'], [/algo\.log_std_init: expected a finite number, got Infinity/]],
    ['infinite SAC tau', SAC, ['algo.tau=.inf'], [/algo\.tau: .*got Infinity/]],
    ['infinite SAC q_lr', SAC, ['algo.q_lr=.inf'], [/algo\.q_lr: expected a finite number > 0, got Infinity/]],
    ['hidden_dim 1e6', TINY, ['algo.hidden_dim=1000000'], [/algo\.hidden_dim: expected an integer > 0 and <= 4096, got 1000000/]],
    ['SAC hidden layer 1e6', SAC, ['algo.hidden_dims=[256, 1000000]'], [/algo\.hidden_dims\.1: expected an integer > 0 and <= 4096, got 1000000/]],
    ['qmix mixing_embed_dim 1e7', QMIX, ['algo.mixing_embed_dim=10000000'], [/algo\.mixing_embed_dim: .*<= 4096, got 10000000/]],
    ['SAC buffer 1e12', SAC, ['algo.buffer_size=1000000000000'], [/algo\.buffer_size: expected an integer > 0 and <= 10000000, got 1000000000000/]],
    ['num_envs 1e6', TINY, ['run.num_envs=1000000'], [/run\.num_envs: expected an integer > 0 and <= 4096, got 1000000/]],
    ['eval_episodes 1e9', TINY, ['run.eval_episodes=1000000000'], [/run\.eval_episodes: .*<= 100000, got 1000000000/]],
    ['an interval of 1e300', TINY, ['run.eval_interval=1e300'], [/run\.eval_interval: expected an integer > 0 and <= 9007199254740991, got 1e\+300/]],
    ['qmix batch above the replay', QMIX, ['algo.batch_size=64', 'algo.buffer_size=32'], [/algo\.batch_size: 64 episodes per update exceed algo\.buffer_size 32/, /no update would ever run/]],
    ['SAC batch above the replay', SAC, ['algo.batch_size=512', 'algo.buffer_size=100'], [/algo\.batch_size: 512 transitions .* exceed algo\.buffer_size 100/]],
    ['SAC learning_starts past the budget', SAC, ['algo.learning_starts=5000'], [/algo\.learning_starts: 5000 .*run\.total_env_steps is 200/]],
    ['SAC log_std_min above log_std_max', SAC, ['algo.log_std_min=3'], [/algo\.log_std_min: 3 must be below algo\.log_std_max 2/]],
    ['one MAPPO rollout beyond the budget', TINY, ['algo.rollout_length=100', 'run.total_env_steps=150'], [/algo\.rollout_length: 100 steps × 2 envs = 200 env steps per update exceed run\.total_env_steps 150/]],
    ['unknown combat option, with a close match', 'env: {id: combat-3v3, options: {alies: 2m}}\nalgo: {name: qmix}\n', [], [/env\.options\.alies: unknown option of env 'combat-3v3' \(known options: allies, enemies, .*\); did you mean 'allies'\?/]],
    ['unknown option of one task', 'tasks:\n  - {id: lbf-8x8-2p-2f-coop}\n  - {id: spread-3, options: {numAgent: 4}}\nalgo: {name: mappo}\n', [], [/tasks\.1\.options\.numAgent: unknown option of env 'spread-3' .*did you mean 'numAgents'\?/]],
    ['more workers than envs', TINY, ['run.workers=3'], [/run\.workers: 3 worker threads for 2 envs \(run\.num_envs\)/]],
    ['more task workers than task envs', 'tasks:\n  - {id: lbf-8x8-2p-2f-coop, num_envs: 2, workers: 4}\nalgo: {name: mappo}\n', [], [/tasks\.0\.workers: 4 worker threads for 2 envs \(tasks\.0\.num_envs\)/]],
    ['sampled evaluation of qmix', QMIX, ['run.eval_greedy=false'], [/run\.eval_greedy: .*qmix is value-based and acts greedily/]],
    ['sampled evaluation of iql', QMIX, ['algo.name=iql', 'run.eval_greedy=false'], [/run\.eval_greedy: .*iql is value-based and acts greedily/]],
  ];

  test.each(cases)('%s', (_what, text, overrides, patterns) => {
    const error = loadError(writeConfig(text), overrides);
    for (const pattern of patterns) expect(error.message).toMatch(pattern);
  });

  test('the valid neighbours load: finite rates, widths and replay sizes at the caps, a batch equal to the replay, workers = envs, sampled evaluation of MAPPO', () => {
    expect(loadRunConfig(writeConfig(TINY), ['algo.lr=1e-8', 'algo.gamma=1', 'algo.hidden_dim=4096', 'algo.entropy_coef=0', 'run.workers=2', 'run.eval_greedy=false']).run.workers).toBe(2);
    expect(loadRunConfig(writeConfig(QMIX), ['algo.batch_size=20', 'algo.buffer_size=20', 'algo.mixing_embed_dim=4096']).algo.name).toBe('qmix');
    expect(loadRunConfig(writeConfig(SAC), ['algo.buffer_size=10000000', 'algo.learning_starts=199', 'algo.log_std_min=-20', 'algo.log_std_max=-1']).algo.name).toBe('sac');
    expect(loadRunConfig(writeConfig(TINY), ['algo.rollout_length=100', 'run.total_env_steps=200']).run.total_env_steps).toBe(200);
    expect(loadRunConfig(writeConfig(TINY), ['algo.rollout_length=1', 'run.total_env_steps=4096', 'run.num_envs=4096']).run.num_envs).toBe(4096);
    expect(loadRunConfig(writeConfig('env: {id: combat-3v3, options: {allies: 2m, enemies: 3m}}\nalgo: {name: qmix}\n')).env?.options).toEqual({ allies: '2m', enemies: '3m' });
  });

  test("a user module's options are its own: not checked against any registration", () => {
    fs.writeFileSync(path.join(tmp, 'my-env.js'), 'module.exports = () => null;\n');
    const cfg = loadRunConfig(writeConfig('env: {id: combat-3v3, module: ./my-env.js, options: {anything: 1}}\nalgo: {name: qmix}\n'));
    expect(cfg.env?.options).toEqual({ anything: 1 });
  });
});

describe('every shipped config still validates', () => {
  const dirs = [path.join(ROOT, 'configs'), path.join(ROOT, 'configs', 'benchmarks')];
  const files = dirs.flatMap((dir) => fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).map((f) => path.join(dir, f)));

  test('there are configs to check', () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
  });

  test.each(files.map((f) => [path.relative(ROOT, f), f]))('%s', (_name, file) => {
    expect(() => loadRunConfig(file)).not.toThrow();
  });
});

describe('every shipped Meta-DT config still validates: run configs as train reads them, collect configs as collect does', () => {
  const dir = path.join(ROOT, 'configs', 'meta-dt');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  const isCollect = (f: string) => /(^|-)collect(-|\.)/.test(f);
  beforeAll(() => registerBuiltinEnvs());

  test('both kinds are there, and every run config names a collect config that exists', () => {
    expect(files.filter(isCollect).length).toBeGreaterThanOrEqual(3);
    expect(files.filter((f) => !isCollect(f)).length).toBeGreaterThanOrEqual(3);
    for (const f of files.filter((name) => !isCollect(name))) {
      const collect = loadRunConfig(path.join(dir, f)).datasets?.collect;
      if (collect !== undefined) expect(fs.existsSync(path.resolve(dir, collect))).toBe(true);
    }
  });

  test.each(files.map((f) => [f]))('%s', (f) => {
    const file = path.join(dir, f);
    if (isCollect(f)) expect(collectTasks(loadCollectConfig(file)).length).toBeGreaterThan(0);
    else expect(() => loadRunConfig(file)).not.toThrow();
  });
});

describe('every shipped MRA config still validates: run configs as train reads them, studies as transfer plans them', () => {
  const dir = path.join(ROOT, 'configs', 'mra');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  beforeAll(() => registerBuiltinEnvs());

  test.each(files.map((f) => [f]))('%s', (f) => {
    const file = path.join(dir, f);
    if (studyMethodOf(file) === 'mra') expect(planMraStudy(loadMraStudy(file), file, fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-mra-plan-'))).runs.length).toBeGreaterThan(0);
    else expect(() => loadRunConfig(file)).not.toThrow();
  });
});

describe('env options are declared by every built-in registration', () => {
  beforeAll(() => registerBuiltinEnvs());

  test('each listed env declares the options its factory takes', () => {
    const undeclared = listEnvs().filter((e) => envOptionKeys(e.id) === undefined).map((e) => e.id);
    expect(undeclared).toEqual([]);
    // Scenario ids resolved by a parser reach a declaring base registration too.
    for (const id of ['lbf-5x5-2p-1f', 'combat-2v3', 'pursuit-8x8-3p-1prey', 'spread-5', 'bar-lift-3arms', 'ML1-reach']) expect(envOptionKeys(id)).toBeDefined();
  });

  test('makeEnv refuses an undeclared option before building anything, and builds with declared ones', () => {
    expect(() => makeEnv('combat-3v3', { enemyAI: 'idle' })).toThrow(/combat-3v3: unknown option 'enemyAI' \(known options: .*\); did you mean 'enemyAi'\?/);
    expect(() => makeEnv('lbf-8x8-2p-2f-coop', { sight: 2, colour: 'red' })).toThrow(/unknown option 'colour'/);
    const env = makeEnv<unknown, unknown>('combat-3v3', { enemyAi: 'idle' });
    expect(env.metadata.id).toBe('combat-3v3');
    env.close?.();
  });
});

describe('troupe train refuses bad files and flags before training', () => {
  let config: string;
  beforeAll(() => {
    config = writeConfig(TINY, 'tiny.yaml');
  });

  // [what, args after `train` (CONFIG = the tiny valid config), patterns]
  const cases: ReadonlyArray<[string, (config: string) => string[], RegExp[]]> = [
    ['--workers abc', (c) => [c, '--workers', 'abc'], [/--workers must be a non-negative integer or 'auto', got 'abc'/]],
    ['--seed -1', (c) => [c, '--seed', '-1'], [/--seed must be a non-negative integer, got '-1'/]],
    ['--seed 1.5', (c) => [c, '--seed', '1.5'], [/--seed must be a non-negative integer, got '1\.5'/]],
    ['--set without =', (c) => [c, '--set', 'algo.lr'], [/--set 'algo\.lr': expected key\.path=value/]],
    ['--set of an unknown key, with a close match', (c) => [c, '--set', 'run.sed=3'], [/--set run\.sed: unknown key 'run\.sed'/, /did you mean 'seed'\?/]],
    ['--set with a value of the wrong type', (c) => [c, '--set', 'run.num_envs=many'], [/run\.num_envs: expected an integer > 0 and <= 4096, got "many"/]],
    ['--set lr=.inf', (c) => [c, '--set', 'algo.lr=.inf'], [/algo\.lr: expected a finite number > 0, got Infinity/]],
    ['--workers above num_envs', (c) => [c, '--workers', '4'], [/run\.workers: 4 worker threads for 2 envs/]],
    ['an unknown algorithm, with a close match', (c) => [c, '--set', 'algo.name=mapo'], [/algo\.name: expected one of mappo, .*got "mapo"; did you mean 'mappo'\?/]],
    ['a config that does not exist', () => [path.join(tmp, 'missing.yaml')], [/cannot read run config .*missing\.yaml: no such file/]],
    ['a directory as config', () => [tmp], [/cannot read run config .*: it is a directory/]],
    ['an empty config', () => [writeConfig('')], [/it is empty; a run config needs 'env' \(or 'tasks'\) and 'algo'/]],
    ['a config that is a list', () => [writeConfig('- env: x\n- algo: y\n')], [/\(top level\): expected a mapping of sections/, /got a list/]],
    ['a config that is a bare string', () => [writeConfig('hello\n')], [/\(top level\): expected a mapping of sections .*got "hello"/]],
    ['a config that is not YAML', () => [writeConfig(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'))], [/YAML syntax error/, /more YAML errors: is .* a YAML run config\?/]],
    ['an unknown top-level key, with a close match', () => [writeConfig(`${TINY}algoo: {}\n`)], [/algoo: unknown key \(valid: env, tasks, dataset, datasets, algo, run\); did you mean 'algo'\?/]],
    ['an unknown env option', () => [writeConfig(TINY.replace('lbf-8x8-2p-2f-coop}', 'lbf-8x8-2p-2f-coop, options: {sigth: 2}}'))], [/env\.options\.sigth: unknown option of env 'lbf-8x8-2p-2f-coop' .*did you mean 'sight'\?/]],
    ['a default rollout (batch_size episodes) beyond the budget', () => [writeConfig(TINY.replace(', rollout_length: 25', '').replace('total_env_steps: 1000', 'total_env_steps: 100'))], [/run\.total_env_steps: 100 is less than one round of collection, 2 envs × 250 steps = 500 env steps/]],
    ['more minibatches than rollout sequences', (c) => [c, '--set', 'algo.num_minibatches=8'], [/algo\.num_minibatches: 8 minibatches, but one rollout of task 'lbf-8x8-2p-2f-coop' holds only 4 sequences \(2 envs × 2 agents\)/]],
  ];

  test.each(cases)('%s', (_what, args, patterns) => {
    const out = path.join(tmp, `never-${fileCount++}`);
    const result = runCli(['train', ...args(config), '--out', out, '--backend', 'cpu', '--no-progress']);
    expectCleanFailure(result, ...patterns);
    // Refused before the run directory existed.
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('a tiny run: the budget rounded up loudly, the workers used recorded; eval flags', () => {
  let mappoRun: string;
  let qmixRun: string;
  beforeAll(() => {
    mappoRun = path.join(tmp, 'mappo-run');
    qmixRun = path.join(tmp, 'qmix-run');
    const mappo = runCli(['train', writeConfig(TINY), '--set', 'run.total_env_steps=1010', '--workers', '1', '--out', mappoRun, '--backend', 'cpu', '--no-progress']);
    if (mappo.status !== 0) throw new Error(`mappo run failed:\n${mappo.stdout}\n${mappo.stderr}`);
    fs.writeFileSync(path.join(tmp, 'mappo-stdout.txt'), mappo.stdout);
    const qmix = runCli(['train', writeConfig(QMIX), '--out', qmixRun, '--backend', 'cpu', '--no-progress']);
    if (qmix.status !== 0) throw new Error(`qmix run failed:\n${qmix.stdout}\n${qmix.stderr}`);
  });

  test('train says once that 1010 env steps become 1050 (whole rounds of 50), runs exactly that, and run.json records it with the workers used', () => {
    const stdout = fs.readFileSync(path.join(tmp, 'mappo-stdout.txt'), 'utf8');
    const notes = stdout.split('\n').filter((l) => l.startsWith('warning: run.total_env_steps'));
    expect(notes).toEqual(['warning: run.total_env_steps 1010 is rounded up to 1050: the run stops after whole rounds of 2 envs × 25 steps = 50 env steps']);
    const info = JSON.parse(fs.readFileSync(path.join(mappoRun, 'run.json'), 'utf8'));
    expect(info).toMatchObject({ workers: 1, env_steps_per_round: 50, planned_env_steps: 1050, cpu_cores: os.availableParallelism() });
    expect(info.notices).toEqual([expect.stringMatching(/rounded up to 1050/)]);
    const summary = JSON.parse(fs.readFileSync(path.join(mappoRun, 'summary.json'), 'utf8'));
    expect(summary.env_steps).toBe(1050);
  });

  test('eval --sample of a qmix run is refused (value-based, greedy); of a mappo run it samples', () => {
    expectCleanFailure(runCli(['eval', qmixRun, '--sample', '--episodes', '2', '--envs', '2', '--backend', 'cpu']), /qmix is value-based and acts greedily/, /sampling applies to policy-gradient runs \(mappo, ippo, sac, bc, mra\)/);
    const sampled = runCli(['eval', mappoRun, '--sample', '--episodes', '2', '--envs', '2', '--backend', 'cpu', '--json']);
    expect(sampled.status).toBe(0);
    expect(JSON.parse(sampled.stdout)).toMatchObject({ mode: 'sample', episodes: 2 });
  });

  test('eval --workers above --envs is refused; equal is fine', () => {
    expectCleanFailure(runCli(['eval', 'lbf-8x8-2p-2f-coop', '--episodes', '2', '--envs', '2', '--workers', '3']), /--workers 3 exceeds --envs 2/);
    expect(runCli(['eval', 'lbf-8x8-2p-2f-coop', '--episodes', '2', '--envs', '2', '--workers', '2', '--json']).status).toBe(0);
  });
});

describe('the build leaves the bin executable', () => {
  const bin = path.join(ROOT, 'dist', 'scripts', 'troupe.js');
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string>; scripts: Record<string, string> };

  test('package.json: every script that compiles also runs build:bin, which makes the bin executable', () => {
    expect(pkg.bin.troupe).toBe('dist/scripts/troupe.js');
    for (const name of ['build', 'prepare', 'test']) expect(pkg.scripts[name]).toMatch(/^tsc -p tsconfig\.json && npm run --silent build:bin( && jest)?$/);
    if (process.platform === 'win32') return;
    // A freshly compiled file is 0644; the post-build step must restore the executable bit.
    const mode = fs.statSync(bin).mode;
    try {
      fs.chmodSync(bin, 0o644);
      execFileSync('npm', ['run', '--silent', 'build:bin'], { cwd: ROOT });
      expect(fs.statSync(bin).mode & 0o111).toBe(0o111);
      // Executable as a bin, through its shebang.
      expect(execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()).toBe('0.1.0');
    } finally {
      fs.chmodSync(bin, mode | 0o755);
    }
  });
});
