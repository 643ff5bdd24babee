/*
 * The checkpoint format: what a checkpoint holds and its msgpack encoding, with validation that
 * names the file and field of every problem. No file system here (checkpoint.ts writes and reads
 * files), so a browser can decode a checkpoint's bytes too.
 */
import * as tf from '@tensorflow/tfjs';
import { Packr } from 'msgpackr';
import type { RngState } from './rng';

/** Tag stored first in every checkpoint, so foreign files are rejected before any decoding. */
export const CHECKPOINT_MAGIC = 'troupe-checkpoint';
/** Format version this build writes; readers refuse versions they do not know. */
export const CHECKPOINT_VERSION = 3;
// Version 1 had no `arrays`; it reads as an empty map. Version 3 added the policy specs
// (`metadata.policies`) and keys multi-task runs' state by task; its layout is version 2's.
const SUPPORTED_VERSIONS: readonly number[] = [1, 2, 3];

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type TensorDtype = 'float32' | 'int32' | 'bool';
const DTYPE_SIZE: Record<TensorDtype, number> = { float32: 4, int32: 4, bool: 1 };

/** A tensor as stored: raw little-endian bytes of its typed array plus what is needed to rebuild it. */
export interface SerializedTensor {
  shape: number[];
  dtype: TensorDtype;
  data: Uint8Array;
}

export type NamedTensorData = Record<string, SerializedTensor>;

/** A plain typed array held by a trainer (replay buffers, pending episodes, recurrent state). */
export type StoredArray = Float32Array | Float64Array | Int32Array | Uint8Array;
const ARRAY_TYPES = { Float32Array, Float64Array, Int32Array, Uint8Array } as const;
type ArrayTypeName = keyof typeof ARRAY_TYPES;

/** A typed array as stored: its class name and raw little-endian bytes. */
export interface SerializedArray {
  type: ArrayTypeName;
  data: Uint8Array;
}

export function serializeArray(array: StoredArray): SerializedArray {
  assertLittleEndian();
  const data = new Uint8Array(array.byteLength);
  data.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  return { type: array.constructor.name as ArrayTypeName, data };
}

export function deserializeArray(s: SerializedArray): StoredArray {
  const aligned = new Uint8Array(s.data.byteLength);
  aligned.set(s.data);
  return new ARRAY_TYPES[s.type](aligned.buffer);
}

/**
 * `record` with every key prefixed (`actor/` + `fc1/w`): how one checkpoint map holds the
 * entries of several parts (networks of a learner, learners of a run).
 */
export function withPrefix<T>(prefix: string, record: Readonly<Record<string, T>>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [prefix + k, v]));
}

/** The entries of `record` under `prefix`, with the prefix taken off (what `withPrefix` put there). */
export function underPrefix<T>(prefix: string, record: Readonly<Record<string, T>>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
}

/** An optimiser's state. Weights are a list, not a map, because tfjs optimisers restore them by position. */
export interface OptimizerState {
  className: string;
  config: JsonObject;
  weights: Array<{ name: string; tensor: SerializedTensor }>;
}

export interface CheckpointCounters {
  envSteps: number;
  episodes: number;
  updates: number;
  logIndex: number;
  /** Offline runs: the gradient steps taken (their budget's unit). */
  gradientSteps?: number;
}

/** Everything needed to resume a run. */
export interface CheckpointData {
  /** ISO 8601 time of capture. */
  createdAt: string;
  /** The fully resolved run config, so a resume does not depend on config files still matching. */
  config: JsonObject;
  counters: CheckpointCounters;
  /** Model name → tensor name → tensor. */
  models: Record<string, NamedTensorData>;
  optimizers: Record<string, OptimizerState>;
  rngs: Record<string, RngState>;
  /** Trainer and run state that is not a tensor: replay buffers, pending episodes, action logs. */
  arrays: Record<string, SerializedArray>;
  /** tfjs backend the run used; results are only bit-reproducible on the same one. */
  backend: string;
  metadata: JsonObject;
}

