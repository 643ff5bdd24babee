import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { isRegistered, makeEnv } from '../../envs/registry';
import { writeFileAtomicSync } from '../core/atomic-file';
import { RunConfigError, loadYamlConfigFile, validateRunConfig } from './config-loader';
import { type MraEvaluationSpec, type MraRunEvaluation, evaluateMraRun, resourceEnvId } from './mra-evaluation';
import { type PlannedRun, type StudyPlan, runStatus } from './transfer-study';

/*
 * An MRA study (`troupe transfer <study.yaml>` with `method: mra`, issue 14): does a policy
 * conditioned on a latent z, trained on several populations of `resource-N`, carry over to
 * populations it never saw better than the same networks without z? Per seed, one MRA run and
 * one unimodal run (num_latents 1) on all training populations; per held-out N and seed, scratch
 * runs trained on N alone for a multiple of the env steps MRA's adaptation uses there. Every run
 * is an ordinary `troupe train` run directory, started and resumed by `runTransferStudy`; once
 * finished, each is evaluated by `evaluateMraRun` (saved beside it, reused while the run is
 * unchanged) and `mra-report.ts` turns the evaluations into the report.
 */

const positiveInt = () => z.number().int().gt(0).lte(Number.MAX_SAFE_INTEGER);

/** A population: N agents, the env `resource-N`. */
const population = () =>
  z
    .number({ invalid_type_error: 'expected a number of agents N (the env resource-N), e.g. 3' })
    .int('expected a whole number of agents N (the env resource-N)')
    .gte(1, 'expected a number of agents N ≥ 1 (the env resource-N)')
    .lte(1000, 'expected a number of agents N ≤ 1000 (the env resource-N)');

function refineDistinct(list: number[], ctx: z.RefinementCtx): void {
  list.forEach((n, i) => {
    if (list.indexOf(n) !== i) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i], message: `population ${n} is listed twice` });
  });
}

export const mraStudySchema = z
  .object({
    /** Marks the study file as an MRA study (an MTMA transfer study has no `method`). */
    method: z.literal('mra'),
    /**
     * What every run shares: the `algo` section of `mra` (num_latents required; `name` is mra)
     * and `run` settings (num_envs, eval_interval, eval_episodes, …). Seeds and budgets are set
     * by the study.
     */
    base: z
      .object({
        algo: z.record(z.string(), z.unknown()),
        run: z.record(z.string(), z.unknown()).default({}),
      })
      .strict(),
    /** Populations (numbers of agents) every MRA and unimodal run trains on together. */
    train_populations: z.array(population()).min(1).superRefine(refineDistinct),
    /** Populations no run of the study trains on, except the scratch baselines. */
    held_out_populations: z.array(population()).min(1).superRefine(refineDistinct),
    /** Envs per task (`tasks[i].num_envs` of every run); default: the run's `base.run.num_envs`. */
    num_envs: positiveInt().optional(),
    /** Seeds of each MRA, unimodal and scratch run; a run's `run.seed` is its seed index. */
    seeds: positiveInt().default(3),
    train: z
      .object({
        /** Env steps of each MRA and unimodal run, summed over the training populations. */
        total_env_steps: positiveInt(),
      })
      .strict(),
    /** Also train the unimodal baseline: the same runs with `num_latents: 1`. */
    unimodal: z.boolean().default(true),
    /** How each finished run is evaluated (`MraEvaluationSpec`). */
    evaluation: z
      .object({
        /** Episodes per measurement. */
        episodes: positiveInt(),
        num_envs: positiveInt().default(4),
        /** Episodes per z in the best-z sweep. */
        sweep_episodes: positiveInt(),
        adaptation: z
          .object({
            /** k: policy-gradient steps on the p(z | N) logits (0: no adaptation). */
            steps: z.number().int().gte(0).lte(100000),
            episodes_per_step: positiveInt(),
            lr: z.number().finite().gt(0),
            params: z.array(z.enum(['latent_logits', 'policy_head'])).min(1).default(['latent_logits']),
            /** Evaluate after every this many steps (and after the last). */
            eval_every: positiveInt().default(1),
          })
          .strict(),
      })
      .strict(),
    scratch: z
      .object({
        /**
         * Scratch runs on each held-out N train for these multiples of the adaptation budget there:
         * (num_latents × sweep_episodes + steps × episodes_per_step) × episode length env steps.
         * An empty list trains no scratch runs.
         */
        budgets: z.array(z.number().finite().gt(0)).default([1, 10]).superRefine(refineDistinct),
      })
      .strict()
      .default({}),
    report: z
      .object({
        /** Bootstrap repetitions and seed: fixed, so a report reproduces bit for bit. */
        bootstrap_reps: positiveInt().default(2000),
        bootstrap_seed: z.number().int().gte(0).default(0),
      })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((study, ctx) => {
    const algo = study.base.algo;
    if (algo.name !== undefined && algo.name !== 'mra') {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['base', 'algo', 'name'], message: `is '${String(algo.name)}'; an MRA study trains the 'mra' learner (leave the key out or write mra)` });
    }
    const latents = algo.num_latents;
    if (latents === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['base', 'algo', 'num_latents'], message: 'required in an MRA study (≥ 2): the adaptation budget and the unimodal baseline depend on it' });
    } else if (typeof latents !== 'number' || !Number.isInteger(latents) || latents < 2) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['base', 'algo', 'num_latents'], message: `is ${JSON.stringify(latents)}; expected a whole number ≥ 2 (1 is the unimodal baseline, which the study trains itself)` });
    }
    for (const key of ['seed', 'total_env_steps'] as const) {
      if (study.base.run[key] !== undefined) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['base', 'run', key], message: `is set by the study (${key === 'seed' ? 'the seed index of each run' : 'train.total_env_steps, and the scratch budgets'}); remove it` });
      }
    }
    study.held_out_populations.forEach((n, i) => {
      if (study.train_populations.includes(n)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['held_out_populations', i], message: `${n} is also a training population; held-out populations must be ones the MRA runs never train on` });
      }
    });
  });

