import type { EpisodeFinal, EpisodeStat, TrajectoryChunk } from '../../agents/experience';
import type { PolicyExtras } from '../../agents/policies/policy';
import type { VectorLayout } from '../../envs/env-shape';
import type { NamedTensorData } from '../core/checkpoint-format';
import { decodeMessage, encodeMessage, runKey } from './remote-registry';

/*
 * What the learner and acting hosts of an async run (`run.remote.mode: async`) exchange over
 * Redis, IMPALA/APPO style: the learner publishes versioned weights, hosts act with the newest
 * they have and send trajectory chunks tagged with that version, under credits.
 *
 *   weights                  the newest weights blob (msgpack: epoch, version, models)
 *   weights:version          `<epoch>:<version>` of that blob, which hosts poll between chunks
 *   traj                     the stream of chunks (field `host`, field `chunk`), group `learner`
 *   credits:<host>           a list of tokens: a host takes one (BLPOP) before every chunk
 *   hosts                    the set of host ids that ever announced themselves
 *   host:<host>              a host's heartbeat (expires lease_ms after its last renewal)
 *   host-index:<i>           claimed once by one host (SET NX): the host's seed index
 *   granted                  hosts the learner has handed their initial credits to
 *   learner-epoch            incremented by every learner (re)start; versions compare within one epoch
 *
 * Credits are the stream's backpressure across machines: the learner grants each host
 * `credits` tokens once and pushes one back for every chunk it consumes (or drops), so a host's
 * tokens + its chunk being collected + its chunks in the stream never exceed `credits`.
 */

export const LEARNER_GROUP = 'learner';
/** Wire format of chunks and weights; a peer speaking another one is refused by name. */
export const ASYNC_FORMAT = 1;

export const asyncKeys = {
  weights: (runId: string) => runKey(runId, 'weights'),
  weightsVersion: (runId: string) => runKey(runId, 'weights', 'version'),
  traj: (runId: string) => runKey(runId, 'traj'),
  credits: (runId: string, hostId: string) => runKey(runId, 'credits', hostId),
  hosts: (runId: string) => runKey(runId, 'hosts'),
  heartbeat: (runId: string, hostId: string) => runKey(runId, 'host', hostId),
  hostIndex: (runId: string, index: number) => runKey(runId, 'host-index', index),
  granted: (runId: string) => runKey(runId, 'granted'),
  learnerEpoch: (runId: string) => runKey(runId, 'learner-epoch'),
  spec: (runId: string) => runKey(runId, 'spec'),
};

/** Algorithms whose learners take on-policy trajectory chunks and correct a small policy lag with PPO's ratio clipping. */
export const ASYNC_ALGORITHMS: readonly string[] = ['mappo', 'ippo'];

/**
 * Refuses a run config that cannot run in async mode, naming `run.remote.mode` and what would
 * have to change; nothing when the run is not async.
 */
export function asyncConfigIssue(config: { algo: { name: string }; run: { remote?: { mode: string } }; tasks?: unknown[] | undefined }): string | undefined {
  if (config.run.remote?.mode !== 'async') return undefined;
  if (!ASYNC_ALGORITHMS.includes(config.algo.name)) {
    return `run.remote.mode: 'async' needs an on-policy algorithm that learns from trajectory chunks (${ASYNC_ALGORITHMS.join(', ')}), but algo.name is '${config.algo.name}'; use run.remote.mode: lockstep for it`;
  }
  const taskCount = config.tasks?.length ?? 1;
  if (taskCount > 1) return `run.remote.mode: 'async' runs single-task configs (env: …), but this run has ${taskCount} tasks; use run.remote.mode: lockstep for multi-task runs`;
  return undefined;
}

// --- typed arrays as raw bytes --------------------------------------------------------------

type WireArrayType = 'f32' | 'i32' | 'u8';
interface WireArray {
  t: WireArrayType;
  b: Uint8Array;
}
const ARRAY_CLASSES = { f32: Float32Array, i32: Int32Array, u8: Uint8Array } as const;
type ArrayOf<K extends WireArrayType> = InstanceType<(typeof ARRAY_CLASSES)[K]>;

function wire(array: Float32Array | Int32Array | Uint8Array): WireArray {
  const t: WireArrayType = array instanceof Float32Array ? 'f32' : array instanceof Int32Array ? 'i32' : 'u8';
  return { t, b: new Uint8Array(array.buffer, array.byteOffset, array.byteLength) };
}

/** Copies the bytes into a fresh (aligned) typed array of the expected type and length, or throws naming the field. */
function unwire<K extends WireArrayType>(value: unknown, type: K, length: number, field: string): ArrayOf<K> {
  const w = value as Partial<WireArray> | null;
  if (typeof w !== 'object' || w === null || w.t !== type || !(w.b instanceof Uint8Array)) {
    throw new Error(`field '${field}' must be a ${type} array`);
  }
  const Ctor = ARRAY_CLASSES[type];
  const bytes = length * Ctor.BYTES_PER_ELEMENT;
  if (w.b.byteLength !== bytes) throw new Error(`field '${field}' holds ${w.b.byteLength / Ctor.BYTES_PER_ELEMENT} numbers, expected ${length}`);
  const out = new Ctor(length);
  new Uint8Array(out.buffer).set(w.b);
  return out as ArrayOf<K>;
}

