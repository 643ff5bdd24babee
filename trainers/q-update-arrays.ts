import { type AgentInputSpec, NO_ACTION, writeAgentInput } from '../agents/policies/agent-inputs';
import type { EnvShape } from '../envs/env-shape';
import type { EpisodeBatch } from './episode-replay';

/** The Q-value given to illegal actions, so a max or argmax never picks them. */
export const MASKED_Q = -1e10;

/**
 * What a value-decomposition update (QMIX/VDN/IQL, MTMA) feeds to the device from an episode
 * batch, time-major like the batch; `rows` = B·A agent rows per step.
 */
export interface QUpdateArrays {
  /** Agent inputs [T+1, rows, inputWidth]: observation, last action, agent id. */
  inputs: Float32Array;
  /** One-hot of the taken action [T (+1 with `takenRowAfterEnd`), rows, K]; a row after the end is zero. */
  taken: Float32Array;
  /** 1 where the agent is alive at step t [T, rows]. */
  aliveNow: Float32Array;
  /** 1 where the agent is alive with a legal action at t + 1 [T, rows]. */
  usableNext: Float32Array;
  /** 0 for legal actions at t + 1, MASKED_Q for illegal ones [T, rows, K]. */
  illegalNext: Float32Array;
  /** 1 − terminated [T, B]. */
  notDone: Float32Array;
  /** 1 where step t is a real step [T, B]. */
  filled: Float32Array;
}

export function qUpdateArrays(batch: EpisodeBatch, shape: EnvShape, inputSpec: AgentInputSpec, inputWidth: number, opts: { takenRowAfterEnd?: boolean } = {}): QUpdateArrays {
  const { numAgents: A, numActions: K, obsDim } = shape;
  const { size: B, steps: T } = batch;
  const D = inputWidth;
  const rows = B * A;
  const inputs = new Float32Array((T + 1) * rows * D);
  for (let t = 0; t <= T; t++) {
    for (let r = 0; r < rows; r++) {
      const i = t * rows + r;
      // Row t's last action is the one taken at t − 1 (none at the first step).
      writeAgentInput(inputs, i * D, inputSpec, batch.obs, i * obsDim, t > 0 ? batch.actions[i - rows] : NO_ACTION, r % A);
    }
  }
  const taken = new Float32Array((opts.takenRowAfterEnd ? T + 1 : T) * rows * K);
  const aliveNow = new Float32Array(T * rows);
  const usableNext = new Float32Array(T * rows);
  const illegalNext = new Float32Array(T * rows * K);
  for (let i = 0; i < T * rows; i++) {
    taken[i * K + batch.actions[i]] = 1;
    aliveNow[i] = batch.alive[i];
    const j = i + rows;
    let legal = 0;
    for (let k = 0; k < K; k++) {
      legal += batch.avail[j * K + k];
      if (!batch.avail[j * K + k]) illegalNext[i * K + k] = MASKED_Q;
    }
    usableNext[i] = batch.alive[j] && legal > 0 ? 1 : 0;
  }
  return { inputs, taken, aliveNow, usableNext, illegalNext, notDone: Float32Array.from(batch.terminated, (d) => 1 - d), filled: Float32Array.from(batch.filled) };
}