export type MraStudyConfig = z.output<typeof mraStudySchema>;

export { resourceEnvId };

/**
 * Whether a study file is an MRA study (`method: mra` at its top level) or an MTMA transfer
 * study (no `method`). A file that cannot be read or parsed counts as MTMA, whose loader then
 * reports the problem; a `method` other than mra is refused here.
 */
export function studyMethodOf(file: string): 'mtma' | 'mra' {
  let raw: unknown;
  try {
    raw = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return 'mtma';
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || !('method' in raw)) return 'mtma';
  const method = (raw as { method: unknown }).method;
  if (method === 'mra') return 'mra';
  throw new RunConfigError(`invalid transfer study ${file}:\n  method: is ${JSON.stringify(method)}; expected 'mra' (an MRA study), or no 'method' for an MTMA transfer study`, [`method: expected 'mra'`]);
}

/** Reads and validates an MRA study file; errors name the file and the key. */
export function loadMraStudy(file: string): MraStudyConfig {
  return loadYamlConfigFile(file, mraStudySchema, 'MRA study');
}

/** The episode length of `resource-N` when the env is not registered (or cannot be built): its default step limit. */
export const DEFAULT_RESOURCE_EPISODE_LENGTH = 20;

/**
 * The step limit of `resource-N`, read from the env (`metadata.maxEpisodeSteps` of a freshly
 * built one) when it is registered; else `DEFAULT_RESOURCE_EPISODE_LENGTH`, and `from` says which.
 */
export function resourceEpisodeLength(numAgents: number): { steps: number; from: 'env' | 'default' } {
  const id = resourceEnvId(numAgents);
  try {
    registerBuiltinEnvs();
    if (isRegistered(id)) {
      const env = makeEnv(id);
      const steps = env.metadata.maxEpisodeSteps;
      env.close?.();
      if (Number.isInteger(steps) && steps > 0) return { steps, from: 'env' };
    }
  } catch {
    // Not buildable here: the default below.
  }
  return { steps: DEFAULT_RESOURCE_EPISODE_LENGTH, from: 'default' };
}