// --- chunks ---------------------------------------------------------------------------------

/** A chunk as a host sends it: which host and learner epoch, the weights version it acted with. */
export interface ChunkEnvelope {
  host: string;
  epoch: number;
  version: number;
  chunk: TrajectoryChunk;
}

export function encodeChunk(envelope: ChunkEnvelope): Buffer {
  const c = envelope.chunk;
  const arrays = {
    policyVersions: wire(c.policyVersions),
    obs: wire(c.obs),
    state: wire(c.state),
    masks: wire(c.masks),
    alive: wire(c.alive),
    episodeStart: wire(c.episodeStart),
    teamSize: wire(c.teamSize),
    latent: wire(c.latent),
    actions: wire(c.actions),
    rewards: wire(c.rewards),
    terminated: wire(c.terminated),
    truncated: wire(c.truncated),
    episodeDone: wire(c.episodeDone),
    episodeAborted: wire(c.episodeAborted),
  };
  const b = c.bootstrap;
  return encodeMessage({
    format: ASYNC_FORMAT,
    host: envelope.host,
    epoch: envelope.epoch,
    version: envelope.version,
    task: c.task,
    index: c.index,
    startStep: c.startStep,
    length: c.length,
    numEnvs: c.layout.numEnvs,
    numAgents: c.layout.numAgents,
    arrays,
    extras: Object.fromEntries(Object.entries(c.extras).map(([k, v]) => [k, wire(v)])),
    finals: c.finals.map((f) => ({ t: f.t, env: f.env, obs: wire(f.obs), state: wire(f.state) })),
    bootstrap: {
      obs: wire(b.obs),
      state: wire(b.state),
      alive: wire(b.alive),
      masks: wire(b.masks),
      episodeStart: wire(b.episodeStart),
      teamSize: wire(b.teamSize),
      latent: wire(b.latent),
    },
    episodes: c.episodes,
  });
}