// Records are off so the file is plain msgpack maps that any msgpack tool can inspect.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });

// --- tensors ---------------------------------------------------------------------------------

function isTensorDtype(d: string): d is TensorDtype {
  return d === 'float32' || d === 'int32' || d === 'bool';
}

// Typed arrays are stored in host byte order; requiring little-endian keeps files portable
// across every platform Node realistically runs on without a per-element byte swap.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error('troupe checkpoints require a little-endian host');
}

async function serializeTensor(name: string, t: tf.Tensor): Promise<SerializedTensor> {
  if (!isTensorDtype(t.dtype)) throw new Error(`cannot checkpoint tensor '${name}': dtype ${t.dtype} is not supported`);
  const values = await t.data();
  if (!ArrayBuffer.isView(values)) throw new Error(`cannot checkpoint tensor '${name}': data is not a typed array`);
  // Copied so the stored bytes never alias tfjs-owned memory that may later be reused.
  const bytes = new Uint8Array(values.byteLength);
  bytes.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return { shape: [...t.shape], dtype: t.dtype, data: bytes };
}

function deserializeTensor(s: SerializedTensor): tf.Tensor {
  // Decoded buffers may start at an unaligned offset, which typed-array views reject; copy first.
  const aligned = new Uint8Array(s.data.byteLength);
  aligned.set(s.data);
  switch (s.dtype) {
    case 'float32':
      return tf.tensor(new Float32Array(aligned.buffer), s.shape, 'float32');
    case 'int32':
      return tf.tensor(new Int32Array(aligned.buffer), s.shape, 'int32');
    case 'bool':
      return tf.tensor(aligned, s.shape, 'bool');
  }
}

/** Reads tensors (or variables) into the serialisable form. Inputs are left untouched and owned by the caller. */
export async function captureTensors(named: Record<string, tf.Tensor>): Promise<NamedTensorData> {
  assertLittleEndian();
  const out: NamedTensorData = {};
  for (const [name, t] of Object.entries(named)) out[name] = await serializeTensor(name, t);
  return out;
}

/** Builds new tensors from stored data; the caller owns (and must dispose) the result. */
export function restoreTensors(data: NamedTensorData): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, s] of Object.entries(data)) out[name] = deserializeTensor(s);
  return out;
}

/**
 * Assigns stored values into existing variables (e.g. a freshly built model's), checking that
 * every variable has stored data of the same shape and dtype. No tensors are left behind.
 */
export function assignTensors(targets: Record<string, tf.Variable>, data: NamedTensorData): void {
  for (const [name, v] of Object.entries(targets)) {
    const s = data[name];
    if (!s) throw new Error(`checkpoint has no tensor '${name}'`);
    if (s.dtype !== v.dtype || s.shape.length !== v.shape.length || s.shape.some((d, i) => d !== v.shape[i])) {
      throw new Error(`checkpoint tensor '${name}' is ${s.dtype}[${s.shape}], variable is ${v.dtype}[${v.shape}]`);
    }
  }
  for (const [name, v] of Object.entries(targets)) {
    const t = deserializeTensor(data[name]);
    v.assign(t);
    t.dispose();
  }
}

/** Encodes a checkpoint; the magic tag is the first key so it sits at a fixed offset in the file. */
export function encodeCheckpoint(data: CheckpointData): Uint8Array {
  assertLittleEndian();
  return packr.pack({ magic: CHECKPOINT_MAGIC, version: CHECKPOINT_VERSION, ...data });
}

// --- decoding ---------------------------------------------------------------------------------

class FieldChecker {
  constructor(private readonly file: string) {}

  fail(field: string, problem: string): never {
    throw new Error(`${this.file}: field '${field}' ${problem}`);
  }

