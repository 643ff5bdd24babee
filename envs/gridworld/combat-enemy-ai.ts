import { chebyshev, type Grid, manhattan } from './grid';
import { CombatAction, MOVE_COL_DELTA, MOVE_ROW_DELTA, type UnitTable } from './combat-units';

/**
 * Moves tried in this order when two are equally good. Horizontal first because the teams
 * start on the left and right, and the order is mirror-symmetric (east and west are never both
 * improving), so neither team gains from it.
 */
const MOVE_PREFERENCE: readonly number[] = [CombatAction.MOVE_EAST, CombatAction.MOVE_WEST, CombatAction.MOVE_NORTH, CombatAction.MOVE_SOUTH];

/**
 * The scripted opponent, SMAC's built-in AI reduced to a rule: attack the closest live
 * opposing unit if it is in range (holding while on cooldown), otherwise take the free step
 * that brings the unit closest to it (Chebyshev, then Manhattan). "Closest" is Chebyshev
 * distance, ties broken by straight-line distance: with Chebyshev alone most units tie and the
 * lowest index would draw every enemy's fire onto one unit, an accidental focus fire that
 * left little room to out-play the AI (measured: focus fire then barely beat the AI mirror).
 * Remaining ties go to the lowest unit index and to `MOVE_PREFERENCE`; no randomness, so it
 * never touches the env's Rng.
 *
 * Works for either side, so the same rule can drive the allies (AI-vs-AI baselines). The
 * returned action is always legal under the ally action mask: it attacks only live units in
 * range and moves only into free cells.
 */
export function closestTargetAction(units: UnitTable, grid: Grid, unit: number): number {
  const start = units.opponentStart(unit);
  const count = units.opponentCount(unit);
  const row = units.row[unit];
  const col = units.col[unit];
  let best = -1;
  let bestDist = Number.POSITIVE_INFINITY;
  let bestSquared = Number.POSITIVE_INFINITY;
  for (let slot = 0; slot < count; slot++) {
    const other = start + slot;
    if (!units.alive[other]) continue;
    const dr = units.row[other] - row;
    const dc = units.col[other] - col;
    const d = chebyshev(row, col, units.row[other], units.col[other]);
    const squared = dr * dr + dc * dc;
    if (d < bestDist || (d === bestDist && squared < bestSquared)) {
      bestDist = d;
      bestSquared = squared;
      best = slot;
    }
  }
  if (best < 0) return CombatAction.STOP;
  if (bestDist <= units.range[unit]) return CombatAction.ATTACK_FIRST + best;

  const targetRow = units.row[start + best];
  const targetCol = units.col[start + best];
  let chosen: number = CombatAction.STOP;
  let chosenCheb = bestDist;
  let chosenManh = manhattan(row, col, targetRow, targetCol);
  for (let i = 0; i < MOVE_PREFERENCE.length; i++) {
    const move = MOVE_PREFERENCE[i];
    const r = row + MOVE_ROW_DELTA[move - CombatAction.MOVE_NORTH];
    const c = col + MOVE_COL_DELTA[move - CombatAction.MOVE_NORTH];
    if (!grid.isFree(r, c)) continue;
    const cheb = chebyshev(r, c, targetRow, targetCol);
    const manh = manhattan(r, c, targetRow, targetCol);
    if (cheb < chosenCheb || (cheb === chosenCheb && manh < chosenManh)) {
      chosen = move;
      chosenCheb = cheb;
      chosenManh = manh;
    }
  }
  return chosen;
}
