import type { Redis } from 'ioredis';
import type { VectorLayout } from '../../envs/env-shape';
import { decodeMessage, runKey } from './remote-registry';
import type { VectorBuffers } from './vector-buffers';

/*
 * The wire format of lock-step remote rollouts, shared by the learner's `RemoteShardTransport`
 * and `troupe rollout` hosts (`rollout-host.ts`).
 *
 * Each shard s of a task (fixed env ranges, `shardRanges`) has three keys under the run:
 *   …:shard:s:commands  a stream the learner appends to: reset / step / close, and replays;
 *   …:shard:s:results   a stream the shard's host appends to: claims and results;
 *   …:shard:s:lease     `SET NX PX` by the host that serves the shard, renewed while it lives.
 *
 * A host that claims a shard announces it on the results stream; the learner answers with a
 * replay for that claim: every group's commands since its last reset, so the new host's envs
 * reach exactly the state the old host's had. The host ignores commands older than its replay.
 * Results carry (reset, group, step, shard); the learner copies rows by env index and drops any
 * result that is not the one it waits for (duplicates, replies of a host that lost its lease).
 * Messages are msgpack; arrays travel as their raw bytes.
 */

export type LockstepKeyPart = 'commands' | 'results' | 'lease';

export function shardKey(runId: string, task: string, shard: number, part: LockstepKeyPart): string {
  return runKey(runId, 'task', encodeURIComponent(task), 'shard', shard, part);
}

export { learnerAliveKey } from './remote-registry';

/** Commands streams keep at least this many entries; the learner never has more than a few unanswered. */
export const STREAM_MAXLEN = 256;

export const enum WireCommand {
  Reset = 1,
  Step = 2,
}

/** One reset or step of one group, for one shard. `reset` counts the group's resets, `step` its steps since then (after this command). */
export interface CommandMessage {
  kind: 'command';
  command: WireCommand;
  group: number;
  reset: number;
  epoch: number;
  step: number;
  policyVersion: number;
  /** The shard's rows of `buffers.actions` for this group (Float32 bytes; empty for a reset). */
  actions: Uint8Array;
}

/** What a new owner of a shard must run to reach the current state: per group, its last reset and the steps since. */
export interface ReplayMessage {
  kind: 'replay';
  claimId: string;
  groups: Array<{ group: number; reset: number; epoch: number; steps: number; policyVersion: number; actions: Uint8Array }>;
}

export interface CloseMessage {
  kind: 'close';
}

export type LearnerMessage = CommandMessage | ReplayMessage | CloseMessage;

/** A host took the shard (first claim, or after the previous owner's lease lapsed). */
export interface ClaimMessage {
  kind: 'claim';
  claimId: string;
  host: string;
}

/** A shard's rows of every result buffer after (reset, group, step), or the failure that stopped it. */
export interface ResultMessage {
  kind: 'result';
  shard: number;
  group: number;
  reset: number;
  epoch: number;
  step: number;
  policyVersion: number;
  host: string;
  /** The rows of `RESULT_FIELDS`, in that order. */
  rows?: Uint8Array[];
  error?: string;
  envIndex?: number;
}

export type HostMessage = ClaimMessage | ResultMessage;

type ResultField = Exclude<keyof VectorBuffers, 'actions'>;

/** Every buffer a shard writes (see `ShardRunner`), in wire order (`episodeDone` before the fields it selects rows of). */
export const RESULT_FIELDS: readonly ResultField[] = [
  'episodeDone',
  'obs',
  'finalObs',
  'state',
  'finalState',
  'rewards',
  'terminated',
  'truncated',
  'alive',
  'masks',
  'episodeAborted',
  'episodeReturn',
  'episodeLength',
  'episodeSuccess',
  'teamSize',
];

/** Numbers per env of a buffer. */
export function valuesPerEnv(layout: VectorLayout, field: keyof VectorBuffers): number {
  const { numAgents: A, obsDim, actDim, numActions, stateDim } = layout;
  switch (field) {
    case 'obs':
    case 'finalObs':
      return A * obsDim;
    case 'state':
    case 'finalState':
      return stateDim;
    case 'actions':
      return A * actDim;
    case 'rewards':
    case 'terminated':
    case 'truncated':
    case 'alive':
      return A;
    case 'masks':
      return A * numActions;
    default:
      return 1;
  }
}

/**
 * Buffers written only for envs whose episode ended this step (see `ShardRunner.step`): their
 * rows travel only for those envs, and the other envs' rows keep what they held, as in-process.
 */
export const ON_EPISODE_END_FIELDS: ReadonlySet<keyof VectorBuffers> = new Set(['finalObs', 'finalState', 'episodeAborted', 'episodeReturn', 'episodeLength', 'episodeSuccess']);

/** A result's rows of `field` for envs [start, end): every env's, or only ended episodes' (`ON_EPISODE_END_FIELDS`). */
export function resultRows(buffers: VectorBuffers, layout: VectorLayout, field: keyof VectorBuffers, start: number, end: number): Uint8Array {
  if (!ON_EPISODE_END_FIELDS.has(field)) return rowBytes(buffers, layout, field, start, end);
  const ended: number[] = [];
  for (let e = start; e < end; e++) if (buffers.episodeDone[e]) ended.push(e);
  if (ended.length === end - start) return rowBytes(buffers, layout, field, start, end);
  const size = rowBytes(buffers, layout, field, 0, 1).length;
  const out = new Uint8Array(size * ended.length);
  ended.forEach((e, i) => out.set(rowBytes(buffers, layout, field, e, e + 1), i * size));
  return out;
}