interface RawChunk {
  format?: unknown;
  host?: unknown;
  epoch?: unknown;
  version?: unknown;
  task?: unknown;
  index?: unknown;
  startStep?: unknown;
  length?: unknown;
  numEnvs?: unknown;
  numAgents?: unknown;
  arrays?: Record<string, unknown>;
  extras?: Record<string, unknown>;
  finals?: unknown;
  bootstrap?: Record<string, unknown>;
  episodes?: unknown;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/**
 * Decodes a chunk for a learner whose task has `layout` and chunks of `chunkLength` rows:
 * every array is checked against that shape, so a host running another config (or a corrupt
 * message) is refused with a sentence naming the field, never fed to the update.
 */
export function decodeChunk(bytes: Buffer, layout: VectorLayout, taskIndex: number, chunkLength: number): ChunkEnvelope {
  const raw = decodeMessage<RawChunk>(bytes, 'a trajectory chunk');
  if (typeof raw !== 'object' || raw === null) throw new Error('a trajectory chunk must be a map');
  if (raw.format !== ASYNC_FORMAT) throw new Error(`chunk format ${String(raw.format)}, expected ${ASYNC_FORMAT} (host and learner run different troupe versions)`);
  if (typeof raw.host !== 'string' || !isInt(raw.epoch) || !isInt(raw.version) || typeof raw.task !== 'string' || !isInt(raw.index) || !isInt(raw.startStep)) {
    throw new Error("chunk header: fields 'host', 'task' (strings) and 'epoch', 'version', 'index', 'startStep' (integers) are required");
  }
  const { numEnvs: E, numAgents: A, obsDim, stateDim, numActions: K, actDim } = layout;
  const T = raw.length;
  if (T !== chunkLength) throw new Error(`chunk has ${String(T)} rows, the learner's chunks have ${chunkLength} (host built with another config?)`);
  if (raw.numEnvs !== E || raw.numAgents !== A) throw new Error(`chunk is ${String(raw.numEnvs)} envs × ${String(raw.numAgents)} agents, the learner's task ${E} envs × ${A} agents`);
  const a = raw.arrays ?? {};
  const EA = E * A;
  const latentDim = 0;
  const arr = {
    policyVersions: unwire(a.policyVersions, 'i32', T, 'arrays.policyVersions'),
    obs: unwire(a.obs, 'f32', T * EA * obsDim, 'arrays.obs'),
    state: unwire(a.state, 'f32', T * E * stateDim, 'arrays.state'),
    masks: unwire(a.masks, 'u8', T * EA * K, 'arrays.masks'),
    alive: unwire(a.alive, 'u8', T * EA, 'arrays.alive'),
    episodeStart: unwire(a.episodeStart, 'u8', T * E, 'arrays.episodeStart'),
    teamSize: unwire(a.teamSize, 'i32', T * E, 'arrays.teamSize'),
    latent: unwire(a.latent, 'f32', T * E * latentDim, 'arrays.latent'),
    actions: unwire(a.actions, 'f32', T * EA * actDim, 'arrays.actions'),
    rewards: unwire(a.rewards, 'f32', T * EA, 'arrays.rewards'),
    terminated: unwire(a.terminated, 'u8', T * EA, 'arrays.terminated'),
    truncated: unwire(a.truncated, 'u8', T * EA, 'arrays.truncated'),
    episodeDone: unwire(a.episodeDone, 'u8', T * E, 'arrays.episodeDone'),
    episodeAborted: unwire(a.episodeAborted, 'u8', T * E, 'arrays.episodeAborted'),
  };
  const extras: PolicyExtras = {};
  for (const [key, value] of Object.entries(raw.extras ?? {})) {
    const w = value as Partial<WireArray>;
    const n = w?.b instanceof Uint8Array ? w.b.byteLength / 4 : -1;
    if (!(n > 0 && Number.isInteger(n) && n % (T * EA) === 0)) throw new Error(`field 'extras.${key}' must be a f32 array of T·E·A·k numbers`);
    extras[key] = unwire(value, 'f32', n, `extras.${key}`);
  }
  if (!Array.isArray(raw.finals)) throw new Error("field 'finals' must be a list");
  const finals: EpisodeFinal[] = raw.finals.map((f: { t?: unknown; env?: unknown; obs?: unknown; state?: unknown }, i: number) => {
    if (!isInt(f?.t) || f.t < 0 || f.t >= T || !isInt(f.env) || f.env < 0 || f.env >= E) throw new Error(`field 'finals.${i}': row t in [0, ${T}) and env in [0, ${E}) required`);
    return { t: f.t, env: f.env, obs: unwire(f.obs, 'f32', A * obsDim, `finals.${i}.obs`), state: unwire(f.state, 'f32', stateDim, `finals.${i}.state`) };
  });
  const b = raw.bootstrap ?? {};
  const bootstrap = {
    obs: unwire(b.obs, 'f32', EA * obsDim, 'bootstrap.obs'),
    state: unwire(b.state, 'f32', E * stateDim, 'bootstrap.state'),
    alive: unwire(b.alive, 'u8', EA, 'bootstrap.alive'),
    masks: unwire(b.masks, 'u8', EA * K, 'bootstrap.masks'),
    episodeStart: unwire(b.episodeStart, 'u8', E, 'bootstrap.episodeStart'),
    teamSize: unwire(b.teamSize, 'i32', E, 'bootstrap.teamSize'),
    latent: unwire(b.latent, 'f32', E * latentDim, 'bootstrap.latent'),
  };
  if (!Array.isArray(raw.episodes)) throw new Error("field 'episodes' must be a list");
  const episodes = raw.episodes as EpisodeStat[];
  for (const [i, ep] of episodes.entries()) {
    if (typeof ep !== 'object' || ep === null || !isInt(ep.env) || typeof ep.return !== 'number' || typeof ep.length !== 'number' || typeof ep.success !== 'number' || typeof ep.aborted !== 'boolean') {
      throw new Error(`field 'episodes.${i}': env, return, length, success and aborted required`);
    }
  }
  const chunk: TrajectoryChunk = {
    kind: 'chunk',
    task: raw.task,
    taskIndex,
    layout,
    index: raw.index,
    startStep: raw.startStep,
    length: T,
    ...arr,
    extras,
    finals,
    bootstrap,
    episodes,
  };
  return { host: raw.host, epoch: raw.epoch, version: raw.version, chunk };
}

// --- weights --------------------------------------------------------------------------------

/** The learner's weights as hosts load them: its models (checkpoint form) and version. */
export interface WeightsBlob {
  epoch: number;
  version: number;
  models: Record<string, NamedTensorData>;
}

export function encodeWeights(blob: WeightsBlob): Buffer {
  return encodeMessage({ format: ASYNC_FORMAT, ...blob });
}

export function decodeWeights(bytes: Buffer): WeightsBlob {
  const raw = decodeMessage<Partial<WeightsBlob> & { format?: unknown }>(bytes, 'the weights blob');
  if (raw?.format !== ASYNC_FORMAT) throw new Error(`weights format ${String(raw?.format)}, expected ${ASYNC_FORMAT} (host and learner run different troupe versions)`);
  if (!isInt(raw.epoch) || !isInt(raw.version) || typeof raw.models !== 'object' || raw.models === null) throw new Error("weights blob: fields 'epoch', 'version' and 'models' required");
  // msgpack hands byte strings back as Buffers over a shared pool; give every tensor its own aligned bytes.
  const models: Record<string, NamedTensorData> = {};
  for (const [model, tensors] of Object.entries(raw.models)) {
    models[model] = {};
    for (const [name, t] of Object.entries(tensors)) {
      if (!(t?.data instanceof Uint8Array) || !Array.isArray(t.shape)) throw new Error(`weights blob: tensor '${model}/${name}' is malformed`);
      models[model][name] = { shape: t.shape, dtype: t.dtype, data: new Uint8Array(t.data) };
    }
  }
  return { epoch: raw.epoch, version: raw.version, models };
}

/** `<epoch>:<version>`: what hosts compare to know whether their weights are the newest. */
export function weightsTag(epoch: number, version: number): string {
  return `${epoch}:${version}`;
}
