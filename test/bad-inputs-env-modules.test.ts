import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expectCleanFailure, runCli } from './helpers/cli-run';

/*
 * Bad-input suite, env modules and the commands that load them: each case must exit non-zero,
 * name the offending file (and line, env or flag) and print no stack trace. The valid
 * counterparts are in user-env-walkthrough.test.ts and cli.test.ts.
 */

let folder: string;
const file = (name: string) => path.join(folder, name);

/** A config training the module `module` (relative to the config's folder) for a few steps. */
function config(envSection: string[]): string {
  return ['env:', ...envSection.map((l) => `  ${l}`), 'algo:', '  name: mappo', 'run:', '  total_env_steps: 200', '  num_envs: 2', ''].join('\n');
}

const MODULES: Record<string, string> = {
  'syntax.js': 'const a = 1;\nconst b = ;\nmodule.exports = () => a;\n',
  'syntax.mjs': "import { Box } from 'troupe';\nexport const b = ;\n",
  'syntax.ts': "import { Box } from 'troupe';\nconst b: number = ;\nexport default b;\n",
  'top-throw.cjs': "const { Box } = require('troupe');\nthrow new TypeError('no map file next to the env');\n",
  'ctor-throws.cjs': "module.exports = class Broken { constructor() { throw new Error('grid too small'); } reset() {} step() {} observationSpace() {} actionSpace() {} };\n",
  'factory-throws.cjs': "exports.createEnv = (options) => { throw new RangeError('size must be > 2, got ' + options.size); };\n",
  'no-export.cjs': 'exports.answer = 42;\n',
  'not-env.cjs': "exports.createEnv = () => ({ reset() {} });\n",
  'missing-dep.cjs': "require('left-pad-that-does-not-exist');\nmodule.exports = () => null;\n",
  'env.txt': 'not a module\n',
};

beforeAll(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-bad-modules-'));
  for (const [name, source] of Object.entries(MODULES)) fs.writeFileSync(file(name), source);
  fs.mkdirSync(file('a-folder.js'));
  fs.writeFileSync(file('missing-module.yaml'), config(['module: ./nowhere.ts']));
  fs.writeFileSync(file('no-id-no-module.yaml'), config(['options: {}']));
  fs.writeFileSync(file('ctor-throws.yaml'), config(['module: ctor-throws.cjs']));
  fs.writeFileSync(file('syntax.yaml'), config(['module: syntax.ts']));
  fs.writeFileSync(file('task-missing-module.yaml'), ['tasks:', '  - module: ./gone.js', 'algo:', '  name: mappo', 'run:', '  total_env_steps: 200', '  num_envs: 2', ''].join('\n'));
});

afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

