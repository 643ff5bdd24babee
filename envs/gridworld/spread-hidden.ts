import { z } from 'zod';
import { type TaskFamilyMember, registerEnv, registerScenarioParser } from '../registry';
import { Rng, deriveSeed } from '../../runtime/core/rng';
import { type SpreadConfig, SpreadEnv } from './spread';

/**
 * Hidden-landmark cooperative navigation (`spread-hidden-N`), a multi-agent task family for
 * offline meta-RL (Meta-DT): the `spread-N` game with its N landmarks fixed per task and left out
 * of the observations, so a team must tell from its rewards where the landmarks are, as
 * `point-robot`'s single agent tells its goal.
 *
 *  - Tasks: `numTasks` (50) landmark layouts drawn once from `layoutSeed` (N distinct cells each);
 *    the first `numTrainTasks` (45) are the training side, the rest held out. Option `task`
 *    picks one (default 0). Agents start on random cells every episode.
 *  - Observation per agent: own last move, own position, the other agents' relative positions
 *    (2N + 2 numbers; `spread-N` adds the landmarks' relative positions). `state()` still holds
 *    everything, landmarks included.
 *  - Rewards, actions, masks, episode length and success as `spread-N` (team reward: minus the
 *    summed distance from every landmark to its nearest agent, scaled, minus collisions).
 */

export const SPREAD_HIDDEN_FAMILY = 'gridworld/spread-hidden';

const OptionsSchema = z
  .object({
    id: z.string().default('spread-hidden'),
    numAgents: z.number().int().min(1).max(8).default(3),
    numTasks: z.number().int().min(1).max(10_000).default(50),
    numTrainTasks: z.number().int().min(0).max(10_000).optional(),
    layoutSeed: z.union([z.number().int(), z.string().min(1)]).default(0),
    task: z.number().int().min(0).optional(),
    gridSize: z.number().int().min(2).max(64).optional(),
    maxSteps: z.number().int().min(1).max(100_000).optional(),
    collisionPenalty: z.number().finite().min(0).default(1),
  })
  .strict();

export const SPREAD_HIDDEN_OPTION_KEYS: readonly string[] = Object.keys(OptionsSchema.shape);

export interface SpreadHiddenConfig {
  spread: SpreadConfig;
  task: number;
  numTasks: number;
  numTrainTasks: number;
  layoutSeed: number | string;
  landmarks: Array<[number, number]>;
}

/** Validates options (unknown names and bad values are errors naming the option). */
export function parseSpreadHiddenOptions(raw: Record<string, unknown>): SpreadHiddenConfig {
  const label = typeof raw.id === 'string' ? raw.id : 'spread-hidden';
  const parsed = OptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue.code === 'unrecognized_keys') throw new Error(`${label}: unknown option ${issue.keys.map((k) => `'${k}'`).join(', ')} (known options: ${SPREAD_HIDDEN_OPTION_KEYS.join(', ')})`);
    const name = String(issue.path[0]);
    throw new Error(`${label}: invalid option '${name}' = ${JSON.stringify(raw[name])}: ${issue.message}`);
  }
  const o = parsed.data;
  const n = o.numAgents;
  const gridSize = o.gridSize ?? n + 3;
  if (gridSize * gridSize < n) throw new Error(`${label}: invalid option 'gridSize' = ${gridSize}: a ${gridSize}x${gridSize} board cannot hold ${n} landmarks`);
  const numTrainTasks = o.numTrainTasks ?? Math.round(0.9 * o.numTasks);
  if (numTrainTasks > o.numTasks) throw new Error(`${label}: invalid option 'numTrainTasks' = ${numTrainTasks}: at most numTasks (${o.numTasks}) tasks can be training tasks`);
  const task = o.task ?? 0;
  if (task >= o.numTasks) throw new Error(`${label}: invalid option 'task' = ${task}: task indices run from 0 to numTasks − 1 = ${o.numTasks - 1}`);
  const landmarks = drawLayouts(o.numTasks, n, gridSize, o.layoutSeed)[task];
  const maxSteps = o.maxSteps ?? Math.min(50, 25 + 4 * (n - 2));
  return {
    spread: {
      id: o.id,
      numAgents: n,
      gridSize,
      maxSteps,
      collisionPenalty: o.collisionPenalty,
      fixedLandmarks: landmarks,
      observeLandmarks: false,
      family: SPREAD_HIDDEN_FAMILY,
      description: `${n} agents cover ${n} hidden landmarks on a ${gridSize}x${gridSize} grid (task ${task} of ${o.numTasks})`,
    },
    task,
    numTasks: o.numTasks,
    numTrainTasks,
    layoutSeed: o.layoutSeed,
    landmarks,
  };
}

