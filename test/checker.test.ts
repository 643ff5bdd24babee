import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CHECK_NAMES, checkEnv, formatCheckReport, type CheckReport } from '../envs/checker';
import { loadEnvModule } from '../envs/load-env-module';
import type { ParallelEnv } from '../envs/parallel-env';
import { createEnv as acceptsBadActions } from './fixtures/accepts-bad-actions-env';
import { createEnv as deadAgentStays } from './fixtures/dead-agent-stays-env';
import { createEnv as goodEnv } from './fixtures/good-env';
import { createEnv as neverEnds } from './fixtures/never-ends-env';
import { createEnv as nondeterministic } from './fixtures/nondeterministic-env';
import { createEnv as obsOutsideSpace } from './fixtures/obs-outside-space-env';
import { createEnv as reusedObsBuffer } from './fixtures/reused-obs-buffer-env';
import { createEnv as stateOutsideSpace } from './fixtures/state-outside-space-env';
import { createEnv as wrongRewardKeys } from './fixtures/wrong-reward-keys-env';
import { createEnv as zeroMask } from './fixtures/zero-mask-env';

type AnyEnv = ParallelEnv<unknown, unknown>;

function factory(create: () => ParallelEnv<Float32Array, number>): () => AnyEnv {
  return create as unknown as () => AnyEnv;
}

function failedChecks(report: CheckReport): string[] {
  return report.checks.filter((c) => !c.passed).map((c) => c.name);
}

function messageOf(report: CheckReport, name: string): string {
  return report.checks.find((c) => c.name === name)?.message ?? '';
}

describe('checkEnv', () => {
  test('the good env passes every check, and the dead-agent and mask rules were exercised', () => {
    const report = checkEnv(factory(goodEnv), { seed: 7 });
    expect(failedChecks(report)).toEqual([]);
    expect(report.passed).toBe(true);
    expect(report.envId).toBe('checker-fixture-race');
    expect(report.checks.map((c) => c.name)).toEqual(CHECK_NAMES);
    // Not vacuous: an agent left while the other lived on, and a masked action was refused.
    expect(messageOf(report, 'rejects-action-for-non-live-agent')).not.toMatch(/not exercised/);
    expect(messageOf(report, 'rejects-masked-action')).not.toMatch(/not exercised/);
  });

  test.each([
    ['obs-outside-space', 'observations-in-space', obsOutsideSpace, /observation of 'runner_\d' is outside its observation space Box\(0, 1, \[3\], float32\)/],
    ['wrong-reward-keys', 'step-bookkeeping', wrongRewardKeys, /rewards must be keyed by exactly the agents .*missing 'runner_0'; unexpected 'referee'/],
    ['dead-agent-stays', 'step-bookkeeping', deadAgentStays, /'runner_\d' was terminated or truncated by this step but is still in agents/],
    ['nondeterministic', 'determinism', nondeterministic, /second env .* differs in episode 1: after reset, the observation of 'runner_0'/],
    ['accepts-bad-actions', 'rejects-out-of-space-action', acceptsBadActions, /step\(\) accepted action 3 for 'runner_0', which is outside its action space Discrete\(3\)/],
    ['zero-mask', 'action-masks', zeroMask, /actionMask\('runner_0'\) allows no action/],
    ['state-outside-space', 'state', stateOutsideSpace, /state\(\) is outside stateSpace Box\(0, 1, \[3\], float32\)/],
    ['never-ends', 'episode-length', neverEnds, /still had live agents \[runner_0, runner_1\] after 21 steps/],
    ['reused-obs-buffer', 'observations-not-mutated', reusedObsBuffer, /observation of 'runner_0' returned at episode 1 reset was changed by the end of episode 1 or the next reset \(and \d+ more kept observations\)/],
  ])('%s fails exactly the %s check', (_name, check, create, message) => {
    const report = checkEnv(factory(create), { seed: 7 });
    expect(failedChecks(report)).toEqual([check]);
    expect(report.passed).toBe(false);
    expect(messageOf(report, check)).toMatch(message);
  });

  test('a check that throws is reported and does not hide the others', () => {
    const makeEnv = (): AnyEnv => {
      const env = goodEnv() as unknown as AnyEnv;
      return Object.assign(Object.create(env) as AnyEnv, {
        render(): string {
          throw new Error('no picture today');
        },
      });
    };
    const report = checkEnv(makeEnv, { seed: 7 });
    expect(failedChecks(report)).toEqual(['render']);
    expect(messageOf(report, 'render')).toMatch(/env\.render\(\) after reset threw: no picture today/);
  });

  test('a factory that throws fails construct and skips the rest with a clear reason', () => {
    const report = checkEnv(() => {
      throw new Error('missing map file');
    });
    expect(report.passed).toBe(false);
    expect(report.checks[0]).toEqual({ name: 'construct', passed: false, message: 'makeEnv() threw: missing map file' });
    expect(report.checks.slice(1).every((c) => !c.passed && /skipped/.test(c.message ?? ''))).toBe(true);
  });

  test('maxSteps below the env limit makes the episode-length check inconclusive, not failed', () => {
    const report = checkEnv(factory(neverEnds), { seed: 7, maxSteps: 5 });
    expect(failedChecks(report)).toEqual([]);
    expect(messageOf(report, 'episode-length')).toMatch(/stopped by maxSteps=5/);
  });

  test('rejects invalid options', () => {
    expect(() => checkEnv(factory(goodEnv), { episodes: 0 })).toThrow(/episodes must be a positive integer/);
    expect(() => checkEnv(factory(goodEnv), { maxSteps: 1.5 })).toThrow(/maxSteps must be a positive integer/);
  });

  test('formatCheckReport lists each check with its mark and indents messages', () => {
    const text = formatCheckReport(checkEnv(factory(stateOutsideSpace), { seed: 7 }));
    const lines = text.split('\n');
    expect(lines[0]).toBe('check-env checker-fixture-race');
    expect(lines).toContain('  ✓ determinism');
    expect(lines).toContain('  ✗ state');
    expect(lines[lines.indexOf('  ✗ state') + 1]).toMatch(/^ {6}episode 1 step \d+: state\(\) is outside stateSpace/);
    expect(lines[lines.length - 1]).toBe(`FAILED: 1 of ${CHECK_NAMES.length} checks`);
    expect(formatCheckReport(checkEnv(factory(goodEnv)))).toMatch(/PASSED: all \d+ checks$/);
  });
});

