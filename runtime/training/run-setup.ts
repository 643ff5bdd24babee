import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { type LocatedCheckpoint, locateCheckpoint } from '../core/checkpoint-locator';
import { RunConfigError, loadRunConfig, parseRunConfig } from './config-loader';
import { type RunConfig, runLabel } from './run-config';

/*
 * What `troupe train` settles before training: the config (from a file, or from the run being
 * resumed, with overrides), that a resume changes nothing that would change its numbers, and the
 * run directory (new, or the resumed run's, with its metrics carried along).
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
export async function prepareRun(configFile: string | undefined, overrides: readonly string[], opts: { out?: string; resume?: string }): Promise<PreparedRun> {
  registerBuiltinEnvs();
  let config: RunConfig;
  let resume: Awaited<ReturnType<typeof locateCheckpoint>> | undefined;
  if (opts.resume) {
    resume = await locateCheckpoint(opts.resume);
    const source = `${resume.path} (saved config)`;
    const saved = parseRunConfig(YAML.stringify(resume.data.config), source);
    config = configFile ? loadRunConfig(configFile, overrides) : parseRunConfig(YAML.stringify(resume.data.config), source, overrides);
    const changed = differingKeys(saved, config).filter((k) => !mayChange(k));
    if (changed.length > 0) {
      throw new RunConfigError(
        `cannot resume ${resume.path} with a different config: ${changed.map((k) => `${k}`).join(', ')} differ from the saved run ` +
          `(a resume may only change ${[...RESUME_MAY_CHANGE].join(', ')} and tasks.N.workers)`,
      );
    }
  } else {
    if (!configFile) throw new Error('train needs a config file (e.g. configs/quickstart.yaml) or --resume <run-dir>');
    config = loadRunConfig(configFile, overrides);
  }

  const outDir = opts.out ?? resume?.runDir ?? defaultOutDir(config);
  if (!resume && fs.existsSync(path.join(outDir, 'metrics.jsonl'))) {
    throw new Error(`${outDir} already holds a run; continue it with --resume ${outDir} or choose another --out`);
  }
  if (resume && path.resolve(outDir) !== path.resolve(resume.runDir)) {
    // Resuming into a new directory: carry the metrics so far along, so the file is complete.
    fs.mkdirSync(outDir, { recursive: true });
    const from = path.join(resume.runDir, 'metrics.jsonl');
    if (fs.existsSync(from)) fs.copyFileSync(from, path.join(outDir, 'metrics.jsonl'));
  }

  return { config, outDir, resume };
}
