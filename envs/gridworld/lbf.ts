/**
 * Level-Based Foraging (LBF), a port of the reference `lbforaging` v3 (semitable/lb-foraging,
 * Christianos et al.; the LBF benchmark of EPyMARL), kept rule-for-rule compatible so that
 * published results are comparable.
 *
 * Rules, as in the reference:
 * - Actions: NONE=0, NORTH=1, SOUTH=2, WEST=3, EAST=4, LOAD=5. A move is legal when it stays on
 *   the board and does not enter food (other agents do not block the mask); LOAD is legal next to
 *   food (4-neighbourhood). NONE is always legal.
 * - Reset: agents are placed on uniformly random free cells with a level uniform in
 *   [minPlayerLevel, maxPlayerLevel] (defaults 1..2). Then up to `foods` foods are placed by
 *   rejection sampling (at most 1000 attempts, so crowded boards may get fewer) on non-border cells
 *   that hold no agent, with no other food in the surrounding 3×3 block nor two cells away in the
 *   same row or column. A food's level is uniform in [minFoodLevel, maxFoodLevel]; when
 *   `maxFoodLevel` is unset it is the sum of the three lowest agent levels of this episode. With
 *   `coop` every food gets the maximum level, so with up to three agents every food needs all of
 *   them to load together (with more agents, the three weakest together suffice, as in the
 *   reference).
 * - Movement: all agents choose a target cell (staying and loading target their own cell); every
 *   agent whose target cell is claimed by exactly one agent moves there. So two agents moving into
 *   the same cell both stay, and an agent moving into a staying agent stays. Like the reference,
 *   two agents may swap cells, and in the rare chain "A moves into B, B moves into a blocked cell"
 *   A and B end up on one cell; this is kept for fidelity.
 * - Loading: the loaders adjacent to a food (each loader uses its first adjacent food in the order
 *   north, south, west, east) collect it when the sum of their levels is at least the food's level.
 *   Each then earns `level × foodLevel`, divided by (sum of the group's levels × total level of the
 *   food spawned this episode) when `normalizeReward` (default), so the rewards of an episode in
 *   which all food is collected sum to exactly 1 over all agents. A group that is too weak earns
 *   `-penalty` each (default 0).
 * - The episode ends for all agents together: terminated when no food is left, otherwise truncated
 *   after `maxEpisodeSteps` steps (default 50).
 *
 * Deviations from the reference, none of which change the dynamics of reference-generated episodes:
 * - Randomness comes from troupe's `Rng`, so the same seed gives other episodes than Python's.
 * - An illegal (masked) action throws, per the troupe contract, instead of silently becoming NONE.
 * - The reference's `done` flag becomes per-agent terminations (food gone) or truncations (time
 *   limit); the reference reports the time limit as `done` too.
 * - Loading groups are formed in agent order rather than Python set order; on generated boards no
 *   agent is ever next to two foods, so the order cannot change the outcome.
 * - An agent that cannot be placed in 1000 random draws takes a uniformly chosen free cell instead
 *   of keeping its previous episode's cell, and agents avoid only agents placed this episode (the
 *   reference also avoids cells where later agents stood in the previous episode).
 * - For non-square boards the observation bounds use (rows - 1, cols - 1) for (y, x); the reference
 *   swaps them, which only matters off the square boards it registers.
 * - Only scalar level bounds are supported (not per-agent / per-food lists), and `observe_agent_levels`
 *   and grid observations are not implemented.
 */
import { BaseParallelEnv } from '../base-parallel-env';
import type { AgentId, AgentInfo, EnvMetadata, PerAgent, ResetArgs, ResetResult, StepResult } from '../parallel-env';
import { registerEnv, registerScenarioParser } from '../registry';
import { Box } from '../spaces/box';
import { Discrete } from '../spaces/discrete';
import { validateActions } from '../validate-actions';
import { EMPTY, Grid, MOVE_DELTAS } from './grid';

/** The six LBF actions, numbered as in the reference. */
export const LbfAction = {
  None: 0,
  North: 1,
  South: 2,
  West: 3,
  East: 4,
  Load: 5,
} as const;
export type LbfAction = (typeof LbfAction)[keyof typeof LbfAction];

export const LBF_FAMILY = 'gridworld/lbf';
const NUM_ACTIONS = 6;
/** The reference gives up placing an entity after this many random draws. */
const SPAWN_ATTEMPTS = 1000;

