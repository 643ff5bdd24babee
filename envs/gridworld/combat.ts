/**
 * SMAC-style combat micromanagement on a grid: allied units (the agents) fight a team driven by
 * a scripted AI. Rules, observation and state layouts and the reward follow SMAC
 * (Samvelyan et al., 2019) where a grid allows; differences are documented where they occur.
 *
 * Step order: (1) the scripted enemy picks its orders from the state before the step;
 * (2) moves resolve one unit at a time, alternating teams (ally k, enemy k, … on even steps,
 * enemy k first on odd steps); a move into a cell taken earlier in the same step fails and the
 * unit stays; (3) all attacks of both teams resolve simultaneously from the new positions, so a
 * unit killed in this step still fires, and an attack whose target has just stepped out of
 * range is not fired (no damage, no cooldown): as in StarCraft, stepping back while reloading
 * makes enemy shots miss, which is the micro (with focus fire) that beats the scripted AI;
 * (4) dead units leave the board; (5) cooldowns tick down.
 */
import { BaseParallelEnv } from '../base-parallel-env';
import { allocateObservationArrays } from './observation-arrays';
import type { AgentId, AgentInfo, PerAgent, ResetArgs, ResetResult, StepResult } from '../parallel-env';
import { registerEnv, registerScenarioParser } from '../registry';
import { Box } from '../spaces/box';
import { Discrete } from '../spaces/discrete';
import { validateActions } from '../validate-actions';
import { closestTargetAction } from './combat-enemy-ai';
import { CombatAction, MOVE_COL_DELTA, MOVE_ROW_DELTA, N_BASIC_ACTIONS, UnitTable, parseUnitMix, type UnitTypeCode } from './combat-units';
import { chebyshev, Grid } from './grid';

export const COMBAT_FAMILY = 'gridworld/combat';

/** SMAC's reward constants: every episode's return is at most `REWARD_SCALE_RATE`. */
export const KILL_BONUS = 10;
export const WIN_BONUS = 200;
export const REWARD_SCALE_RATE = 20;
/** Weight of damage and deaths suffered when `rewardOnlyPositive` is false (SMAC's reward_negative_scale). */
export const REWARD_NEGATIVE_SCALE = 0.5;

/** Feature offsets inside one enemy slot of an observation. */
export const EnemyFeature = { VISIBLE: 0, ATTACKABLE: 1, DISTANCE: 2, REL_X: 3, REL_Y: 4, HEALTH: 5, TYPE: 6 } as const;
/** Feature offsets inside one ally slot of an observation. */
export const AllyFeature = { VISIBLE: 0, DISTANCE: 1, REL_X: 2, REL_Y: 3, HEALTH: 4, COOLDOWN: 5, TYPE: 6 } as const;
/** Feature offsets inside the agent's own block of an observation. */
export const OwnFeature = { HEALTH: 0, COOLDOWN: 1, ROW: 2, COL: 3, TYPE: 4 } as const;

/**
 * Where each block lives in an observation. Layout (SMAC's order): 4 move flags (N, S, E, W;
 * 1 = the cell is on the grid and free), then one slot per enemy, then one slot per other
 * ally (ally index order, skipping the observer), then the agent's own features. A slot is all
 * zeros when its unit is dead or farther than the observer's sight (Chebyshev). Distances and
 * relative offsets are divided by the observer's sight, so they lie in [0, 1] and [-1, 1];
 * REL_X grows eastward and REL_Y southward (down the rows). Health is a fraction of max;
 * cooldown is steps left / attack period (0 = ready); ROW and COL are normalised to [0, 1].
 */
export interface CombatObservationLayout {
  readonly moveOffset: number;
  readonly enemyOffset: number;
  readonly enemyFeatureSize: number;
  readonly allyOffset: number;
  readonly allyFeatureSize: number;
  readonly ownOffset: number;
  readonly ownFeatureSize: number;
  /** Length of the unit-type one-hot: the number of distinct types in the battle. */
  readonly typeBits: number;
  readonly size: number;
}

/** Feature offsets inside one ally's block of the global state. */
export const StateAllyFeature = { HEALTH: 0, COOLDOWN: 1, REL_X: 2, REL_Y: 3, TYPE: 4 } as const;
/** Feature offsets inside one enemy's block of the global state. */
export const StateEnemyFeature = { HEALTH: 0, REL_X: 1, REL_Y: 2, TYPE: 3 } as const;

/**
 * The global state (SMAC's): one block per ally, one per enemy (dead units are zeros), then
 * optionally every ally's last action one-hot (zeros at reset and for dead allies).
 * Positions are relative to the map centre, divided by half the map size, so in [-1, 1].
 */
