import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { moduleEnvId } from '../../envs/env-from-spec';
import { writeFileAtomicSync } from '../core/atomic-file';
import { RunConfigError, loadYamlConfigFile, validateRunConfig } from './config-loader';

/*
 * A transfer study (`troupe transfer <study.yaml>`): the whole protocol of issue 12 as a plan of
 * ordinary run directories. Pretraining runs learn the sources together (one multi-task run per
 * pretraining seed); then every target task is trained under every condition with several
 * seeds — from scratch, with the pretrained shared decision layers (DecL) frozen or fine-tuned,
 * and with a randomly initialised frozen DecL (the capacity control). Each run is a `troupe
 * train` run of its own, so it can be resumed, evaluated and inspected like any other; the study
 * only decides which runs exist, in what order they may start, and which are finished.
 */

/** How a target run starts from the pretrained shared layers. */
export const TRANSFER_CONDITIONS = ['scratch', 'frozen', 'finetune', 'random_frozen'] as const;
export type TransferCondition = (typeof TRANSFER_CONDITIONS)[number];

/** Conditions that load a pretraining run's DecL (the others need no pretraining run). */
const LOADS_DECL: ReadonlySet<TransferCondition> = new Set(['frozen', 'finetune']);

const positiveInt = () => z.number().int().gt(0).lte(Number.MAX_SAFE_INTEGER);

const studyTaskSchema = z
  .object({
    /** Registry id; optional with `module` (default: the module's file name). */
    id: z.string().min(1).optional(),
    options: z.record(z.string(), z.unknown()).optional(),
    /** A user's env module, relative to the study file's folder. */
    module: z.string().min(1).optional(),
    /** The task's key in runs and reports (default: its id). */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'letters, digits and _ . : - only').optional(),
  })
  .strict()
  .refine((t) => t.id !== undefined || t.module !== undefined, { message: "give the task's env 'id' or its 'module'" });

export const transferStudySchema = z
  .object({
    /**
     * What every run shares: the `algo` section (an algorithm with shared decision layers, e.g.
     * mtma) and `run` settings (num_envs, eval_interval, eval_episodes, …). Budgets and seeds are
     * set per phase below.
     */
    base: z
      .object({
        algo: z.record(z.string(), z.unknown()),
        run: z.record(z.string(), z.unknown()).default({}),
      })
      .strict(),
    /** Trained together in each pretraining run. */
    sources: z.array(studyTaskSchema).min(1),
    /** Held-out tasks, each trained under every condition. */
    targets: z.array(studyTaskSchema).min(1),
    conditions: z.array(z.enum(TRANSFER_CONDITIONS)).min(1).default([...TRANSFER_CONDITIONS]),
    /**
     * Also pretrain on each source alone and transfer each one's DecL to every target (frozen,
     * finetune): the source → target transfer matrix.
     */
    matrix: z.boolean().default(false),
    /**
     * Single-task baselines (e.g. `[{ name: qmix }, { name: vdn }]`, keys as in a run config's
     * `algo`): each trained alone on every source, at the multi-task run's per-task budget
     * (pretrain.total_env_steps / number of sources), and on every target at the target budget,
     * with `baseline_seeds` seeds — the multi-task model's numbers are read beside them.
     */
    baselines: z.array(z.record(z.string(), z.unknown())).default([]),
    /** Seeds of each baseline (per algorithm and task); default: `target.seeds`. */
    baseline_seeds: positiveInt().optional(),
    pretrain: z
      .object({
        seeds: positiveInt().default(3),
        /** Env steps of each pretraining run, summed over its sources. */
        total_env_steps: positiveInt(),
      })
      .strict(),
    target: z
      .object({
        /** Seeds per target and condition; target seed s loads pretraining seed s mod pretrain.seeds. */
        seeds: positiveInt().default(5),
        total_env_steps: positiveInt(),
        /** `algo.transfer.finetune_lr_scale` of the finetune condition. */
        finetune_lr_scale: z.number().finite().gt(0).default(0.1),
      })
      .strict(),
    report: z
      .object({
        /** Which evaluation number the report compares: win rate (default) or mean return. */
        metric: z.enum(['win_rate', 'return_mean']).default('win_rate'),
        /** The level whose first crossing is "time to threshold" (in the metric's units). */
        threshold: z.number().finite().default(0.8),
        /** The best checkpoint is re-evaluated with this many times the run's eval episodes. */
        absolute_episodes_factor: positiveInt().default(10),
        /** Bootstrap repetitions and seed: fixed, so a report reproduces bit for bit. */
        bootstrap_reps: positiveInt().default(2000),
        bootstrap_seed: z.number().int().gte(0).default(0),
      })
      .strict()
      .default({}),
  })
  .strict();

