/**
 * Meta-World's v2 reward vocabulary (itself dm_control's `tolerance`): smooth "how close to a
 * band" scores in [0, 1], combined with the Hamacher t-norm as a soft AND. Tasks build their
 * rewards from these so that every task's reward lies in [0, 10] and is shaped the same way.
 */

export type Sigmoid = 'gaussian' | 'long_tail' | 'reciprocal' | 'linear' | 'quadratic';

/** tolerance's value at distance `margin` outside the bounds (Meta-World and dm_control use 0.1). */
export const VALUE_AT_MARGIN = 0.1;

/** Maps a normalised distance d ≥ 0 to (0, 1], with value `valueAt1` at d = 1. */
export function sigmoid(d: number, valueAt1: number, kind: Sigmoid): number {
  switch (kind) {
    case 'gaussian': {
      const scale = Math.sqrt(-2 * Math.log(valueAt1));
      return Math.exp(-0.5 * (d * scale) ** 2);
    }
    case 'long_tail': {
      const scale = Math.sqrt(1 / valueAt1 - 1);
      return 1 / ((d * scale) ** 2 + 1);
    }
    case 'reciprocal':
      return 1 / (Math.abs(d) * (1 / valueAt1 - 1) + 1);
    case 'linear': {
      const x = d * (1 - valueAt1);
      return Math.abs(x) < 1 ? 1 - x : 0;
    }
    case 'quadratic': {
      const x = d * Math.sqrt(1 - valueAt1);
      return Math.abs(x) < 1 ? 1 - x * x : 0;
    }
  }
}

/**
 * 1 when `low ≤ x ≤ high`; outside, `sigmoid(distance to the band / margin)`, so the value is
 * `valueAtMargin` one margin away. `margin = 0` gives a hard 0/1 band.
 */
export function tolerance(x: number, low: number, high: number, margin: number, kind: Sigmoid = 'gaussian', valueAtMargin = VALUE_AT_MARGIN): number {
  if (low > high) throw new Error(`tolerance: low ${low} exceeds high ${high}`);
  if (margin < 0) throw new Error(`tolerance: margin must be non-negative, got ${margin}`);
  if (x >= low && x <= high) return 1;
  if (margin === 0) return 0;
  const d = (x < low ? low - x : x - high) / margin;
  return sigmoid(d, valueAtMargin, kind);
}

/** The Hamacher product t-norm ab / (a + b − ab), a soft AND of two scores in [0, 1] (0 when both are 0). */
export function hamacherProduct(a: number, b: number): number {
  if (!(a >= 0 && a <= 1 && b >= 0 && b <= 1)) throw new Error(`hamacherProduct: both scores must lie in [0, 1], got ${a} and ${b}`);
  const denominator = a + b - a * b;
  return denominator > 0 ? (a * b) / denominator : 0;
}

/** What `gripperCagingReward` needs to know; all positions in metres. */
export interface CagingInput {
  tcp: ArrayLike<number>;
  /** TCP at the start of the episode. */
  initTcp: ArrayLike<number>;
  object: ArrayLike<number>;
  /** The object's position at the start of the episode. */
  initObject: ArrayLike<number>;
  /** y of the two pad centres now. */
  leftPadY: number;
  rightPadY: number;
  /** Gripper effort of the action (a[3]). */
  effort: number;
  /** The object's radius: pads closer than this to its centre are pressing into it. */
  objectRadius: number;
  /** Pad-to-object distance along y below which a pad counts as caging the object. */
  padSuccessThreshold: number;
  /** TCP-to-object distance in the x-z plane counted as aligned. */
  xzThreshold: number;
  /** Effort at which gripping counts fully (default 1). */
  desiredEffort?: number;
  /**
   * The pads' y at the episode start. When given, each pad's margin is measured from the object to
   * the pad's start (Meta-World pick-place's variant); otherwise from the pad now to the object's start.
   */
  initLeftPadY?: number;
  initRightPadY?: number;
  /** Average with the caging score (Meta-World's `high_density`, used by push). */
  highDensity?: boolean;
}

/**
 * Meta-World's `_gripper_caging_reward`: are the pads on either side of the object (y), is the TCP
 * level with it (x-z), and is the gripper closing? In [0, 1]. The y margins are measured from the
 * object's start so that, once the object is carried away, moving back towards its start pays less.
 */
export function gripperCagingReward(c: CagingInput): number {
  const cagingY = hamacherProduct(padCaging(c, c.leftPadY, c.initLeftPadY), padCaging(c, c.rightPadY, c.initRightPadY));
  const xzMargin = Math.max(0, Math.hypot(c.initObject[0] - c.initTcp[0], c.initObject[2] - c.initTcp[2]) - c.xzThreshold);
  const cagingXz = tolerance(Math.hypot(c.tcp[0] - c.object[0], c.tcp[2] - c.object[2]), 0, c.xzThreshold, xzMargin, 'long_tail');
  const desired = c.desiredEffort ?? 1;
  const closed = Math.min(Math.max(0, c.effort), desired) / desired;
  const caging = hamacherProduct(cagingY, cagingXz);
  const gripping = caging > 0.97 ? closed : 0;
  let result = hamacherProduct(caging, gripping);
  if (c.highDensity) result = (result + caging) / 2;
  return result;
}

/** How well one pad cages the object along y. */
function padCaging(c: CagingInput, padY: number, initPadY: number | undefined): number {
  const gap = initPadY === undefined ? Math.abs(padY - c.initObject[1]) : Math.abs(c.object[1] - initPadY);
  const margin = Math.abs(gap - c.padSuccessThreshold);
  return tolerance(Math.abs(padY - c.object[1]), c.objectRadius, c.padSuccessThreshold, margin, 'long_tail');
}
