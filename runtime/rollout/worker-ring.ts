import type { VectorLayout } from '../../envs/env-shape';
import type { EnvSpec } from '../../envs/env-spec';
import type { EnvOutputChecks, ShardCommand } from './shard-protocol';
import type { VectorBuffers } from './vector-buffers';

/**
 * The worker-thread transport's wire format: the handshake between the main thread and a
 * shard's worker, over small Int32Arrays on SharedArrayBuffers. The main thread appends
 * commands to a shard's ring (its `control` array) and bumps CommandTail; the worker runs them
 * in order and counts what it finished per group in the vector-wide `sync` array (see
 * `GroupSync`). Atomics.wait/notify wake either side without a message round trip.
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
}
export const MAX_GROUPS = 8;
export const RING_SIZE = 16;
/** The ring of commands starts after the fixed slots. */
export const RING_START = 8;
export const CONTROL_SLOTS = RING_START + RING_SIZE;

/**
 * Where the counters of W shards live in the vector-wide `sync` array. Per shard and group: the
 * commands the main thread sent (`sent`) and those the worker finished (`done`); per group, a
 * wake-up word the main thread sleeps on. Only the worker that finishes a group's last
 * outstanding shard (or fails) bumps and notifies it, so the main thread wakes once per group
 * step instead of once per shard: a wake-up costs more than stepping a cheap env.
 */
export class GroupSync {
  constructor(readonly shards: number) {}

  static slots(shards: number): number {
    return 2 * shards * MAX_GROUPS + MAX_GROUPS;
  }

  sent(shard: number, group: number): number {
    return shard * MAX_GROUPS + group;
  }

  done(shard: number, group: number): number {
    return (this.shards + shard) * MAX_GROUPS + group;
  }

  wake(group: number): number {
    return 2 * this.shards * MAX_GROUPS + group;
  }

  /** Whether every shard has finished every command sent for `group`. */
  groupFinished(sync: Int32Array, group: number): boolean {
    for (let w = 0; w < this.shards; w++) if (Atomics.load(sync, this.done(w, group)) < Atomics.load(sync, this.sent(w, group))) return false;
    return true;
  }
}
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
  /** The vector-wide counters (`GroupSync`), shared by all shards. */
  sync: Int32Array;
  shardIndex: number;
  shards: number;
  errorText: Uint8Array;
  /** This shard's env range [start, end) within each group. */
  groupRanges: Array<[number, number]>;
  seed: number | string;
  /** What the shard checks of its envs' output. */
  checks: EnvOutputChecks;
}
