import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { instantiateEnv, prepareEnvSpec } from '../../envs/env-from-spec';
import { type LocatedCheckpoint, locateCheckpoint } from '../core/checkpoint-locator';
import { MetricsLog } from '../core/metrics-log';
import { RunLock } from '../core/run-lock';
import { RunConfigError, loadRunConfig, parseRunConfig } from './config-loader';
import { type RunConfig, runLabel, runTasks } from './run-config';
import { type DatasetSetHooks, resolveDatasetSet } from './dataset-sets';
import { CONFIG_FILE, RUN_INFO_FILE, configFileHash } from './run-directory';

/*
 * What `troupe train` settles before training: the config (from a file, or from the run being
 * resumed, with overrides), that a resume changes nothing that would change its numbers and finds
 * its run intact, and the run directory (new, or the resumed run's, with its metrics carried
 * along), locked for this process.
 */

/**
 * Run settings a resume may change: the worker count and the budget leave the numbers as they
 * would have been; another backend is allowed with a warning that results stop being bit-identical.
 */
const RESUME_MAY_CHANGE = new Set(['run.workers', 'run.total_env_steps', 'run.total_gradient_steps', 'run.backend']);

/** Leaf key paths whose values differ between two configs (list items compared one by one, as `tasks.1.workers`). */
function differingKeys(a: unknown, b: unknown, prefix = ''): string[] {
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const at = (k: string | number) => (prefix ? `${prefix}.${k}` : String(k));
  if (isMap(a) && isMap(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => differingKeys(a[k], b[k], at(k)));
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.some(isMap)) return a.flatMap((item, i) => differingKeys(item, b[i], at(i)));
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

/** Whether a resume may change `key` (each task's worker count counts as `run.workers`). */
function mayChange(key: string): boolean {
  return RESUME_MAY_CHANGE.has(key) || /^tasks\.\d+\.workers$/.test(key);
}

/** The value at a key path of `differingKeys` (`run.seed`, `tasks.1.workers`). */
function valueAt(value: unknown, key: string): unknown {
  let at = value;
  for (const part of key.split('.')) {
    if (typeof at !== 'object' || at === null) return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

function shown(value: unknown): string {
  return value === undefined ? '(unset)' : JSON.stringify(value);
}

/** A resume needs the loop state only `troupe train` writes; a policy-only checkpoint cannot continue. */
function checkTrainingCheckpoint(resume: LocatedCheckpoint): void {
  const loop = resume.data.metadata.loop;
  if (typeof loop !== 'object' || loop === null || Array.isArray(loop)) {
    throw new Error(`${resume.path}: not a training checkpoint (metadata.loop is missing); --resume needs a checkpoint written by troupe train`);
  }
}

/**
 * A resume continues the checkpoint's config, not config.yaml; a user who edited config.yaml
 * expects the edit to count. So an edit (config.yaml no longer has the hash run.json recorded) is
 * refused unless every edited key is also stated with `--set`. Runs from before the hash skip this.
 */
function checkConfigFileUnedited(resume: LocatedCheckpoint, saved: RunConfig, resumed: RunConfig): void {
  const configFile = path.join(resume.runDir, CONFIG_FILE);
  const infoFile = path.join(resume.runDir, RUN_INFO_FILE);
  if (!fs.existsSync(configFile) || !fs.existsSync(infoFile)) return;
  let recorded: unknown;
  try {
    recorded = (JSON.parse(fs.readFileSync(infoFile, 'utf8')) as { config_sha256?: unknown }).config_sha256;
  } catch {
    // A damaged run.json is rewritten by the resume; it only costs this check.
    return;
  }
  if (typeof recorded !== 'string') return;
  const text = fs.readFileSync(configFile, 'utf8');
  if (configFileHash(text) === recorded) return;
  let edited: RunConfig;
  try {
    edited = parseRunConfig(text, configFile);
  } catch (error) {
    throw new Error(
      `cannot resume ${resume.path}: ${configFile} was edited since the run started and is no longer a valid config (${(error as Error).message}); ` +
        `restore it — a resume takes its config from the checkpoint, with changes stated by --set`,
    );
  }
  const statedOrUnchanged = new Set(differingKeys(edited, resumed));
  const unstated = differingKeys(saved, edited).filter((k) => statedOrUnchanged.has(k));
  if (unstated.length === 0) return;
  const listed = unstated.map((k) => `${k} (${shown(valueAt(saved, k))} in the checkpoint, ${shown(valueAt(edited, k))} in config.yaml)`).join(', ');
  const settable = unstated.filter(mayChange);
  const fixed = unstated.filter((k) => !mayChange(k));
  const advice = [
    settable.length > 0 ? `to make the change, state it: ${settable.map((k) => `--set ${k}=${shown(valueAt(edited, k))}`).join(' ')}` : '',
    fixed.length > 0 ? `${fixed.join(', ')} cannot change on a resume (only ${[...RESUME_MAY_CHANGE].join(', ')} and tasks.N.workers can): restore config.yaml, or start a new run from a config file` : '',
  ].filter((a) => a.length > 0);
  throw new Error(
    `cannot resume ${resume.path}: ${configFile} was edited since the run started (its sha256 differs from the one in ${infoFile}) and differs from the checkpoint's config in ${listed}; ` +
      `a resume continues the checkpoint's config — ${advice.join('; ')}`,
  );
}

/** A resume may extend the budget but not cut it below what is done (the run would stop at once, past its budget). */
function checkBudget(resume: LocatedCheckpoint, saved: RunConfig, config: RunConfig): void {
  const offline = resume.data.counters.gradientSteps !== undefined;
  const key = offline ? 'total_gradient_steps' : 'total_env_steps';
  const done = offline ? (resume.data.counters.gradientSteps ?? 0) : resume.data.counters.envSteps;
  const total = config.run[key];
  if (total === undefined || total >= done || total === saved.run[key]) return;
  throw new RunConfigError(
    `run.${key}: ${total} is less than the ${done} ${offline ? 'gradient' : 'env'} steps ${resume.path} has already trained; ` +
      `a resume can only extend a run (give at least ${done}), or evaluate it as it is with troupe eval ${resume.runDir}`,
  );
}

function defaultOutDir(config: RunConfig): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return path.join('runs', `${runLabel(config).replace(/[/:]/g, '-')}_${config.algo.name}_seed${config.run.seed}_${stamp}`);
}

/** A run ready to start or continue. */
export interface PreparedRun {
  config: RunConfig;
  outDir: string;
  resume?: LocatedCheckpoint;
}

/**
 * The run a config file (with `--set` overrides) or a `--resume` target describes. A resume may
 * only change the settings in `RESUME_MAY_CHANGE`; anything else is refused, naming the keys.
 */
export async function prepareRun(configFile: string | undefined, overrides: readonly string[], opts: { out?: string; resume?: string } & DatasetSetHooks): Promise<PreparedRun> {
  registerBuiltinEnvs();
  let config: RunConfig;
  let resume: Awaited<ReturnType<typeof locateCheckpoint>> | undefined;
  if (opts.resume) {
    resume = await locateCheckpoint(opts.resume);
    checkTrainingCheckpoint(resume);
    const source = `${resume.path} (saved config)`;
    const saved = parseRunConfig(YAML.stringify(resume.data.config), source);
    config = configFile ? await resolveDatasetSet(loadRunConfig(configFile, overrides), opts) : parseRunConfig(YAML.stringify(resume.data.config), source, overrides);
    const changed = differingKeys(saved, config).filter((k) => !mayChange(k));
    if (changed.length > 0) {
      throw new RunConfigError(
        `cannot resume ${resume.path} with a different config: ${changed.map((k) => `${k}`).join(', ')} differ from the saved run ` +
          `(a resume may only change ${[...RESUME_MAY_CHANGE].join(', ')} and tasks.N.workers)`,
      );
    }
    if (!configFile) checkConfigFileUnedited(resume, saved, config);
    checkBudget(resume, saved, config);
    // A damaged record is found now, not when the run rereads the file after more training.
    MetricsLog.checkResumable(path.join(resume.runDir, 'metrics.jsonl'), resume.data.counters.logIndex);
  } else {
    if (!configFile) throw new Error('train needs a config file (e.g. configs/quickstart.yaml) or --resume <run-dir>');
    config = await resolveDatasetSet(loadRunConfig(configFile, overrides), opts);
  }

  await checkEnvsBuild(config);
  const outDir = opts.out ?? resume?.runDir ?? defaultOutDir(config);
  return { config, outDir, resume };
}

/**
 * Builds one env of every task, so a module that does not load or a constructor that throws is
 * reported before a run directory is made or locked.
 */
async function checkEnvsBuild(config: RunConfig): Promise<void> {
  for (const task of runTasks(config)) {
    await prepareEnvSpec(task.env);
    instantiateEnv(task.env).close?.();
  }
}

/**
 * Takes the run directory for this process (`run.lock`; refused while another live process holds
 * it, a dead holder's lock taken over with a `note`), before anything in it is written; then makes
 * sure a new run does not overwrite an old one, and carries a resumed run's metrics into a new
 * directory. The caller releases the lock when the run ends (`releaseAfterFailure` when it failed
 * before writing anything, which also removes a directory the claim created).
 */
export function claimRunDirectory(run: PreparedRun, options: { command: string; note?: (message: string) => void }): ClaimedRunDirectory {
  const { outDir, resume } = run;
  const created = !fs.existsSync(outDir);
  const lock = RunLock.acquire(outDir, options);
  const claimed: ClaimedRunDirectory = {
    release: () => lock.release(),
    releaseAfterFailure: () => {
      lock.release();
      // A run refused while setting up (a learner's config check, a dataset) leaves no empty folder behind.
      if (created && fs.existsSync(outDir) && fs.readdirSync(outDir).length === 0) fs.rmdirSync(outDir);
    },
  };
  try {
    if (!resume && fs.existsSync(path.join(outDir, 'metrics.jsonl'))) {
      throw new Error(`${outDir} already holds a run; continue it with --resume ${outDir} or choose another --out`);
    }
    if (resume && path.resolve(outDir) !== path.resolve(resume.runDir)) {
      // Resuming into a new directory: carry the metrics so far along, so the file is complete.
      const from = path.join(resume.runDir, 'metrics.jsonl');
      if (fs.existsSync(from)) fs.copyFileSync(from, path.join(outDir, 'metrics.jsonl'));
    }
    return claimed;
  } catch (error) {
    claimed.releaseAfterFailure();
    throw error;
  }
}

/** A run directory this process holds. */
export interface ClaimedRunDirectory {
  release(): void;
  releaseAfterFailure(): void;
}