  object(value: unknown, field: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) this.fail(field, 'must be a map');
    return value as Record<string, unknown>;
  }

  string(value: unknown, field: string): string {
    if (typeof value !== 'string') this.fail(field, 'must be a string');
    return value;
  }

  count(value: unknown, field: string): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) this.fail(field, 'must be a non-negative integer');
    return value;
  }

  json(value: unknown, field: string): JsonValue {
    if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) this.fail(field, 'must be a finite number');
      return value;
    }
    if (Array.isArray(value)) return value.map((v, i) => this.json(v, `${field}[${i}]`));
    const obj = this.object(value, field);
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(obj)) out[k] = this.json(v, `${field}.${k}`);
    return out;
  }

  jsonObject(value: unknown, field: string): JsonObject {
    this.object(value, field);
    return this.json(value, field) as JsonObject;
  }

  tensor(value: unknown, field: string): SerializedTensor {
    const t = this.object(value, field);
    const dtype = this.string(t.dtype, `${field}.dtype`);
    if (!isTensorDtype(dtype)) this.fail(`${field}.dtype`, `must be float32, int32 or bool, got '${dtype}'`);
    if (!Array.isArray(t.shape)) this.fail(`${field}.shape`, 'must be a list of dimensions');
    const shape = t.shape.map((d, i) => this.count(d, `${field}.shape[${i}]`));
    if (!(t.data instanceof Uint8Array)) this.fail(`${field}.data`, 'must be binary data');
    const expected = shape.reduce((a, b) => a * b, 1) * DTYPE_SIZE[dtype];
    if (t.data.byteLength !== expected) {
      this.fail(`${field}.data`, `has ${t.data.byteLength} bytes; shape [${shape}] of ${dtype} needs ${expected}`);
    }
    return { shape, dtype, data: t.data };
  }

  tensors(value: unknown, field: string): NamedTensorData {
    const out: NamedTensorData = {};
    for (const [k, v] of Object.entries(this.object(value, field))) out[k] = this.tensor(v, `${field}.${k}`);
    return out;
  }

  optimizer(value: unknown, field: string): OptimizerState {
    const o = this.object(value, field);
    const className = this.string(o.className, `${field}.className`);
    const config = this.jsonObject(o.config, `${field}.config`);
    if (!Array.isArray(o.weights)) this.fail(`${field}.weights`, 'must be a list');
    const weights = o.weights.map((w, i) => {
      const entry = this.object(w, `${field}.weights[${i}]`);
      return { name: this.string(entry.name, `${field}.weights[${i}].name`), tensor: this.tensor(entry.tensor, `${field}.weights[${i}].tensor`) };
    });
    return { className, config, weights };
  }

  array(value: unknown, field: string): SerializedArray {
    const a = this.object(value, field);
    const type = this.string(a.type, `${field}.type`);
    if (!Object.prototype.hasOwnProperty.call(ARRAY_TYPES, type)) this.fail(`${field}.type`, `must be one of ${Object.keys(ARRAY_TYPES).join(', ')}, got '${type}'`);
    if (!(a.data instanceof Uint8Array)) this.fail(`${field}.data`, 'must be binary data');
    const size = ARRAY_TYPES[type as ArrayTypeName].BYTES_PER_ELEMENT;
    if (a.data.byteLength % size !== 0) this.fail(`${field}.data`, `has ${a.data.byteLength} bytes, not a whole number of ${type} elements`);
    return { type: type as ArrayTypeName, data: a.data };
  }

  rng(value: unknown, field: string): RngState {
    const r = this.object(value, field);
    for (const k of ['c', 's0', 's1', 's2'] as const) {
      if (typeof r[k] !== 'number' || !Number.isFinite(r[k])) this.fail(`${field}.${k}`, 'must be a finite number (Alea state)');
    }
    return { c: r.c as number, s0: r.s0 as number, s1: r.s1 as number, s2: r.s2 as number };
  }
}


