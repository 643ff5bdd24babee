import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Experience } from '../agents/experience';
import type { Policy, PolicyBatch } from '../agents/policies/policy';
import type { PolicySpec } from '../agents/policies/policy-spec';
import { registerBuiltinEnvs } from '../envs/builtin';
import { deserializeArray, readCheckpoint, readLatestCheckpoint, serializeArray } from '../runtime/core/checkpoint';
import { MetricsLog, type MetricsRecord, WALL_CLOCK_FIELDS } from '../runtime/core/metrics-log';
import { Rng, deriveSeed } from '../runtime/core/rng';
import { selectBackend } from '../runtime/core/tf-backend';
import { parseRunConfig } from '../runtime/training/config-loader';
import type { RunConfig } from '../runtime/training/run-config';
import { type TrainingRunOptions, runTraining } from '../runtime/training/training-run';
import type { Collection, LearnerState, OnlineLearner, TaskSpec, TrainStats } from '../trainers/learner';

/**
 * A learner without tensors whose every number depends on everything it saw, in order: it acts
 * randomly from its own Rng (with a bias it "learns" from rewards) and folds every observed
 * array into a running hash. Any difference in the experience reaching it — an env state not
 * rebuilt exactly, a step taken twice, a lost RNG state — changes its stats and so the metrics.
 */
class ProbeLearner implements OnlineLearner {
  readonly kind = 'online';
  readonly tasks: readonly TaskSpec[];
  private readonly mode: Collection;
  private readonly policy: Policy;
  private rng: Rng;
  private hash = 0;
  private observed = 0;
  private preference: Float64Array;
  private memory: Float64Array;

  constructor(
    task: TaskSpec,
    seed: string,
    mode: 'chunk' | 'transition',
  ) {
    this.tasks = [task];
    this.mode = mode === 'chunk' ? { mode, chunkLength: 7 } : { mode };
    this.rng = new Rng(deriveSeed(seed, 'probe'));
    this.preference = new Float64Array(task.shape.numActions);
    this.memory = new Float64Array(task.numEnvs);
    this.policy = { act: (batch, actions) => this.act(batch, actions, this.rng, this.memory) };
  }

  private act(batch: PolicyBatch, actions: Float32Array, rng: Rng, memory: Float64Array): void {
    const { numEnvs: E, numAgents: A, numActions: K } = batch.layout;
    for (let e = 0; e < E; e++) {
      if (batch.episodeStart[e]) memory[e] = 0;
      memory[e] += 1;
      for (let a = 0; a < A; a++) {
        const i = e * A + a;
        if (!batch.alive[i]) continue;
        const legal: number[] = [];
        for (let k = 0; k < K; k++) if (batch.masks[i * K + k]) legal.push(k);
        const best = legal.reduce((b, k) => (this.preference[k] > this.preference[b] ? k : b), legal[0]);
        actions[i] = rng.next() < 0.5 ? best : legal[rng.int(legal.length)];
      }
    }
  }

  collection(): Collection {
    return this.mode;
  }

  collectionPolicy(): Policy {
    return this.policy;
  }

  policyVersion(): number {
    return this.observed;
  }

  observe(item: Experience, envSteps: number): TrainStats | undefined {
    const fold = (xs: ArrayLike<number>) => {
      for (let i = 0; i < xs.length; i++) this.hash = (Math.imul(this.hash ^ Math.round(xs[i] * 1000), 16777619) + i) | 0;
    };
    fold(item.obs);
    fold(item.rewards);
    fold(item.actions);
    fold(item.episodeStart);
    fold(Array.from(this.memory));
    for (let i = 0; i < item.rewards.length; i++) this.preference[item.actions[i]] += item.rewards[i];
    // Stream step numbers restart with every subscription; only the learner's own count is run-global.
    if (item.kind === 'transition' && this.observed++ % 3 !== 0) return undefined;
    return { hash: this.hash, env_steps_seen: envSteps, draw: this.rng.next() };
  }

  episodesReset(): void {
    this.memory.fill(0);
  }

  evaluationPolicy(_task: string, numEnvs: number, seed: string): Policy {
    const rng = new Rng(seed);
    const memory = new Float64Array(numEnvs);
    return { act: (batch, actions) => this.act(batch, actions, rng, memory) };
  }

  policySpecs(): Record<string, PolicySpec> {
    return {};
  }

  async captureState(): Promise<LearnerState> {
    return {
      models: {},
      optimizers: {},
      rngs: { act: this.rng.state() },
      arrays: { preference: serializeArray(this.preference), memory: serializeArray(this.memory) },
      json: { hash: this.hash, observed: this.observed },
    };
  }

