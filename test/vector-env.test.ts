import { createHash } from 'node:crypto';
import path from 'node:path';
import { RandomPolicy } from '../agents/policies/random-policy';
import { Rng } from '../runtime/core/rng';
import { ShardCommand, type ShardTransport, type ShardTransportContext, resetSeed } from '../runtime/rollout/shard-protocol';
import { ShardRunner } from '../runtime/rollout/shard-runner';
import { type VectorBuffers, allocateBuffers } from '../runtime/rollout/vector-buffers';
import { VectorEnv, type VectorEnvOptions } from '../runtime/rollout/vector-env';

const probeModule = path.join(__dirname, 'fixtures', 'vector-probe-env.js');
const probe = (options: Record<string, unknown> = {}) => ({ id: 'vector-probe', module: probeModule, options });

/** Writes random legal actions for live agents (from one main-thread stream, so they do not depend on W). */
export function writeRandomActions(vec: VectorEnv, rng: Rng): void {
  const { numEnvs: E, numAgents: A, numActions } = vec.layout;
  const b = vec.buffers;
  for (let i = 0; i < E * A; i++) {
    if (!b.alive[i]) {
      b.actions[i] = 0;
      continue;
    }
    let allowed = 0;
    for (let k = 0; k < numActions; k++) allowed += b.masks[i * numActions + k];
    let pick = rng.int(allowed);
    for (let k = 0; k < numActions; k++) {
      if (b.masks[i * numActions + k] && pick-- === 0) {
        b.actions[i] = k;
        break;
      }
    }
  }
}

/**
 * A third backend for the rollout seam, the way a broker would work: the envs live apart from
 * the VectorEnv (their own buffers, here in memory instead of on another machine), commands are
 * queued as messages carrying the actions and the policy version, and `observe` copies the
 * group's rows back. It records every message, so tests can see what crossed the seam.
 */
class CopyingTransport implements ShardTransport {
  readonly name = 'copying';
  readonly restarts = [];
  readonly messages: Array<{ command: 'reset' | 'step'; group: number; epoch?: number; policyVersion?: number }> = [];
  private readonly remote: VectorBuffers;
  private readonly runner: ShardRunner;
  private readonly queue: Array<() => void> = [];

  constructor(private readonly context: ShardTransportContext) {
    this.remote = allocateBuffers(context.layout, false);
    this.runner = new ShardRunner(context.spec, context.layout, this.remote, context.groupRanges);
  }

  reset(group: number, epoch: number): void {
    this.messages.push({ command: 'reset', group, epoch });
    const [s, e] = this.context.groupRanges[group];
    this.queue.push(() => this.runner.reset(resetSeed(this.context.seed, epoch), s, e));
  }

  step(group: number, policyVersion: number): void {
    this.messages.push({ command: 'step', group, policyVersion });
    const [s, e] = this.context.groupRanges[group];
    const { numAgents: A, actDim } = this.context.layout;
    // The actions travel with the message.
    const actions = this.context.buffers.actions.slice(s * A * actDim, e * A * actDim);
    this.queue.push(() => {
      this.remote.actions.set(actions, s * A * actDim);
      this.runner.step(s, e);
    });
  }

  async observe(group: number, _command: ShardCommand, _vectorStep: number): Promise<void> {
    this.queue.shift()!();
    const [s, e] = this.context.groupRanges[group];
    const { numAgents: A, obsDim, stateDim, numActions: K } = this.context.layout;
    const local = this.context.buffers;
    const rows: Array<[keyof VectorBuffers, number]> = [
      ['obs', A * obsDim], ['finalObs', A * obsDim], ['state', stateDim], ['finalState', stateDim], ['rewards', A], ['terminated', A], ['truncated', A],
      ['alive', A], ['masks', A * K], ['episodeDone', 1], ['episodeAborted', 1], ['episodeReturn', 1], ['episodeLength', 1], ['episodeSuccess', 1], ['teamSize', 1],
    ];
    for (const [field, width] of rows) (local[field] as Float32Array).set((this.remote[field] as Float32Array).subarray(s * width, e * width), s * width);
  }

  async close(): Promise<void> {
    this.runner.close();
  }
}