export interface CombatStateLayout {
  readonly allyOffset: number;
  readonly allyFeatureSize: number;
  readonly enemyOffset: number;
  readonly enemyFeatureSize: number;
  /** -1 when last actions are not part of the state. */
  readonly lastActionOffset: number;
  readonly size: number;
}

/** Options of the combat env (registry defaults, values parsed from the id, then user options). */
export interface CombatOptions {
  /** Allied unit mix, e.g. `3m` or `2a3b` (type codes: a stalker-like, b zealot-like, m marine). */
  allies: string;
  /** Enemy unit mix, same form. */
  enemies: string;
  /** Time limit in steps; default grows with the larger team (60 for 3 units, 180 at most). */
  maxEpisodeSteps: number;
  /** Board size; defaults grow with the larger team (8 × 14 up to six units a side). */
  rows: number;
  cols: number;
  /** `closest`: SMAC-like scripted AI. `idle`: enemies only stop (controlled tests, curricula). */
  enemyAi: 'closest' | 'idle';
  /** SMAC's default: reward only damage dealt, kills and the win; otherwise also subtract half of damage and deaths suffered. */
  rewardOnlyPositive: boolean;
  /** Append every ally's last action to the state (SMAC's state_last_action). */
  stateLastAction: boolean;
}

/** Every key of `CombatOptions` (the record type makes the compiler keep the list complete). */
const COMBAT_OPTION_KEYS = Object.keys({
  allies: true,
  enemies: true,
  maxEpisodeSteps: true,
  rows: true,
  cols: true,
  enemyAi: true,
  rewardOnlyPositive: true,
  stateLastAction: true,
} satisfies Record<keyof CombatOptions, true>);

/** Where to put one unit at reset instead of the random spawn. */
export interface UnitPlacement {
  row: number;
  col: number;
  /** Starting hit points, in (0, max]; default max. */
  hp?: number;
  /** Starting cooldown, 0 (ready) up to the unit's attack period; default 0. */
  cooldown?: number;
}

/**
 * Test / scenario hook: `reset({ options: { placements: { allies: [...], enemies: [...] } } })`
 * places a team's units exactly (one entry per unit of that team, in unit order). A team without
 * placements spawns randomly as usual, avoiding occupied cells.
 */
export interface CombatPlacements {
  allies?: UnitPlacement[];
  enemies?: UnitPlacement[];
}

/** Columns of each team's spawn rectangle, counted from its own edge (one free column behind it). */
const SPAWN_COLS = 3;

/**
 * The combat env. Observations returned by one `step` are views into one buffer shared by that
 * step's agents (`obs.buffer` spans them all); they are never written again, but copy with
 * `slice()` before transferring a buffer to another thread.
 */
export class CombatEnv extends BaseParallelEnv<Float32Array, number, Box, Discrete> {
  /**
   * Every unit's stats and battle state (allies first). Exposed read-only for scripted
   * policies, tests and renderers; mutating it corrupts the episode.
   */
  readonly units: UnitTable;
  /** The board; cells hold unit indices. Read-only for the same reason. */
  readonly grid: Grid;
  readonly observationLayout: CombatObservationLayout;
  readonly stateLayout: CombatStateLayout;
  readonly stateSpace: Box;
  readonly nActions: number;
  readonly options: Readonly<CombatOptions>;

  private steps = 0;
  private readonly spawnRows: number;
  private readonly rewardScale: number;
  /** Per unit: the order it executes this step. */
  private readonly orders: Int32Array;
  private readonly damageTaken: Float64Array;
  /** Per ally: last action, -1 for none. */
  private readonly lastActions: Int32Array;

