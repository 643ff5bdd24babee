import YAML from 'yaml';
import { checkEnv, formatCheckReport } from '../../envs/checker';
import { envSpecFor, instantiateEnv, prepareEnvSpec } from '../../envs/env-from-spec';

export interface CheckEnvCommandOptions {
  seed: string;
  episodes: string;
  json?: boolean;
  /** `key=value` pairs (values parsed as YAML scalars), passed to the env's factory. */
  option: string[];
  /** A JSON object of options; `--option` pairs are applied on top. */
  options?: string;
}

/** The env options of `--options '{…}'` and repeated `--option key=value`. */
export function parseEnvOptionFlags(json: string | undefined, pairs: readonly string[]): Record<string, unknown> {
  let options: Record<string, unknown> = {};
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (error) {
      throw new Error(`--options: expected a JSON object such as '{"grid_size": 10}', got '${json}' (${(error as Error).message})`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`--options: expected a JSON object, got '${json}'`);
    options = { ...(parsed as Record<string, unknown>) };
  }
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--option '${pair}': expected key=value, e.g. --option grid_size=10`);
    options[pair.slice(0, eq).trim()] = YAML.parse(pair.slice(eq + 1)) ?? null;
  }
  return options;
}

/** `troupe check-env <id | module path>`: runs the conformance checks; exit code 1 when any fails. */
export async function runCheckEnvCommand(target: string, opts: CheckEnvCommandOptions): Promise<number> {
  const episodes = Number(opts.episodes);
  if (!Number.isInteger(episodes) || episodes < 1) throw new Error(`--episodes must be a positive integer, got '${opts.episodes}'`);
  const spec = envSpecFor(target, parseEnvOptionFlags(opts.options, opts.option));
  await prepareEnvSpec(spec);
  const report = checkEnv(() => instantiateEnv(spec), { seed: opts.seed, episodes, name: spec.id });
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${formatCheckReport(report)}\n`);
  return report.passed ? 0 : 1;
}