async function hashRun(options: VectorEnvOptions, steps: number): Promise<string> {
  const vec = await VectorEnv.create(options);
  const hash = createHash('sha256');
  const rng = new Rng('policy');
  const b = vec.buffers;
  try {
    await vec.reset();
    for (let t = 0; t < steps; t++) {
      writeRandomActions(vec, rng);
      await vec.step();
      for (const arr of [b.obs, b.rewards, b.terminated, b.truncated, b.alive, b.masks, b.episodeDone, b.state]) {
        hash.update(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
      }
      for (let e = 0; e < vec.numEnvs; e++) {
        if (b.episodeDone[e]) hash.update(`${e}:${b.episodeReturn[e]}:${b.episodeLength[e]}:${b.episodeSuccess[e]}`);
      }
    }
  } finally {
    await vec.close();
  }
  return hash.digest('hex');
}

describe('VectorEnv', () => {
  test('a third transport (envs apart, rows copied back) gives the in-process results and sees the policy versions', async () => {
    const base = { env: probe(), numEnvs: 6, seed: 7 };
    const inProcess = await hashRun({ ...base, workers: 0 }, 500);
    let transport: CopyingTransport | undefined;
    const copied = await hashRun({ ...base, transport: (context) => (transport = new CopyingTransport(context)) }, 500);
    expect(copied).toBe(inProcess);
    expect(transport!.messages[0]).toEqual({ command: 'reset', group: 0, epoch: 0 });
    // The groups of a double-buffered vector travel separately, each step tagged with its policy version.
    const vec = await VectorEnv.create({ ...base, groups: 2, transport: (context) => (transport = new CopyingTransport(context)) });
    try {
      await vec.reset(3);
      vec.sendStep(0, 41);
      vec.sendStep(1, 42);
      await vec.awaitStep(0);
      await vec.awaitStep(1);
      expect(vec.transportName).toBe('copying');
      expect([vec.policyVersion(0), vec.policyVersion(1)]).toEqual([41, 42]);
      expect(transport!.messages).toEqual([
        { command: 'reset', group: 0, epoch: 3 },
        { command: 'reset', group: 1, epoch: 3 },
        { command: 'step', group: 0, policyVersion: 41 },
        { command: 'step', group: 1, policyVersion: 42 },
      ]);
    } finally {
      await vec.close();
    }
  });

  test('results are identical in-process and over 1 and 2 workers (1,000 vector steps)', async () => {
    const base = { env: probe(), numEnvs: 8, seed: 7 };
    const inProcess = await hashRun({ ...base, workers: 0 }, 1000);
    expect(await hashRun({ ...base, workers: 1 }, 1000)).toBe(inProcess);
    expect(await hashRun({ ...base, workers: 2 }, 1000)).toBe(inProcess);
    expect(await hashRun({ ...base, workers: 0, seed: 8 }, 1000)).not.toBe(inProcess);
  });

  test('double-buffered groups give the same results as lock-step, for a built-in env too', async () => {
    for (const env of [probe(), { id: 'lbf-8x8-2p-2f-coop' }]) {
      const hashes: string[] = [];
      for (const [workers, groups] of [[0, 1], [2, 1], [0, 2], [2, 2], [1, 4]]) {
        const vec = await VectorEnv.create({ env, numEnvs: 8, workers, groups, seed: 3 });
        const policy = new RandomPolicy(vec.layout, 'p');
        const hash = createHash('sha256');
        const b = vec.buffers;
        await vec.reset();
        // Pipeline: act for group g and send it, then collect the oldest group in flight.
        for (let t = 0; t < 300; t++) {
          for (let g = 0; g < groups; g++) {
            const [s, e] = vec.groupRanges[g];
            policy.writeActions(b.masks, b.alive, b.actions, s, e);
            vec.sendStep(g);
          }
          for (let g = 0; g < groups; g++) await vec.awaitStep(g);
          for (const arr of [b.obs, b.rewards, b.alive, b.episodeDone, b.episodeReturn, b.state]) hash.update(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));
        }
        await vec.close();
        hashes.push(hash.digest('hex'));
      }
      expect(new Set(hashes).size).toBe(1);
    }
  });

  test('episode returns count a shared team reward once and sum individual rewards', async () => {
    for (const [id, shared] of [['combat-3v3', true], ['lbf-8x8-2p-2f-coop', false]] as const) {
      const vec = await VectorEnv.create({ env: { id }, numEnvs: 1, seed: 4 });
      const policy = new RandomPolicy(vec.layout, 'p');
      const b = vec.buffers;
      const A = vec.layout.numAgents;
      await vec.reset();
      let expected = 0;
      let episodes = 0;
      while (episodes < 5) {
        policy.writeActions(b.masks, b.alive, b.actions);
        await vec.step();
        const stepRewards = Array.from(b.rewards.subarray(0, A)).filter((_, a) => b.terminated[a] || b.truncated[a] || b.alive[a] || b.episodeDone[0]);
        expected += shared ? Math.max(...stepRewards) : stepRewards.reduce((x, y) => x + y, 0);
        if (b.episodeDone[0]) {
          expect(b.episodeReturn[0]).toBeCloseTo(expected, 4);
          expected = 0;
          episodes++;
        }
      }
      await vec.close();
    }
  });

  test('misuse of the group API is a clear error', async () => {
    const vec = await VectorEnv.create({ env: probe(), numEnvs: 4, groups: 2, seed: 0 });
    await vec.reset();
    await expect(vec.awaitStep(0)).rejects.toThrow(/awaitStep\(0\) without sendStep\(0\)/);
    vec.sendStep(0);
    expect(() => vec.sendStep(0)).toThrow(/group 0 is already stepping/);
    await vec.awaitStep(0);
    await vec.close();
    await expect(VectorEnv.create({ env: probe(), numEnvs: 4, groups: 5 })).rejects.toThrow(/groups must be an integer from 1 to 4/);
  });

  test('auto-resets, keeps the final observation and reports episode statistics', async () => {
    const vec = await VectorEnv.create({ env: probe(), numEnvs: 2, seed: 1 });
    const rng = new Rng(2);
    const b = vec.buffers;
    await vec.reset();
    let episodes = 0;
    for (let t = 0; t < 100; t++) {
      writeRandomActions(vec, rng);
      await vec.step();
      for (let e = 0; e < 2; e++) {
        if (!b.episodeDone[e]) continue;
        episodes++;
        expect(b.episodeLength[e]).toBeGreaterThan(0);
        expect(b.episodeLength[e]).toBeLessThanOrEqual(12);
        // The last observation's third entry is the episode step; the fresh one starts at 0 with the env index.
        const finalSteps = [0, 1, 2].map((a) => b.finalObs[(e * 3 + a) * 3 + 2]).filter((x) => x > 0);
        expect(Math.max(...finalSteps)).toBe(b.episodeLength[e]);
        expect(b.obs[(e * 3) * 3 + 2]).toBe(e);
        expect([0, 1]).toContain(b.episodeSuccess[e]);
        expect(Array.from(b.alive.subarray(e * 3, e * 3 + 3))).toEqual([1, 1, 1]);
      }
    }
    expect(episodes).toBeGreaterThan(10);
    await vec.close();
  });

  test('an env exception names the env, its index and the step (in-process and in a worker)', async () => {
    for (const workers of [0, 2]) {
      const vec = await VectorEnv.create({ env: probe({ failEnvIndex: 3, throwAtStep: 5 }), numEnvs: 4, workers, seed: 0 });
      const rng = new Rng(0);
      await vec.reset();
      let caught: Error | undefined;
      try {
        for (let t = 0; t < 10; t++) {
          writeRandomActions(vec, rng);
          await vec.step();
        }
      } catch (error) {
        caught = error as Error;
      }
      expect(caught?.message).toMatch(/env 'vector-probe' #3 failed at episode step \d+: injected failure \(vector step 4\)/);
      await vec.close();
    }
  });

  test('a worker that dies is reported, and with restart enabled the run continues', async () => {
    const env = probe({ failEnvIndex: 1, exitAtStep: 5 });
    const strict = await VectorEnv.create({ env, numEnvs: 4, workers: 2, seed: 0 });
    const rng = new Rng(0);
    await strict.reset();
    await expect(
      (async () => {
        for (let t = 0; t < 10; t++) {
          writeRandomActions(strict, rng);
          await strict.step();
        }
      })(),
    ).rejects.toThrow(/env 'vector-probe' #0–1 \(shard 0\): worker thread died.*\(vector step 4\)/);
    await strict.close();

    const tolerant = await VectorEnv.create({ env, numEnvs: 4, workers: 2, seed: 0, restartOnFailure: true });
    const b = tolerant.buffers;
    await tolerant.reset();
    let aborted = 0;
    for (let t = 0; t < 50; t++) {
      writeRandomActions(tolerant, rng);
      await tolerant.step();
      for (let e = 0; e < 4; e++) if (b.episodeAborted[e]) aborted++;
    }
    expect(tolerant.restarts.length).toBeGreaterThanOrEqual(1);
    expect(tolerant.restarts[0]).toMatchObject({ shard: 0, envRanges: [[0, 2]], vectorStep: 4 });
    expect(aborted).toBeGreaterThanOrEqual(2);
    await tolerant.close();
  });
});