  constructor(options: Partial<CombatOptions> & { id?: string } = {}) {
    const allyTypes = parseMixOption(options.allies ?? '3m', 'allies');
    const enemyTypes = parseMixOption(options.enemies ?? '3m', 'enemies');
    const largestTeam = Math.max(allyTypes.length, enemyTypes.length);
    const spawnRows = Math.max(3, Math.ceil((2 * largestTeam) / SPAWN_COLS));
    const defaultRows = Math.max(8, spawnRows + 4);
    const resolved: CombatOptions = {
      allies: options.allies ?? '3m',
      enemies: options.enemies ?? '3m',
      maxEpisodeSteps: options.maxEpisodeSteps ?? defaultTimeLimit(largestTeam),
      rows: options.rows ?? defaultRows,
      cols: options.cols ?? Math.max(14, defaultRows + 6),
      enemyAi: options.enemyAi ?? 'closest',
      rewardOnlyPositive: options.rewardOnlyPositive ?? true,
      stateLastAction: options.stateLastAction ?? true,
    };
    checkOptions(resolved, spawnRows);

    const units = new UnitTable(allyTypes, enemyTypes);
    const { nAllies, nEnemies } = units;
    const id = options.id ?? `combat-${resolved.allies}-vs-${resolved.enemies}`;
    const nActions = N_BASIC_ACTIONS + nEnemies;

    const typeBits = units.typeCodes.length;
    const enemyFeatureSize = EnemyFeature.TYPE + typeBits;
    const allyFeatureSize = AllyFeature.TYPE + typeBits;
    const enemyOffset = 4;
    const allyOffset = enemyOffset + nEnemies * enemyFeatureSize;
    const ownOffset = allyOffset + (nAllies - 1) * allyFeatureSize;
    const ownFeatureSize = OwnFeature.TYPE + typeBits;
    const observationLayout: CombatObservationLayout = {
      moveOffset: 0,
      enemyOffset,
      enemyFeatureSize,
      allyOffset,
      allyFeatureSize,
      ownOffset,
      ownFeatureSize,
      typeBits,
      size: ownOffset + ownFeatureSize,
    };
    const obsLow = new Float32Array(observationLayout.size);
    for (let j = 0; j < nEnemies; j++) {
      obsLow[enemyOffset + j * enemyFeatureSize + EnemyFeature.REL_X] = -1;
      obsLow[enemyOffset + j * enemyFeatureSize + EnemyFeature.REL_Y] = -1;
    }
    for (let k = 0; k < nAllies - 1; k++) {
      obsLow[allyOffset + k * allyFeatureSize + AllyFeature.REL_X] = -1;
      obsLow[allyOffset + k * allyFeatureSize + AllyFeature.REL_Y] = -1;
    }
    super({
      metadata: {
        id,
        family: COMBAT_FAMILY,
        maxEpisodeSteps: resolved.maxEpisodeSteps,
        reportsSuccess: true,
        teamReward: 'shared',
        description: `${resolved.allies} vs ${resolved.enemies} scripted AI on ${resolved.rows}x${resolved.cols}, ${resolved.maxEpisodeSteps} steps`,
      },
      agents: nAllies,
      observationSpace: new Box(obsLow, 1, [observationLayout.size]),
      actionSpace: new Discrete(nActions),
    });
    this.spawnRows = spawnRows;
    this.options = resolved;
    this.units = units;
    this.grid = new Grid(resolved.rows, resolved.cols);
    this.nActions = nActions;
    this.observationLayout = observationLayout;

    const stateAllySize = StateAllyFeature.TYPE + typeBits;
    const stateEnemySize = StateEnemyFeature.TYPE + typeBits;
    const stateEnemyOffset = nAllies * stateAllySize;
    const lastActionOffset = resolved.stateLastAction ? stateEnemyOffset + nEnemies * stateEnemySize : -1;
    this.stateLayout = {
      allyOffset: 0,
      allyFeatureSize: stateAllySize,
      enemyOffset: stateEnemyOffset,
      enemyFeatureSize: stateEnemySize,
      lastActionOffset,
      size: stateEnemyOffset + nEnemies * stateEnemySize + (resolved.stateLastAction ? nAllies * this.nActions : 0),
    };
    const stateLow = new Float32Array(this.stateLayout.size);
    for (let i = 0; i < nAllies; i++) {
      stateLow[i * stateAllySize + StateAllyFeature.REL_X] = -1;
      stateLow[i * stateAllySize + StateAllyFeature.REL_Y] = -1;
    }
    for (let j = 0; j < nEnemies; j++) {
      stateLow[stateEnemyOffset + j * stateEnemySize + StateEnemyFeature.REL_X] = -1;
      stateLow[stateEnemyOffset + j * stateEnemySize + StateEnemyFeature.REL_Y] = -1;
    }
    this.stateSpace = new Box(stateLow, 1, [this.stateLayout.size]);

    let enemyHp = 0;
    for (let j = 0; j < nEnemies; j++) enemyHp += this.units.maxHp[nAllies + j];
    this.rewardScale = REWARD_SCALE_RATE / (enemyHp + KILL_BONUS * nEnemies + WIN_BONUS);

    this.orders = new Int32Array(this.units.count);
    this.damageTaken = new Float64Array(this.units.count);
    this.lastActions = new Int32Array(nAllies).fill(-1);
  }

  /** Steps taken in the current episode. */
  get stepCount(): number {
    return this.steps;
  }

  override reset(args: ResetArgs = {}): ResetResult<Float32Array> {
    this.seedRng(args);
    this.spawn(readPlacements(args.options));
    this.steps = 0;
    this.lastActions.fill(-1);
    this.startEpisode();
    const observations: PerAgent<Float32Array> = {};
    const infos: PerAgent<AgentInfo> = {};
    for (let i = 0; i < this.units.nAllies; i++) {
      const agent = this.possibleAgents[i];
      observations[agent] = this.observe(i);
      infos[agent] = {};
    }
    return { observations, infos };
  }

