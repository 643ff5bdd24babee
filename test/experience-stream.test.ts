import path from 'node:path';
import { type Observable, type Subscription, firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { RandomPolicy } from '../agents/policies/random-policy';
import { type EpisodeStat, EpisodeStatsAccumulator, type TrajectoryChunk, type Transition, summarizeEpisodes } from '../agents/experience';
import { type Policy, type PolicyBatch, emptyContext } from '../agents/policies/policy';
import type { VectorLayout } from '../envs/env-shape';
import { type Delivery, collectionSettled, consumeEach, experienceStream } from '../runtime/rollout/experience-stream';
import { VectorEnv } from '../runtime/rollout/vector-env';

const probeModule = path.join(__dirname, 'fixtures', 'vector-probe-env.js');
const probe = (options: Record<string, unknown> = {}) => ({ id: 'vector-probe', module: probeModule, options });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function withVec<T>(options: Parameters<typeof VectorEnv.create>[0], run: (vec: VectorEnv) => Promise<T>): Promise<T> {
  const vec = await VectorEnv.create(options);
  try {
    return await run(vec);
  } finally {
    // Bounded: a test that failed while still subscribed must not hang here.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([collectionSettled(vec), new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
    await vec.close();
  }
}

/** What a hand-written loop over the same env and policy seeds sees, step by step. */
async function manualRollout(vec: VectorEnv, policy: Policy, steps: number) {
  const b = vec.buffers;
  const rows: Array<Record<string, Float32Array | Uint8Array>> = [];
  await vec.reset();
  const episodeStart = new Uint8Array(vec.numEnvs).fill(1);
  for (let t = 0; t < steps; t++) {
    const row: Record<string, Float32Array | Uint8Array> = { obs: b.obs.slice(), state: b.state.slice(), masks: b.masks.slice(), alive: b.alive.slice(), episodeStart: episodeStart.slice() };
    b.actions.fill(0);
    await policy.act({ obs: b.obs, state: b.state, masks: b.masks, alive: b.alive, episodeStart, layout: vec.layout, context: { ...emptyContext(vec.numEnvs), teamSize: b.teamSize } }, b.actions);
    await vec.step();
    episodeStart.set(b.episodeDone);
    Object.assign(row, {
      actions: b.actions.slice(),
      rewards: b.rewards.slice(),
      terminated: b.terminated.slice(),
      truncated: b.truncated.slice(),
      episodeDone: b.episodeDone.slice(),
      nextObs: b.obs.slice(),
      finalObs: b.finalObs.slice(),
    });
    rows.push(row);
  }
  return rows;
}

/** Polls `condition` until it holds, for at most `ms` (then the caller's assertions report the state). */
async function until(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await sleep(5);
}

describe('experienceStream backpressure', () => {
  test('a consumer that never acks stops collection at bufferSize items; each ack lets exactly one more step happen', async () => {
    await withVec({ env: probe(), numEnvs: 3, seed: 1 }, async (vec) => {
      const received: Array<Delivery<Transition>> = [];
      const sub = experienceStream(vec, new RandomPolicy(vec.layout, 1), { mode: 'transition', bufferSize: 3 }).subscribe((d) => received.push(d));
      // Wait until the stream has had every chance to overrun (on a loaded machine steps are slow),
      // then give it as long again to prove it stays stopped.
      await until(() => received.length >= 3);
      await sleep(80);
      expect(received.length).toBe(3);
      expect(vec.steps).toBe(3);
      received[0].ack();
      received[0].ack(); // idempotent: a second ack must not grant a second credit
      await until(() => received.length >= 4);
      await sleep(50);
      expect(received.length).toBe(4);
      expect(vec.steps).toBe(4);
      sub.unsubscribe();
    });
  });

  test.each([
    ['transition', 1, 2],
    ['transition', 1, 1],
    ['chunk', 4, 2],
  ] as const)('slow consumer (%s, T=%d, bufferSize %d): steps ≤ (consumed + bufferSize)·T and in-flight ≤ bufferSize', async (mode, T, bufferSize) => {
    await withVec({ env: probe(), numEnvs: 4, seed: 3 }, async (vec) => {
      const policy = new RandomPolicy(vec.layout, 3);
      const stream: Observable<Delivery<unknown>> = mode === 'chunk' ? experienceStream(vec, policy, { mode, chunkLength: T, bufferSize, maxSteps: 10 * T }) : experienceStream(vec, policy, { mode, bufferSize, maxSteps: 10 });
      let emitted = 0;
      let acked = 0;
      let maxInFlight = 0;
      let maxExcess = -Infinity;
      const queue: Array<Delivery<unknown>> = [];
      const done = new Promise<void>((resolve, reject) => {
        stream.subscribe({
          next: (d) => {
            emitted++;
            maxInFlight = Math.max(maxInFlight, emitted - acked);
            maxExcess = Math.max(maxExcess, vec.steps - (acked + bufferSize) * T);
            queue.push(d);
          },
          error: reject,
          complete: resolve,
        });
      });
      // The consumer: 20 ms per item, one at a time.
      while (acked < 10) {
        await sleep(20);
        maxExcess = Math.max(maxExcess, vec.steps - (acked + bufferSize) * T);
        const d = queue.shift();
        if (!d) continue;
        d.ack();
        acked++;
      }
      await done;
      expect(emitted).toBe(10);
      expect(maxExcess).toBeLessThanOrEqual(0);
      // Reaching the limit shows the consumer really was behind, so the bound above was exercised.
      expect(maxInFlight).toBe(bufferSize);
    });
  });

  test('consumeEach acks after the async handler finishes, keeping the producer at most bufferSize ahead', async () => {
    await withVec({ env: probe(), numEnvs: 2, seed: 4 }, async (vec) => {
      let consumed = 0;
      let maxAhead = 0;
      const results = await lastValueFrom(
        experienceStream(vec, new RandomPolicy(vec.layout, 4), { mode: 'transition', maxSteps: 8, bufferSize: 2 }).pipe(
          consumeEach(async (tr: Transition) => {
            maxAhead = Math.max(maxAhead, vec.steps - consumed);
            await sleep(20);
            consumed++;
            return tr.step;
          }),
          toArray(),
        ),
      );
      expect(results).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(maxAhead).toBeLessThanOrEqual(2);
      expect(maxAhead).toBeGreaterThanOrEqual(1);
    });
  });
});

describe('experienceStream contents', () => {
  test('chunks have [T, E, A, …] shapes and equal a manual loop over the same seeds', async () => {
    const T = 6;
    const E = 3;
    const chunks = await withVec({ env: probe(), numEnvs: E, seed: 11 }, (vec) =>
      lastValueFrom(experienceStream(vec, new RandomPolicy(vec.layout, 'p'), { mode: 'chunk', chunkLength: T, maxSteps: 4 * T + 3 }).pipe(consumeEach((c: TrajectoryChunk) => c), toArray())),
    );
    const manual = await withVec({ env: probe(), numEnvs: E, seed: 11 }, (vec) => manualRollout(vec, new RandomPolicy(vec.layout, 'p'), 4 * T));
    // maxSteps not a multiple of T: only full chunks, and no steps beyond them.
    expect(chunks.map((c) => [c.index, c.startStep, c.length])).toEqual([
      [0, 0, T],
      [1, T, T],
      [2, 2 * T, T],
      [3, 3 * T, T],
    ]);
    const A = 3;
    const obsDim = 3;
    let finals = 0;
    for (const c of chunks) {
      expect(c.obs.length).toBe(T * E * A * obsDim);
      expect(c.state.length).toBe(T * E * 4);
      expect(c.masks.length).toBe(T * E * A * 4);
      expect(c.alive.length).toBe(T * E * A);
      expect(c.actions.length).toBe(T * E * A);
      expect(c.rewards).toBeInstanceOf(Float32Array);
      expect(c.rewards.length).toBe(T * E * A);
      expect(c.terminated.length).toBe(T * E * A);
      expect(c.episodeDone.length).toBe(T * E);
      expect(c.bootstrap.obs.length).toBe(E * A * obsDim);
      for (let t = 0; t < T; t++) {
        const row = manual[c.startStep + t];
        const slice = <X extends Float32Array | Uint8Array>(arr: X, per: number) => Array.from(arr.subarray(t * per, (t + 1) * per));
        for (const key of ['obs', 'state', 'masks', 'alive', 'actions', 'rewards', 'terminated', 'truncated', 'episodeDone'] as const) {
          expect([key, slice(c[key], row[key].length)]).toEqual([key, Array.from(row[key])]);
        }
        for (const f of c.finals.filter((x) => x.t === t)) {
          finals++;
          expect(row.episodeDone[f.env]).toBe(1);
          expect(Array.from(f.obs)).toEqual(Array.from(row.finalObs.subarray(f.env * A * obsDim, (f.env + 1) * A * obsDim)));
        }
      }
      expect(Array.from(c.bootstrap.obs)).toEqual(Array.from(manual[c.startStep + T - 1].nextObs));
      expect(c.episodes.length).toBe(c.finals.length);
    }
    expect(finals).toBeGreaterThan(0);
  });

  test('results are the same over 2 worker threads as in-process', async () => {
    const run = (workers: number) =>
      withVec({ env: probe(), numEnvs: 4, workers, seed: 5 }, (vec) =>
        lastValueFrom(experienceStream(vec, new RandomPolicy(vec.layout, 5), { mode: 'chunk', chunkLength: 8, maxSteps: 40 }).pipe(consumeEach((c: TrajectoryChunk) => c), toArray())),
      );
    const [inProcess, workers] = [await run(0), await run(2)];
    expect(workers).toHaveLength(5);
    for (let i = 0; i < 5; i++) {
      for (const key of ['obs', 'state', 'actions', 'rewards', 'terminated', 'truncated', 'alive', 'episodeDone'] as const) {
        expect(Array.from(workers[i][key])).toEqual(Array.from(inProcess[i][key]));
      }
      expect(workers[i].episodes).toEqual(inProcess[i].episodes);
    }
  });

  test('transitions substitute the final observation and state for envs whose episode ended', async () => {
    const E = 2;
    const transitions = await withVec({ env: probe(), numEnvs: E, seed: 2 }, (vec) =>
      lastValueFrom(experienceStream(vec, new RandomPolicy(vec.layout, 2), { mode: 'transition', maxSteps: 60 }).pipe(consumeEach((t: Transition) => t), toArray())),
    );
    expect(transitions).toHaveLength(60);
    const A = 3;
    const obsDim = 3;
    let ended = 0;
    for (let i = 0; i < transitions.length - 1; i++) {
      const tr = transitions[i];
      const next = transitions[i + 1];
      for (let e = 0; e < E; e++) {
        const nextObs = Array.from(tr.nextObs.subarray(e * A * obsDim, (e + 1) * A * obsDim));
        const followingObs = Array.from(next.obs.subarray(e * A * obsDim, (e + 1) * A * obsDim));
        if (!tr.episodeDone[e]) {
          expect(nextObs).toEqual(followingObs);
          expect(Array.from(tr.nextState.subarray(e * 4, e * 4 + 4))).toEqual(Array.from(next.state.subarray(e * 4, e * 4 + 4)));
          continue;
        }
        ended++;
        const episode = tr.episodes.find((ep) => ep.env === e)!;
        expect(episode).toMatchObject({ env: e, step: tr.step, aborted: false });
        // Probe obs[2] is the episode step, so the final observation ends at the episode length …
        expect(Math.max(...[0, 1, 2].map((a) => nextObs[a * obsDim + 2]))).toBe(episode.length);
        // … while the auto-reset observation the policy sees next starts over (obs[2] = env index).
        expect(followingObs[2]).toBe(e);
        // Probe state is [t, total, live agents, env index]: the final state has nobody left.
        expect(tr.nextState[e * 4]).toBe(episode.length);
        expect(tr.nextState[e * 4 + 2]).toBe(0);
        expect(next.state[e * 4]).toBe(0);
      }
    }
    expect(ended).toBeGreaterThan(3);
  });

  test('policy extras are copied per step and stacked [T, E, A, k]', async () => {
    class ExtrasPolicy implements Policy {
      private readonly inner: RandomPolicy;
      private readonly logp: Float32Array;
      private readonly pair: Float32Array;
      constructor(layout: VectorLayout) {
        this.inner = new RandomPolicy(layout, 9);
        this.logp = new Float32Array(layout.numEnvs * layout.numAgents);
        this.pair = new Float32Array(layout.numEnvs * layout.numAgents * 2);
      }
      async act(batch: PolicyBatch, actions: Float32Array) {
        this.inner.act(batch, actions);
        // Reused arrays: the stream must copy them, or every row would show the last step's values.
        for (let i = 0; i < this.logp.length; i++) {
          this.logp[i] = actions[i] + 10;
          this.pair[2 * i] = actions[i];
          this.pair[2 * i + 1] = -actions[i];
        }
        return { extras: { logp: this.logp, pair: this.pair } };
      }
    }
    const [chunk] = await withVec({ env: probe(), numEnvs: 2, seed: 0 }, (vec) =>
      lastValueFrom(experienceStream(vec, new ExtrasPolicy(vec.layout), { mode: 'chunk', chunkLength: 5, maxSteps: 5 }).pipe(consumeEach((c: TrajectoryChunk) => c), toArray())),
    );
    expect(chunk.extras.logp.length).toBe(5 * 2 * 3);
    expect(chunk.extras.pair.length).toBe(5 * 2 * 3 * 2);
    expect(Array.from(chunk.extras.logp)).toEqual(Array.from(chunk.actions, (a) => a + 10));
    expect(Array.from(chunk.extras.pair.filter((_, i) => i % 2 === 0))).toEqual(Array.from(chunk.actions));
  });
});

describe('experienceStream lifecycle', () => {
  test('completes after maxSteps vector steps', async () => {
    await withVec({ env: { id: 'lbf-8x8-2p-2f-coop' }, numEnvs: 3, seed: 0 }, async (vec) => {
      let completed = false;
      const items = await new Promise<Transition[]>((resolve, reject) => {
        const got: Transition[] = [];
        experienceStream(vec, new RandomPolicy(vec.layout, 0), { mode: 'transition', maxSteps: 25 })
          .pipe(consumeEach((t: Transition) => t))
          .subscribe({
            next: (t) => got.push(t),
            error: reject,
            complete: () => {
              completed = true;
              resolve(got);
            },
          });
      });
      expect(completed).toBe(true);
      expect(items.map((t) => t.step)).toEqual(Array.from({ length: 25 }, (_, i) => i));
      await collectionSettled(vec);
      expect(vec.steps).toBe(25);
    });
  });

  test.each([0, 2])('an env failure errors the stream with that error (workers %d)', async (workers) => {
    await withVec({ env: probe({ failEnvIndex: 1, throwAtStep: 5 }), numEnvs: 2, workers, seed: 0 }, async (vec) => {
      const seen: number[] = [];
      const run = lastValueFrom(experienceStream(vec, new RandomPolicy(vec.layout, 0), { mode: 'transition', maxSteps: 50 }).pipe(consumeEach((t: Transition) => seen.push(t.step))));
      await expect(run).rejects.toMatchObject({ name: 'VectorEnvError', envIndex: 1, message: expect.stringMatching(/#1 failed .*injected failure \(vector step 4\)/) });
      expect(seen).toEqual([0, 1, 2, 3]);
    });
  });

  test('a policy failure errors the stream', async () => {
    await withVec({ env: probe(), numEnvs: 2, seed: 0 }, async (vec) => {
      const policy: Policy = {
        act: async () => {
          throw new Error('policy exploded');
        },
      };
      await expect(firstValueFrom(experienceStream(vec, policy, { mode: 'chunk', chunkLength: 4 }))).rejects.toThrow('policy exploded');
    });
  });

  test.each([0, 2])('unsubscribing stops stepping promptly and leaves the VectorEnv open (workers %d)', async (workers) => {
    await withVec({ env: probe(), numEnvs: 4, workers, seed: 0 }, async (vec) => {
      // Fast consumer, unbounded stream: only the unsubscribe can stop it.
      const sub: Subscription = experienceStream(vec, new RandomPolicy(vec.layout, 0), { mode: 'transition' })
        .pipe(consumeEach((t: Transition) => t.step))
        .subscribe();
      try {
        // Worker threads take a while to start; wait for real progress rather than a fixed time.
        for (let waited = 0; vec.steps <= 5 && waited < 3000; waited += 10) await sleep(10);
        expect(vec.steps).toBeGreaterThan(5);
      } finally {
        sub.unsubscribe();
      }
      await collectionSettled(vec);
      const stoppedAt = vec.steps;
      await sleep(50);
      expect(vec.steps).toBe(stoppedAt);
      // take() unsubscribes upstream too; the env is still usable and a new stream can drive it.
      const steps = await lastValueFrom(experienceStream(vec, new RandomPolicy(vec.layout, 0), { mode: 'transition', bufferSize: 2 }).pipe(take(3), consumeEach((t: Transition) => t.step), toArray()));
      expect(steps).toEqual([0, 1, 2]);
      await collectionSettled(vec);
      expect(vec.steps).toBeLessThanOrEqual(3 + 2);
      await vec.step();
    });
  });

  test('a second concurrent stream on the same VectorEnv is refused', async () => {
    await withVec({ env: probe(), numEnvs: 2, seed: 0 }, async (vec) => {
      const first = experienceStream(vec, new RandomPolicy(vec.layout, 0), { mode: 'transition', bufferSize: 1 }).subscribe();
      await expect(firstValueFrom(experienceStream(vec, new RandomPolicy(vec.layout, 0), { mode: 'transition' }))).rejects.toThrow(/already driven/);
      first.unsubscribe();
    });
  });
});

describe('RandomPolicy', () => {
  const layout = (discrete: boolean): VectorLayout => ({
    numEnvs: 2,
    agentIds: ['a', 'b'],
    numAgents: 2,
    obsDim: 1,
    agentObsDims: [1, 1],
    actDim: discrete ? 1 : 3,
    numActions: discrete ? 4 : 0,
    agentNumActions: discrete ? [4, 4] : [0, 0],
    discreteActions: discrete,
    stateDim: 0,
    maxEpisodeSteps: 10,
    reportsSuccess: false, sharedTeamReward: false,
  });

  test('samples only unmasked actions, all of them, and 0 for dead agents', () => {
    const policy = new RandomPolicy(layout(true), 1);
    const masks = Uint8Array.from([0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1]);
    const alive = Uint8Array.from([1, 1, 1, 0]);
    const seen = [new Set<number>(), new Set<number>(), new Set<number>(), new Set<number>()];
    const actions = new Float32Array(4);
    for (let k = 0; k < 200; k++) {
      policy.writeActions(masks, alive, actions);
      actions.forEach((a, i) => seen[i].add(a));
    }
    expect([...seen[0]].sort()).toEqual([1, 3]);
    expect([...seen[1]].sort()).toEqual([0, 1, 2, 3]);
    expect([...seen[2]]).toEqual([2]);
    expect([...seen[3]]).toEqual([0]);
  });

  test('continuous actions are uniform in [-1, 1] per dimension', () => {
    const policy = new RandomPolicy(layout(false), 2);
    const actions = new Float32Array(2 * 2 * 3);
    let min = Infinity;
    let max = -Infinity;
    for (let k = 0; k < 200; k++) {
      policy.writeActions(new Uint8Array(0), Uint8Array.from([1, 1, 0, 1]), actions);
      for (let i = 0; i < actions.length; i++) {
        if (i >= 6 && i < 9) expect(actions[i]).toBe(0);
        else {
          min = Math.min(min, actions[i]);
          max = Math.max(max, actions[i]);
        }
      }
    }
    expect(min).toBeGreaterThanOrEqual(-1);
    expect(max).toBeLessThanOrEqual(1);
    expect(min).toBeLessThan(-0.9);
    expect(max).toBeGreaterThan(0.9);
  });
});

describe('episode statistics', () => {
  test('means over finished, non-aborted episodes; success only where reported', () => {
    const ep = (r: number, length: number, success: number, aborted = false): EpisodeStat => ({ env: 0, step: 0, return: r, length, success, aborted });
    expect(summarizeEpisodes([ep(1, 10, 1), ep(3, 20, NaN), ep(NaN, 0, NaN, true), ep(5, 30, 0)])).toEqual({
      episodes: 3,
      aborted: 1,
      meanReturn: 3,
      meanLength: 20,
      successRate: 0.5,
    });
    const acc = new EpisodeStatsAccumulator().add([ep(2, 4, NaN)]);
    expect(acc.summary().successRate).toBeNaN();
    acc.clear();
    expect(acc.summary().episodes).toBe(0);
    expect(acc.summary().meanReturn).toBeNaN();
  });
});