/** MRA's adaptation budget on one population, in env steps (each step of one env counts once). */
export interface AdaptationBudget {
  numAgents: number;
  episodeLength: number;
  /** Whether the episode length was read from the env or is the default. */
  episodeLengthFrom: 'env' | 'default';
  /** Episodes: num_latents × sweep_episodes (best-z sweep) + steps × episodes_per_step (adaptation). */
  episodes: number;
  envSteps: number;
}

export function adaptationBudget(study: MraStudyConfig, numAgents: number, episodeLength: { steps: number; from: 'env' | 'default' }): AdaptationBudget {
  const { sweep_episodes, adaptation } = study.evaluation;
  const episodes = numLatentsOf(study) * sweep_episodes + adaptation.steps * adaptation.episodes_per_step;
  return { numAgents, episodeLength: episodeLength.steps, episodeLengthFrom: episodeLength.from, episodes, envSteps: episodes * episodeLength.steps };
}

/** Env steps of a scratch run trained for `multiple` × the adaptation budget. */
export function scratchEnvSteps(multiple: number, budget: AdaptationBudget): number {
  return Math.max(1, Math.round(multiple * budget.envSteps));
}

function numLatentsOf(study: MraStudyConfig): number {
  return study.base.algo.num_latents as number;
}

/** One run of an MRA study. */
export interface MraPlannedRun extends PlannedRun {
  /** mra: z-conditioned runs; unimodal: num_latents 1; scratch: one held-out population alone. */
  phase: 'mra' | 'unimodal' | 'scratch';
  /** The populations (numbers of agents) the run trains on. */
  populations: number[];
  /** Scratch runs: the multiple of the adaptation budget on their population they train for. */
  budgetMultiple?: number;
  /** How the finished run is evaluated. */
  evaluation: MraEvaluationSpec;
}

export interface MraPlan extends StudyPlan {
  study: MraStudyConfig;
  runs: MraPlannedRun[];
  /** Per held-out population, MRA's adaptation budget (what the scratch budgets are multiples of). */
  adaptationBudgets: AdaptationBudget[];
}

/** `x1`, `x10`, `x0.5`: a budget multiple in run keys and folder names. */
export function budgetLabel(multiple: number): string {
  return `x${multiple}`;
}

/**
 * The evaluation of a run: MRA runs on the held-out and the training populations with the
 * study's adaptation; unimodal runs on the same populations without adaptation (one latent:
 * nothing to adapt); scratch runs on their own population, without adaptation. The evaluation
 * seed depends only on the seed index, so runs of one seed play the same episodes.
 */
export function mraEvaluationSpec(study: MraStudyConfig, phase: MraPlannedRun['phase'], populations: number[], seed: number): MraEvaluationSpec {
  const e = study.evaluation;
  return {
    populations,
    episodes: e.episodes,
    numEnvs: e.num_envs,
    seed: `mra-evaluation/seed${seed}`,
    sweepEpisodes: e.sweep_episodes,
    adaptation: {
      steps: phase === 'mra' ? e.adaptation.steps : 0,
      episodesPerStep: e.adaptation.episodes_per_step,
      lr: e.adaptation.lr,
      params: [...e.adaptation.params],
      evalEvery: e.adaptation.eval_every,
    },
  };
}

export interface PlanMraOptions {
  /**
   * Validate every run config as `troupe train` would (default true), so a bad study is refused
   * before anything runs. Validation needs the `mra` learner and the `resource-N` envs registered.
   */
  validate?: boolean;
  /** The episode length of `resource-N` (default `resourceEpisodeLength`). */
  episodeLength?: (numAgents: number) => { steps: number; from: 'env' | 'default' };
}

/**
 * Every run of the study with its config: per seed an MRA run and (with `unimodal`) a unimodal
 * run on all training populations, then per held-out N, seed and budget multiple a scratch run
 * on N alone. No run waits for another.
 */