  /**
   * STOP is always legal and NO_OP never is (see `CombatAction`); a move is legal when its cell
   * is on the grid and free; an attack is legal when the enemy is alive and within range.
   * Attacks stay legal during cooldown, as in SMAC: the unit then holds its fire this step.
   * Legality is judged before the step; the shot is not fired if the target moves out of range.
   */
  actionMask(agent: AgentId): Uint8Array {
    const u = this.liveIndexOf(agent);
    const units = this.units;
    const mask = new Uint8Array(this.nActions);
    mask[CombatAction.STOP] = 1;
    const row = units.row[u];
    const col = units.col[u];
    for (let d = 0; d < 4; d++) {
      if (this.grid.isFree(row + MOVE_ROW_DELTA[d], col + MOVE_COL_DELTA[d])) mask[CombatAction.MOVE_NORTH + d] = 1;
    }
    const range = units.range[u];
    const nAllies = units.nAllies;
    for (let j = 0; j < units.nEnemies; j++) {
      const e = nAllies + j;
      if (units.alive[e] && chebyshev(row, col, units.row[e], units.col[e]) <= range) mask[CombatAction.ATTACK_FIRST + j] = 1;
    }
    return mask;
  }

  /** The scripted AI's action for a live ally (for AI-vs-AI baselines); always legal. */
  scriptedAction(agent: AgentId): number {
    return closestTargetAction(this.units, this.grid, this.liveIndexOf(agent));
  }

  override step(actions: PerAgent<number>): StepResult<Float32Array> {
    const acted = this.beginStep(actions);
    const units = this.units;
    const { nAllies, nEnemies, count } = units;
    const orders = this.orders;
    orders.fill(CombatAction.NO_OP);
    this.lastActions.fill(-1);
    for (let k = 0; k < acted.length; k++) {
      const agent = acted[k];
      const u = this.indexOf(agent);
      orders[u] = actions[agent];
      this.lastActions[u] = actions[agent];
    }
    if (this.options.enemyAi === 'closest') {
      for (let e = nAllies; e < count; e++) if (units.alive[e]) orders[e] = closestTargetAction(units, this.grid, e);
    } else {
      for (let e = nAllies; e < count; e++) if (units.alive[e]) orders[e] = CombatAction.STOP;
    }

    this.resolveMoves();
    const rawReward = this.resolveAttacks();
    for (let u = 0; u < count; u++) if (units.cooldown[u] > 0) units.cooldown[u]--;
    this.steps++;

    let alliesAlive = 0;
    let enemiesAlive = 0;
    for (let u = 0; u < nAllies; u++) alliesAlive += units.alive[u];
    for (let e = nAllies; e < count; e++) enemiesAlive += units.alive[e];
    const battleOver = alliesAlive === 0 || enemiesAlive === 0;
    // SMAC counts mutual annihilation as not won.
    const won = alliesAlive > 0 && enemiesAlive === 0;
    const timeUp = !battleOver && this.steps >= this.options.maxEpisodeSteps;
    const reward = (rawReward + (won ? WIN_BONUS : 0)) * this.rewardScale;
    const episodeEnds = battleOver || timeUp;

    const observations: PerAgent<Float32Array> = {};
    const rewards: PerAgent<number> = {};
    const terminations: PerAgent<boolean> = {};
    const truncations: PerAgent<boolean> = {};
    const infos: PerAgent<AgentInfo> = {};
    let someoneLeaves = episodeEnds;
    const size = this.observationLayout.size;
    const arrays = allocateObservationArrays(acted.length, size);
    for (let k = 0; k < acted.length; k++) {
      const agent = acted[k];
      const u = this.indexOf(agent);
      const alive = units.alive[u] === 1;
      // SMAC gives dead agents all-zero observations.
      const obs = arrays[k];
      if (alive) this.observeInto(u, obs);
      observations[agent] = obs;
      // The team reward goes to every agent that acted, including those killed by this step.
      rewards[agent] = reward;
      terminations[agent] = !alive || battleOver;
      truncations[agent] = alive && timeUp;
      infos[agent] = episodeEnds ? { won, deadAllies: nAllies - alliesAlive, deadEnemies: nEnemies - enemiesAlive } : {};
      if (!alive) someoneLeaves = true;
    }
    return this.finishStep({ observations, rewards, terminations, truncations, infos }, someoneLeaves);
  }

