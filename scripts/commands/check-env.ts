import fs from 'node:fs';
import path from 'node:path';
import { registerBuiltinEnvs } from '../../envs/builtin';
import { checkEnv, formatCheckReport } from '../../envs/checker';
import { loadEnvModule } from '../../envs/load-env-module';
import { isRegistered, makeEnv, prepareEnv } from '../../envs/registry';

/** `troupe check-env <id | module path>`: runs the conformance checks; exit code 1 when any fails. */
export async function runCheckEnvCommand(target: string, opts: { seed: string; episodes: string; json?: boolean }): Promise<number> {
  registerBuiltinEnvs();
  const looksLikePath = /[\\/]|\.(c|m)?(j|t)s$/.test(target) || fs.existsSync(target);
  let factory;
  if (!looksLikePath && isRegistered(target)) {
    await prepareEnv(target);
    factory = () => makeEnv<unknown, unknown>(target);
  }
  else if (looksLikePath) factory = await loadEnvModule(path.resolve(target));
  else {
    makeEnv(target); // throws the registry's "unknown id" error with suggestions
    return 1;
  }
  const report = checkEnv(factory, { seed: opts.seed, episodes: Number(opts.episodes) });
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${formatCheckReport(report)}\n`);
  return report.passed ? 0 : 1;
}