export interface LbfOptions {
  /** Registry id (set by `makeEnv`); used in metadata and error messages. */
  id?: string;
  /** Board side for square boards (default 8). */
  size?: number;
  /** Board height; overrides `size`. */
  rows?: number;
  /** Board width; overrides `size`. */
  cols?: number;
  /** Number of agents (default 2). */
  players?: number;
  /** Number of foods spawned per episode, at most (default 2). */
  foods?: number;
  minPlayerLevel?: number;
  /** Default 2, as in every registered reference scenario. */
  maxPlayerLevel?: number;
  minFoodLevel?: number;
  /** Unset or null: the sum of the three lowest agent levels of each episode (reference default). */
  maxFoodLevel?: number | null;
  /** Sight radius in cells; default max(rows, cols), i.e. full observability. */
  sight?: number;
  /** Every food gets the maximum level (the reference's `force_coop`, ids ending in `-coop`). */
  coop?: boolean;
  /** Default 50. */
  maxEpisodeSteps?: number;
  /** Divide rewards so that a fully collected episode sums to 1 (default true). */
  normalizeReward?: boolean;
  /** Subtracted from each agent of a loading group that is too weak (default 0). */
  penalty?: number;
}

/** Options with every default applied. */
export interface ResolvedLbfOptions {
  id: string;
  rows: number;
  cols: number;
  players: number;
  foods: number;
  minPlayerLevel: number;
  maxPlayerLevel: number;
  minFoodLevel: number;
  maxFoodLevel: number | null;
  sight: number;
  coop: boolean;
  maxEpisodeSteps: number;
  normalizeReward: boolean;
  penalty: number;
}

/** A hand-built board for `reset({ options: { layout } })`; coordinates are (row, col), row 0 on top. */
export interface LbfLayout {
  /** One entry per agent, in agent order. Agents may not stand on food. */
  players: ReadonlyArray<{ row: number; col: number; level: number }>;
  /** At most `foods` entries, on distinct cells. Spawn-distance rules are not enforced. */
  foods: ReadonlyArray<{ row: number; col: number; level: number }>;
}

const OPTION_KEYS: ReadonlyArray<keyof LbfOptions> = [
  'id',
  'size',
  'rows',
  'cols',
  'players',
  'foods',
  'minPlayerLevel',
  'maxPlayerLevel',
  'minFoodLevel',
  'maxFoodLevel',
  'sight',
  'coop',
  'maxEpisodeSteps',
  'normalizeReward',
  'penalty',
];