  state(): Float32Array {
    const units = this.units;
    const layout = this.stateLayout;
    const out = new Float32Array(layout.size);
    const centerRow = (this.grid.rows - 1) / 2;
    const centerCol = (this.grid.cols - 1) / 2;
    const halfRows = Math.max(centerRow, 1);
    const halfCols = Math.max(centerCol, 1);
    for (let u = 0; u < units.count; u++) {
      if (!units.alive[u]) continue;
      const health = units.hp[u] / units.maxHp[u];
      const relX = (units.col[u] - centerCol) / halfCols;
      const relY = (units.row[u] - centerRow) / halfRows;
      if (u < units.nAllies) {
        const base = layout.allyOffset + u * layout.allyFeatureSize;
        out[base + StateAllyFeature.HEALTH] = health;
        out[base + StateAllyFeature.COOLDOWN] = units.cooldown[u] / units.attackPeriod[u];
        out[base + StateAllyFeature.REL_X] = relX;
        out[base + StateAllyFeature.REL_Y] = relY;
        out[base + StateAllyFeature.TYPE + units.typeIndex[u]] = 1;
      } else {
        const base = layout.enemyOffset + (u - units.nAllies) * layout.enemyFeatureSize;
        out[base + StateEnemyFeature.HEALTH] = health;
        out[base + StateEnemyFeature.REL_X] = relX;
        out[base + StateEnemyFeature.REL_Y] = relY;
        out[base + StateEnemyFeature.TYPE + units.typeIndex[u]] = 1;
      }
    }
    if (layout.lastActionOffset >= 0) {
      for (let i = 0; i < units.nAllies; i++) {
        const a = this.lastActions[i];
        if (a >= 0) out[layout.lastActionOffset + i * this.nActions + a] = 1;
      }
    }
    return out;
  }

  /** The board (allies upper-case, enemies lower-case type letters), then one line per unit. */
  override render(mode = 'ansi'): string {
    if (mode !== 'ansi') throw new Error(`${this.metadata.id}: render mode '${mode}' is not supported (only 'ansi')`);
    const units = this.units;
    const board = this.grid.render((u) => {
      const code = units.typeCodes[units.typeIndex[u]];
      return units.isAlly(u) ? code.toUpperCase() : code;
    });
    const lines = [`step ${this.steps}/${this.options.maxEpisodeSteps}`, board];
    for (let u = 0; u < units.count; u++) {
      const name = units.isAlly(u) ? `agent_${u}` : `enemy_${u - units.nAllies}`;
      const where = units.alive[u] ? `(${units.row[u]},${units.col[u]})` : 'dead';
      lines.push(`${name} ${units.typeCodes[units.typeIndex[u]]} hp ${units.hp[u]}/${units.maxHp[u]} cd ${units.cooldown[u]} ${where}`);
    }
    return lines.join('\n');
  }

  /** Applies every unit's attack order at once, after moves; returns the raw (unscaled) reward of this phase. */
  private resolveAttacks(): number {
    const units = this.units;
    const { count, nAllies } = units;
    const damageTaken = this.damageTaken;
    damageTaken.fill(0);
    for (let u = 0; u < count; u++) {
      const order = this.orders[u];
      if (order < CombatAction.ATTACK_FIRST || !units.alive[u] || units.cooldown[u] > 0) continue;
      const target = units.opponentStart(u) + order - CombatAction.ATTACK_FIRST;
      if (!units.alive[target]) continue;
      if (chebyshev(units.row[u], units.col[u], units.row[target], units.col[target]) > units.range[u]) continue;
      damageTaken[target] += units.damage[u];
      units.cooldown[u] = units.attackPeriod[u];
    }
    let gained = 0;
    let lost = 0;
    for (let u = 0; u < count; u++) {
      if (damageTaken[u] === 0) continue;
      const dealt = Math.min(units.hp[u], damageTaken[u]);
      units.hp[u] -= dealt;
      const killed = units.hp[u] <= 0;
      if (killed) {
        units.hp[u] = 0;
        units.alive[u] = 0;
        this.grid.set(units.row[u], units.col[u], -1);
      }
      if (u >= nAllies) gained += dealt + (killed ? KILL_BONUS : 0);
      else lost += dealt + (killed ? KILL_BONUS : 0);
    }
    return this.options.rewardOnlyPositive ? gained : gained - REWARD_NEGATIVE_SCALE * lost;
  }

  /** Moves units one at a time, alternating teams, with the leading team alternating per step. */
  private resolveMoves(): void {
    const { nAllies, nEnemies } = this.units;
    const allyFirst = this.steps % 2 === 0;
    const rounds = Math.max(nAllies, nEnemies);
    for (let k = 0; k < rounds; k++) {
      const first = allyFirst ? k : nAllies + k;
      const second = allyFirst ? nAllies + k : k;
      if (allyFirst ? k < nAllies : k < nEnemies) this.moveUnit(first);
      if (allyFirst ? k < nEnemies : k < nAllies) this.moveUnit(second);
    }
  }