export function planMraStudy(study: MraStudyConfig, file: string, outDir: string, options: PlanMraOptions = {}): MraPlan {
  const abs = path.resolve(outDir);
  const task = (n: number) => ({ id: resourceEnvId(n), ...(study.num_envs !== undefined ? { num_envs: study.num_envs } : {}) });
  const algo = { ...study.base.algo, name: 'mra' };
  const runs: MraPlannedRun[] = [];
  const evaluated = [...study.held_out_populations, ...study.train_populations];
  for (const phase of study.unimodal ? (['mra', 'unimodal'] as const) : (['mra'] as const)) {
    for (let seed = 0; seed < study.seeds; seed++) {
      runs.push({
        key: `${phase}/seed${seed}`,
        phase,
        dir: path.join(abs, 'runs', phase, `seed${seed}`),
        seed,
        dependsOn: [],
        populations: [...study.train_populations],
        evaluation: mraEvaluationSpec(study, phase, evaluated, seed),
        config: {
          tasks: study.train_populations.map(task),
          algo: phase === 'unimodal' ? { ...algo, num_latents: 1 } : { ...algo },
          run: { ...study.base.run, seed, total_env_steps: study.train.total_env_steps },
        },
      });
    }
  }
  const episodeLength = options.episodeLength ?? resourceEpisodeLength;
  const adaptationBudgets = study.held_out_populations.map((n) => adaptationBudget(study, n, episodeLength(n)));
  for (const budget of adaptationBudgets) {
    const n = budget.numAgents;
    for (const multiple of study.scratch.budgets) {
      for (let seed = 0; seed < study.seeds; seed++) {
        runs.push({
          key: `scratch/${resourceEnvId(n)}/${budgetLabel(multiple)}/seed${seed}`,
          phase: 'scratch',
          dir: path.join(abs, 'runs', 'scratch', resourceEnvId(n), budgetLabel(multiple), `seed${seed}`),
          seed,
          dependsOn: [],
          target: resourceEnvId(n),
          populations: [n],
          budgetMultiple: multiple,
          evaluation: mraEvaluationSpec(study, 'scratch', [n], seed),
          config: {
            tasks: [task(n)],
            algo: { ...algo },
            run: { ...study.base.run, seed, total_env_steps: scratchEnvSteps(multiple, budget) },
          },
        });
      }
    }
  }
  const plan: MraPlan = { study, file, outDir: abs, runs, adaptationBudgets };
  if (options.validate ?? true) validateMraPlan(plan);
  return plan;
}

