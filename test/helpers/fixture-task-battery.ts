import type { ManipulationExpert } from '../../agents/policies/experts/manipulation-expert';
import { checkEnv, formatCheckReport } from '../../envs/checker';
import { createManipulationEnv, type ManipulationEnv } from '../../envs/manipulation/manipulation-env';
import { OBS } from '../../envs/manipulation/observation-layout';
import type { ManipulationTask, TaskParamsBase } from '../../envs/manipulation/task';
import { Rng } from '../../runtime/core/rng';

/*
 * What every articulated-fixture task (doors, drawers, windows, button, lever) must pass, and the
 * scripted moves their joint-behaviour tests are written with. Fixture tasks share the params
 * `{ kind, fixturePosition }`, so one battery serves them all.
 */

export const ARM = 'arm_0';

export type AnyTask = ManipulationTask<TaskParamsBase>;

export interface FixtureTaskCase {
  kind: string;
  task: AnyTask;
  makeExpert: () => ManipulationExpert;
  /** A fixture position outside the task's range, which `setTask` must refuse. */
  outOfRange: [number, number, number];
}

/** Plays until the episode succeeds or ends; returns whether it succeeded. */
export function succeeds(env: ManipulationEnv, seed: number, act: (obs: Float32Array) => Float32Array): boolean {
  let obs = env.reset({ seed }).observations[ARM];
  while (env.agents.length) {
    const r = env.step({ [ARM]: act(obs) });
    if (r.infos[ARM].episode_success === true) return true;
    obs = r.observations[ARM];
  }
  return false;
}

export interface Run {
  obs: Float32Array;
  everSucceeded: boolean;
}

/** Moves the TCP towards (x, y, z) for `steps` steps with the gripper shut. */
export function moveTo(env: ManipulationEnv, target: readonly [number, number, number], steps: number, obs: Float32Array): Run {
  let everSucceeded = false;
  for (let t = 0; t < steps; t++) {
    const action = Float32Array.of(...[0, 1, 2].map((i) => Math.max(-1, Math.min(1, 25 * (target[i] - obs[OBS.HAND + i])))), 1);
    const r = env.step({ [ARM]: action });
    obs = r.observations[ARM];
    if (r.infos[ARM].success === true) everSucceeded = true;
  }
  return { obs, everSucceeded };
}

/** Expert ≥ 90%, random mostly failing, the conformance checker, determinism and params round-trip, per task. */
export function describeFixtureTaskBattery(cases: readonly FixtureTaskCase[]): void {
  describe.each(cases.map((c) => [c.kind, c] as const))('%s', (kind, { task, makeExpert, outOfRange }) => {
    it('the expert succeeds in ≥ 90% of 20 seeded episodes; a random policy mostly fails', () => {
      const env = createManipulationEnv(task, {});
      let wins = 0;
      for (let ep = 0; ep < 20; ep++) {
        const expert = makeExpert();
        if (succeeds(env, ep, (o) => expert.act(o))) wins++;
      }
      expect(wins).toBeGreaterThanOrEqual(18);
      const rng = new Rng(`random/${kind}`);
      const short = createManipulationEnv(task, { horizon: 100 });
      let randomWins = 0;
      for (let ep = 0; ep < 8; ep++) if (succeeds(short, 1000 + ep, () => short.actionSpace(ARM).sample(rng))) randomWins++;
      expect(randomWins).toBeLessThanOrEqual(2);
    });

    it('passes the conformance checker', () => {
      const report = checkEnv(() => createManipulationEnv(task, { horizon: 30 }), { seed: 0, episodes: 2 });
      if (!report.passed) throw new Error(formatCheckReport(report));
    });

    it('is deterministic under a seed, and the kind and params round-trip', () => {
      const play = () => {
        const env = createManipulationEnv(task, {});
        const rng = new Rng('actions');
        const out: number[] = Array.from(env.reset({ seed: 7 }).observations[ARM]);
        for (let t = 0; t < 40; t++) out.push(...env.step({ [ARM]: env.actionSpace(ARM).sample(rng) }).observations[ARM]);
        return { out, params: env.currentTask() };
      };
      const a = play();
      const b = play();
      expect(b.out).toEqual(a.out);
      expect(a.params!.kind).toBe(kind);
      expect(task.paramsSchema.parse(JSON.parse(JSON.stringify(a.params)))).toEqual(a.params);
      expect(() => createManipulationEnv(task, {}).setTask({ kind, fixturePosition: outOfRange } as TaskParamsBase)).toThrow(/fixturePosition/);
    });
  });
}
