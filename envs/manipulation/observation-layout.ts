import { Box } from '../spaces/box';

/**
 * The 39-number observation of every single-arm manipulation task, Meta-World's layout:
 *
 *   [0, 18)  current frame: hand (TCP) xyz, gripper opening in [0, 1],
 *            object 1 position (3) + quaternion (x, y, z, w) (4), object 2 position + quaternion,
 *            unused object slots zero-padded;
 *   [18, 36) the previous step's frame (equal to the current one right after reset);
 *   [36, 39) goal xyz, zeros when the goal is hidden (`goalObservable: false`, Meta-World's ML mode).
 *
 * Tasks with articulated fixtures may put a joint coordinate in an object's quaternion slots
 * (as long as it lies in [-1, 1]) and document it.
 */
export const OBS = Object.freeze({
  HAND: 0,
  GRIPPER: 3,
  OBJ1_POS: 4,
  OBJ1_QUAT: 7,
  OBJ2_POS: 11,
  OBJ2_QUAT: 14,
  /** Where the object block (2 × (pos 3 + quat 4)) starts, and its length. */
  OBJECTS: 4,
  OBJECTS_SIZE: 14,
  FRAME_SIZE: 18,
  PREV: 18,
  GOAL: 36,
  SIZE: 39,
});

/**
 * Bounds of every position in the observation (the table's rims keep objects inside them). They
 * include 0 on every axis: empty object slots and a hidden goal are zeros.
 */
export const POSITION_LOW = Object.freeze([-0.8, 0, -0.1] as const);
export const POSITION_HIGH = Object.freeze([0.8, 1.2, 0.8] as const);

/** The observation Box: positions within POSITION_LOW/HIGH, opening in [0, 1], quaternions in [-1, 1]. */
export function manipulationObservationBox(): Box {
  const low = new Float32Array(OBS.SIZE);
  const high = new Float32Array(OBS.SIZE);
  const setPosition = (at: number) => {
    for (let i = 0; i < 3; i++) {
      low[at + i] = POSITION_LOW[i];
      high[at + i] = POSITION_HIGH[i];
    }
  };
  for (const frame of [0, OBS.PREV]) {
    setPosition(frame + OBS.HAND);
    low[frame + OBS.GRIPPER] = 0;
    high[frame + OBS.GRIPPER] = 1;
    for (const [pos, quat] of [[OBS.OBJ1_POS, OBS.OBJ1_QUAT], [OBS.OBJ2_POS, OBS.OBJ2_QUAT]]) {
      setPosition(frame + pos);
      for (let i = 0; i < 4; i++) {
        low[frame + quat + i] = -1;
        high[frame + quat + i] = 1;
      }
    }
  }
  setPosition(OBS.GOAL);
  return new Box(low, high, [OBS.SIZE]);
}

/** Clamps an observation into its Box in place: Float32 rounding and a rare escaped object must not put it outside its space. */
export function clampIntoBox(out: Float32Array, box: Box): void {
  const low = box.low;
  const high = box.high;
  for (let i = 0; i < out.length; i++) {
    const v = out[i];
    if (v < low[i]) out[i] = low[i];
    else if (v > high[i]) out[i] = high[i];
  }
}