  async restoreState(state: LearnerState): Promise<void> {
    if (!state.rngs.act) throw new Error("no RNG state 'act'");
    this.rng = Rng.fromState(state.rngs.act);
    this.preference = deserializeArray(state.arrays.preference) as Float64Array;
    this.memory = deserializeArray(state.arrays.memory) as Float64Array;
    this.hash = state.json.hash as number;
    this.observed = state.json.observed as number;
  }

  dispose(): void {}
}

let root: string;
beforeAll(() => {
  registerBuiltinEnvs();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-train-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function config(mode: 'chunk' | 'transition', over: string[] = []): RunConfig {
  const yaml = `
env: { id: lbf-8x8-2p-2f-coop }
algo: { name: ${mode === 'chunk' ? 'mappo' : 'qmix'} }
run: { seed: 3, total_env_steps: 3000, num_envs: 4, log_interval: 250, eval_interval: 1000, eval_episodes: 3, checkpoint_interval: 1000 }
`;
  return parseRunConfig(yaml, 'test', over);
}

let dirCount = 0;
async function train(cfg: RunConfig, extra: Partial<TrainingRunOptions> = {}) {
  const outDir = extra.outDir ?? path.join(root, `run-${dirCount++}`);
  const mode = cfg.algo.name === 'mappo' ? 'chunk' : 'transition';
  const summary = await runTraining({
    config: cfg,
    outDir,
    backend: { name: 'none', reason: 'test' },
    createLearner: ({ config: c, tasks }) => new ProbeLearner(tasks[0], String(c.run.seed), mode),
    ...extra,
  });
  return { outDir, summary, metrics: MetricsLog.read(path.join(outDir, 'metrics.jsonl')) };
}

const withoutClock = (records: MetricsRecord[]) =>
  records.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !WALL_CLOCK_FIELDS.includes(k))));