const cases: Array<[string, string[], RegExp[]]> = [
  ['check-env: syntax error in a .js module names file and line', ['check-env', 'syntax.js'], [/syntax error at .*syntax\.js:2: Unexpected token/]],
  ['check-env: syntax error in an ES module names file and line', ['check-env', 'syntax.mjs'], [/syntax error at .*syntax\.mjs:2: Unexpected token/]],
  ['check-env: syntax error in a .ts module names file, line and column', ['check-env', 'syntax.ts'], [/syntax error at .*syntax\.ts:2:\d+: Expression expected/]],
  ['check-env: a module that throws while loading names where', ['check-env', 'top-throw.cjs'], [/env module '.*top-throw\.cjs' could not be loaded: TypeError: no map file next to the env \(at .*top-throw\.cjs:2\)/]],
  ['check-env: a module that requires a missing package', ['check-env', 'missing-dep.cjs'], [/env module '.*missing-dep\.cjs' could not be loaded: .*left-pad-that-does-not-exist/]],
  ['check-env: no env export lists what the module exports', ['check-env', 'no-export.cjs'], [/no-export\.cjs' has no usable env export.*found exports \[answer\]/]],
  ['check-env: a file that does not exist', ['check-env', './nowhere.js'], [/env module '.*nowhere\.js' does not exist/]],
  ['check-env: a folder instead of a module', ['check-env', 'a-folder.js'], [/a-folder\.js' is not a file/]],
  ['check-env: a file of another kind', ['check-env', 'env.txt'], [/env\.txt' has extension '\.txt'; expected one of \.js/]],
  ['check-env: a constructor that throws fails the construct check, naming env and module', ['check-env', 'ctor-throws.cjs'], [/✗ construct/, /env 'ctor-throws' from module '.*ctor-throws\.cjs': module\.exports threw while building it: grid too small/]],
  ['check-env: a factory that throws gets the options it was given', ['check-env', 'factory-throws.cjs', '--option', 'size=1'], [/env 'factory-throws' from module .*: the 'createEnv' export threw while building it: RangeError: size must be > 2, got 1/]],
  ['check-env: a factory that returns something else', ['check-env', 'not-env.cjs'], [/the 'createEnv' export produced an object with keys \[reset\], not a ParallelEnv/]],
  ['check-env: --option without a value', ['check-env', 'lbf-8x8-2p-2f-coop', '--option', 'sight'], [/--option 'sight': expected key=value/]],
  ['check-env: --options that is not JSON', ['check-env', 'lbf-8x8-2p-2f-coop', '--options', '{sight: 2'], [/--options: expected a JSON object/]],
  ['check-env: --options that is a list', ['check-env', 'lbf-8x8-2p-2f-coop', '--options', '[2]'], [/--options: expected a JSON object, got '\[2\]'/]],
  ['check-env: --episodes 0', ['check-env', 'lbf-8x8-2p-2f-coop', '--episodes', '0'], [/--episodes must be a positive integer, got '0'/]],
  ['check-env: an unknown env id suggests similar ones', ['check-env', 'lbf-9x9-nope'], [/Unknown env id 'lbf-9x9-nope'\. Similar ids: lbf-/]],
  ['train: a config whose env.module does not exist, before any run directory', ['train', 'missing-module.yaml', '--out', 'never-made'], [/env\.module: env module .*nowhere\.ts does not exist/]],
  ['train: a task whose module does not exist', ['train', 'task-missing-module.yaml', '--out', 'never-made'], [/tasks\.0\.module: env module .*gone\.js does not exist/]],
  ['train: an env with neither id nor module', ['train', 'no-id-no-module.yaml', '--out', 'never-made'], [/env\.id: required/]],
  ['train: a module with a syntax error, named with file and line', ['train', 'syntax.yaml', '--out', 'never-made'], [/syntax error at .*syntax\.ts:2:\d+/]],
  ['train: a constructor that throws names env and module', ['train', 'ctor-throws.yaml', '--out', 'never-made'], [/env 'ctor-throws' from module '.*ctor-throws\.cjs': module\.exports threw while building it: grid too small/]],
  ['eval: --policy expert on a user module', ['eval', 'ctor-throws.cjs', '--policy', 'expert'], [/--policy expert: only built-in envs \(the manipulation tasks, point-robot\) have a scripted expert/]],
  ['eval: a module with a syntax error', ['eval', 'syntax.mjs', '--episodes', '2'], [/syntax error at .*syntax\.mjs:2/]],
  ['eval: a checkpoint path that does not exist', ['eval', 'runs/gone/step-1.ckpt'], [/'runs\/gone\/step-1\.ckpt' does not exist: expected a run directory, a \.ckpt checkpoint file, an env id/]],
  ['eval: a run directory that does not exist', ['eval', 'runs/gone'], [/'runs\/gone' does not exist/]],
  ['eval: an id that is neither a run, a checkpoint nor an env', ['eval', 'no-such-run-or-env'], [/Unknown env id 'no-such-run-or-env'/]],
];

test.each(cases)('%s', (_name, args, patterns) => {
  const result = runCli(args, { cwd: folder });
  expectCleanFailure(result, ...patterns);
  expect(fs.existsSync(file('never-made'))).toBe(false);
});
