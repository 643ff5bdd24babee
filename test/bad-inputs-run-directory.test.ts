import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Packr } from 'msgpackr';
import { readCheckpoint, encodeCheckpoint } from '../runtime/core/checkpoint';
import { RUN_LOCK_FILE } from '../runtime/core/run-lock';
import { configFileHash } from '../runtime/training/run-directory';
import { expectCleanFailure, runCli } from './helpers/cli-run';

/*
 * Bad checkpoint files and run directories, through the CLI (`troupe train --resume`, `troupe
 * eval`): each is refused with a non-zero exit, a message naming the file and what was expected,
 * and no stack trace. The valid counterparts below show the same paths still work.
 *
 * One tiny run is trained once; each case damages its own copy.
 */

const QUICKSTART = path.join(__dirname, '..', '..', 'configs', 'quickstart.yaml');
const TINY = [
  '--set', 'run.total_env_steps=2000', '--set', 'run.num_envs=2', '--set', 'run.checkpoint_interval=1000', '--set', 'run.log_interval=500',
  '--set', 'run.eval_interval=1000', '--set', 'run.eval_episodes=2',
];
const CPU = ['--backend', 'cpu', '--no-progress'];
const LATEST_CKPT = 'step-0000002000.ckpt';
const FIRST_CKPT = 'step-0000001000.ckpt';

let root: string;
let base: string;
let holder: ChildProcess;
let copies = 0;

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bad-rundir-'));
  base = path.join(root, 'base');
  const res = runCli(['train', QUICKSTART, ...TINY, ...CPU, '--out', base]);
  if (res.status !== 0) throw new Error(`the tiny run failed:\n${res.stdout}\n${res.stderr}`);
  // A live process for locks to name.
  holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 600000)'], { stdio: 'ignore' });
}, 120000);

afterAll(() => {
  holder?.kill('SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
});

/** A fresh copy of the tiny run to damage. */
function copyRun(): string {
  const dir = path.join(root, `run-${copies++}`);
  fs.cpSync(base, dir, { recursive: true });
  return dir;
}

/** A file in a fresh folder of its own. */
function fileWith(name: string, contents: string | Uint8Array): string {
  const dir = path.join(root, `file-${copies++}`);
  fs.mkdirSync(dir);
  const file = path.join(dir, name);
  fs.writeFileSync(file, contents);
  return file;
}

function editFile(file: string, edit: (text: string) => string): void {
  fs.writeFileSync(file, edit(fs.readFileSync(file, 'utf8')));
}

/** A checkpoint of the tiny run re-encoded after `change` (which may break what the format requires). */
function rawCheckpoint(name: string, change: (root: Record<string, unknown>) => void): string {
  const packr = new Packr({ useRecords: false, mapsAsObjects: true });
  const decoded = packr.unpack(fs.readFileSync(path.join(base, 'checkpoints', LATEST_CKPT))) as Record<string, unknown>;
  change(decoded);
  return fileWith(name, packr.pack(decoded));
}

const trainResume = (target: string, ...extra: string[]) => ['train', '--resume', target, ...CPU, ...extra];
const evalOf = (target: string) => ['eval', target, '--episodes', '1', '--backend', 'cpu'];
/** A deterministic byte soup (no tag, no structure). */
const noise = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251));

type Case = [name: string, args: () => string[], patterns: RegExp[]];

