import { registerEnv, registerScenarioParser } from '../registry';
import { createMultiArmEnv } from './multi-arm-env';
import { BAR_LIFT_MAX_ARMS, barLiftTask } from './multi-arm/bar-lift';
import { handoverTask } from './multi-arm/handover';
import { TABLETOP_OPTION_KEYS } from './env-options';
import { initPhysics } from './physics';

/**
 * The multi-arm manipulation family (`manipulation/multi-arm`):
 *
 * - `handover`: arm_0 hands a baton to arm_1, which holds it at a goal beyond arm_0's reach.
 * - `bar-lift`: two arms lift a bar level to a target height (grasps are pivots, so one arm alone
 *   only tilts it).
 * - `bar-lift-<N>arms` (N = 2 … BAR_LIFT_MAX_ARMS; 3 and 4 listed): N arms lift a bar of N
 *   segments joined by slack links, one handle per segment; a segment nobody holds hangs low. The
 *   agent count follows N.
 * - `bar-lift-<A>to<B>arms` (2 ≤ A < B ≤ BAR_LIFT_MAX_ARMS; `bar-lift-2to4arms` listed; or
 *   `bar-lift` with option `numArms: [A, B]`): the arm count varies between episodes: each reset
 *   draws N uniformly from [A, B] and plays `bar-lift-<N>arms` with agents arm_0 … arm_{N−1} of
 *   the possible arm_0 … arm_{B−1}; observations have B-arm size with presence flags
 *   (multi-arm-env.ts). `reset({ options: { numArms } })` picks N for one episode.
 */

const FAMILY = 'manipulation/multi-arm';

/** `bar-lift-3arms` → 3; undefined for other ids. */
export function parseBarLiftId(id: string): number | undefined {
  const m = /^bar-lift-(\d+)arms$/.exec(id);
  return m ? Number(m[1]) : undefined;
}

/** `bar-lift-2to4arms` → [2, 4]; undefined for other ids (the range is checked by the factory). */
export function parseBarLiftRangeId(id: string): [number, number] | undefined {
  const m = /^bar-lift-(\d+)to(\d+)arms$/.exec(id);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

const isArmCount = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 2 && n <= BAR_LIFT_MAX_ARMS;

function createBarLiftEnv(options: Record<string, unknown>) {
  const { numArms = 2, ...rest } = options;
  if (Array.isArray(numArms) && numArms.length === 2 && isArmCount(numArms[0]) && isArmCount(numArms[1]) && numArms[0] < numArms[1]) {
    const [min, max] = numArms;
    return createMultiArmEnv(barLiftTask(max), rest, { min, max, taskFor: barLiftTask });
  }
  if (!isArmCount(numArms)) {
    throw new Error(
      `${String(options.id ?? 'bar-lift')}: invalid option 'numArms': expected an integer from 2 to ${BAR_LIFT_MAX_ARMS}, ` +
        `or a range [min, max] with 2 ≤ min < max ≤ ${BAR_LIFT_MAX_ARMS}, got ${JSON.stringify(numArms)}`,
    );
  }
  return createMultiArmEnv(barLiftTask(numArms), rest);
}

/** bar-lift's team size on top of the tabletop options. */
const BAR_LIFT_OPTION_KEYS = [...TABLETOP_OPTION_KEYS, 'numArms'];

let registered = false;

/** Registers the multi-arm ids (with `prepare: initPhysics`) and the `bar-lift-<N>arms` parser. Idempotent. */
export function registerMultiArmEnvs(): void {
  if (registered) return;
  registered = true;
  registerEnv('handover', (options) => createMultiArmEnv(handoverTask, options), {
    family: FAMILY,
    optionKeys: TABLETOP_OPTION_KEYS,
    description: `${handoverTask.description}; 2 agents, Box(33) obs, Box(4) actions, ${handoverTask.defaultHorizon} steps`,
    prepare: initPhysics,
  });
  registerEnv('bar-lift', createBarLiftEnv, {
    family: FAMILY,
    optionKeys: BAR_LIFT_OPTION_KEYS,
    options: { numArms: 2 },
    description: `${barLiftTask(2).description}; Box(47) obs per arm, ${barLiftTask(2).defaultHorizon} steps`,
    prepare: initPhysics,
  });
  for (const n of [3, 4]) {
    registerEnv(`bar-lift-${n}arms`, createBarLiftEnv, {
      family: FAMILY,
      optionKeys: BAR_LIFT_OPTION_KEYS,
      options: { numArms: n },
      description: `${barLiftTask(n).description}; Box(${22 * n + 3}) obs per arm, ${barLiftTask(n).defaultHorizon} steps`,
      prepare: initPhysics,
    });
  }
  registerEnv('bar-lift-2to4arms', createBarLiftEnv, {
    family: FAMILY,
    optionKeys: BAR_LIFT_OPTION_KEYS,
    options: { numArms: [2, 4] },
    description: `2 to 4 arms (drawn each episode) lift a bar of as many linked segments level to a target height; possible agents arm_0 … arm_3, Box(${22 * 4 + 3 + 3}) obs per arm (zeros and presence flags for absent arms), ${barLiftTask(4).defaultHorizon} steps`,
    prepare: initPhysics,
  });
  registerScenarioParser((id) => {
    const n = parseBarLiftId(id);
    if (n !== undefined) return { baseId: 'bar-lift', options: { numArms: n } };
    const range = parseBarLiftRangeId(id);
    return range === undefined ? undefined : { baseId: 'bar-lift', options: { numArms: range } };
  });
}