  private moveUnit(u: number): void {
    const units = this.units;
    const order = this.orders[u];
    if (!units.alive[u] || order < CombatAction.MOVE_NORTH || order > CombatAction.MOVE_WEST) return;
    const d = order - CombatAction.MOVE_NORTH;
    const row = units.row[u];
    const col = units.col[u];
    const toRow = row + MOVE_ROW_DELTA[d];
    const toCol = col + MOVE_COL_DELTA[d];
    if (!this.grid.isFree(toRow, toCol)) return;
    this.grid.move(row, col, toRow, toCol);
    units.row[u] = toRow;
    units.col[u] = toCol;
  }

  /** Writes ally `u`'s observation (see `CombatObservationLayout`) into a new array. */
  private observe(u: number): Float32Array {
    const out = new Float32Array(this.observationLayout.size);
    this.observeInto(u, out);
    return out;
  }

  private observeInto(u: number, out: Float32Array): void {
    const units = this.units;
    const layout = this.observationLayout;
    const grid = this.grid;
    const row = units.row[u];
    const col = units.col[u];
    for (let d = 0; d < 4; d++) {
      if (grid.isFree(row + MOVE_ROW_DELTA[d], col + MOVE_COL_DELTA[d])) out[layout.moveOffset + d] = 1;
    }
    const sight = units.sight[u];
    const range = units.range[u];
    const nAllies = units.nAllies;
    for (let j = 0; j < units.nEnemies; j++) {
      const e = nAllies + j;
      if (!units.alive[e]) continue;
      const dist = chebyshev(row, col, units.row[e], units.col[e]);
      if (dist > sight) continue;
      const base = layout.enemyOffset + j * layout.enemyFeatureSize;
      out[base + EnemyFeature.VISIBLE] = 1;
      out[base + EnemyFeature.ATTACKABLE] = dist <= range ? 1 : 0;
      out[base + EnemyFeature.DISTANCE] = dist / sight;
      out[base + EnemyFeature.REL_X] = (units.col[e] - col) / sight;
      out[base + EnemyFeature.REL_Y] = (units.row[e] - row) / sight;
      out[base + EnemyFeature.HEALTH] = units.hp[e] / units.maxHp[e];
      out[base + EnemyFeature.TYPE + units.typeIndex[e]] = 1;
    }
    let slot = 0;
    for (let a = 0; a < nAllies; a++) {
      if (a === u) continue;
      const base = layout.allyOffset + slot * layout.allyFeatureSize;
      slot++;
      if (!units.alive[a]) continue;
      const dist = chebyshev(row, col, units.row[a], units.col[a]);
      if (dist > sight) continue;
      out[base + AllyFeature.VISIBLE] = 1;
      out[base + AllyFeature.DISTANCE] = dist / sight;
      out[base + AllyFeature.REL_X] = (units.col[a] - col) / sight;
      out[base + AllyFeature.REL_Y] = (units.row[a] - row) / sight;
      out[base + AllyFeature.HEALTH] = units.hp[a] / units.maxHp[a];
      out[base + AllyFeature.COOLDOWN] = units.cooldown[a] / units.attackPeriod[a];
      out[base + AllyFeature.TYPE + units.typeIndex[a]] = 1;
    }
    const own = layout.ownOffset;
    out[own + OwnFeature.HEALTH] = units.hp[u] / units.maxHp[u];
    out[own + OwnFeature.COOLDOWN] = units.cooldown[u] / units.attackPeriod[u];
    out[own + OwnFeature.ROW] = grid.rows > 1 ? row / (grid.rows - 1) : 0;
    out[own + OwnFeature.COL] = grid.cols > 1 ? col / (grid.cols - 1) : 0;
    out[own + OwnFeature.TYPE + units.typeIndex[u]] = 1;
  }