export type TransferStudyConfig = z.output<typeof transferStudySchema>;
type StudyTask = z.output<typeof studyTaskSchema>;

/** One run of the study: where it lives, the run config it trains, and the runs it waits for. */
export interface PlannedRun {
  /** `pretrain/seed0`, `target/<task>/<condition>/seed2`. */
  key: string;
  /** MTMA studies: pretrain, target, baseline; MRA studies (`mra-study.ts`): mra, unimodal, scratch; sweeps (`sweep-study.ts`): sweep. */
  phase: 'pretrain' | 'target' | 'baseline' | 'mra' | 'unimodal' | 'scratch' | 'sweep';
  dir: string;
  /** The run config, as `troupe train` reads it (written to `<dir>.yaml` beside the run). */
  config: Record<string, unknown>;
  dependsOn: string[];
  target?: string;
  condition?: TransferCondition;
  /** Baselines: the algorithm (its `algo.name`) and the task trained. */
  baseline?: { algo: string; task: string; role: 'source' | 'target' };
  /** What the DecL a run learns or loads was pretrained on: `JOINT` (all sources), or one source's key. */
  pretraining?: string;
  /** Sweeps: the grid combination the run trains. */
  sweep?: { condition: string; overrides: Record<string, unknown> };
  seed: number;
}

/** `PlannedRun.pretraining` of runs on all sources together. */
export const JOINT = 'all sources';

/** What running a plan needs of it: any study's plan (MTMA's `TransferPlan`, MRA's `MraPlan`). */
export interface StudyPlan {
  /** The study file, and the folder the study's runs and report live in. */
  file: string;
  outDir: string;
  runs: PlannedRun[];
}

export interface TransferPlan extends StudyPlan {
  study: TransferStudyConfig;
}

/** Reads and validates a study file; errors name the file and the key. */
export function loadTransferStudy(file: string): TransferStudyConfig {
  const study = loadYamlConfigFile(file, transferStudySchema, 'transfer study');
  const baseDir = path.dirname(path.resolve(file));
  const resolve = (t: StudyTask): StudyTask => (t.module ? { ...t, module: path.resolve(baseDir, t.module) } : t);
  return { ...study, sources: study.sources.map(resolve), targets: study.targets.map(resolve) };
}

/**
 * `troupe transfer --sources a,b --targets c,d`: these env ids instead of the file's lists, and
 * the source → target matrix (each source also pretrained alone).
 */
export function withTaskLists(study: TransferStudyConfig, lists: { sources?: readonly string[]; targets?: readonly string[] }): TransferStudyConfig {
  if (!lists.sources && !lists.targets) return study;
  const tasks = (ids: readonly string[], flag: string): StudyTask[] => {
    if (ids.length === 0 || ids.some((id) => id.trim() === '')) throw new RunConfigError(`${flag}: expected comma-separated env ids, e.g. ${flag} combat-3v3,combat-5v6`);
    return ids.map((id) => ({ id: id.trim() }));
  };
  return {
    ...study,
    sources: lists.sources ? tasks(lists.sources, '--sources') : study.sources,
    targets: lists.targets ? tasks(lists.targets, '--targets') : study.targets,
    matrix: true,
  };
}

function taskKey(t: StudyTask): string {
  return t.name ?? t.id ?? moduleEnvId(t.module ?? 'task');
}

function envSection(t: StudyTask): Record<string, unknown> {
  const { name: _name, ...env } = t;
  return env;
}

/**
 * Every run of the study with its config, validated as `troupe train` would validate it, so a
 * bad study is refused before anything runs. Target keys must be distinct from each other.
 */