function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// The magic key and value, which follow the top-level map header in every checkpoint this build
// writes. The header's size is measured rather than assumed, since msgpackr picks the map format.
const HEADER = concatBytes(packr.pack('magic'), packr.pack(CHECKPOINT_MAGIC));
const HEADER_OFFSET = packr.pack({ magic: CHECKPOINT_MAGIC }).length - HEADER.length;
const MAP_TYPE_BYTE = packr.pack({ magic: CHECKPOINT_MAGIC })[0];

/** Whether the file's start is printable text (a config or summary passed where a checkpoint belongs). */
function looksLikeText(bytes: Uint8Array): boolean {
  const head = bytes.subarray(0, 512);
  return head.length > 0 && head.every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 128);
}

/** Decodes and validates checkpoint bytes; `file` names the source in errors. */
export function decodeCheckpoint(bytes: Uint8Array, file: string): CheckpointData {
  const body = bytes.subarray(HEADER_OFFSET, HEADER_OFFSET + HEADER.length);
  const headerMatches = sameBytes(body, HEADER);
  if (!headerMatches) {
    // A file cut off inside the header is a damaged checkpoint, not a foreign file.
    const isPrefix = bytes.length === 0 || (bytes.length < HEADER_OFFSET + HEADER.length && bytes[0] === MAP_TYPE_BYTE && sameBytes(body, HEADER.subarray(0, body.length)));
    if (isPrefix) throw new Error(`${file} is corrupt or truncated (${bytes.length} bytes; a checkpoint written by troupe train starts with its '${CHECKPOINT_MAGIC}' tag)`);
    throw new Error(`${file} is not a troupe checkpoint (no '${CHECKPOINT_MAGIC}' tag${looksLikeText(bytes) ? '; it is a text file, such as JSON or YAML' : ''}): expected a .ckpt file written by troupe train`);
  }
  let decoded: unknown;
  try {
    decoded = packr.unpack(bytes);
  } catch (err) {
    throw new Error(`${file} is corrupt or truncated (${err instanceof Error ? err.message : String(err)})`);
  }
  const c = new FieldChecker(file);
  const root = c.object(decoded, '(root)');
  if (root.magic !== CHECKPOINT_MAGIC) throw new Error(`${file} is not a troupe checkpoint (no '${CHECKPOINT_MAGIC}' tag)`);
  const version = c.count(root.version, 'version');
  if (!SUPPORTED_VERSIONS.includes(version)) {
    throw new Error(`${file} has checkpoint format version ${version}; this build reads ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  const counters = c.object(root.counters, 'counters');
  const models: Record<string, NamedTensorData> = {};
  for (const [k, v] of Object.entries(c.object(root.models, 'models'))) models[k] = c.tensors(v, `models.${k}`);
  const optimizers: Record<string, OptimizerState> = {};
  for (const [k, v] of Object.entries(c.object(root.optimizers, 'optimizers'))) optimizers[k] = c.optimizer(v, `optimizers.${k}`);
  const rngs: Record<string, RngState> = {};
  for (const [k, v] of Object.entries(c.object(root.rngs, 'rngs'))) rngs[k] = c.rng(v, `rngs.${k}`);
  const arrays: Record<string, SerializedArray> = {};
  if (version >= 2) for (const [k, v] of Object.entries(c.object(root.arrays, 'arrays'))) arrays[k] = c.array(v, `arrays.${k}`);
  return {
    createdAt: c.string(root.createdAt, 'createdAt'),
    config: c.jsonObject(root.config, 'config'),
    counters: {
      envSteps: c.count(counters.envSteps, 'counters.envSteps'),
      episodes: c.count(counters.episodes, 'counters.episodes'),
      updates: c.count(counters.updates, 'counters.updates'),
      logIndex: c.count(counters.logIndex, 'counters.logIndex'),
      ...(counters.gradientSteps === undefined ? {} : { gradientSteps: c.count(counters.gradientSteps, 'counters.gradientSteps') }),
    },
    models,
    optimizers,
    rngs,
    arrays,
    backend: c.string(root.backend, 'backend'),
    metadata: c.jsonObject(root.metadata, 'metadata'),
  };
}

