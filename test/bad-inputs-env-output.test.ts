import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, type CliResult, expectCleanFailure } from './helpers/cli-run';
import { writeCoinModule } from './helpers/coin-env-module';

/*
 * The bad-input suite's env-output share: env modules that return something training must not
 * learn from, each with one defect, trained with `troupe train`. Every one must stop the run
 * with a non-zero exit and a message naming the env, the step, the agent and the field — no
 * stack trace — while the correct module trains. The CLI runs are started together in
 * `beforeAll` (a few at a time) and each case then checks its own result.
 */

/** Defect hooks (see `writeCoinModule`); most break episode step 3, so messages can say so. */
const AT_STEP_3 = (edit: string) => `{ step: (out, env) => { if (env.t === 3) { ${edit} } return out; } }`;

interface Case {
  name: string;
  /** Trains the coin module with this defect (see `writeCoinModule`) … */
  defect?: string;
  sets?: string[];
  /** … or runs these arguments instead. */
  args?: string[];
  patterns: RegExp[];
}

const QUICKSTART = path.join(__dirname, '..', '..', 'configs', 'quickstart.yaml');

const STEP3 = /env 'coin' #0 at episode step 3: /;
const RESET = /env 'coin' #0 at reset \(episode step 0\): /;

const failing: Case[] = [
  { name: 'short observation', defect: AT_STEP_3('out.observations.a1 = out.observations.a1.subarray(0, 3);'), patterns: [STEP3, /observation of agent 'a1' has length 3, expected 4 \(observation space Box\(0, 1, \[4\], float32\)\)/] },
  { name: 'over-long observation', defect: AT_STEP_3('out.observations.a1 = new Float32Array(5);'), patterns: [STEP3, /observation of agent 'a1' has length 5, expected 4/] },
  { name: 'NaN in an observation', defect: AT_STEP_3('out.observations.a0[2] = NaN;'), patterns: [STEP3, /observation of agent 'a0' has NaN at index 2, expected finite numbers/] },
  { name: 'Infinity in an observation', defect: AT_STEP_3('out.observations.a1[0] = -Infinity;'), patterns: [STEP3, /observation of agent 'a1' has -Infinity at index 0/] },
  { name: 'observation that is a number', defect: AT_STEP_3('out.observations.a0 = 7;'), patterns: [STEP3, /observation of agent 'a0' is 7, expected an array of 4 numbers/] },
  { name: 'observation array holding a string', defect: AT_STEP_3("out.observations.a0 = [0, 'x', 0, 0];"), patterns: [STEP3, /observation of agent 'a0' has x at index 1, expected a number/] },
  { name: 'live agent without an observation', defect: AT_STEP_3('delete out.observations.a1;'), patterns: [STEP3, /agent 'a1' is live \(in env.agents\) but observations has no entry for it/] },
  { name: 'observation for an unknown agent', defect: AT_STEP_3('out.observations.ghost = new Float32Array(4);'), patterns: [STEP3, /observations has an entry for 'ghost', which is not one of possibleAgents \[a0, a1\]/] },
  { name: 'reward for an unknown agent', defect: AT_STEP_3('out.rewards.ghost = 1;'), patterns: [STEP3, /rewards has an entry for 'ghost'/] },
  { name: 'NaN reward', defect: AT_STEP_3('out.rewards.a0 = NaN;'), patterns: [STEP3, /reward of agent 'a0' is NaN, expected a finite number/] },
  { name: 'string reward', defect: AT_STEP_3("out.rewards.a1 = '1';"), patterns: [STEP3, /reward of agent 'a1' is 1 \(string\), expected a number/] },
  { name: 'missing reward of an agent that acted', defect: AT_STEP_3('delete out.rewards.a1;'), patterns: [STEP3, /agent 'a1' acted but rewards has no entry for it/] },
  { name: 'missing termination entry', defect: AT_STEP_3('delete out.terminations.a0;'), patterns: [STEP3, /agent 'a0' acted but terminations has no entry for it, expected true or false/] },
  { name: 'truncation that is a string', defect: AT_STEP_3("out.truncations.a1 = 'no';"), patterns: [STEP3, /truncations of agent 'a1' is no, expected true or false/] },
  { name: 'step() without a rewards dict', defect: AT_STEP_3('delete out.rewards;'), patterns: [STEP3, /step\(\) returned no 'rewards' dict/] },
  { name: 'action mask of the wrong length', defect: "{ mask: (m, agent, env) => (env.t === 3 && agent === 'a1' ? m.subarray(0, 4) : m) }", patterns: [STEP3, /action mask of agent 'a1' has length 4, expected 5 \(action space Discrete\(5\)\)/] },
  { name: 'all-zero action mask of a live agent', defect: "{ mask: (m, agent, env) => (env.t === 3 && agent === 'a0' ? new Uint8Array(5) : m) }", patterns: [STEP3, /action mask of agent 'a0' allows no action, but the agent is live/] },
  { name: 'state of the wrong length', defect: '{ state: (s, env) => (env.t === 3 ? s.subarray(0, 5) : s) }', patterns: [STEP3, /state\(\) has length 5, expected 6 \(stateSpace Box\(0, 1, \[6\], float32\)\)/] },
  { name: 'NaN in the state', defect: '{ state: (s, env) => { if (env.t === 3) s[4] = NaN; return s; } }', patterns: [STEP3, /state\(\) has NaN at index 4, expected finite numbers/] },
  { name: 'step() throwing', defect: "{ step: (out, env) => { if (env.t === 3) throw new Error('the coin fell off the table'); return out; } }", patterns: [/env 'coin' #0 failed at episode step 3: the coin fell off the table/] },
  { name: 'reset() throwing', defect: "{ reset: () => { throw new Error('no table to put the coin on'); } }", patterns: [/env 'coin' #0 failed in reset\(\): no table to put the coin on/] },
  { name: 'reset() missing an agent', defect: '{ reset: (out) => { delete out.observations.a0; return out; } }', patterns: [RESET, /agent 'a0' is live \(in env.agents\) but observations has no entry for it/] },
  { name: 'over-long observation at reset', defect: '{ reset: (out) => { out.observations.a1 = new Float32Array(9); return out; } }', patterns: [RESET, /observation of agent 'a1' has length 9, expected 4/] },
  { name: 'unknown live agent', defect: "{ step: (out, env) => { if (env.t === 3) env.agents = ['a0', 'ghost']; return out; } }", patterns: [STEP3, /env.agents contains 'ghost', which is not one of possibleAgents/] },
  // In worker threads the same checks run in the workers and the message arrives whole.
  { name: 'short observation (2 workers)', sets: ['run.workers=2'], defect: AT_STEP_3('out.observations.a1 = out.observations.a1.subarray(0, 3);'), patterns: [STEP3, /observation of agent 'a1' has length 3, expected 4/] },
  { name: 'string reward (2 workers)', sets: ['run.workers=2'], defect: AT_STEP_3("out.rewards.a1 = 'one';"), patterns: [STEP3, /reward of agent 'a1' is one \(string\), expected a number/] },
  { name: 'step() throwing (2 workers)', sets: ['run.workers=2'], defect: "{ step: (out, env) => { if (env.t === 3) throw new Error('the coin fell off the table'); return out; } }", patterns: [/env 'coin' #0 failed at episode step 3: the coin fell off the table/] },
  // The speed switch skips finiteness only: lengths are still checked.
  { name: 'short observation with run.check_finite false', sets: ['run.check_finite=false'], defect: AT_STEP_3('out.observations.a1 = out.observations.a1.subarray(0, 3);'), patterns: [STEP3, /observation of agent 'a1' has length 3, expected 4/] },
  // The speed switch lets a NaN observation into the buffers; the learner's own check then stops the run before any NaN checkpoint.
  { name: 'NaN in an observation with run.check_finite false', sets: ['run.check_finite=false'], defect: AT_STEP_3('out.observations.a0[2] = NaN;'), patterns: [/mappo diverged at env step \d+ \(after 0 finite updates\): its '\w+' is NaN/, /no checkpoint was written before it/] },
  // A learner that diverges (a huge learning rate) stops the run naming the loss; no checkpoint with NaN weights.
  { name: 'learning rate 1e30', args: ['train', QUICKSTART, '--set', 'algo.lr=1e30', '--set', 'run.total_env_steps=400', '--set', 'run.num_envs=2', '--set', 'run.eval_interval=100000'], patterns: [/mappo diverged at env step \d+ .*'\w+_loss' is NaN, expected a finite number/, /there is none to resume from/] },
  // The new config keys and flag refuse bad values by name.
  { name: 'run.eval_max_steps of 0', args: ['train', QUICKSTART, '--set', 'run.eval_max_steps=0'], patterns: [/run\.eval_max_steps: expected an integer > 0, got 0/] },
  { name: 'run.check_finite that is not a boolean', args: ['train', QUICKSTART, '--set', 'run.check_finite=maybe'], patterns: [/run\.check_finite: expected a boolean/] },
  { name: 'eval --max-steps 0', args: ['eval', 'lbf-8x8-2p-2f-coop', '--max-steps', '0'], patterns: [/--max-steps must be a positive integer, got '0'/] },
];

const passing: Case[] = [
  { name: 'the correct module', defect: '{}', patterns: [/done: 200 env steps/] },
  { name: 'the correct module (2 workers)', sets: ['run.workers=2'], defect: '{}', patterns: [/done: 200 env steps/] },
];

let dir: string;
const results = new Map<string, CliResult>();

function runCliAsync(args: string[], cwd: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, TROUPE_DEBUG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function trainArgs(c: Case, index: number): string[] {
  if (c.args) return [...c.args, ...(c.args[0] === 'train' ? ['--out', path.join(dir, `run-${index}`), '--backend', 'cpu', '--no-progress'] : [])];
  const module = writeCoinModule(dir, `case-${index}`, c.defect);
  const config = path.join(dir, `case-${index}.yaml`);
  fs.writeFileSync(
    config,
    [`env: { id: coin, module: ${JSON.stringify(module)} }`, 'algo: { name: mappo, hidden_dim: 16 }', 'run: { total_env_steps: 200, num_envs: 2, log_interval: 100, eval_interval: 100000, eval_episodes: 2 }', ''].join('\n'),
  );
  const sets = (c.sets ?? []).flatMap((s) => ['--set', s]);
  return ['train', config, '--out', path.join(dir, `run-${index}`), '--backend', 'cpu', '--no-progress', ...sets];
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-env-output-'));
  const jobs = [...failing, ...passing].map((c, i) => ({ c, args: trainArgs(c, i) }));
  // A few at a time: each child is mostly tfjs start-up.
  const running = new Set<Promise<void>>();
  for (const job of jobs) {
    const p: Promise<void> = runCliAsync(job.args, dir).then((r) => {
      results.set(job.c.name, r);
      running.delete(p);
    });
    running.add(p);
    if (running.size >= 3) await Promise.race(running);
  }
  await Promise.all(running);
}, 600000);

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('troupe train refuses what a broken env returns', () => {
  test.each(failing.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expectCleanFailure(results.get(c.name)!, ...c.patterns);
  });
});

describe('valid counterparts train', () => {
  test.each(passing.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const r = results.get(c.name)!;
    if (r.status !== 0) throw new Error(`expected exit 0, got ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
    for (const pattern of c.patterns) expect(`${r.stdout}\n${r.stderr}`).toMatch(pattern);
  });
});
