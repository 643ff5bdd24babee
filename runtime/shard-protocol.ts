import type { EnvSpec } from './env-spec';
import type { VectorBuffers, VectorLayout } from './vector-layout';

/**
 * The handshake between the main thread and a shard's worker, over one small Int32Array on a
 * SharedArrayBuffer: the main thread writes a command and bumps COMMAND_SEQ; the worker runs
 * it and copies the sequence number to DONE_SEQ. Atomics.wait/notify wake either side without
 * a message round trip, which keeps per-step overhead to a few microseconds.
 */
export const enum ControlSlot {
  CommandSeq = 0,
  Command = 1,
  DoneSeq = 2,
  Status = 3,
  ErrorLength = 4,
  ErrorEnvIndex = 5,
  ErrorEpisodeStep = 6,
}
export const CONTROL_SLOTS = 8;
export const ERROR_TEXT_BYTES = 8192;

export const enum ShardCommand {
  Reset = 1,
  Step = 2,
  Close = 3,
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
  envStart: number;
  envEnd: number;
  seed: number | string;
}