export function planTransferStudy(study: TransferStudyConfig, file: string, outDir: string): TransferPlan {
  const runs: PlannedRun[] = [];
  const abs = path.resolve(outDir);
  const sourceKeys = study.sources.map(taskKey);
  const duplicate = sourceKeys.find((k, i) => sourceKeys.indexOf(k) !== i);
  if (duplicate) throw new RunConfigError(`${file}: sources: two sources are called '${duplicate}'; give them distinct 'name's`);
  const targetKeys = study.targets.map(taskKey);
  const dupTarget = targetKeys.find((k, i) => targetKeys.indexOf(k) !== i);
  if (dupTarget) throw new RunConfigError(`${file}: targets: two targets are called '${dupTarget}'; give them distinct 'name's`);
  const heldIn = targetKeys.filter((k) => sourceKeys.includes(k));
  if (heldIn.length > 0) throw new RunConfigError(`${file}: targets: ${heldIn.join(', ')} is also a source; transfer is measured on tasks held out from pretraining`);

  // Pretraining groups: all sources together, and with `matrix`, each source alone.
  const groups: Array<{ label: string; prefix: string; tasks: StudyTask[]; suffix: string }> = [{ label: JOINT, prefix: 'pretrain', tasks: study.sources, suffix: '' }];
  if (study.matrix) for (const source of study.sources) groups.push({ label: taskKey(source), prefix: `pretrain-${taskKey(source)}`, tasks: [source], suffix: `-from-${taskKey(source)}` });
  const needsPretraining = study.conditions.some((c) => LOADS_DECL.has(c));
  for (const group of needsPretraining ? groups : []) {
    for (let seed = 0; seed < study.pretrain.seeds; seed++) {
      runs.push({
        key: `${group.prefix}/seed${seed}`,
        phase: 'pretrain',
        dir: path.join(abs, 'runs', group.prefix, `seed${seed}`),
        seed,
        dependsOn: [],
        pretraining: group.label,
        config: {
          tasks: group.tasks.map((t) => ({ ...envSection(t), name: taskKey(t) })),
          algo: { ...study.base.algo },
          run: { ...study.base.run, seed, total_env_steps: study.pretrain.total_env_steps },
        },
      });
    }
  }
  for (const target of study.targets) {
    const tk = taskKey(target);
    for (const condition of study.conditions) {
      // Only conditions that load a DecL differ by what was pretrained on.
      for (const group of LOADS_DECL.has(condition) ? groups : groups.slice(0, 1)) {
        for (let seed = 0; seed < study.target.seeds; seed++) {
          const pretrainedDir = path.join(abs, 'runs', group.prefix, `seed${seed % study.pretrain.seeds}`);
          const pretrained = LOADS_DECL.has(condition) ? `${group.prefix}/seed${seed % study.pretrain.seeds}` : undefined;
          // Scratch is a plain run of the algorithm (so any algorithm can be the scratch baseline).
          const transfer: Record<string, unknown> | undefined = condition === 'scratch' ? undefined : { mode: condition };
          if (transfer && pretrained) transfer.decl_from = pretrainedDir;
          if (transfer && condition === 'finetune') transfer.finetune_lr_scale = study.target.finetune_lr_scale;
          const variant = `${condition}${LOADS_DECL.has(condition) ? group.suffix : ''}`;
          runs.push({
            key: `target/${tk}/${variant}/seed${seed}`,
            phase: 'target',
            dir: path.join(abs, 'runs', tk, variant, `seed${seed}`),
            seed,
            target: tk,
            condition,
            pretraining: LOADS_DECL.has(condition) ? group.label : undefined,
            dependsOn: pretrained ? [pretrained] : [],
            config: {
              env: envSection(target),
              algo: transfer ? { ...study.base.algo, transfer } : { ...study.base.algo },
              // The best policy is kept for the report's absolute metric (re-evaluated with more episodes).
              run: { ...study.base.run, seed, total_env_steps: study.target.total_env_steps, best_checkpoint: study.report.metric },
            },
          });
        }
      }
    }
  }
  const perSourceBudget = Math.max(1, Math.floor(study.pretrain.total_env_steps / study.sources.length));
  for (const algo of study.baselines) {
    const name = typeof algo.name === 'string' ? algo.name : 'algo';
    for (const [role, list, budget] of [['source', study.sources, perSourceBudget], ['target', study.targets, study.target.total_env_steps]] as const) {
      for (const task of list) {
        for (let seed = 0; seed < (study.baseline_seeds ?? study.target.seeds); seed++) {
          runs.push({
            key: `baseline/${name}/${taskKey(task)}/seed${seed}`,
            phase: 'baseline',
            dir: path.join(abs, 'runs', 'baselines', name, taskKey(task), `seed${seed}`),
            seed,
            baseline: { algo: name, task: taskKey(task), role },
            dependsOn: [],
            config: {
              env: envSection(task),
              algo: { ...algo },
              run: { ...study.base.run, seed, total_env_steps: budget, best_checkpoint: study.report.metric },
            },
          });
        }
      }
    }
  }
  for (const run of runs) {
    try {
      validateRunConfig(run.config, `${file} (run ${run.key})`);
    } catch (error) {
      throw error instanceof RunConfigError ? error : new RunConfigError(`${file}: run ${run.key}: ${(error as Error).message}`);
    }
  }
  return { study, file, outDir: abs, runs };
}

/** Where a planned run stands on disk. */
export type RunStatus = 'finished' | 'resumable' | 'new';

/** Finished: a summary of an uninterrupted run; resumable: a checkpoint to continue from. */
export function runStatus(run: PlannedRun): RunStatus {
  const summaryFile = path.join(run.dir, 'summary.json');
  if (fs.existsSync(summaryFile)) {
    try {
      const summary = JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as { interrupted?: unknown };
      if (summary.interrupted === false) return 'finished';
    } catch {
      // A damaged summary: the checkpoint decides.
    }
  }
  return fs.existsSync(path.join(run.dir, 'checkpoints', 'latest')) ? 'resumable' : 'new';
}