/** The landmark layouts of a task set: N distinct cells per task, from a stream of their own. */
function drawLayouts(numTasks: number, n: number, gridSize: number, seed: number | string): Array<Array<[number, number]>> {
  const rng = new Rng(deriveSeed('spread-hidden-layouts', seed, n, gridSize));
  return Array.from({ length: numTasks }, () => {
    const taken = new Set<number>();
    const cells: Array<[number, number]> = [];
    while (cells.length < n) {
      const cell = rng.int(gridSize * gridSize);
      if (taken.has(cell)) continue;
      taken.add(cell);
      cells.push([Math.floor(cell / gridSize), cell % gridSize]);
    }
    // Row-major: a layout is a set, and a fixed order makes its parameters a function of the set.
    return cells.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  });
}

/** Every task of the family (the `task` option is refused: a family lists them all). */
export function spreadHiddenTaskFamily(options: Record<string, unknown>): TaskFamilyMember[] {
  const { task, id: _id, ...family } = options;
  if (task !== undefined) throw new Error(`spread-hidden: option 'task' picks one task, but the task family lists them all; choose tasks by key instead (e.g. tasks: [task03])`);
  const first = parseSpreadHiddenOptions(family);
  const width = String(first.numTasks - 1).length;
  const scale = 1 / (first.spread.gridSize - 1);
  return Array.from({ length: first.numTasks }, (_, i) => {
    const { landmarks } = parseSpreadHiddenOptions({ ...family, task: i });
    return {
      key: `task${String(i).padStart(width, '0')}`,
      options: { ...family, task: i },
      split: i < first.numTrainTasks ? 'train' : 'test',
      parameters: { landmarks: landmarks.flatMap(([r, c]) => [r * scale, c * scale]), task: i },
    };
  });
}

export function createSpreadHidden(options: Record<string, unknown>): SpreadEnv {
  return new SpreadEnv(parseSpreadHiddenOptions(options).spread);
}

/** Reads `spread-hidden-N` into options; undefined for other ids. */
export function parseSpreadHiddenId(id: string): { numAgents: number } | undefined {
  const m = /^spread-hidden-(\d+)$/.exec(id);
  return m ? { numAgents: Number(m[1]) } : undefined;
}

let registered = false;

/** Registers `spread-hidden-2` … `spread-hidden-8` (listed) and the `spread-hidden-N` parser. */
export function registerSpreadHidden(): void {
  if (registered) return;
  registered = true;
  registerEnv('spread-hidden', createSpreadHidden, { family: SPREAD_HIDDEN_FAMILY, listed: false, optionKeys: SPREAD_HIDDEN_OPTION_KEYS, taskFamily: spreadHiddenTaskFamily, description: 'Hidden-landmark cooperative navigation; size from options' });
  for (let n = 2; n <= 8; n++) {
    registerEnv(`spread-hidden-${n}`, createSpreadHidden, {
      family: SPREAD_HIDDEN_FAMILY,
      options: { numAgents: n },
      optionKeys: SPREAD_HIDDEN_OPTION_KEYS,
      taskFamily: spreadHiddenTaskFamily,
      description: `${n} agents cover ${n} landmarks they cannot see on a ${n + 3}x${n + 3} grid; 50 landmark layouts (45 train / 5 test), option task picks one`,
    });
  }
  registerScenarioParser((id) => {
    const options = parseSpreadHiddenId(id);
    return options && { baseId: 'spread-hidden', options };
  });
}