/** Validates every run config of the plan as `troupe train` would; errors name the study file and the run. */
export function validateMraPlan(plan: MraPlan): void {
  for (const run of plan.runs) {
    try {
      validateRunConfig(run.config, `${plan.file} (run ${run.key})`);
    } catch (error) {
      throw error instanceof RunConfigError ? error : new RunConfigError(`${plan.file}: run ${run.key}: ${(error as Error).message}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluations of the finished runs

/** The file each run's evaluation is saved in, inside the run directory. */
export const MRA_EVALUATION_FILE = 'mra-evaluation.json';

/** What `<run dir>/mra-evaluation.json` holds: the evaluation, and what it was made from. */
export interface SavedMraEvaluation {
  format: 'troupe/mra-evaluation@1';
  run: string;
  /** `runFingerprint` of the run when it was evaluated. */
  fingerprint: string;
  spec: MraEvaluationSpec;
  evaluation: MraRunEvaluation;
}

/**
 * What identifies a finished run's trained state: a hash of its `summary.json` and its latest
 * checkpoint pointer. Retraining or resuming a run changes both, so its saved evaluation is stale.
 */
export function runFingerprint(dir: string): string {
  const hash = createHash('sha256');
  for (const file of [path.join(dir, 'summary.json'), path.join(dir, 'checkpoints', 'latest')]) {
    hash.update(file.slice(dir.length));
    hash.update(fs.existsSync(file) ? fs.readFileSync(file) : Buffer.from('(missing)'));
  }
  return hash.digest('hex').slice(0, 32);
}

/** Saves a run's evaluation as `<dir>/mra-evaluation.json`, stamped with the run's fingerprint and the spec. */
export function saveMraEvaluation(run: Pick<MraPlannedRun, 'key' | 'dir' | 'evaluation'>, evaluation: MraRunEvaluation): string {
  const file = path.join(run.dir, MRA_EVALUATION_FILE);
  const saved: SavedMraEvaluation = { format: 'troupe/mra-evaluation@1', run: run.key, fingerprint: runFingerprint(run.dir), spec: run.evaluation, evaluation };
  writeFileAtomicSync(file, `${JSON.stringify(saved, null, 2)}\n`);
  return file;
}

/** The saved evaluation of a run, if there is one for this spec and the run has not changed since. */
export function savedMraEvaluation(run: Pick<MraPlannedRun, 'dir' | 'evaluation'>): MraRunEvaluation | null {
  const file = path.join(run.dir, MRA_EVALUATION_FILE);
  if (!fs.existsSync(file)) return null;
  let saved: Partial<SavedMraEvaluation>;
  try {
    saved = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<SavedMraEvaluation>;
  } catch {
    return null;
  }
  if (saved.format !== 'troupe/mra-evaluation@1' || saved.fingerprint !== runFingerprint(run.dir)) return null;
  if (JSON.stringify(saved.spec) !== JSON.stringify(run.evaluation)) return null;
  const e = saved.evaluation;
  if (!e || !Array.isArray(e.populations) || !Array.isArray(e.training) || typeof e.numLatents !== 'number') return null;
  return e;
}

export interface MraRunResult {
  key: string;
  phase: MraPlannedRun['phase'];
  seed: number;
  dir: string;
  /** Scratch runs: their population and budget multiple. */
  population?: number;
  budgetMultiple?: number;
  evaluation: MraRunEvaluation;
  /** Whether the saved evaluation was reused rather than made now. */
  reused: boolean;
}

/** A run's row of the study results: its plan fields and its evaluation. */
export function mraRunResult(run: Pick<MraPlannedRun, 'key' | 'phase' | 'seed' | 'dir' | 'populations' | 'budgetMultiple'>, evaluation: MraRunEvaluation, reused: boolean): MraRunResult {
  return {
    key: run.key,
    phase: run.phase,
    seed: run.seed,
    dir: run.dir,
    ...(run.phase === 'scratch' ? { population: run.populations[0], budgetMultiple: run.budgetMultiple } : {}),
    evaluation,
    reused,
  };
}

export interface MraStudyResults {
  /** The evaluation of every finished run, in plan order. */
  runs: MraRunResult[];
  /** Runs not finished (or never started). */
  missing: string[];
  /** Finished runs whose evaluation failed, with the error. */
  failed: Array<{ key: string; error: string }>;
}

export type MraEvaluator = (runDir: string, spec: MraEvaluationSpec, log: (line: string) => void) => Promise<MraRunEvaluation>;

/**
 * Evaluates every finished run of the plan (`evaluateMraRun` unless `evaluate` is given), saving
 * each evaluation beside its run and reusing a saved one while the run and the spec are
 * unchanged, so running a study again costs only the runs that changed. A failed evaluation is
 * recorded and the others go on.
 */
export async function collectMraResults(plan: MraPlan, options: { evaluate?: MraEvaluator; log?: (line: string) => void } = {}): Promise<MraStudyResults> {
  const evaluate = options.evaluate ?? evaluateMraRun;
  const log = options.log ?? (() => undefined);
  const results: MraStudyResults = { runs: [], missing: [], failed: [] };
  for (const run of plan.runs) {
    if (runStatus(run) !== 'finished') {
      results.missing.push(run.key);
      continue;
    }
    let evaluation = savedMraEvaluation(run);
    const reused = evaluation !== null;
    if (!evaluation) {
      log(`evaluating ${run.key}`);
      try {
        evaluation = await evaluate(run.dir, run.evaluation, (line) => log(`  ${run.key}: ${line}`));
      } catch (error) {
        results.failed.push({ key: run.key, error: error instanceof Error ? error.message : String(error) });
        continue;
      }
      saveMraEvaluation(run, evaluation);
    }
    results.runs.push(mraRunResult(run, evaluation, reused));
  }
  return results;
}
