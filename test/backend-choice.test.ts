import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { registerBuiltinEnvs } from '../envs/builtin';
import { MetricsLog, WALL_CLOCK_FIELDS } from '../runtime/core/metrics-log';
import { type BackendCandidate, type BackendName, type BackendWorkload, type PreparedWorkload, backendFromRecord, chooseBackend, msPerEnvStep } from '../runtime/core/backend-choice';
import { selectBackend, selectBackendForRun } from '../runtime/core/tf-backend';
import { runWorkload } from '../runtime/training/backend-workload';
import { parseRunConfig } from '../runtime/training/config-loader';
import { type RunBackendDeps, activateRunBackend } from '../runtime/training/run-backend';
import { runTraining } from '../runtime/training/training-run';

/*
 * `backend: auto` chooses by timing the run's own workload. The rule is checked on stub backends
 * with fake timings (no tfjs-node anywhere); the real workload and the run record on wasm and cpu.
 */

/** A stub backend: loads unless `loadError`, and records every activation in `active`. */
function stub(name: BackendName, active: BackendName[], loadError?: string): BackendCandidate {
  return {
    name,
    activate: async () => {
      if (loadError) throw new Error(loadError);
      active.push(name);
      return `stub ${name}`;
    },
  };
}

/** A fake timing: fixed ms, or a failure while built (`prepareError`) or in a timed update (`updateError`). */
type Fake = { updateMs?: number; actMs?: number; updateWallMs?: number; prepareError?: string; updateError?: string };

/** A workload with fixed timings per backend; `timed` lists the backends it was built on, `disposed` those released. */
function fakeWorkload(fakes: Partial<Record<BackendName, Fake>>, cadence = { updatesPerEnvStep: 0.01, envStepsPerAct: 8 }): BackendWorkload & { timed: BackendName[]; disposed: BackendName[] } {
  const timed: BackendName[] = [];
  const disposed: BackendName[] = [];
  return {
    description: 'fake',
    ...cadence,
    timed,
    disposed,
    prepare: async (backend: BackendName): Promise<PreparedWorkload> => {
      timed.push(backend);
      const f = fakes[backend] ?? {};
      if (f.prepareError) throw new Error(f.prepareError);
      let updates = 0;
      return {
        update: async () => {
          if (f.updateError && ++updates > 1) throw new Error(f.updateError);
          return { cpuMs: f.updateMs ?? 0, wallMs: f.updateWallMs ?? 2 * (f.updateMs ?? 0) };
        },
        act: async () => ({ cpuMs: f.actMs ?? 0, wallMs: 0 }),
        dispose: () => void disposed.push(backend),
      };
    },
  };
}