/**
 * Writes a result's rows of `field` over envs [start, end) (`episodeDone` must already hold the
 * result's); false when the length is not what they need.
 */
export function writeResultRows(buffers: VectorBuffers, layout: VectorLayout, field: keyof VectorBuffers, start: number, end: number, bytes: Uint8Array): boolean {
  if (!ON_EPISODE_END_FIELDS.has(field)) return writeRows(buffers, layout, field, start, end, bytes);
  const size = rowBytes(buffers, layout, field, 0, 1).length;
  let ended = 0;
  for (let e = start; e < end; e++) ended += buffers.episodeDone[e] ? 1 : 0;
  if (!(bytes instanceof Uint8Array) || bytes.length !== size * ended) return false;
  let i = 0;
  for (let e = start; e < end; e++) if (buffers.episodeDone[e]) rowBytes(buffers, layout, field, e, e + 1).set(bytes.subarray(i * size, ++i * size));
  return true;
}

/** The bytes of envs [start, end) of one buffer (a view, no copy). */
export function rowBytes(buffers: VectorBuffers, layout: VectorLayout, field: keyof VectorBuffers, start: number, end: number): Uint8Array {
  const array = buffers[field];
  const n = valuesPerEnv(layout, field) * array.BYTES_PER_ELEMENT;
  return new Uint8Array(array.buffer, array.byteOffset + start * n, (end - start) * n);
}

/** Writes `bytes` over envs [start, end) of one buffer; false when the length is not what they need. */
export function writeRows(buffers: VectorBuffers, layout: VectorLayout, field: keyof VectorBuffers, start: number, end: number, bytes: Uint8Array): boolean {
  const target = rowBytes(buffers, layout, field, start, end);
  if (!(bytes instanceof Uint8Array) || bytes.length !== target.length) return false;
  target.set(bytes);
  return true;
}

/** The entries of an XREAD reply, as (stream key, entry id, message bytes). */
export interface StreamEntry {
  key: string;
  id: string;
  message: Buffer;
}

/** XREAD BLOCK over several streams; every entry's single field `m` is the message. */
export async function readStreams(redis: Redis, keys: readonly string[], ids: readonly string[], blockMs: number, count = 64): Promise<StreamEntry[]> {
  if (keys.length === 0) return [];
  const reply = (await redis.xreadBuffer('COUNT', count, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids)) as Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
  const entries: StreamEntry[] = [];
  for (const [key, items] of reply ?? []) {
    for (const [id, fields] of items) {
      const at = fields.findIndex((f, i) => i % 2 === 0 && f.toString() === 'm');
      if (at >= 0) entries.push({ key: key.toString(), id: id.toString(), message: fields[at + 1] });
      else entries.push({ key: key.toString(), id: id.toString(), message: Buffer.alloc(0) });
    }
  }
  return entries;
}

/** Appends a learner's message (its streams are made on first use). */
export async function appendMessage(redis: Redis, key: string, message: Buffer): Promise<void> {
  await redis.xadd(key, 'MAXLEN', '~', STREAM_MAXLEN, '*', 'm', message);
}

/**
 * Appends a host's message only to a stream the learner made (NOMKSTREAM): a host must not
 * bring back a run that was unregistered meanwhile. False when the stream is gone.
 */
export async function appendToExistingStream(redis: Redis, key: string, message: Buffer): Promise<boolean> {
  return (await redis.xadd(key, 'NOMKSTREAM', 'MAXLEN', '~', STREAM_MAXLEN, '*', 'm', message)) !== null;
}

/** Makes an empty stream (an entry trimmed at once), for hosts to append to with NOMKSTREAM. */
export async function createEmptyStream(redis: Redis, key: string): Promise<void> {
  await redis.xadd(key, 'MAXLEN', 0, '*', 'm', '');
}

/** A message on a stream that is not what the protocol says: refused (and logged) by its reader, who goes on. */
export class MalformedMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedMessageError';
  }
}

/** Decodes a message of `key` and checks its kind; errors name the stream and what was expected. */
export function decodeWire<T extends { kind: string }>(bytes: Buffer, key: string, kinds: ReadonlyArray<T['kind']>): T {
  let value: unknown;
  try {
    value = decodeMessage<unknown>(bytes, `a message on ${key}`);
  } catch (error) {
    throw new MalformedMessageError((error as Error).message);
  }
  if (typeof value !== 'object' || value === null || !kinds.includes((value as { kind?: string }).kind as T['kind'])) {
    throw new MalformedMessageError(`broker: a message on ${key} is not one of ${kinds.join(', ')} (got ${JSON.stringify(value)?.slice(0, 80)})`);
  }
  return value as T;
}

/** Checks that the named fields of a decoded message are integers; errors name the stream. */
export function requireIntegers(message: object, key: string, fields: readonly string[]): void {
  for (const field of fields) {
    const v = (message as Record<string, unknown>)[field];
    if (!Number.isSafeInteger(v)) throw new MalformedMessageError(`broker: a ${(message as { kind: string }).kind} message on ${key} has field '${field}' = ${JSON.stringify(v)}, expected an integer`);
  }
}

/**
 * Renews lease KEYS[1] while `token` holds it (1); one that lapsed with nobody taking it is
 * taken again under the same token (2) while the run (its spec, KEYS[2]) is still registered,
 * since this host's envs are still in the state the learner expects; 0 otherwise.
 */
export const RENEW_LEASE_SCRIPT =
  "local owner = redis.call('get', KEYS[1]) if owner == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) elseif not owner and redis.call('exists', KEYS[2]) == 1 then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 else return 0 end";
/** Releases a lease only while `token` still holds it. */
export const RELEASE_LEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