/** Writes each run's config beside its directory (`<dir>.yaml`) and the plan (`study.json`: every run's fields but its config). */
export function writePlanFiles(plan: StudyPlan): void {
  fs.mkdirSync(plan.outDir, { recursive: true });
  for (const run of plan.runs) {
    fs.mkdirSync(path.dirname(run.dir), { recursive: true });
    writeFileAtomicSync(configFileOf(run), YAML.stringify(run.config));
  }
  const summary = { study: plan.file, runs: plan.runs.map(({ config: _config, ...fields }) => fields) };
  writeFileAtomicSync(path.join(plan.outDir, 'study.json'), `${JSON.stringify(summary, null, 2)}\n`);
}

export function configFileOf(run: PlannedRun): string {
  return `${run.dir}.yaml`;
}

/** Starts one run (`troupe train <config> --out <dir>`, or `--resume <dir>`) and resolves with its exit code. */
export type RunLauncher = (run: PlannedRun, how: { resume: boolean; logFile: string }) => Promise<number>;

export interface StudyProgress {
  done: number;
  running: string[];
  left: number;
  failed: string[];
  skipped: string[];
  /** Seconds the study has run, and a rough estimate of what is left (null before a run ends). */
  elapsedSeconds: number;
  etaSeconds: number | null;
}

export interface StudyOutcome {
  finished: string[];
  failed: Array<{ key: string; exitCode: number; logFile: string }>;
  /** Runs not started because a run they wait for failed. */
  skipped: string[];
}

/**
 * Runs the plan, `jobs` runs at a time, each as soon as the runs it waits for have finished.
 * Finished runs are skipped and unfinished ones resumed, so running a study again picks up where
 * it stopped. A failed run does not stop the others, only the runs that wait for it.
 */
export async function runTransferStudy(plan: StudyPlan, options: { jobs: number; launch: RunLauncher; onProgress?: (p: StudyProgress) => void; now?: () => number }): Promise<StudyOutcome> {
  if (!Number.isInteger(options.jobs) || options.jobs < 1) throw new Error(`jobs must be a positive integer, got ${options.jobs}`);
  const now = options.now ?? Date.now;
  const started = now();
  const finished = new Set(plan.runs.filter((r) => runStatus(r) === 'finished').map((r) => r.key));
  const failed: StudyOutcome['failed'] = [];
  const skipped = new Set<string>();
  const running = new Map<string, Promise<void>>();
  const pending = plan.runs.filter((r) => !finished.has(r.key));
  const launchedDurations: number[] = [];

  const progress = (): void => {
    const left = pending.length;
    const meanDuration = launchedDurations.length ? launchedDurations.reduce((a, b) => a + b, 0) / launchedDurations.length : null;
    options.onProgress?.({
      done: finished.size,
      running: [...running.keys()],
      left,
      failed: failed.map((f) => f.key),
      skipped: [...skipped],
      elapsedSeconds: (now() - started) / 1000,
      etaSeconds: meanDuration === null ? null : (meanDuration * (left + running.size)) / options.jobs / 1000,
    });
  };

  const blockedBy = (run: PlannedRun): 'ready' | 'wait' | 'never' => {
    if (run.dependsOn.some((d) => failed.some((f) => f.key === d) || skipped.has(d))) return 'never';
    return run.dependsOn.every((d) => finished.has(d)) ? 'ready' : 'wait';
  };

  progress();
  while (pending.length > 0 || running.size > 0) {
    for (let i = 0; i < pending.length && running.size < options.jobs; ) {
      const run = pending[i];
      const state = blockedBy(run);
      if (state === 'wait') {
        i++;
        continue;
      }
      pending.splice(i, 1);
      if (state === 'never') {
        skipped.add(run.key);
        continue;
      }
      const logFile = `${run.dir}.log`;
      const resume = runStatus(run) === 'resumable';
      const t0 = now();
      running.set(
        run.key,
        options.launch(run, { resume, logFile }).then(
          (code) => {
            running.delete(run.key);
            launchedDurations.push(now() - t0);
            if (code === 0 && runStatus(run) === 'finished') finished.add(run.key);
            else failed.push({ key: run.key, exitCode: code, logFile });
            progress();
          },
          (error: unknown) => {
            running.delete(run.key);
            failed.push({ key: run.key, exitCode: -1, logFile: `${logFile} (${error instanceof Error ? error.message : String(error)})` });
            progress();
          },
        ),
      );
      progress();
    }
    if (running.size === 0) {
      // Everything left waits for runs that will never finish.
      for (const run of pending.splice(0)) skipped.add(run.key);
      break;
    }
    await Promise.race(running.values());
  }
  progress();
  return { finished: [...finished], failed, skipped: [...skipped] };
}