describe('runTraining', () => {
  test('writes config, run info, metrics, checkpoints, summary and a plot', async () => {
    const { outDir, summary, metrics } = await train(config('chunk'));
    for (const f of ['config.yaml', 'run.json', 'metrics.jsonl', 'summary.json', 'learning-curve.svg']) expect(fs.existsSync(path.join(outDir, f))).toBe(true);
    // 3000 env steps over 4 envs in chunks of 7: 750 vector steps → 756.
    expect(summary.env_steps).toBe(756 * 4);
    expect(summary.interrupted).toBe(false);
    expect(summary.final_eval).not.toBeNull();
    const trainLines = metrics.filter((r) => r.kind === 'train');
    const evalLines = metrics.filter((r) => r.kind === 'eval');
    expect(trainLines.length).toBeGreaterThanOrEqual(12);
    expect(evalLines.map((r) => r.env_steps)).toEqual([1008, 2016, 3024]);
    expect(trainLines.every((r) => typeof r.steps_per_s === 'number' && typeof r.hash === 'number')).toBe(true);
    expect(trainLines[trainLines.length - 1].episodes).toBe(summary.episodes);
    const { data } = await readLatestCheckpoint(path.join(outDir, 'checkpoints'));
    expect(data.counters.envSteps).toBe(summary.env_steps);
    expect(data.metadata.kind).toBe('final');
    expect(fs.readFileSync(path.join(outDir, 'learning-curve.svg'), 'utf8')).toMatch(/^<svg[\s\S]*<path d="M/);
  });

  test.each(['chunk', 'transition'] as const)('%s mode: identical metrics in-process, with 1 and with 2 workers', async (mode) => {
    const runs = [];
    for (const workers of [0, 1, 2]) runs.push(await train(config(mode, [`run.workers=${workers}`])));
    expect(withoutClock(runs[1].metrics)).toEqual(withoutClock(runs[0].metrics));
    expect(withoutClock(runs[2].metrics)).toEqual(withoutClock(runs[0].metrics));
    // And a different seed really is different (the comparison can fail).
    const other = await train(config(mode, ['run.seed=4']));
    expect(withoutClock(other.metrics)).not.toEqual(withoutClock(runs[0].metrics));
  });

  test.each(['chunk', 'transition'] as const)('%s mode: stopped mid-segment and resumed = uninterrupted', async (mode) => {
    const cfg = config(mode, ['run.workers=1']);
    const full = await train(cfg);
    const stopAt = mode === 'chunk' ? 1400 : 1402;
    const part = await train(cfg, { shouldStop: (p) => p.envSteps >= stopAt });
    expect(part.summary.interrupted).toBe(true);
    expect(part.summary.env_steps).toBeLessThan(2000);
    expect(part.summary.checkpoint).toMatch(/-interrupted\.ckpt$/);
    const data = await readCheckpoint(part.summary.checkpoint!);
    expect(data.arrays['run/actions-since-segment-start']).toBeDefined();
    const resumed = await train(cfg, { outDir: part.outDir, resume: { data, path: part.summary.checkpoint! } });
    expect(resumed.summary.interrupted).toBe(false);
    expect(withoutClock(resumed.metrics)).toEqual(withoutClock(full.metrics));
    expect(resumed.summary.final_eval).toEqual(full.summary.final_eval);
  });

  test('resuming from a segment-boundary checkpoint = uninterrupted', async () => {
    const cfg = config('chunk');
    const full = await train(cfg);
    // Asked at every item, but honoured only at the boundary's checkpoint: stop right after it.
    const part = await train(cfg, { shouldStop: (p) => p.envSteps >= 1008 && p.envSteps % 1008 === 0 });
    const data = await readCheckpoint(part.summary.checkpoint!);
    expect(data.metadata.kind).toBe('periodic');
    expect(data.arrays['run/actions-since-segment-start']).toBeUndefined();
    const resumed = await train(cfg, { outDir: part.outDir, resume: { data, path: part.summary.checkpoint! } });
    expect(withoutClock(resumed.metrics)).toEqual(withoutClock(full.metrics));
  });

  test.each(['mappo', 'qmix'] as const)('real %s trainer on tfjs: identical metrics with 1 and 2 worker threads, and a Ctrl-C resume matches', async (algo) => {
    // wasm: the pure-JS cpu backend is several times slower under Jest.
    await selectBackend('wasm');
    const cfg = parseRunConfig(
      `env: { id: lbf-8x8-2p-2f-coop }
algo: { name: ${algo}, hidden_dim: 16, ${algo === 'mappo' ? 'rollout_length: 25' : 'batch_size: 4, buffer_size: 50, epsilon_anneal_time: 1000'} }
run: { seed: 1, total_env_steps: 1600, num_envs: 4, log_interval: 200, eval_interval: 800, eval_episodes: 2, checkpoint_interval: 800 }
`,
      'test',
    );
    const real = { createLearner: undefined, backend: { name: 'wasm', reason: 'test' } };
    const one = await train({ ...cfg, run: { ...cfg.run, workers: 1 } }, real);
    const two = await train({ ...cfg, run: { ...cfg.run, workers: 2 } }, real);
    expect(one.metrics.filter((r) => r.kind === 'train').length).toBeGreaterThanOrEqual(8);
    expect(withoutClock(two.metrics)).toEqual(withoutClock(one.metrics));
    const part = await train(cfg, { ...real, shouldStop: (p) => p.envSteps >= 500 });
    const data = await readCheckpoint(part.summary.checkpoint!);
    const resumed = await train(cfg, { ...real, outDir: part.outDir, resume: { data, path: part.summary.checkpoint! } });
    expect(withoutClock(resumed.metrics)).toEqual(withoutClock(one.metrics));
  }, 120000);

  test('a finished run resumed with a larger budget trains to the new budget (its last segment was short)', async () => {
    // Segments of ⌈1000 / (4·7)⌉ = 36 rounds; 2500 env steps end with a short segment of 18.
    const short = await train(config('chunk', ['run.total_env_steps=2500']));
    expect(short.summary.env_steps).toBe(90 * 28);
    const data = await readCheckpoint(short.summary.checkpoint!);
    const longer = await train(config('chunk', ['run.total_env_steps=5000']), { outDir: short.outDir, resume: { data, path: short.summary.checkpoint! } });
    expect(longer.summary.interrupted).toBe(false);
    expect(longer.summary.env_steps).toBe(179 * 28);
    // The checkpoint's own data is not changed by resuming from it.
    expect((data.metadata.loop as { rounds: number }).rounds).toBe(90);
  });

  test('a checkpoint of another run or without loop state is refused with the file named', async () => {
    const { summary } = await train(config('chunk', ['run.total_env_steps=500']));
    const data = await readCheckpoint(summary.checkpoint!);
    const broken = { ...data, metadata: { ...data.metadata, loop: null } };
    await expect(train(config('chunk'), { resume: { data: broken, path: 'x.ckpt' } })).rejects.toThrow(/x\.ckpt: not a training checkpoint/);
    const noRng = { ...data, rngs: {} };
    await expect(train(config('chunk'), { resume: { data: noRng, path: 'y.ckpt' } })).rejects.toThrow(/y\.ckpt: cannot restore the trainer: no RNG state 'act'/);
  });
});
