import { z } from 'zod';
import { Rng } from '../../runtime/core/rng';
import type { ResetArgs } from '../parallel-env';
import type { TaskParamsBase } from './task';

/**
 * The options and task configurations of the tabletop envs, shared by the single-arm
 * (`manipulation-env.ts`) and multi-arm (`multi-arm-env.ts`) envs so that both validate, report
 * errors and choose each episode's configuration the same way.
 */

/** The validated options of a tabletop env. */
export interface TabletopEnvConfig<P extends TaskParamsBase> {
  id: string;
  horizon: number;
  goalObservable: boolean;
  substeps: number;
  /** Configurations to draw from at each reset (ML-style task sets); absent: sample from the task's ranges. */
  tasks?: P[];
}

/** What option and params validation needs of a task (single-arm and multi-arm tasks both have it). */
export interface ConfigurableTask<P extends TaskParamsBase> {
  readonly kind: P['kind'];
  /** Strict: unknown keys are errors. */
  readonly paramsSchema: z.ZodType<P>;
  sampleParams(rng: Rng): P;
}

function optionsSchema<P extends TaskParamsBase>(task: ConfigurableTask<P>, defaultHorizon: number) {
  return z
    .object({
      id: z.string().default(task.kind),
      horizon: z.number().int().min(1).max(1_000_000).default(defaultHorizon),
      goalObservable: z.boolean().default(true),
      substeps: z.number().int().min(1).max(20).default(1),
      tasks: z.array(task.paramsSchema).min(1).optional(),
    })
    .strict();
}

/** The option names of every single- and multi-arm tabletop env (the registry refuses others early). */
export const TABLETOP_OPTION_KEYS: readonly string[] = Object.keys(optionsSchema({ kind: 'any', paramsSchema: z.never(), sampleParams: () => ({ kind: 'any' }) }, 1).shape);

/** Validates factory options; unknown names and bad values are errors naming the option (and list index). */
export function parseTabletopEnvOptions<P extends TaskParamsBase>(task: ConfigurableTask<P>, raw: Record<string, unknown>, defaultHorizon: number): TabletopEnvConfig<P> {
  const schema = optionsSchema(task, defaultHorizon);
  const label = typeof raw.id === 'string' ? raw.id : task.kind;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      throw new Error(`${label}: unknown option ${issue.keys.map((k) => `'${k}'`).join(', ')} (known options: ${Object.keys(schema.shape).join(', ')})`);
    }
    throw new Error(`${label}: invalid option '${formatPath(issue.path)}': ${issue.message}`);
  }
  return parsed.data as TabletopEnvConfig<P>;
}

/** Validates one task configuration with the task's schema; `where` names it in errors. */
export function parseTaskParams<P extends TaskParamsBase>(task: ConfigurableTask<P>, raw: unknown, where: string): P {
  const parsed = task.paramsSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const at = issue.path.length ? `${where}.${formatPath(issue.path)}` : where;
  const keys = issue.code === 'unrecognized_keys' ? ` (unknown key ${issue.keys.map((k) => `'${k}'`).join(', ')})` : '';
  throw new Error(`${at}: ${issue.message}${keys}; expected ${task.kind} params such as ${JSON.stringify(task.sampleParams(new Rng(0)))}`);
}

function formatPath(path: ReadonlyArray<string | number>): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * Chooses each episode's configuration, in this order of precedence: `reset({ options: { task } })`,
 * the params fixed by `fix` (an env's `setTask`), one drawn uniformly from `options.tasks` with the
 * env's Rng, or a fresh draw from the task's ranges. The Rng is reseeded by `reset({ seed })` and
 * used for nothing else, so the configurations depend only on the seed stream.
 */
export class TaskConfigurations<P extends TaskParamsBase> {
  private rng = new Rng(0);
  private fixed: P | null = null;

  constructor(
    private readonly task: ConfigurableTask<P>,
    private readonly config: Readonly<TabletopEnvConfig<P>>,
  ) {}

  /** Fixes the configuration of every following episode; `null` returns to drawing one. */
  fix(params: P | null): void {
    this.fixed = params === null ? null : parseTaskParams(this.task, params, `${this.config.id}: setTask(params)`);
  }

  /** The configuration of the episode that `reset(args)` starts. */
  next(args: ResetArgs): P {
    if (args.seed !== undefined) this.rng = new Rng(args.seed);
    const fromOptions = args.options?.task;
    if (fromOptions !== undefined) return parseTaskParams(this.task, fromOptions, `${this.config.id}: reset option 'task'`);
    if (this.fixed !== null) return this.fixed;
    return this.config.tasks ? this.config.tasks[this.rng.int(this.config.tasks.length)] : this.task.sampleParams(this.rng);
  }
}
