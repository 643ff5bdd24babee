import type { VectorLayout } from '../../envs/env-shape';
import type { EnvSpec } from '../../envs/env-spec';
import type { EnvOutputChecks, ShardCommand } from './shard-protocol';
import type { VectorBuffers } from './vector-buffers';

/**
 * The worker-thread transport's wire format: the handshake between the main thread and a
 * shard's worker, over one small Int32Array on a SharedArrayBuffer. The main thread appends
 * commands to a ring and bumps CommandTail; the worker runs them in order and bumps the
 * finished group's counter. Atomics.wait/notify wake either side without a message round trip.
 * Because the ring can hold the next group's command while the worker is still busy with the
 * current one (double buffering), a busy worker goes from one group to the next without sleeping.
 */
export const enum ControlSlot {
  CommandTail = 0,
  Status = 1,
  ErrorLength = 2,
  ErrorEnvIndex = 3,
  ErrorEpisodeStep = 4,
  /** The reset epoch the next Reset command uses (see `resetSeed`). */
  ResetEpoch = 5,
  /** Commands completed for group g live at GroupDone + g. */
  GroupDone = 8,
}
export const MAX_GROUPS = 8;
export const RING_SIZE = 16;
/** The ring of commands starts after the group counters. */
export const RING_START = ControlSlot.GroupDone + MAX_GROUPS;
export const CONTROL_SLOTS = RING_START + RING_SIZE;
export const ERROR_TEXT_BYTES = 8192;

/** Commands carry their group in the upper bits. */
export function encodeCommand(command: ShardCommand, group: number): number {
  return command | (group << 8);
}

export function decodeCommand(word: number): { command: ShardCommand; group: number } {
  return { command: (word & 0xff) as ShardCommand, group: word >> 8 };
}

export const enum ShardStatus {
  Ok = 0,
  Failed = 1,
}

/** What a worker receives once, when its shard starts. */
export interface ShardTask {
  spec: EnvSpec;
  layout: VectorLayout;
  buffers: VectorBuffers;
  control: Int32Array;
  errorText: Uint8Array;
  /** This shard's env range [start, end) within each group. */
  groupRanges: Array<[number, number]>;
  seed: number | string;
  /** What the shard checks of its envs' output. */
  checks: EnvOutputChecks;
}