  /**
   * Puts every unit on the board at full health. Random spawns: each team fills random distinct
   * cells of a SPAWN_COLS-wide rectangle by its own edge, whose centre row is jittered by ±1.
   */
  private spawn(placements: CombatPlacements): void {
    const units = this.units;
    const grid = this.grid;
    grid.clear();
    for (let u = 0; u < units.count; u++) {
      units.hp[u] = units.maxHp[u];
      units.cooldown[u] = 0;
      units.alive[u] = 1;
    }
    const teams: Array<{ first: number; size: number; placed?: UnitPlacement[]; name: string; leftEdge: boolean }> = [
      { first: 0, size: units.nAllies, placed: placements.allies, name: 'allies', leftEdge: true },
      { first: units.nAllies, size: units.nEnemies, placed: placements.enemies, name: 'enemies', leftEdge: false },
    ];
    for (const team of teams) {
      if (!team.placed) continue;
      if (team.placed.length !== team.size) {
        throw new Error(`${this.metadata.id}: placements.${team.name} has ${team.placed.length} entries, the team has ${team.size} units`);
      }
      team.placed.forEach((p, k) => this.placeUnit(team.first + k, p, `placements.${team.name}[${k}]`));
    }
    for (const team of teams) {
      if (team.placed) continue;
      const centerRow = Math.floor((grid.rows - 1) / 2) + this.rng.int(3) - 1;
      const top = Math.min(Math.max(centerRow - Math.floor(this.spawnRows / 2), 0), grid.rows - this.spawnRows);
      const left = team.leftEdge ? 1 : grid.cols - 1 - SPAWN_COLS;
      const free: number[] = [];
      for (let r = top; r < top + this.spawnRows; r++) {
        for (let c = left; c < left + SPAWN_COLS; c++) if (grid.isFree(r, c)) free.push(r * grid.cols + c);
      }
      if (free.length < team.size) throw new Error(`${this.metadata.id}: placements leave no room to spawn the ${team.name}`);
      this.rng.shuffle(free);
      for (let k = 0; k < team.size; k++) {
        const u = team.first + k;
        units.row[u] = Math.floor(free[k] / grid.cols);
        units.col[u] = free[k] % grid.cols;
        grid.set(units.row[u], units.col[u], u);
      }
    }
  }

  private placeUnit(u: number, p: UnitPlacement, where: string): void {
    const units = this.units;
    if (!Number.isInteger(p.row) || !Number.isInteger(p.col) || !this.grid.inBounds(p.row, p.col)) {
      throw new Error(`${this.metadata.id}: ${where} (${p.row}, ${p.col}) is not a cell of the ${this.grid.rows}x${this.grid.cols} grid`);
    }
    if (!this.grid.isFree(p.row, p.col)) throw new Error(`${this.metadata.id}: ${where} (${p.row}, ${p.col}) is already occupied`);
    if (p.hp !== undefined) {
      if (!(p.hp > 0 && p.hp <= units.maxHp[u])) throw new Error(`${this.metadata.id}: ${where}.hp must be in (0, ${units.maxHp[u]}], got ${p.hp}`);
      units.hp[u] = p.hp;
    }
    if (p.cooldown !== undefined) {
      if (!Number.isInteger(p.cooldown) || p.cooldown < 0 || p.cooldown > units.attackPeriod[u]) {
        throw new Error(`${this.metadata.id}: ${where}.cooldown must be an integer in [0, ${units.attackPeriod[u]}], got ${p.cooldown}`);
      }
      units.cooldown[u] = p.cooldown;
    }
    units.row[u] = p.row;
    units.col[u] = p.col;
    this.grid.set(p.row, p.col, u);
  }

  /** Combat has always checked the actions first, so a stray action names its agent instead of the ended episode. */
  protected override rejectStep(actions: PerAgent<number>): never {
    validateActions(this, actions);
    throw new Error(`${this.metadata.id}: step() called after the episode ended; call reset() first`);
  }

  private liveIndexOf(agent: AgentId): number {
    const u = this.indexOf(agent);
    if (!this.agents.includes(agent)) throw new Error(`${this.metadata.id}: '${agent}' is not live (dead, or the episode is over)`);
    return u;
  }
}

/** SMAC-like per-map limits: 60 steps for three units a side, more for larger battles, at most 180. */
export function defaultTimeLimit(largestTeam: number): number {
  return Math.min(180, Math.max(60, 30 + 10 * largestTeam));
}

function parseMixOption(mix: unknown, name: string): UnitTypeCode[] {
  const units = typeof mix === 'string' ? parseUnitMix(mix) : undefined;
  if (!units) throw new Error(`combat: option '${name}' must be a unit mix such as '3m' or '2a3b' (a, b, m), got ${String(mix)}`);
  if (units.length > MAX_TEAM) throw new Error(`combat: option '${name}' has ${units.length} units; at most ${MAX_TEAM} per team`);
  return units;
}

const MAX_TEAM = 64;

function checkOptions(o: CombatOptions, spawnRows: number): void {
  const positiveInt = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (!positiveInt(o.maxEpisodeSteps)) throw new Error(`combat: maxEpisodeSteps must be a positive integer, got ${String(o.maxEpisodeSteps)}`);
  if (!positiveInt(o.rows) || o.rows < spawnRows) throw new Error(`combat: rows must be an integer ≥ ${spawnRows} for these teams, got ${String(o.rows)}`);
  if (!positiveInt(o.cols) || o.cols < 2 * (SPAWN_COLS + 1)) throw new Error(`combat: cols must be an integer ≥ ${2 * (SPAWN_COLS + 1)}, got ${String(o.cols)}`);
  if (o.enemyAi !== 'closest' && o.enemyAi !== 'idle') throw new Error(`combat: enemyAi must be 'closest' or 'idle', got ${String(o.enemyAi)}`);
  if (typeof o.rewardOnlyPositive !== 'boolean') throw new Error(`combat: rewardOnlyPositive must be a boolean`);
  if (typeof o.stateLastAction !== 'boolean') throw new Error(`combat: stateLastAction must be a boolean`);
}

