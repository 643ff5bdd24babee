/**
 * Unit types, orders and the per-battle unit table of the combat gridworld (SMAC-style
 * micromanagement). Distances and ranges are Chebyshev (king moves), so a range-1 unit hits
 * the 8 neighbouring cells and a unit's sight is a square.
 */

/** One-letter unit type codes, as used in scenario ids such as `combat-2a3b`. */
export type UnitTypeCode = 'a' | 'b' | 'm';

export interface UnitType {
  readonly code: UnitTypeCode;
  readonly name: string;
  /** Hit points (SMAC's health plus shield folded into one pool). */
  readonly maxHp: number;
  /** Damage of one attack. */
  readonly damage: number;
  /** Chebyshev distance at which the unit can attack. */
  readonly range: number;
  /** Steps between attacks: 1 attacks every step, 2 every other step. */
  readonly attackPeriod: number;
  /** Chebyshev distance within which the unit observes other units. */
  readonly sight: number;
}

/**
 * The stats are chosen so that damage per step is similar (4.5–8) and what differs is range
 * and bulk: a marine needs five hits to die, a stalker-like unit out-ranges everyone, a
 * zealot-like unit must close in but soaks three times a marine's damage. Speed is the same for
 * all (one cell per step); SMAC's faster zealots are not modelled.
 */
export const UNIT_TYPES: Readonly<Record<UnitTypeCode, UnitType>> = {
  a: { code: 'a', name: 'stalker-like ranged', maxHp: 100, damage: 15, range: 4, attackPeriod: 3, sight: 6 },
  b: { code: 'b', name: 'zealot-like melee', maxHp: 150, damage: 16, range: 1, attackPeriod: 2, sight: 5 },
  m: { code: 'm', name: 'marine', maxHp: 45, damage: 9, range: 3, attackPeriod: 2, sight: 5 },
};

/** Canonical order of type codes; the unit-type one-hot follows it (restricted to the types in a battle). */
export const UNIT_TYPE_ORDER: readonly UnitTypeCode[] = ['a', 'b', 'm'];

/**
 * Action indices, in SMAC's order. Attack actions follow `ATTACK_FIRST`, one per opposing
 * unit slot. For allies `NO_OP` is never legal (SMAC reserves it for dead units, and dead
 * agents leave the episode here); it is kept so that indices line up with SMAC.
 */
export const CombatAction = {
  NO_OP: 0,
  STOP: 1,
  MOVE_NORTH: 2,
  MOVE_SOUTH: 3,
  MOVE_EAST: 4,
  MOVE_WEST: 5,
  ATTACK_FIRST: 6,
} as const;

/** Number of non-attack actions. */
export const N_BASIC_ACTIONS = CombatAction.ATTACK_FIRST;

/** Row and column deltas of the four moves, indexed by `action - MOVE_NORTH`. */
export const MOVE_ROW_DELTA: readonly number[] = [-1, 1, 0, 0];
export const MOVE_COL_DELTA: readonly number[] = [0, 0, 1, -1];

/**
 * Parses a unit mix such as `3m` or `2a3b` into one type code per unit, in the order written.
 * Returns undefined for anything else (so scenario parsers can reject ids quietly).
 */
export function parseUnitMix(mix: string): UnitTypeCode[] | undefined {
  if (!/^(\d+[abm])+$/.test(mix)) return undefined;
  const units: UnitTypeCode[] = [];
  for (const [, count, code] of mix.matchAll(/(\d+)([abm])/g)) {
    const n = Number(count);
    if (n === 0) return undefined;
    for (let i = 0; i < n; i++) units.push(code as UnitTypeCode);
  }
  return units;
}

/**
 * Struct-of-arrays storage for every unit of one battle: allies at indices `0..nAllies-1`
 * (unit i is `agent_i`), then enemies. Typed arrays keep stepping free of allocation.
 */
export class UnitTable {
  readonly nAllies: number;
  readonly nEnemies: number;
  readonly count: number;
  /** The unit types present in this battle, in canonical order: the one-hot's columns. */
  readonly typeCodes: readonly UnitTypeCode[];
  /** Per unit: index into `typeCodes`. */
  readonly typeIndex: Int32Array;
  readonly maxHp: Float64Array;
  readonly damage: Float64Array;
  readonly range: Int32Array;
  readonly attackPeriod: Int32Array;
  readonly sight: Int32Array;
  /** Mutable battle state. */
  readonly hp: Float64Array;
  readonly row: Int32Array;
  readonly col: Int32Array;
  /** Steps until the unit may attack again (0 = ready). */
  readonly cooldown: Int32Array;
  readonly alive: Uint8Array;

  constructor(
    readonly allyTypes: readonly UnitTypeCode[],
    readonly enemyTypes: readonly UnitTypeCode[],
  ) {
    if (allyTypes.length === 0 || enemyTypes.length === 0) throw new Error('UnitTable: each team needs at least one unit');
    this.nAllies = allyTypes.length;
    this.nEnemies = enemyTypes.length;
    this.count = this.nAllies + this.nEnemies;
    const all = [...allyTypes, ...enemyTypes];
    this.typeCodes = UNIT_TYPE_ORDER.filter((code) => all.includes(code));
    const n = this.count;
    this.typeIndex = new Int32Array(n);
    this.maxHp = new Float64Array(n);
    this.damage = new Float64Array(n);
    this.range = new Int32Array(n);
    this.attackPeriod = new Int32Array(n);
    this.sight = new Int32Array(n);
    this.hp = new Float64Array(n);
    this.row = new Int32Array(n);
    this.col = new Int32Array(n);
    this.cooldown = new Int32Array(n);
    this.alive = new Uint8Array(n);
    all.forEach((code, u) => {
      const type = UNIT_TYPES[code];
      this.typeIndex[u] = this.typeCodes.indexOf(code);
      this.maxHp[u] = type.maxHp;
      this.damage[u] = type.damage;
      this.range[u] = type.range;
      this.attackPeriod[u] = type.attackPeriod;
      this.sight[u] = type.sight;
    });
  }

  typeOf(unit: number): UnitType {
    return UNIT_TYPES[this.typeCodes[this.typeIndex[unit]]];
  }

  isAlly(unit: number): boolean {
    return unit < this.nAllies;
  }

  /** Index of the first unit of the team opposing `unit`. */
  opponentStart(unit: number): number {
    return unit < this.nAllies ? this.nAllies : 0;
  }

  opponentCount(unit: number): number {
    return unit < this.nAllies ? this.nEnemies : this.nAllies;
  }
}