const cases: Case[] = [
  ['--resume of a path that does not exist', () => trainResume(path.join(root, 'no-such-run')), [/no-such-run does not exist \(expected a run directory or a \.ckpt checkpoint file\)/]],
  ['--resume of an empty directory', () => trainResume(fs.mkdtempSync(path.join(root, 'empty-'))), [/no checkpoint in .*empty-\w+ \(looked for .*checkpoints\/latest.*\): expected a run directory written by troupe train, or a \.ckpt file/]],
  ['eval of an empty directory', () => evalOf(fs.mkdtempSync(path.join(root, 'empty-'))), [/no checkpoint in .*empty-\w+.*expected a run directory written by troupe train/]],
  ['--resume of a run directory without checkpoints', () => {
    const dir = copyRun();
    fs.rmSync(path.join(dir, 'checkpoints'), { recursive: true });
    return trainResume(dir);
  }, [/run-\d+ is a run directory without a checkpoint \(it has metrics\.jsonl, config\.yaml, run\.json but no .*checkpoints\/latest\)/]],
  ['eval of a run directory without checkpoints', () => {
    const dir = copyRun();
    fs.rmSync(path.join(dir, 'checkpoints'), { recursive: true });
    return evalOf(dir);
  }, [/run-\d+ is a run directory without a checkpoint/]],
  ["--resume of a run whose 'latest' names a deleted checkpoint", () => {
    const dir = copyRun();
    fs.rmSync(path.join(dir, 'checkpoints', LATEST_CKPT));
    return trainResume(dir);
  }, [new RegExp(`checkpoints/latest names the checkpoint ${LATEST_CKPT}, but .*${LATEST_CKPT} does not exist \\(deleted or moved\\?\\); the folder still has ${FIRST_CKPT}`)]],
  ["eval of a run whose 'latest' names a deleted checkpoint", () => {
    const dir = copyRun();
    fs.rmSync(path.join(dir, 'checkpoints', LATEST_CKPT));
    return evalOf(dir);
  }, [new RegExp(`checkpoints/latest names the checkpoint ${LATEST_CKPT}, but .* does not exist`)]],
  ["--resume of a run whose 'latest' is not JSON", () => {
    const dir = copyRun();
    fs.writeFileSync(path.join(dir, 'checkpoints', 'latest'), '{"latest": "step-');
    return trainResume(dir);
  }, [/checkpoints\/latest is not a valid checkpoint pointer \(not JSON\)/]],
  ["--resume of a run whose 'latest' points outside its folder", () => {
    const dir = copyRun();
    fs.writeFileSync(path.join(dir, 'checkpoints', 'latest'), JSON.stringify({ latest: '../../base/checkpoints/x.ckpt', history: [] }));
    return trainResume(dir);
  }, [/checkpoints\/latest names '\.\.\/\.\.\/base\/checkpoints\/x\.ckpt', which is outside its directory/]],
  ['--resume of an empty .ckpt file', () => trainResume(fileWith('empty.ckpt', '')), [/empty\.ckpt is corrupt or truncated \(0 bytes; a checkpoint written by troupe train starts with its 'troupe-checkpoint' tag\)/]],
  ['eval of an empty .ckpt file', () => evalOf(fileWith('empty.ckpt', '')), [/empty\.ckpt is corrupt or truncated \(0 bytes/]],
  ['--resume of a checkpoint cut off in its middle', () => {
    const bytes = fs.readFileSync(path.join(base, 'checkpoints', LATEST_CKPT));
    return trainResume(fileWith('cut.ckpt', bytes.subarray(0, bytes.length >> 1)));
  }, [/cut\.ckpt is corrupt or truncated/]],
  ['--resume of a checkpoint cut off in its header', () => trainResume(fileWith('header.ckpt', fs.readFileSync(path.join(base, 'checkpoints', LATEST_CKPT)).subarray(0, 12))), [/header\.ckpt is corrupt or truncated \(12 bytes/]],
  ['eval of a checkpoint cut off in its middle', () => {
    const bytes = fs.readFileSync(path.join(base, 'checkpoints', LATEST_CKPT));
    return evalOf(fileWith('cut.ckpt', bytes.subarray(0, bytes.length - 100)));
  }, [/cut\.ckpt is corrupt or truncated/]],
  ['--resume of random bytes named .ckpt', () => trainResume(fileWith('noise.ckpt', noise)), [/noise\.ckpt is not a troupe checkpoint \(no 'troupe-checkpoint' tag\): expected a \.ckpt file written by troupe train/]],
  ['eval of random bytes named .ckpt', () => evalOf(fileWith('noise.ckpt', noise)), [/noise\.ckpt is not a troupe checkpoint/]],
  ["--resume of the run's config.yaml", () => trainResume(path.join(copyRun(), 'config.yaml')), [/config\.yaml is not a troupe checkpoint \(no 'troupe-checkpoint' tag; it is a text file, such as JSON or YAML\): expected a \.ckpt file/]],
  ["eval of the run's summary.json", () => evalOf(path.join(copyRun(), 'summary.json')), [/summary\.json is not a troupe checkpoint .*text file/]],
  ['--resume of a JSON file named .ckpt', () => trainResume(fileWith('json.ckpt', '{"magic": "troupe-checkpoint", "version": 3}\n')), [/json\.ckpt is not a troupe checkpoint .*text file, such as JSON or YAML/]],
  ['--resume of a checkpoint whose metadata lacks the loop state', () => rawCheckpointArgs('no-loop.ckpt', (c) => delete (c.metadata as Record<string, unknown>).loop), [/no-loop\.ckpt: not a training checkpoint \(metadata\.loop is missing\); --resume needs a checkpoint written by troupe train/]],
  ['--resume of a checkpoint with a negative step counter', () => rawCheckpointArgs('negative.ckpt', (c) => ((c.counters as Record<string, unknown>).envSteps = -5)), [/negative\.ckpt: field 'counters\.envSteps' must be a non-negative integer/]],
  ['eval of a checkpoint from an unknown format version', () => evalOf(rawCheckpoint('future.ckpt', (c) => (c.version = 99))), [/future\.ckpt has checkpoint format version 99; this build reads 1, 2, 3/]],
  ['--resume of a run with a damaged metrics line', () => {
    const dir = copyRun();
    editFile(path.join(dir, 'metrics.jsonl'), (t) => t.replace(/\n[^\n]*\n/, '\n{"kind":"train","env_steps":10\u0000\n'));
    return trainResume(dir, '--set', 'run.total_env_steps=3000');
  }, [/metrics\.jsonl:2: damaged metrics record \(expected a JSON object on each line; the checkpoint counts \d+ records/]],
  ['--resume of a run whose metrics lost lines', () => {
    const dir = copyRun();
    editFile(path.join(dir, 'metrics.jsonl'), (t) => `${t.split('\n')[0]}\n`);
    return trainResume(dir, '--set', 'run.total_env_steps=3000');
  }, [/cannot resume metrics .*metrics\.jsonl: the checkpoint had seen \d+ records but the file has 1/]],
  ['--resume of a run whose metrics file is gone', () => {
    const dir = copyRun();
    fs.rmSync(path.join(dir, 'metrics.jsonl'));
    return trainResume(dir);
  }, [/metrics\.jsonl: the file does not exist, but the checkpoint counts \d+ records in it/]],
  ['--resume after config.yaml was edited (a model setting)', () => {
    const dir = copyRun();
    editFile(path.join(dir, 'config.yaml'), (t) => t.replace(/lr: 0\.0005/, 'lr: 0.001'));
    return trainResume(dir);
  }, [/config\.yaml was edited since the run started \(its sha256 differs from the one in .*run\.json\) and differs from the checkpoint's config in algo\.lr \(0\.0005 in the checkpoint, 0\.001 in config\.yaml\).*algo\.lr cannot change on a resume/]],
  ['--resume after config.yaml was edited (the budget) without --set', () => {
    const dir = copyRun();
    editFile(path.join(dir, 'config.yaml'), (t) => t.replace(/total_env_steps: 2000/, 'total_env_steps: 3000'));
    return trainResume(dir);
  }, [/config\.yaml was edited since the run started .*run\.total_env_steps \(2000 in the checkpoint, 3000 in config\.yaml\).*state it: --set run\.total_env_steps=3000/]],
  ['--resume after config.yaml was edited into an invalid config', () => {
    const dir = copyRun();
    editFile(path.join(dir, 'config.yaml'), (t) => t.replace(/num_envs: 2/, 'num_envs: two'));
    return trainResume(dir);
  }, [/config\.yaml was edited since the run started and is no longer a valid config \([\s\S]*run\.num_envs: expected an integer > 0( and <= \d+)?, got "two"/]],
  ['--resume of a run directory in use', () => {
    const dir = copyRun();
    fs.writeFileSync(path.join(dir, RUN_LOCK_FILE), JSON.stringify({ pid: holder.pid, hostname: os.hostname(), started_at: '2026-01-01T00:00:00.000Z', command: 'troupe train --resume x' }));
    return trainResume(dir, '--set', 'run.total_env_steps=3000');
  }, [/run-\d+ is in use by another troupe process: pid \d+ on .*, since 2026-01-01T00:00:00\.000Z/]],
  ['train --out a run directory in use', () => {
    const dir = path.join(root, `busy-${copies++}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, RUN_LOCK_FILE), JSON.stringify({ pid: holder.pid, hostname: os.hostname(), started_at: '2026-01-01T00:00:00.000Z', command: 'troupe train a.yaml' }));
    return ['train', QUICKSTART, ...TINY, ...CPU, '--out', dir];
  }, [/busy-\d+ is in use by another troupe process: pid \d+ .*\(troupe train a\.yaml\)/]],
  ['--resume of a run directory locked on another machine', () => {
    const dir = copyRun();
    fs.writeFileSync(path.join(dir, RUN_LOCK_FILE), JSON.stringify({ pid: 12, hostname: 'elsewhere', started_at: '2026-01-01T00:00:00.000Z', command: 'troupe train x' }));
    return trainResume(dir);
  }, [/in use by pid 12 on elsewhere.*another machine's process cannot be checked from here.*delete .*run\.lock/]],
  ['--resume with a budget below the steps already done', () => trainResume(copyRun(), '--set', 'run.total_env_steps=1000'), [/run\.total_env_steps: 1000 is less than the 2000 env steps .*step-0000002000\.ckpt has already trained; a resume can only extend a run \(give at least 2000\)/]],
  ['--resume with a config file that differs from the run', () => ['train', QUICKSTART, '--resume', copyRun(), ...CPU], [/cannot resume .*step-0000002000\.ckpt with a different config: .*run\.num_envs.* differ from the saved run/]],
  ['--resume changing a model setting with --set', () => trainResume(copyRun(), '--set', 'algo.hidden_dim=32'), [/with a different config: algo\.hidden_dim differ from the saved run/]],
  ['train --out a file', () => ['train', QUICKSTART, ...TINY, ...CPU, '--out', fileWith('not-a-dir', 'x')], [/cannot use .*not-a-dir as a run directory: it, or a folder on its path, is a file/]],
  ['train --out a finished run', () => ['train', QUICKSTART, ...TINY, ...CPU, '--out', copyRun()], [/run-\d+ already holds a run; continue it with --resume/]],
];

function rawCheckpointArgs(name: string, change: (root: Record<string, unknown>) => void): string[] {
  return trainResume(rawCheckpoint(name, change));
}

describe('bad checkpoint files and run directories are refused cleanly', () => {
  test.each(cases)('%s', (_name, args, patterns) => {
    expectCleanFailure(runCli(args()), ...patterns);
  });

  test('a refused resume leaves the run directory as it was (no lock left, nothing rewritten)', () => {
    const dir = copyRun();
    const before = fs.readFileSync(path.join(dir, 'run.json'), 'utf8');
    editFile(path.join(dir, 'config.yaml'), (t) => t.replace(/lr: 0\.0005/, 'lr: 0.001'));
    expectCleanFailure(runCli(trainResume(dir)), /was edited/);
    expect(fs.existsSync(path.join(dir, RUN_LOCK_FILE))).toBe(false);
    expect(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')).toBe(before);
  });
});

describe('the valid counterparts still work', () => {
  const runInfo = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8')) as { config_sha256?: string };
  const summary = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as { env_steps: number };

  test('a clean resume extends the run, releases the lock and records the new config.yaml hash', () => {
    const dir = copyRun();
    expect(runInfo(dir).config_sha256).toBe(configFileHash(fs.readFileSync(path.join(dir, 'config.yaml'))));
    const res = runCli(trainResume(dir, '--set', 'run.total_env_steps=2500'));
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(summary(dir).env_steps).toBeGreaterThanOrEqual(2500);
    expect(fs.existsSync(path.join(dir, RUN_LOCK_FILE))).toBe(false);
    expect(fs.readFileSync(path.join(dir, 'config.yaml'), 'utf8')).toMatch(/total_env_steps: 2500/);
    expect(runInfo(dir).config_sha256).toBe(configFileHash(fs.readFileSync(path.join(dir, 'config.yaml'))));
  });

  test('an edited config.yaml whose change is stated with --set resumes; an edit that changes no setting is accepted', () => {
    const dir = copyRun();
    editFile(path.join(dir, 'config.yaml'), (t) => `# my notes\n${t.replace(/total_env_steps: 2000/, 'total_env_steps: 2500')}`);
    const res = runCli(trainResume(dir, '--set', 'run.total_env_steps=2500'));
    expect(res.status).toBe(0);
    expect(summary(dir).env_steps).toBeGreaterThanOrEqual(2500);
    editFile(path.join(dir, 'config.yaml'), (t) => `${t}# only a comment\n`);
    expect(runCli(trainResume(dir)).status).toBe(0);
  });

  test('a run from before the config hash (run.json without it) resumes from its checkpoint config', () => {
    const dir = copyRun();
    const { config_sha256: _dropped, ...older } = runInfo(dir);
    fs.writeFileSync(path.join(dir, 'run.json'), JSON.stringify(older));
    editFile(path.join(dir, 'config.yaml'), (t) => t.replace(/total_env_steps: 2000/, 'total_env_steps: 9000'));
    const res = runCli(trainResume(dir));
    expect(res.status).toBe(0);
    // The checkpoint's budget, not config.yaml's: the finished run stays finished.
    expect(summary(dir).env_steps).toBe(2000);
    expect(runInfo(dir).config_sha256).toBe(configFileHash(fs.readFileSync(path.join(dir, 'config.yaml'))));
  });

  test("a dead process's lock is taken over with a note; a torn last metrics line is dropped", async () => {
    const dir = copyRun();
    const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await new Promise((resolve) => dead.on('exit', resolve));
    fs.writeFileSync(path.join(dir, RUN_LOCK_FILE), JSON.stringify({ pid: dead.pid, hostname: os.hostname(), started_at: '2026-01-01T00:00:00.000Z', command: 'troupe train x' }));
    fs.appendFileSync(path.join(dir, 'metrics.jsonl'), '{"kind":"train","env_st');
    const res = runCli(trainResume(dir, '--set', 'run.total_env_steps=2500'));
    expect(res.status).toBe(0);
    expect(res.stderr).toMatch(new RegExp(`note: taking over the stale lock .*run\\.lock of pid ${dead.pid} .*no longer running`));
    expect(fs.existsSync(path.join(dir, RUN_LOCK_FILE))).toBe(false);
    const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(lines.every((l) => typeof JSON.parse(l) === 'object')).toBe(true);
  });

  test('with its newest checkpoint deleted, a run resumes from an older one by path; eval reads the run and a checkpoint file', async () => {
    const dir = copyRun();
    // The same checkpoint re-encoded by the library is still a checkpoint (the damage above is the cause of each refusal).
    const reencoded = fileWith('reencoded.ckpt', encodeCheckpoint(await readCheckpoint(path.join(dir, 'checkpoints', LATEST_CKPT))));
    expect(runCli(evalOf(reencoded)).status).toBe(0);
    expect(runCli(evalOf(dir)).status).toBe(0);
    fs.rmSync(path.join(dir, 'checkpoints', LATEST_CKPT));
    const res = runCli(trainResume(path.join(dir, 'checkpoints', FIRST_CKPT)));
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/resuming .*step-0000001000\.ckpt \(1000 env steps\)/);
    expect(summary(dir).env_steps).toBe(2000);
  });
});
