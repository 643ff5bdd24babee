import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { registerBuiltinEnvs } from '../envs/builtin';
import { type BackendCandidate, type BackendName, type BackendWorkload, type WorkloadTiming, backendFromRecord, chooseBackend, msPerEnvStep } from '../runtime/core/backend-choice';
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

/** A workload whose timing per backend is given (a string: it throws that message). */
function fakeWorkload(timings: Partial<Record<BackendName, Partial<WorkloadTiming> | string>>, cadence = { updatesPerEnvStep: 0.01, envStepsPerAct: 8 }): BackendWorkload & { timed: BackendName[] } {
  const timed: BackendName[] = [];
  return {
    description: 'fake',
    ...cadence,
    timed,
    time: async (backend) => {
      timed.push(backend);
      const t = timings[backend];
      if (typeof t === 'string') throw new Error(t);
      return { updateMs: 0, actMs: 0, updatesTimed: 3, actsTimed: 3, ...t };
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

  test('a tie keeps the preferred (first) candidate', async () => {
    const choice = await chooseBackend([stub('wasm', []), stub('tensorflow', [])], fakeWorkload({ wasm: { updateMs: 7 }, tensorflow: { updateMs: 7 } }));
    expect(choice.backend).toBe('wasm');
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

  test('a backend that throws while timed is skipped with the cause', async () => {
    const active: BackendName[] = [];
    const choice = await chooseBackend([stub('wasm', active), stub('tensorflow', active)], fakeWorkload({ wasm: { updateMs: 50 }, tensorflow: 'kernel Foo not registered' }));
    expect(choice.backend).toBe('wasm');
    expect(active[active.length - 1]).toBe('wasm');
    expect(choice.skipped).toEqual([{ backend: 'tensorflow', reason: 'failed while timed: kernel Foo not registered' }]);
    expect(choice.timings.map((t) => t.backend)).toEqual(['wasm']);
  });

  test('when every timing fails the preferred loaded backend is taken, saying why', async () => {
    const choice = await chooseBackend([stub('wasm', []), stub('tensorflow', [])], fakeWorkload({ wasm: 'boom', tensorflow: 'bang' }));
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
    const backend = await activateRunBackend(autoConfig, { path: 'runs/a/checkpoints/x.ckpt', recordedBackend: 'tensorflow' }, () => undefined, deps);
    expect(backend).toEqual({ name: 'tensorflow', reason: "auto on resume: the backend runs/a/checkpoints/x.ckpt recorded (requested 'tensorflow')" });
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
    expect(fresh).toEqual({ name: 'wasm', reason: 'auto: stub', choice: { seconds: 0.5, timings: [], skipped: [] } });
    expect(calls.chosen).toBe(1);
    const explicit = stubDeps(['cpu', 'wasm']);
    const pinned = await activateRunBackend(parseRunConfig('env: { id: lbf-8x8-2p-2f-coop }\nalgo: { name: mappo }\nrun: { backend: cpu }\n', 't'), { path: 'r.ckpt', recordedBackend: 'wasm' }, () => undefined, explicit.deps);
    expect(pinned.name).toBe('cpu');
    expect(explicit.calls).toEqual({ select: ['cpu'], chosen: 0 });
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
      const choice = await chooseBackend(candidates, measured.workload);
      expect(choice.timings.map((t) => t.backend)).toEqual(['wasm', 'cpu']);
      for (const t of choice.timings) {
        expect(t.updateMs).toBeGreaterThan(0);
        expect(t.actMs).toBeGreaterThan(0);
        expect(t.updatesTimed).toBeGreaterThanOrEqual(2);
      }
      expect(tf.getBackend()).toBe(choice.backend);
      await selectBackend('wasm');
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      measured.close();
      await selectBackend('wasm');
    }
  });

  test('cadence of QMIX and SAC from their config; offline algorithms are not timed', async () => {
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