describe('loadEnvModule', () => {
  const fixtures = path.join(__dirname, 'fixtures');
  let scratch: string;

  beforeAll(() => {
    scratch = mkdtempSync(path.join(tmpdir(), 'troupe-load-env-'));
  });
  afterAll(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  test('loads a compiled factory module and makes a fresh env per call', async () => {
    const makeEnv = await loadEnvModule(path.join(fixtures, 'good-env.js'));
    const a = makeEnv();
    expect(a.metadata.id).toBe('checker-fixture-race');
    expect(makeEnv()).not.toBe(a);
    expect(checkEnv(makeEnv, { seed: 3 }).passed).toBe(true);
  });

  test('passes options to the factory', async () => {
    const makeEnv = await loadEnvModule(path.join(fixtures, 'good-env.js'), { id: 'custom-id' });
    expect(makeEnv().metadata.id).toBe('custom-id');
  });

  test('constructs a default-exported class', async () => {
    const makeEnv = await loadEnvModule(path.join(fixtures, 'class-export-env.js'));
    expect(checkEnv(makeEnv, { seed: 3 }).passed).toBe(true);
  });

  test('wraps a default-exported env object, returning that same object', async () => {
    const makeEnv = await loadEnvModule(path.join(fixtures, 'instance-export-env.js'));
    expect(makeEnv()).toBe(makeEnv());
    expect(makeEnv().metadata.id).toBe('checker-fixture-instance');
  });

  test('accepts module.exports = factory (.cjs)', async () => {
    const cjs = path.join(scratch, 'env.cjs');
    writeFileSync(cjs, `module.exports = require(${JSON.stringify(path.join(fixtures, 'good-env.js'))}).createEnv;\n`);
    expect((await loadEnvModule(cjs))().metadata.id).toBe('checker-fixture-race');
  });

  // Jest swaps Node's module system for its own (babel transforms, no ESM), so the ESM and
  // TypeScript paths are tested the way the CLI runs them: in a plain node process.
  test('loads ESM (.mjs) in plain node', () => {
    const mjs = path.join(scratch, 'env.mjs');
    const compiled = pathToFileURL(path.join(fixtures, 'good-env.js')).href;
    writeFileSync(mjs, `import race from ${JSON.stringify(compiled)};\nexport const createEnv = race.createEnv;\n`);
    expect(loadAndCheckInNode(mjs)).toEqual({ id: 'checker-fixture-race', failed: [] });
  });

  test('loads a TypeScript source in plain node when typescript is installed', () => {
    const source = findUp(__dirname, path.join('test', 'fixtures', 'good-env.ts'));
    if (!source) throw new Error('good-env.ts source not found above the compiled test');
    expect(loadAndCheckInNode(source)).toEqual({ id: 'checker-fixture-race', failed: [] });
  });

  test('names the file when it does not exist', async () => {
    const missing = path.join(scratch, 'nope', 'env.js');
    await expect(loadEnvModule(missing)).rejects.toThrow(`env module '${missing}' does not exist`);
  });

  test('names the file and what was expected when no export fits', async () => {
    const file = path.join(fixtures, 'no-env-export-module.js');
    await expect(loadEnvModule(file)).rejects.toThrow(
      new RegExp(`'${escapeRegExp(file)}' has no usable env export\\. Expected a default export or a 'createEnv' export .*found exports \\[.*answer, settings\\]`),
    );
  });

  test('names the file when the module fails to load or has the wrong extension', async () => {
    const broken = path.join(scratch, 'broken.js');
    writeFileSync(broken, 'module.exports = (;\n');
    await expect(loadEnvModule(broken)).rejects.toThrow(new RegExp(`env module '${escapeRegExp(broken)}' could not be loaded: .*syntax error at ${escapeRegExp(broken)}:1`));
    const text = path.join(scratch, 'env.txt');
    writeFileSync(text, '');
    await expect(loadEnvModule(text)).rejects.toThrow(/env\.txt' has extension '\.txt'; expected one of \.js, \.cjs, \.mjs/);
  });

  test('a factory that returns a non-env is reported with the file and export', async () => {
    const file = path.join(scratch, 'returns-number.cjs');
    writeFileSync(file, 'exports.createEnv = () => 42;\n');
    const makeEnv = await loadEnvModule(file);
    expect(() => makeEnv()).toThrow(`the env from module '${file}': the 'createEnv' export produced number 42, not a ParallelEnv`);
    expect(checkEnv(makeEnv).checks[0]).toMatchObject({ name: 'construct', passed: false });
  });
});

/** Runs loadEnvModule and a one-episode checkEnv on `file` in a child node process. */
function loadAndCheckInNode(file: string): { id?: string; failed?: string[]; error?: string } {
  const compiledEnvs = path.join(__dirname, '..', 'envs');
  const script = `
    const { loadEnvModule } = require(${JSON.stringify(path.join(compiledEnvs, 'load-env-module.js'))});
    const { checkEnv } = require(${JSON.stringify(path.join(compiledEnvs, 'checker.js'))});
    loadEnvModule(${JSON.stringify(file)}).then(
      (makeEnv) => {
        const report = checkEnv(makeEnv, { seed: 3, episodes: 1 });
        const failed = report.checks.filter((c) => !c.passed).map((c) => c.name);
        process.stdout.write(JSON.stringify({ id: makeEnv().metadata.id, failed }));
      },
      (err) => process.stdout.write(JSON.stringify({ error: err.message })),
    );`;
  return JSON.parse(execFileSync(process.execPath, ['--no-warnings', '-e', script], { encoding: 'utf8' })) as { id?: string; failed?: string[]; error?: string };
}

function findUp(from: string, relative: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, relative);
    if (existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
