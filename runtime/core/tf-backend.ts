import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmKernelSpeedups } from './wasm-kernel-speedups';
import { registerWasmMissingKernels } from './wasm-missing-kernels';
import { type BackendCandidate, type BackendName, type BackendWorkload, type TimedBackendChoice, backendFromRecord, chooseBackend } from './backend-choice';

export type BackendPreference = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendChoice {
  /** tfjs backend name now active: 'tensorflow', 'wasm' or 'cpu'. */
  backend: string;
  /** Why this backend was chosen, including why faster ones were skipped; meant for logs and run records. */
  reason: string;
}

type Attempt = { ok: true; detail: string } | { ok: false; error: string };

function message(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.message;
  if (typeof err === 'object' && err !== null && 'message' in err) return String((err as { message: unknown }).message);
  return String(err);
}

// tfjs-node is an optionalDependency: its install script downloads libtensorflow and npm drops
// the package when that fails, so it is looked up at run time instead of imported.
async function tryTensorflow(): Promise<Attempt> {
  try {
    require('@tensorflow/tfjs-node');
  } catch (err) {
    return { ok: false, error: `@tensorflow/tfjs-node did not load (${message(err)})` };
  }
  if (!(await tf.setBackend('tensorflow'))) return { ok: false, error: 'tfjs-node loaded but its backend failed to initialise' };
  return { ok: true, detail: 'native libtensorflow via @tensorflow/tfjs-node' };
}

let wasmPathsSet = false;

// Under Node the wasm package's flags report SIMD but never threads (tfjs issue #3830), so it
// loads tfjs-backend-wasm-simd.wasm single-threaded: ~4x the plain binary on matmul here; the
// threaded-simd binary fails to link under Node. The binaries live beside the package's main
// file; giving the folder explicitly keeps that working when this code is bundled or run from
// another directory. setWasmPaths must precede the backend's first initialisation.
async function tryWasm(): Promise<Attempt> {
  try {
    if (!wasmPathsSet) {
      const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
      setWasmPaths(dist + path.sep);
      wasmPathsSet = true;
    }
    registerWasmMissingKernels();
    registerWasmKernelSpeedups();
    if (!(await tf.setBackend('wasm'))) return { ok: false, error: 'wasm backend failed to initialise (see the tfjs warning above)' };
  } catch (err) {
    return { ok: false, error: `wasm backend failed: ${message(err)}` };
  }
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return { ok: true, detail: `WebAssembly, ${simd ? 'SIMD' : 'no SIMD'}, single-threaded` };
}

async function tryCpu(): Promise<Attempt> {
  if (!(await tf.setBackend('cpu'))) return { ok: false, error: 'cpu backend failed to initialise' };
  return { ok: true, detail: 'plain JavaScript' };
}

const attempts: Record<BackendName, () => Promise<Attempt>> = {
  tensorflow: tryTensorflow,
  wasm: tryWasm,
  cpu: tryCpu,
};

/**
 * Without a workload to time, `auto` prefers wasm: on the small CPU machines measured, tfjs-node's
 * per-op overhead made whole runs slower than wasm (quickstart 143 s against 70 s) even where it
 * won single wide matmuls, and wasm gives the same numbers on every machine.
 */
export const UNTIMED_AUTO_ORDER: readonly BackendName[] = ['wasm', 'tensorflow', 'cpu'];

/** A real backend as a candidate of `chooseBackend`. */
export function backendCandidate(name: BackendName): BackendCandidate {
  return {
    name,
    activate: async () => {
      const attempt = await attempts[name]();
      if (!attempt.ok) throw new Error(attempt.error);
      await tf.ready();
      return attempt.detail;
    },
  };
}

/**
 * Makes a tfjs backend active. An explicit preference that cannot load throws, naming the backend
 * and the cause. 'auto' here is the untimed choice (`UNTIMED_AUTO_ORDER`, the first that loads);
 * `troupe train` times the run's own workload instead (`chooseBackendForWorkload`).
 */
export async function selectBackend(preference: BackendPreference = 'auto'): Promise<BackendChoice> {
  // Production mode only silences tfjs's console notices, such as the banner recommending
  // tfjs-node that the cpu backend prints on first use even where tfjs-node cannot install;
  // troupe reports the backend it picked, and why, itself.
  tf.enableProdMode();
  if (preference !== 'auto') {
    const attempt = await attempts[preference]();
    if (!attempt.ok) throw new Error(`tfjs backend '${preference}' unavailable: ${attempt.error}`);
    await tf.ready();
    return { backend: tf.getBackend(), reason: `requested '${preference}': ${attempt.detail}` };
  }
  const skipped: string[] = [];
  for (const name of UNTIMED_AUTO_ORDER) {
    const attempt = await attempts[name]();
    if (attempt.ok) {
      await tf.ready();
      const why = skipped.length > 0 ? `; skipped ${skipped.join('; ')}` : '';
      return { backend: tf.getBackend(), reason: `auto (untimed): ${attempt.detail}${why}` };
    }
    skipped.push(`${name}: ${attempt.error}`);
  }
  throw new Error(`no tfjs backend could be initialised (${skipped.join('; ')})`);
}

/**
 * `auto` for a run: tfjs-node and wasm (cpu only when neither loads) timed on the run's own
 * `workload` (see `chooseBackend`); wasm is preferred on a tie and when nothing can be timed.
 */
export async function chooseBackendForWorkload(workload: BackendWorkload | undefined, untimedWhy?: string): Promise<TimedBackendChoice> {
  tf.enableProdMode();
  return chooseBackend([backendCandidate('wasm'), backendCandidate('tensorflow')], workload, { fallbacks: [backendCandidate('cpu')], ...(untimedWhy ? { untimedWhy } : {}) });
}

/**
 * The backend to act with a trained run: `explicit` (a --backend flag) if given, else the backend
 * the run recorded (its numbers are bit-identical only there), else `configured`. A recorded
 * backend that does not load here gives way to the untimed `auto`, the reason saying so.
 */
export async function selectBackendForRun(explicit: string | undefined, recorded: string | undefined, configured: string, source: string): Promise<BackendChoice> {
  if (explicit !== undefined) return selectBackend(explicit as BackendPreference);
  const fromRecord = backendFromRecord('auto', recorded, source);
  if (fromRecord.backend === 'auto') return selectBackend(configured as BackendPreference);
  try {
    const chosen = await selectBackend(fromRecord.backend);
    return { backend: chosen.backend, reason: `${fromRecord.why}: ${chosen.reason}` };
  } catch (error) {
    const chosen = await selectBackend('auto');
    return { backend: chosen.backend, reason: `${source} recorded '${fromRecord.backend}', which does not load here (${message(error)}); ${chosen.reason}` };
  }
}