function readPlacements(options: Record<string, unknown> | undefined): CombatPlacements {
  const raw = options?.placements;
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null) throw new Error('combat: reset option placements must be { allies?: [...], enemies?: [...] }');
  const { allies, enemies } = raw as Record<string, unknown>;
  const list = (v: unknown, name: string): UnitPlacement[] | undefined => {
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((p) => typeof p === 'object' && p !== null)) {
      throw new Error(`combat: placements.${name} must be an array of { row, col, hp?, cooldown? }`);
    }
    return v as UnitPlacement[];
  };
  return { allies: list(allies, 'allies'), enemies: list(enemies, 'enemies') };
}

/**
 * Registered scenarios. `combat-2a3b` mirrors SMAC's 2s3z (2 stalker-like + 3 zealot-like units
 * on each side); `combat-3a5b-vs-3a6b` mirrors 3s5z_vs_3s6z. Time limits are SMAC's.
 */
const SCENARIOS: ReadonlyArray<{ id: string; allies: string; enemies: string; maxEpisodeSteps: number; description: string }> = [
  { id: 'combat-3v3', allies: '3m', enemies: '3m', maxEpisodeSteps: 60, description: '3 marines a side (SMAC 3m)' },
  { id: 'combat-5v6', allies: '5m', enemies: '6m', maxEpisodeSteps: 70, description: '5 vs 6 marines (SMAC 5m_vs_6m)' },
  { id: 'combat-8v9', allies: '8m', enemies: '9m', maxEpisodeSteps: 120, description: '8 vs 9 marines (SMAC 8m_vs_9m)' },
  { id: 'combat-2a3b', allies: '2a3b', enemies: '2a3b', maxEpisodeSteps: 120, description: '2 ranged + 3 melee units a side (SMAC 2s3z)' },
  { id: 'combat-3a5b-vs-3a6b', allies: '3a5b', enemies: '3a6b', maxEpisodeSteps: 170, description: '3 ranged + 5 melee vs 3 + 6 (SMAC 3s5z_vs_3s6z)' },
];

/** Hidden base id that parsed scenario ids resolve to. */
const BASE_ID = 'combat';

/**
 * Parses `combat-{N}v{M}` (N vs M marines), `combat-{mix}-vs-{mix}` (e.g. `combat-1a2m-vs-4m`)
 * and `combat-{mix}` (the same mix on both sides).
 */
export function parseCombatScenarioId(id: string): { baseId: string; options: Record<string, unknown> } | undefined {
  const marines = /^combat-(\d+)v(\d+)$/.exec(id);
  let allies: string | undefined;
  let enemies: string | undefined;
  if (marines) {
    allies = `${Number(marines[1])}m`;
    enemies = `${Number(marines[2])}m`;
  } else {
    const versus = /^combat-([0-9abm]+)-vs-([0-9abm]+)$/.exec(id);
    const mirror = /^combat-([0-9abm]+)$/.exec(id);
    if (versus) [allies, enemies] = [versus[1], versus[2]];
    else if (mirror) [allies, enemies] = [mirror[1], mirror[1]];
  }
  if (allies === undefined || enemies === undefined) return undefined;
  const a = parseUnitMix(allies);
  const e = parseUnitMix(enemies);
  if (!a || !e || a.length > MAX_TEAM || e.length > MAX_TEAM) return undefined;
  return { baseId: BASE_ID, options: { allies, enemies } };
}

let registered = false;

/** Registers the combat scenarios (family `gridworld/combat`) and the scenario-id parser. Idempotent. */
export function registerCombat(): void {
  if (registered) return;
  registered = true;
  const factory = (options: Record<string, unknown>): CombatEnv => new CombatEnv(options as Partial<CombatOptions> & { id?: string });
  for (const s of SCENARIOS) {
    registerEnv(s.id, factory, {
      family: COMBAT_FAMILY,
      description: s.description,
      options: { allies: s.allies, enemies: s.enemies, maxEpisodeSteps: s.maxEpisodeSteps },
      optionKeys: COMBAT_OPTION_KEYS,
    });
  }
  registerEnv(BASE_ID, factory, { family: COMBAT_FAMILY, description: 'combat-{N}v{M} / combat-{mix}-vs-{mix}', listed: false, optionKeys: COMBAT_OPTION_KEYS });
  registerScenarioParser(parseCombatScenarioId);
}
