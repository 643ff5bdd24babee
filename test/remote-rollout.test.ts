import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Rng } from '../runtime/core/rng';
import { listRemoteRuns } from '../runtime/rollout/remote-registry';
import { RemoteLockstepRun } from '../runtime/rollout/remote-transport';
import { RolloutHost } from '../runtime/rollout/rollout-host';
import type { VectorBuffers } from '../runtime/rollout/vector-buffers';
import { VectorEnv } from '../runtime/rollout/vector-env';
import { CLI, expectCleanFailure, runCli } from './helpers/cli-run';
import { type TestRedisServer, startRedisServer } from './helpers/redis-server';

/*
 * Lock-step remote rollouts over a private Redis: the transport gives the same buffers as
 * in-process stepping (also across a host's death), `troupe train --broker` with `troupe
 * rollout` hosts gives the same metrics as `--workers 2`, and a broker or host that goes away
 * is reported clearly instead of hanging.
 */

const ENV = { id: 'lbf-8x8-2p-2f-coop' };

function writeRandomActions(vec: VectorEnv, rng: Rng): void {
  const { numEnvs: E, numAgents: A, numActions } = vec.layout;
  const b = vec.buffers;
  for (let i = 0; i < E * A; i++) {
    let pick = rng.int(numActions);
    for (let k = 0; k < numActions; k++) {
      const action = (pick + k) % numActions;
      if (b.masks[i * numActions + action]) {
        pick = action;
        break;
      }
    }
    b.actions[i] = b.alive[i] ? pick : 0;
  }
}

const FIELDS: Array<keyof VectorBuffers> = ['obs', 'finalObs', 'state', 'finalState', 'rewards', 'terminated', 'truncated', 'alive', 'masks', 'episodeDone', 'episodeAborted', 'episodeReturn', 'episodeLength', 'episodeSuccess', 'teamSize'];

/** The first buffer whose bytes differ, or undefined. */
function firstDifference(a: VectorBuffers, b: VectorBuffers): string | undefined {
  for (const field of FIELDS) {
    const x = Buffer.from(a[field].buffer, a[field].byteOffset, a[field].byteLength);
    const y = Buffer.from(b[field].buffer, b[field].byteOffset, b[field].byteLength);
    if (!x.equals(y)) return field;
  }
  return undefined;
}

function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (condition()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 20);
    };
    tick();
  });
}

describe('lock-step remote rollouts', () => {
  let server: TestRedisServer;
  const notices: string[] = [];
  beforeAll(() => {
    server = startRedisServer();
  });
  afterAll(() => server?.stop());

  test('a VectorEnv on the remote transport matches in-process bit for bit, with resets, two groups and a host dying mid-run', async () => {
    const numEnvs = 12;
    const options = { env: ENV, numEnvs, groups: 2, seed: 'remote-test' };
    const reference = await VectorEnv.create({ ...options, workers: 0 });
    const run = await RemoteLockstepRun.open({ url: server.url, runId: 'transport-test', shards: 3, leaseMs: 600, config: {}, onWaiting: (m) => notices.push(m), noticeEveryMs: 500 });
    const remote = await VectorEnv.create({ ...options, transport: run.transportFor('lbf') });
    const hostA = new RolloutHost({ url: server.url, workers: 0, maxShards: 2, hostId: 'host-a', discoverEveryMs: 100 });
    const servingA = hostA.run();
    await waitFor(() => hostA.shards.length === 2, 5000, 'host A to claim two shards');
    const hostB = new RolloutHost({ url: server.url, workers: 1, maxShards: 3, hostId: 'host-b', discoverEveryMs: 100 });
    const servingB = hostB.run();
    try {
      const rngA = new Rng('actions');
      const rngB = new Rng('actions');
      let steps = 0;
      let episodesEnded = 0;
      for (const epoch of [0, 3]) {
        await reference.reset(epoch);
        await remote.reset(epoch);
        expect(firstDifference(reference.buffers, remote.buffers)).toBeUndefined();
        for (let t = 0; t < 60; t++) {
          writeRandomActions(reference, rngA);
          writeRandomActions(remote, rngB);
          // Group by group (double buffering), as a learner overlapping groups would.
          for (let g = 0; g < 2; g++) reference.sendStep(g, t);
          for (let g = 0; g < 2; g++) remote.sendStep(g, t);
          for (let g = 0; g < 2; g++) await reference.awaitStep(g);
          for (let g = 0; g < 2; g++) await remote.awaitStep(g);
          expect(firstDifference(reference.buffers, remote.buffers)).toBeUndefined();
          steps++;
          episodesEnded += reference.buffers.episodeDone.reduce((n, d) => n + d, 0);
          // Host A dies without a word mid-segment: its leases lapse and host B replays its shards.
          if (epoch === 3 && t === 10) hostA.abandon();
        }
      }
      expect(steps).toBe(120);
      expect(episodesEnded).toBeGreaterThan(0);
      await servingA;
      expect(hostB.shards).toHaveLength(3);
    } finally {
      hostA.abandon();
      await reference.close();
      await remote.close();
      await run.close();
      hostB.stop();
      await servingB;
    }
    // The run is gone from the broker once the learner closed it.
    const redis = new Redis({ path: server.socket });
    expect(await listRemoteRuns(redis)).toEqual([]);
    redis.disconnect();
  }, 30000);
});