describe('chooseBackend on stub backends', () => {
  test('the faster backend wins, whichever it is, and is left active', async () => {
    for (const [wasm, tensorflow, winner] of [[30, 10, 'tensorflow'], [10, 30, 'wasm']] as const) {
      const active: BackendName[] = [];
      const choice = await chooseBackend([stub('wasm', active), stub('tensorflow', active)], fakeWorkload({ wasm: { updateMs: wasm }, tensorflow: { updateMs: tensorflow } }));
      expect(choice.backend).toBe(winner);
      expect(active[active.length - 1]).toBe(winner);
      expect(choice.timings.map((t) => t.backend)).toEqual(['wasm', 'tensorflow']);
      expect(choice.reason).toMatch(new RegExp(`^auto: ${winner} .*faster on this run's workload: wasm .* vs tensorflow`));
    }
  });

  test('the score weighs update and acting by the cadence: slower updates can win on faster acting', async () => {
    const timings = { wasm: { updateMs: 10, actMs: 4 }, tensorflow: { updateMs: 20, actMs: 1 } };
    // 1 update per 400 env steps: acting per env step dominates (wasm 0.025 + 0.5, tensorflow 0.05 + 0.125).
    const rare = await chooseBackend([stub('wasm', []), stub('tensorflow', [])], fakeWorkload(timings, { updatesPerEnvStep: 1 / 400, envStepsPerAct: 8 }));
    expect(rare.backend).toBe('tensorflow');
    expect(rare.timings[0].msPerEnvStep).toBeCloseTo(10 / 400 + 4 / 8);
    // One update per env step: the update dominates.
    const often = await chooseBackend([stub('wasm', []), stub('tensorflow', [])], fakeWorkload(timings, { updatesPerEnvStep: 1, envStepsPerAct: 8 }));
    expect(often.backend).toBe('wasm');
    expect(msPerEnvStep({ updateMs: 20, actMs: 1 }, { updatesPerEnvStep: 1, envStepsPerAct: 8 })).toBeCloseTo(20.125);
  });

  test('the score is CPU time: more threads finishing sooner on a busy machine do not win by that', async () => {
    const choice = await chooseBackend([stub('wasm', []), stub('tensorflow', [])], fakeWorkload({ wasm: { updateMs: 10, updateWallMs: 10 }, tensorflow: { updateMs: 12, updateWallMs: 6 } }));
    expect(choice.backend).toBe('wasm');
    expect(choice.timings.map((t) => [t.updateMs, t.updateWallMs])).toEqual([[10, 10], [12, 6]]);
  });

  test('a tie (within 5%, or as set) keeps the preferred (first) candidate; beyond it the faster wins', async () => {
    const both = () => [stub('wasm', []), stub('tensorflow', [])];
    expect((await chooseBackend(both(), fakeWorkload({ wasm: { updateMs: 7 }, tensorflow: { updateMs: 7 } }))).backend).toBe('wasm');
    const close = await chooseBackend(both(), fakeWorkload({ wasm: { updateMs: 100 }, tensorflow: { updateMs: 96 } }));
    expect(close.backend).toBe('wasm');
    expect(close.reason).toMatch(/within 5%: a tie, kept by the preferred backend/);
    expect((await chooseBackend(both(), fakeWorkload({ wasm: { updateMs: 100 }, tensorflow: { updateMs: 94 } }))).backend).toBe('tensorflow');
    expect((await chooseBackend(both(), fakeWorkload({ wasm: { updateMs: 100 }, tensorflow: { updateMs: 96 } }), { tieFraction: 0 })).backend).toBe('tensorflow');
  });

  test('one backend that loads is taken without timing', async () => {
    const workload = fakeWorkload({ wasm: { updateMs: 1 } });
    const choice = await chooseBackend([stub('wasm', []), stub('tensorflow', [], 'Cannot find module @tensorflow/tfjs-node')], workload);
    expect(choice.backend).toBe('wasm');
    expect(workload.timed).toEqual([]);
    expect(choice.timings).toEqual([]);
    expect(choice.skipped).toEqual([{ backend: 'tensorflow', reason: 'did not load: Cannot find module @tensorflow/tfjs-node' }]);
    expect(choice.reason).toMatch(/not timed: the only backend that loaded; skipped tensorflow \(did not load: Cannot find module/);
  });

  test('a backend that throws while built or timed is skipped with the cause; every built workload is released', async () => {
    for (const fake of [{ prepareError: 'kernel Foo not registered' }, { updateMs: 1, updateError: 'kernel Foo not registered' }]) {
      const active: BackendName[] = [];
      const workload = fakeWorkload({ wasm: { updateMs: 50 }, tensorflow: fake });
      const choice = await chooseBackend([stub('wasm', active), stub('tensorflow', active)], workload);
      expect(choice.backend).toBe('wasm');
      expect(active[active.length - 1]).toBe('wasm');
      expect(choice.skipped).toEqual([{ backend: 'tensorflow', reason: 'failed while timed: kernel Foo not registered' }]);
      expect(choice.timings.map((t) => t.backend)).toEqual(['wasm']);
      expect(workload.disposed.sort()).toEqual(fake.prepareError ? ['wasm'] : ['tensorflow', 'wasm']);
    }
  });

  test('backends are timed in alternating rounds: at least one each, more while the budget lasts', async () => {
    const order: BackendName[] = [];
    const workload = fakeWorkload({ wasm: { updateMs: 2 }, tensorflow: { updateMs: 1 } });
    const traced: BackendWorkload = { ...workload, prepare: async (b) => {
      const w = await workload.prepare(b);
      return { ...w, update: () => (order.push(b), w.update()) };
    } };
    const once = await chooseBackend([stub('wasm', []), stub('tensorflow', [])], traced, { timingSeconds: 0 });
    expect(order).toEqual(['wasm', 'tensorflow']);
    expect(once.timings.map((t) => [t.updatesTimed, t.actsTimed])).toEqual([[1, 3], [1, 3]]);
    // A clock that advances 100 ms per reading: a 0.25-s budget is spent after the third round.
    order.length = 0;
    let clock = 0;
    const rounds = await chooseBackend([stub('wasm', []), stub('tensorflow', [])], traced, { timingSeconds: 0.25, now: () => (clock += 100) });
    expect(order).toEqual(['wasm', 'tensorflow', 'wasm', 'tensorflow', 'wasm', 'tensorflow']);
    expect(rounds.timings.map((t) => t.updatesTimed)).toEqual([3, 3]);
  });

  test('updates that each outlast the budget are scored from their warm-up runs, not run again', async () => {
    const ran: BackendName[] = [];
    const heavy = (backend: BackendName, wallMs: number): PreparedWorkload => ({
      warmupUpdate: { wallMs, cpuMs: wallMs },
      update: async () => (ran.push(backend), { wallMs, cpuMs: wallMs }),
      act: async () => ({ wallMs: 1, cpuMs: 1 }),
      dispose: () => undefined,
    });
    const workload: BackendWorkload = { description: 'heavy', updatesPerEnvStep: 0.01, envStepsPerAct: 8, prepare: async (b) => heavy(b, b === 'wasm' ? 1700 : 1900) };
    const choice = await chooseBackend([stub('wasm', []), stub('tensorflow', [])], workload, { timingSeconds: 0.75 });
    expect(ran).toEqual([]);
    expect(choice.backend).toBe('wasm');
    expect(choice.timings.map((t) => [t.backend, t.updateMs, t.updatesTimed, t.actsTimed])).toEqual([['wasm', 1700, 1, 3], ['tensorflow', 1900, 1, 3]]);
    // One backend's update within the budget: every backend is timed in rounds as usual.
    const mixed: BackendWorkload = { ...workload, prepare: async (b) => heavy(b, b === 'wasm' ? 1700 : 100) };
    let clock = 0;
    await chooseBackend([stub('wasm', []), stub('tensorflow', [])], mixed, { timingSeconds: 0.75, now: () => (clock += 1000) });
    expect(ran).toEqual(['wasm', 'tensorflow']);
  });

  test('when every timing fails the preferred loaded backend is taken, saying why', async () => {
    const choice = await chooseBackend([stub('wasm', []), stub('tensorflow', [])], fakeWorkload({ wasm: { prepareError: 'boom' }, tensorflow: { prepareError: 'bang' } }));
    expect(choice.backend).toBe('wasm');
    expect(choice.reason).toMatch(/not timed: every backend failed while timed/);
    expect(choice.skipped.map((s) => s.backend)).toEqual(['wasm', 'tensorflow']);
  });

  test('without a workload the preferred backend is taken untimed, with the reason given', async () => {
    const choice = await chooseBackend([stub('wasm', []), stub('tensorflow', [])], undefined, { untimedWhy: 'meta_dt trains offline' });
    expect(choice.backend).toBe('wasm');
    expect(choice.reason).toMatch(/not timed: meta_dt trains offline/);
  });

  test('fallbacks (cpu) are tried only when no candidate loads; nothing loading throws', async () => {
    const loaded = await chooseBackend([stub('wasm', []), stub('tensorflow', [])], fakeWorkload({}), { fallbacks: [stub('cpu', [])] });
    expect(loaded.backend).not.toBe('cpu');
    const fallback = await chooseBackend([stub('wasm', [], 'no wasm'), stub('tensorflow', [], 'no tf')], fakeWorkload({}), { fallbacks: [stub('cpu', [])] });
    expect(fallback.backend).toBe('cpu');
    expect(fallback.skipped.map((s) => s.backend)).toEqual(['wasm', 'tensorflow']);
    await expect(chooseBackend([stub('wasm', [], 'no wasm')], undefined, { fallbacks: [stub('cpu', [], 'no cpu')] })).rejects.toThrow(/no tfjs backend could be initialised; skipped wasm \(did not load: no wasm\), cpu \(did not load: no cpu\)/);
  });
});

describe('a recorded backend is reused', () => {
  test('backendFromRecord: auto takes the record, an explicit backend stands, nothing recorded leaves auto', () => {
    expect(backendFromRecord('auto', 'tensorflow', 'run/x.ckpt')).toEqual({ backend: 'tensorflow', why: 'the backend run/x.ckpt recorded' });
    expect(backendFromRecord('wasm', 'tensorflow', 'run/x.ckpt')).toEqual({ backend: 'wasm' });
    expect(backendFromRecord('auto', undefined, 'run/x.ckpt')).toEqual({ backend: 'auto' });
  });

  /** Deps that record what was asked of them; `loadable` backends load, others throw. */
  function stubDeps(loadable: readonly string[]) {
    const calls = { select: [] as string[], chosen: 0 };
    const deps: RunBackendDeps = {
      select: async (preference) => {
        calls.select.push(preference);
        if (!loadable.includes(preference)) throw new Error(`tfjs backend '${preference}' unavailable`);
        return { backend: preference, reason: `requested '${preference}'` };
      },
      workload: async () => ({ untimedWhy: 'stub' }),
      choose: async () => {
        calls.chosen++;
        return { backend: 'wasm', reason: 'auto: stub', timings: [], skipped: [], seconds: 0.5 };
      },
    };
    return { deps, calls };
  }
  const autoConfig = parseRunConfig('env: { id: lbf-8x8-2p-2f-coop }\nalgo: { name: mappo }\n', 'test');

  test('--resume with auto continues on the recorded backend instead of choosing again', async () => {
    const { deps, calls } = stubDeps(['cpu', 'wasm', 'tensorflow']);
    const recordedChoice = { seconds: 2, timings: [] };
    const backend = await activateRunBackend(autoConfig, { path: 'runs/a/checkpoints/x.ckpt', recordedBackend: 'tensorflow', recordedChoice }, () => undefined, deps);
    expect(backend).toEqual({ name: 'tensorflow', reason: "auto on resume: the backend runs/a/checkpoints/x.ckpt recorded (requested 'tensorflow')", choice: recordedChoice });
    expect(calls).toEqual({ select: ['tensorflow'], chosen: 0 });
  });

  test('a recorded backend that does not load here is replaced by a fresh choice, with a warning', async () => {
    const { deps, calls } = stubDeps(['cpu', 'wasm']);
    const warnings: string[] = [];
    const backend = await activateRunBackend(autoConfig, { path: 'r.ckpt', recordedBackend: 'tensorflow' }, (m) => warnings.push(m), deps);
    expect(backend.name).toBe('wasm');
    expect(calls.chosen).toBe(1);
    expect(warnings).toEqual([expect.stringMatching(/r\.ckpt was trained on the tensorflow backend, which does not load here .*choosing afresh/)]);
  });

  test('a new auto run chooses by timing and keeps the record; an explicit backend is only selected', async () => {
    const { deps, calls } = stubDeps(['cpu', 'wasm']);
    const fresh = await activateRunBackend(autoConfig, undefined, () => undefined, deps);
    expect(fresh).toEqual({ name: 'wasm', reason: 'auto: stub', choice: { seconds: expect.any(Number), cpu_seconds: expect.any(Number), timings: [], skipped: [] } });
    expect(calls.chosen).toBe(1);
    const explicit = stubDeps(['cpu', 'wasm']);
    const pinned = await activateRunBackend(parseRunConfig('env: { id: lbf-8x8-2p-2f-coop }\nalgo: { name: mappo }\nrun: { backend: cpu }\n', 't'), { path: 'r.ckpt', recordedBackend: 'wasm' }, () => undefined, explicit.deps);
    expect(pinned.name).toBe('cpu');
    expect(explicit.calls).toEqual({ select: ['cpu'], chosen: 0 });
  });

  test('a workload that cannot be built leaves auto untimed, saying why', async () => {
    const { deps } = stubDeps(['cpu', 'wasm']);
    let why: string | undefined;
    const failing: RunBackendDeps = { ...deps, workload: async () => Promise.reject(new Error('env module missing')), choose: async (w, untimedWhy) => ((why = untimedWhy), deps.choose(w, untimedWhy)) };
    await activateRunBackend(autoConfig, undefined, () => undefined, failing);
    expect(why).toBe('the workload could not be built (env module missing)');
  });

  test('eval: the recorded backend unless --backend is given', async () => {
    try {
      expect((await selectBackendForRun(undefined, 'cpu', 'auto', 'run/x.ckpt')).backend).toBe('cpu');
      expect(tf.getBackend()).toBe('cpu');
      const explicit = await selectBackendForRun('wasm', 'cpu', 'auto', 'run/x.ckpt');
      expect(explicit.backend).toBe('wasm');
      expect((await selectBackendForRun(undefined, undefined, 'cpu', 'old.ckpt')).backend).toBe('cpu');
    } finally {
      await selectBackend('wasm');
    }
  });
});

describe('the run workload on real backends', () => {
  beforeAll(async () => {
    registerBuiltinEnvs();
    await selectBackend('wasm');
  });

  test('MAPPO: one update per rollout of all envs, timed on wasm and cpu without leaking tensors', async () => {
    const config = parseRunConfig('env: { id: lbf-8x8-2p-2f-coop }\nalgo: { name: mappo, hidden_dim: 16, rollout_length: 10 }\nrun: { num_envs: 3 }\n', 't');
    const measured = await runWorkload(config);
    if (!('workload' in measured)) throw new Error(measured.untimedWhy);
    try {
      expect(measured.workload.updatesPerEnvStep).toBeCloseTo(1 / 30);
      expect(measured.workload.envStepsPerAct).toBe(3);
      const active: BackendName[] = [];
      const candidates: BackendCandidate[] = (['wasm', 'cpu'] as const).map((name) => ({ name, activate: async () => (await selectBackend(name), active.push(name), name) }));
      await selectBackend('wasm');
      const before = tf.memory().numTensors;
      const choice = await chooseBackend(candidates, measured.workload, { timingSeconds: 0 });
      expect(choice.timings.map((t) => t.backend)).toEqual(['wasm', 'cpu']);
      for (const t of choice.timings) {
        expect(t.updateMs).toBeGreaterThan(0);
        expect(t.actMs).toBeGreaterThan(0);
        expect(t.updateWallMs).toBeGreaterThan(0);
        expect(t.updatesTimed).toBeGreaterThanOrEqual(1);
      }
      expect(tf.getBackend()).toBe(choice.backend);
      await selectBackend('wasm');
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      measured.close();
      await selectBackend('wasm');
    }
  });

  test('cadence of QMIX and SAC from their config; an offline algorithm without a benchmark case is not timed', async () => {
    const qmix = await runWorkload(parseRunConfig('env: { id: lbf-8x8-2p-2f-coop }\nalgo: { name: qmix, updates_per_episode: 2 }\n', 't'));
    if (!('workload' in qmix)) throw new Error(qmix.untimedWhy);
    qmix.close();
    expect(qmix.workload.updatesPerEnvStep).toBeCloseTo(2 / 50);
    const sac = await runWorkload(parseRunConfig('env: { id: reach }\nalgo: { name: sac, updates_per_step: 0.5, policy_frequency: 2 }\n', 't'));
    if (!('workload' in sac)) throw new Error(sac.untimedWhy);
    sac.close();
    expect(sac.workload.updatesPerEnvStep).toBeCloseTo(0.25);
    const bc = await runWorkload(parseRunConfig('env: { id: lbf-8x8-2p-2f-coop }\nalgo: { name: bc }\ndataset: x\nrun: { total_gradient_steps: 10 }\n', 't'));
    expect(bc).toEqual({ untimedWhy: expect.stringMatching(/^bc (trains offline|has no benchmark case)/) });
  });

  test('an offline Meta-DT run times its gradient step at the run\'s own sizes; no acting is weighed', async () => {
    const config = parseRunConfig('datasets: { dir: some/folder }\nalgo: { name: meta_dt, embed_dim: 16, num_layers: 1, horizon: 4, batch_size: 4, world_model_steps: 500, warm_train_steps: 300, context_hidden_dim: 8, decoder_hidden_dims: [8] }\nrun: { total_gradient_steps: 10 }\n', 't');
    const measured = await runWorkload(config);
    if (!('workload' in measured)) throw new Error(measured.untimedWhy);
    try {
      expect(measured.workload.description).toMatch(/meta_dt gradient step \(offline\).*reach/);
      expect(measured.workload.updatesPerEnvStep).toBe(1);
      await selectBackend('wasm');
      const before = tf.memory().numTensors;
      const wasmOnly: BackendCandidate = { name: 'wasm', activate: async () => (await selectBackend('wasm')).reason };
      const cpu: BackendCandidate = { name: 'cpu', activate: async () => (await selectBackend('cpu')).reason };
      const choice = await chooseBackend([wasmOnly, cpu], measured.workload, { timingSeconds: 0 });
      for (const t of choice.timings) {
        expect(t.updateMs).toBeGreaterThan(0);
        expect(t.actMs).toBe(0);
      }
      await selectBackend('wasm');
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      measured.close();
      await selectBackend('wasm');
    }
  });

  test('timing the workload leaves no trace on the run: metrics as without the choice', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-backend-'));
    const config = parseRunConfig('env: { id: lbf-8x8-2p-2f-coop }\nalgo: { name: mappo, hidden_dim: 8, rollout_length: 10 }\nrun: { seed: 3, total_env_steps: 80, num_envs: 2, log_interval: 20, eval_episodes: 1, checkpoint_interval: 80 }\n', 't');
    const metrics = (dir: string) => MetricsLog.read(path.join(dir, 'metrics.jsonl')).map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !WALL_CLOCK_FIELDS.includes(k))));
    try {
      await selectBackend('wasm');
      await runTraining({ config, outDir: path.join(root, 'plain'), backend: { name: 'wasm', reason: 'test' } });
      const measured = await runWorkload(config);
      if (!('workload' in measured)) throw new Error(measured.untimedWhy);
      const wasmOnly: BackendCandidate = { name: 'wasm', activate: async () => (await selectBackend('wasm')).reason };
      await chooseBackend([wasmOnly, wasmOnly], measured.workload, { tieFraction: 0, timingSeconds: 0 });
      measured.close();
      await runTraining({ config, outDir: path.join(root, 'timed'), backend: { name: 'wasm', reason: 'test' } });
      expect(metrics(path.join(root, 'timed'))).toEqual(metrics(path.join(root, 'plain')));
      expect(metrics(path.join(root, 'plain')).length).toBeGreaterThan(2);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  test('run.json records the choice, its timings and the tfjs-node settings', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'troupe-backend-'));
    try {
      const config = parseRunConfig('env: { id: lbf-8x8-2p-2f-coop }\nalgo: { name: mappo, hidden_dim: 8, rollout_length: 10 }\nrun: { seed: 1, total_env_steps: 40, num_envs: 2, eval_episodes: 1, checkpoint_interval: 40 }\n', 't');
      const choice = { seconds: 1.5, timings: [{ backend: 'wasm', updateMs: 3, actMs: 0.1, msPerEnvStep: 0.2 }], skipped: [{ backend: 'tensorflow', reason: 'did not load: x' }] };
      const native = { values: { TF_NUM_INTRAOP_THREADS: '1', TF_ENABLE_ONEDNN_OPTS: null }, setByTroupe: ['TF_NUM_INTRAOP_THREADS'] };
      await runTraining({ config, outDir: root, backend: { name: 'wasm', reason: 'auto: stub', choice, native } });
      const info = JSON.parse(fs.readFileSync(path.join(root, 'run.json'), 'utf8'));
      expect(info.backend).toBe('wasm');
      expect(info.backend_reason).toBe('auto: stub');
      expect(info.backend_choice).toEqual(choice);
      expect(info.tf_native_env).toEqual({ TF_NUM_INTRAOP_THREADS: '1', TF_ENABLE_ONEDNN_OPTS: null, set_by_troupe: ['TF_NUM_INTRAOP_THREADS'] });
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