/** Validates raw factory options (e.g. from a config file) and applies the reference defaults. */
export function resolveLbfOptions(raw: Record<string, unknown>): ResolvedLbfOptions {
  const id = raw.id === undefined ? 'lbf' : String(raw.id);
  const fail = (message: string): never => {
    throw new Error(`${id}: ${message}`);
  };
  for (const key of Object.keys(raw)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      fail(`unknown option '${key}' (known options: ${OPTION_KEYS.join(', ')})`);
    }
  }
  const int = (key: keyof LbfOptions, fallback: number, min: number): number => {
    const v = raw[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(`option '${key}' must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const bool = (key: keyof LbfOptions, fallback: boolean): boolean => {
    const v = raw[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') fail(`option '${key}' must be a boolean, got ${JSON.stringify(v)}`);
    return v as boolean;
  };

  const size = int('size', 8, 3);
  const rows = int('rows', size, 3);
  const cols = int('cols', size, 3);
  const players = int('players', 2, 1);
  if (players > rows * cols) fail(`option 'players' (${players}) exceeds the ${rows * cols} cells of a ${rows}x${cols} board`);
  const foods = int('foods', 2, 1);
  const minPlayerLevel = int('minPlayerLevel', 1, 1);
  const maxPlayerLevel = int('maxPlayerLevel', 2, 1);
  if (maxPlayerLevel < minPlayerLevel) fail(`option 'maxPlayerLevel' (${maxPlayerLevel}) is below 'minPlayerLevel' (${minPlayerLevel})`);
  const minFoodLevel = int('minFoodLevel', 1, 1);
  const maxFoodLevel = raw.maxFoodLevel === null ? null : int('maxFoodLevel', -1, 1);
  if (maxFoodLevel !== null && maxFoodLevel !== -1 && maxFoodLevel < minFoodLevel) {
    fail(`option 'maxFoodLevel' (${maxFoodLevel}) is below 'minFoodLevel' (${minFoodLevel})`);
  }
  // With the automatic maximum, the weakest possible agents must still allow the minimum level.
  const weakestAutoMax = minPlayerLevel * Math.min(3, players);
  if ((maxFoodLevel === null || maxFoodLevel === -1) && minFoodLevel > weakestAutoMax) {
    fail(`option 'minFoodLevel' (${minFoodLevel}) can exceed the automatic maximum food level (sum of the three lowest agent levels, as low as ${weakestAutoMax}); set 'maxFoodLevel'`);
  }
  const sight = int('sight', Math.max(rows, cols), 1);
  const coop = bool('coop', false);
  const maxEpisodeSteps = int('maxEpisodeSteps', 50, 1);
  const normalizeReward = bool('normalizeReward', true);
  const penalty = raw.penalty === undefined ? 0 : raw.penalty;
  if (typeof penalty !== 'number' || !Number.isFinite(penalty) || penalty < 0) {
    fail(`option 'penalty' must be a finite number >= 0, got ${JSON.stringify(raw.penalty)}`);
  }
  return {
    id,
    rows,
    cols,
    players,
    foods,
    minPlayerLevel,
    maxPlayerLevel,
    minFoodLevel,
    maxFoodLevel: maxFoodLevel === -1 ? null : maxFoodLevel,
    sight,
    coop,
    maxEpisodeSteps,
    normalizeReward,
    penalty: penalty as number,
  };
}

/**
 * Level-Based Foraging with the reference's flat observation (`grid_observation=False`).
 *
 * Observation of agent i: a Float32Array of length 3·foods + 3·players,
 *   [ food_0 (y, x, level), …, food_{F-1} (y, x, level),
 *     self (y, x, level), other visible agents (y, x, level) in agent order, … ]
 * - y is the row and x the column, relative to the top-left corner of the agent's view window:
 *   (row − max(row_i − sight, 0), col − max(col_i − sight, 0)). With full sight that is the
 *   absolute (row, col).
 * - Foods are those with |Δrow| ≤ sight and |Δcol| ≤ sight, listed in row-major order of the board.
 * - Other agents are listed when both relative coordinates lie in [0, 2·sight]; near the top or left
 *   border this reaches further than the food window (a reference quirk, kept).
 * - Seen entries are packed at the front of their section; remaining slots are (−1, −1, 0).
 * Bounds: low (−1, −1, 0) everywhere; high (rows−1, cols−1, maxFoodLevelBound) per food and
 * (rows−1, cols−1, maxPlayerLevel) per agent, where maxFoodLevelBound is `maxFoodLevel` or the sum
 * of the three largest possible agent levels.
 *
 * Global state (`state()`, for centralised critics), length 3·foods + 3·players + 1, absolute
 * coordinates and nothing hidden: every food slot (row, col, level) in row-major spawn order with
 * collected or never-spawned foods as (−1, −1, 0), then every agent (row, col, level) in agent order,
 * then the elapsed fraction of the time limit, step / maxEpisodeSteps.
 */
export class LbfEnv extends BaseParallelEnv<Float32Array, number, Box, Discrete> {
  readonly stateSpace: Box;
  readonly options: ResolvedLbfOptions;

  private readonly rows: number;
  private readonly cols: number;
  private readonly numPlayers: number;
  private readonly maxFoods: number;
  private readonly sight: number;
  private readonly obsLength: number;
  private readonly foodLevelBound: number;

  /** Food layer: each cell holds the slot index of its food, or EMPTY. Agents are kept apart (they may share a cell). */
  private readonly foodGrid: Grid;
  private readonly playerRow: Int32Array;
  private readonly playerCol: Int32Array;
  private readonly playerLevel: Int32Array;
  /** Food slots sorted by cell (row-major), which makes observation order match the reference. */
  private readonly foodRow: Int32Array;
  private readonly foodCol: Int32Array;
  private readonly foodLevel: Int32Array;
  private readonly foodAlive: Uint8Array;
  private foodCount = 0;
  private foodLeft = 0;
  /** Sum of the levels of the food spawned this episode (the reward normaliser). */
  private foodLevelSpawned = 0;
  private currentStep = 0;

  // Scratch buffers for `step`, reused so that stepping allocates only what it returns.
  private readonly actionOf: Int32Array;
  private readonly targetCell: Int32Array;
  private readonly loadDone: Uint8Array;
  private readonly rewardOf: Float64Array;
  /** This step's action masks, built on first request; a fresh array per step so callers may keep them. */
  private readonly masks: Array<Uint8Array | null>;

  constructor(options: LbfOptions = {}) {
    const o = resolveLbfOptions(options as Record<string, unknown>);
    const obsLength = 3 * (o.foods + o.players);
    // Reference bound: the sum of the (up to) three smallest per-agent maxima, all equal here.
    const foodLevelBound = o.maxFoodLevel ?? o.maxPlayerLevel * Math.min(3, o.players);
    const low: number[] = [];
    const high: number[] = [];
    for (let f = 0; f < o.foods; f++) {
      low.push(-1, -1, 0);
      high.push(o.rows - 1, o.cols - 1, foodLevelBound);
    }
    for (let p = 0; p < o.players; p++) {
      low.push(-1, -1, 0);
      high.push(o.rows - 1, o.cols - 1, o.maxPlayerLevel);
    }
    const metadata: EnvMetadata = {
      id: o.id,
      family: LBF_FAMILY,
      maxEpisodeSteps: o.maxEpisodeSteps,
      reportsSuccess: false,
      description: `Level-Based Foraging ${o.rows}x${o.cols}, ${o.players} agents, ${o.foods} foods${o.coop ? ', cooperative' : ''}, sight ${o.sight}`,
    };
    super({ metadata, agents: o.players, observationSpace: new Box(low, high, [obsLength], 'float32'), actionSpace: new Discrete(NUM_ACTIONS) });
    this.options = o;
    this.rows = o.rows;
    this.cols = o.cols;
    this.numPlayers = o.players;
    this.maxFoods = o.foods;
    this.sight = o.sight;
    this.obsLength = obsLength;
    this.foodLevelBound = foodLevelBound;
    // The state shows every agent, so agent coordinates are never -1 there; last entry: elapsed time fraction.
    const stateLow = [...low, 0];
    const stateHigh = [...high, 1];
    for (let k = 3 * o.foods; k < this.obsLength; k += 3) stateLow[k] = stateLow[k + 1] = 0;
    this.stateSpace = new Box(stateLow, stateHigh, [this.obsLength + 1], 'float32');

    this.foodGrid = new Grid(o.rows, o.cols);
    this.playerRow = new Int32Array(o.players);
    this.playerCol = new Int32Array(o.players);
    this.playerLevel = new Int32Array(o.players);
    this.foodRow = new Int32Array(o.foods);
    this.foodCol = new Int32Array(o.foods);
    this.foodLevel = new Int32Array(o.foods);
    this.foodAlive = new Uint8Array(o.foods);
    this.actionOf = new Int32Array(o.players);
    this.targetCell = new Int32Array(o.players);
    this.loadDone = new Uint8Array(o.players);
    this.rewardOf = new Float64Array(o.players);
    this.masks = new Array<Uint8Array | null>(o.players).fill(null);
  }

  /** The reference's valid actions for `agent` in the current state (1 = legal). Do not mutate it. */
  actionMask(agent: AgentId): Uint8Array {
    const i = this.indexOf(agent);
    return this.masks[i] ?? (this.masks[i] = this.computeMask(i));
  }

  override reset(args: ResetArgs = {}): ResetResult<Float32Array> {
    this.seedRng(args);
    const layout = readResetOptions(this.metadata.id, args.options);
    this.foodGrid.clear();
    this.foodAlive.fill(0);
    if (layout) this.applyLayout(layout);
    else {
      this.spawnPlayers();
      this.spawnFood();
    }
    this.currentStep = 0;
    this.masks.fill(null);
    this.startEpisode();

    const observations: PerAgent<Float32Array> = {};
    const infos: PerAgent<AgentInfo> = {};
    for (let i = 0; i < this.numPlayers; i++) {
      const agent = this.possibleAgents[i];
      observations[agent] = this.observe(i);
      infos[agent] = {};
    }
    return { observations, infos };
  }

  override step(actions: PerAgent<number>): StepResult<Float32Array> {
    const agentsActing = this.beginStep(actions);
    const n = this.numPlayers;
    const cols = this.cols;
    this.currentStep++;

    for (let i = 0; i < n; i++) {
      const action = actions[this.possibleAgents[i]];
      this.actionOf[i] = action;
      this.rewardOf[i] = 0;
      const delta = action === LbfAction.Load ? MOVE_DELTAS[0] : MOVE_DELTAS[action];
      this.targetCell[i] = (this.playerRow[i] + delta[0]) * cols + this.playerCol[i] + delta[1];
    }
    // An agent moves only when no other agent claims its target cell (staying claims one's own cell).
    for (let i = 0; i < n; i++) {
      const action = this.actionOf[i];
      if (action === LbfAction.None || action === LbfAction.Load) continue;
      const target = this.targetCell[i];
      let contested = false;
      for (let j = 0; j < n; j++) {
        if (j !== i && this.targetCell[j] === target) {
          contested = true;
          break;
        }
      }
      if (!contested) {
        this.playerRow[i] = (target / cols) | 0;
        this.playerCol[i] = target - this.playerRow[i] * cols;
      }
    }
    this.resolveLoading();

    const terminated = this.foodLeft === 0;
    const truncated = !terminated && this.currentStep >= this.options.maxEpisodeSteps;
    const over = terminated || truncated;
    this.masks.fill(null);

    const observations: PerAgent<Float32Array> = {};
    const rewards: PerAgent<number> = {};
    const terminations: PerAgent<boolean> = {};
    const truncations: PerAgent<boolean> = {};
    const infos: PerAgent<AgentInfo> = {};
    for (let k = 0; k < agentsActing.length; k++) {
      const agent = agentsActing[k];
      const i = this.indexOf(agent);
      observations[agent] = this.observe(i);
      rewards[agent] = this.rewardOf[i];
      terminations[agent] = terminated;
      truncations[agent] = truncated;
      infos[agent] = over ? this.episodeSummary() : {};
    }
    return this.finishStep({ observations, rewards, terminations, truncations, infos }, over);
  }

  state(): Float32Array {
    const out = new Float32Array(this.obsLength + 1);
    let k = 0;
    for (let j = 0; j < this.maxFoods; j++, k += 3) {
      if (j < this.foodCount && this.foodAlive[j]) {
        out[k] = this.foodRow[j];
        out[k + 1] = this.foodCol[j];
        out[k + 2] = this.foodLevel[j];
      } else {
        out[k] = -1;
        out[k + 1] = -1;
      }
    }
    for (let i = 0; i < this.numPlayers; i++, k += 3) {
      out[k] = this.playerRow[i];
      out[k + 1] = this.playerCol[i];
      out[k + 2] = this.playerLevel[i];
    }
    out[k] = this.currentStep / this.options.maxEpisodeSteps;
    return out;
  }

  /** Board picture: foods as their level digit (`+` from 10), agents as letters (A = agent_0), then a legend with levels. */
  override render(mode = 'ansi'): string {
    if (mode !== 'ansi' && mode !== 'human') throw new Error(`${this.metadata.id}: render mode '${mode}' is not supported (use 'ansi')`);
    const picture = new Grid(this.rows, this.cols);
    picture.cells.set(this.foodGrid.cells);
    // Agent codes follow the food slot codes. Agents never stand on food; stacked agents show the last.
    for (let i = 0; i < this.numPlayers; i++) picture.set(this.playerRow[i], this.playerCol[i], this.maxFoods + i);
    const board = picture.render((code) => {
      if (code >= this.maxFoods) return agentLetter(code - this.maxFoods);
      const level = this.foodLevel[code];
      return level < 10 ? String(level) : '+';
    });
    const legend = this.possibleAgents
      .map((a, i) => `${agentLetter(i)}=${a} level ${this.playerLevel[i]} at (${this.playerRow[i]},${this.playerCol[i]})`)
      .join(', ');
    return `step ${this.currentStep}/${this.options.maxEpisodeSteps}, food left ${this.foodLeft}/${this.foodCount}\n${board}\n${legend}`;
  }

  close(): void {}

  /** LBF has always checked the actions first, so a stray action names its agent instead of the empty episode. */
  protected override rejectStep(actions: PerAgent<number>): never {
    validateActions(this, actions);
    throw new Error(`${this.metadata.id}: step() called with no live agents; call reset() to start an episode`);
  }

  private computeMask(i: number): Uint8Array {
    const mask = new Uint8Array(NUM_ACTIONS);
    const r = this.playerRow[i];
    const c = this.playerCol[i];
    const cells = this.foodGrid.cells;
    const cols = this.cols;
    const at = r * cols + c;
    const northFood = r > 0 && cells[at - cols] !== EMPTY;
    const southFood = r < this.rows - 1 && cells[at + cols] !== EMPTY;
    const westFood = c > 0 && cells[at - 1] !== EMPTY;
    const eastFood = c < cols - 1 && cells[at + 1] !== EMPTY;
    mask[LbfAction.None] = 1;
    mask[LbfAction.North] = r > 0 && !northFood ? 1 : 0;
    mask[LbfAction.South] = r < this.rows - 1 && !southFood ? 1 : 0;
    mask[LbfAction.West] = c > 0 && !westFood ? 1 : 0;
    mask[LbfAction.East] = c < cols - 1 && !eastFood ? 1 : 0;
    mask[LbfAction.Load] = northFood || southFood || westFood || eastFood ? 1 : 0;
    return mask;
  }

  /** The food slot next to agent i that a LOAD targets (north, south, west, east first), or -1. */
  private adjacentFood(i: number): number {
    const r = this.playerRow[i];
    const c = this.playerCol[i];
    const g = this.foodGrid;
    if (r > 0 && g.get(r - 1, c) !== EMPTY) return g.get(r - 1, c);
    if (r < this.rows - 1 && g.get(r + 1, c) !== EMPTY) return g.get(r + 1, c);
    if (c > 0 && g.get(r, c - 1) !== EMPTY) return g.get(r, c - 1);
    if (c < this.cols - 1 && g.get(r, c + 1) !== EMPTY) return g.get(r, c + 1);
    return -1;
  }

  private resolveLoading(): void {
    const n = this.numPlayers;
    this.loadDone.fill(0);
    for (let i = 0; i < n; i++) {
      if (this.actionOf[i] !== LbfAction.Load || this.loadDone[i]) continue;
      const food = this.adjacentFood(i);
      if (food < 0) continue;
      const fr = this.foodRow[food];
      const fc = this.foodCol[food];
      // The group: every loader still waiting that is orthogonally next to this food.
      let groupLevel = 0;
      for (let j = i; j < n; j++) {
        if (this.actionOf[j] !== LbfAction.Load || this.loadDone[j]) continue;
        if (Math.abs(this.playerRow[j] - fr) + Math.abs(this.playerCol[j] - fc) !== 1) continue;
        this.loadDone[j] = 2; // 2 marks "in the current group"
        groupLevel += this.playerLevel[j];
      }
      const foodLevel = this.foodLevel[food];
      const collected = groupLevel >= foodLevel;
      for (let j = i; j < n; j++) {
        if (this.loadDone[j] !== 2) continue;
        this.loadDone[j] = 1;
        if (!collected) this.rewardOf[j] -= this.options.penalty;
        else if (this.options.normalizeReward) this.rewardOf[j] = (this.playerLevel[j] * foodLevel) / (groupLevel * this.foodLevelSpawned);
        else this.rewardOf[j] = this.playerLevel[j] * foodLevel;
      }
      if (collected) {
        this.foodAlive[food] = 0;
        this.foodGrid.set(fr, fc, EMPTY);
        this.foodLeft--;
      }
    }
  }

  private observe(i: number): Float32Array {
    const obs = new Float32Array(this.obsLength);
    const s = this.sight;
    const r = this.playerRow[i];
    const c = this.playerCol[i];
    // Top-left corner of the view window, as the reference's neighbourhood slice.
    const originRow = r > s ? r - s : 0;
    const originCol = c > s ? c - s : 0;
    let k = 0;
    for (let j = 0; j < this.foodCount; j++) {
      if (!this.foodAlive[j]) continue;
      const fr = this.foodRow[j];
      const fc = this.foodCol[j];
      if (fr < r - s || fr > r + s || fc < c - s || fc > c + s) continue;
      obs[k] = fr - originRow;
      obs[k + 1] = fc - originCol;
      obs[k + 2] = this.foodLevel[j];
      k += 3;
    }
    const foodEnd = 3 * this.maxFoods;
    for (; k < foodEnd; k += 3) obs[k] = obs[k + 1] = -1;

    obs[k] = r - originRow;
    obs[k + 1] = c - originCol;
    obs[k + 2] = this.playerLevel[i];
    k += 3;
    const window = 2 * s;
    for (let j = 0; j < this.numPlayers; j++) {
      if (j === i) continue;
      const y = this.playerRow[j] - originRow;
      const x = this.playerCol[j] - originCol;
      if (y < 0 || y > window || x < 0 || x > window) continue;
      obs[k] = y;
      obs[k + 1] = x;
      obs[k + 2] = this.playerLevel[j];
      k += 3;
    }
    for (; k < this.obsLength; k += 3) obs[k] = obs[k + 1] = -1;
    return obs;
  }

  private episodeSummary(): AgentInfo {
    return { foodCollected: this.foodCount - this.foodLeft, foodSpawned: this.foodCount, episodeSteps: this.currentStep };
  }

  private playerAt(row: number, col: number, placed: number): boolean {
    for (let j = 0; j < placed; j++) if (this.playerRow[j] === row && this.playerCol[j] === col) return true;
    return false;
  }

  private spawnPlayers(): void {
    const { minPlayerLevel, maxPlayerLevel } = this.options;
    for (let i = 0; i < this.numPlayers; i++) {
      let placed = false;
      for (let attempt = 0; attempt < SPAWN_ATTEMPTS && !placed; attempt++) {
        const row = this.rng.int(this.rows);
        const col = this.rng.int(this.cols);
        if (this.playerAt(row, col, i)) continue;
        this.playerRow[i] = row;
        this.playerCol[i] = col;
        placed = true;
      }
      if (!placed) this.placeOnRandomFreeCell(i);
      this.playerLevel[i] = minPlayerLevel + this.rng.int(maxPlayerLevel - minPlayerLevel + 1);
    }
  }

  private placeOnRandomFreeCell(i: number): void {
    const free: number[] = [];
    for (let cell = 0; cell < this.rows * this.cols; cell++) {
      if (!this.playerAt((cell / this.cols) | 0, cell % this.cols, i)) free.push(cell);
    }
    const cell = free[this.rng.int(free.length)];
    this.playerRow[i] = (cell / this.cols) | 0;
    this.playerCol[i] = cell % this.cols;
  }

  /** Reference rule: no food in the 3×3 block around (row, col), nor two cells away in its row or column. */
  private foodNear(row: number, col: number): boolean {
    const g = this.foodGrid;
    for (let r = Math.max(row - 1, 0); r <= Math.min(row + 1, this.rows - 1); r++) {
      for (let c = Math.max(col - 1, 0); c <= Math.min(col + 1, this.cols - 1); c++) if (g.get(r, c) !== EMPTY) return true;
    }
    if (row >= 2 && g.get(row - 2, col) !== EMPTY) return true;
    if (row + 2 < this.rows && g.get(row + 2, col) !== EMPTY) return true;
    if (col >= 2 && g.get(row, col - 2) !== EMPTY) return true;
    if (col + 2 < this.cols && g.get(row, col + 2) !== EMPTY) return true;
    return false;
  }

  private spawnFood(): void {
    const { minFoodLevel, maxFoodLevel, coop } = this.options;
    let maxLevel = maxFoodLevel;
    if (maxLevel === null) {
      // The sum of the three lowest agent levels of this episode.
      const levels = Array.from(this.playerLevel).sort((a, b) => a - b);
      maxLevel = levels.slice(0, 3).reduce((a, b) => a + b, 0);
    }
    const minLevel = coop ? maxLevel : minFoodLevel;
    let count = 0;
    for (let attempt = 0; attempt < SPAWN_ATTEMPTS && count < this.maxFoods; attempt++) {
      // Never on the border, so every food can be approached from all four sides.
      const row = 1 + this.rng.int(this.rows - 2);
      const col = 1 + this.rng.int(this.cols - 2);
      if (this.foodNear(row, col) || this.playerAt(row, col, this.numPlayers)) continue;
      const level = minLevel === maxLevel ? minLevel : minLevel + this.rng.int(maxLevel - minLevel + 1);
      this.foodGrid.set(row, col, count);
      this.foodRow[count] = row;
      this.foodCol[count] = col;
      this.foodLevel[count] = level;
      count++;
    }
    this.setFoods(count);
  }

  /** Sorts the first `count` food slots row-major, indexes them in the grid and resets the counters. */
  private setFoods(count: number): void {
    const order = Array.from({ length: count }, (_, j) => j).sort(
      (a, b) => this.foodRow[a] * this.cols + this.foodCol[a] - (this.foodRow[b] * this.cols + this.foodCol[b]),
    );
    const rows = order.map((j) => this.foodRow[j]);
    const cols = order.map((j) => this.foodCol[j]);
    const levels = order.map((j) => this.foodLevel[j]);
    this.foodGrid.clear();
    this.foodLevelSpawned = 0;
    for (let j = 0; j < count; j++) {
      this.foodRow[j] = rows[j];
      this.foodCol[j] = cols[j];
      this.foodLevel[j] = levels[j];
      this.foodAlive[j] = 1;
      this.foodGrid.set(rows[j], cols[j], j);
      this.foodLevelSpawned += levels[j];
    }
    this.foodCount = count;
    this.foodLeft = count;
  }

  private applyLayout(layout: LbfLayout): void {
    const id = this.metadata.id;
    const checkCell = (what: string, row: number, col: number): void => {
      if (!Number.isInteger(row) || !Number.isInteger(col) || !this.foodGrid.inBounds(row, col)) {
        throw new Error(`${id}: layout ${what} at (${row}, ${col}) is outside the ${this.rows}x${this.cols} board`);
      }
    };
    const checkLevel = (what: string, level: number, min: number, max: number): void => {
      if (!Number.isInteger(level) || level < min || level > max) throw new Error(`${id}: layout ${what} has level ${level}, outside [${min}, ${max}]`);
    };
    if (!Array.isArray(layout.players) || layout.players.length !== this.numPlayers) {
      throw new Error(`${id}: layout.players must list exactly ${this.numPlayers} agents`);
    }
    if (!Array.isArray(layout.foods) || layout.foods.length > this.maxFoods) {
      throw new Error(`${id}: layout.foods must list at most ${this.maxFoods} foods`);
    }
    layout.foods.forEach((f, j) => {
      checkCell(`food ${j}`, f.row, f.col);
      checkLevel(`food ${j}`, f.level, 1, this.foodLevelBound);
      if (this.foodGrid.get(f.row, f.col) !== EMPTY) throw new Error(`${id}: layout food ${j} shares cell (${f.row}, ${f.col}) with another food`);
      this.foodGrid.set(f.row, f.col, j);
      this.foodRow[j] = f.row;
      this.foodCol[j] = f.col;
      this.foodLevel[j] = f.level;
    });
    layout.players.forEach((p, i) => {
      checkCell(`agent ${i}`, p.row, p.col);
      checkLevel(`agent ${i}`, p.level, 1, this.options.maxPlayerLevel);
      if (this.foodGrid.get(p.row, p.col) !== EMPTY) throw new Error(`${id}: layout agent ${i} stands on food at (${p.row}, ${p.col})`);
      this.playerRow[i] = p.row;
      this.playerCol[i] = p.col;
      this.playerLevel[i] = p.level;
    });
    this.setFoods(layout.foods.length);
  }
}

function agentLetter(i: number): string {
  return i < 26 ? String.fromCharCode(65 + i) : '@';
}

function readResetOptions(id: string, options: Record<string, unknown> | undefined): LbfLayout | undefined {
  if (options === undefined) return undefined;
  for (const key of Object.keys(options)) {
    if (key !== 'layout') throw new Error(`${id}: unknown reset option '${key}' (known: layout)`);
  }
  const layout = options.layout;
  if (layout === undefined) return undefined;
  if (typeof layout !== 'object' || layout === null) throw new Error(`${id}: reset option 'layout' must be an object with players and foods`);
  return layout as LbfLayout;
}

/** `lbf-[{sight}s-]{rows}x{cols}-{players}p-{foods}f[-coop]`, as the reference's `Foraging[-{sight}s]-…-v3`. */
const LBF_ID = /^lbf-(?:(\d+)s-)?(\d+)x(\d+)-(\d+)p-(\d+)f(-coop)?$/;

/** The options an LBF scenario id encodes, or undefined when `id` is not an LBF scenario id. */
export function parseLbfId(id: string): LbfOptions | undefined {
  const m = LBF_ID.exec(id);
  if (!m) return undefined;
  const [, sight, rows, cols, players, foods, coop] = m;
  const options: LbfOptions = rows === cols ? { size: Number(rows) } : { rows: Number(rows), cols: Number(cols) };
  options.players = Number(players);
  options.foods = Number(foods);
  options.coop = coop !== undefined;
  if (sight !== undefined) options.sight = Number(sight);
  return options;
}

/** Common scenarios from the LBF literature, listed by `troupe envs`; every other id of the form parses. */
export const LISTED_LBF_IDS: readonly string[] = [
  'lbf-8x8-2p-2f-coop',
  'lbf-2s-8x8-2p-2f-coop',
  'lbf-10x10-2p-3f',
  'lbf-10x10-3p-3f',
  'lbf-2s-10x10-3p-3f',
  'lbf-15x15-4p-5f',
];

let lbfRegistered = false;

/** Registers `lbf` (all options), the listed scenarios and the parser for every other LBF id. Idempotent. */
export function registerLbf(): void {
  if (lbfRegistered) return;
  lbfRegistered = true;
  const factory = (options: Record<string, unknown>): LbfEnv => new LbfEnv(options as LbfOptions);
  registerEnv('lbf', factory, {
    family: LBF_FAMILY,
    listed: false,
    optionKeys: OPTION_KEYS,
    description: 'Level-Based Foraging (lbforaging v3); configure with options or use an id such as lbf-8x8-2p-2f-coop',
  });
  for (const id of LISTED_LBF_IDS) {
    const options = parseLbfId(id) as Record<string, unknown>;
    const o = resolveLbfOptions(options);
    registerEnv(id, factory, {
      family: LBF_FAMILY,
      options,
      optionKeys: OPTION_KEYS,
      description: `Level-Based Foraging ${o.rows}x${o.cols}, ${o.players} agents, ${o.foods} foods${o.coop ? ', cooperative' : ''}${o.sight < Math.max(o.rows, o.cols) ? `, sight ${o.sight}` : ''}`,
    });
  }
  registerScenarioParser((id) => {
    const options = parseLbfId(id);
    return options ? { baseId: 'lbf', options: options as Record<string, unknown> } : undefined;
  });
}
