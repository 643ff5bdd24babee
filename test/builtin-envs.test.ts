import { registerBuiltinEnvs } from '../envs/builtin';
import { checkEnv, formatCheckReport } from '../envs/checker';
import { listEnvs, makeEnv, prepareEnv } from '../envs/registry';

registerBuiltinEnvs();
const ids = listEnvs().map((e) => e.id);

describe('built-in envs', () => {
  beforeAll(async () => {
    for (const id of ids) await prepareEnv(id);
  });

  test('every family is registered', () => {
    const families = new Set(listEnvs().map((e) => e.family));
    expect([...families].sort()).toEqual(['gridworld/combat', 'gridworld/lbf', 'gridworld/pursuit', 'gridworld/spread', 'gridworld/spread-hidden', 'manipulation', 'manipulation/benchmarks', 'manipulation/multi-arm', 'navigation/point-robot', 'navigation/resource']);
  });

  test.each(ids)('%s passes every conformance check', (id) => {
    const report = checkEnv(() => makeEnv<unknown, unknown>(id), { seed: 3, episodes: 2 });
    if (!report.passed) throw new Error(formatCheckReport(report));
    expect(report.passed).toBe(true);
  });

  test.each(ids)('%s has a global state for centralised critics', (id) => {
    const env = makeEnv(id);
    env.reset({ seed: 1 });
    expect(env.stateSpace).toBeDefined();
    expect(env.stateSpace!.contains(env.state!())).toBe(true);
  });
});
