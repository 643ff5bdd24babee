import fs from 'node:fs';
import path from 'node:path';
import { type CollectProgress, DATASET_MANIFEST, type DatasetManifest, collectDatasets, loadCollectConfig, readManifest } from './collect-datasets';
import { RunConfigError } from './config-loader';
import type { RunConfig, TaskConfig } from './run-config';

/*
 * A run config's `datasets:` section (a folder of per-task datasets, `troupe collect`'s output)
 * becomes an explicit `tasks:` list when a run starts: one task per chosen manifest entry, with
 * its env (id and options from the manifest) and its dataset file. With `datasets.collect`, the
 * collection runs first (and resumes, or checks an existing folder against the collect config),
 * so one command goes from nothing to a trained model. The saved config then names every file,
 * and `--resume <run>` reads that, never the folder (a resume given the config file again
 * resolves the folder again, and must find the same tasks).
 */

export interface DatasetSetHooks {
  log?: (line: string) => void;
  onCollectProgress?: (progress: CollectProgress) => void;
}

/** `config` with its `datasets` section replaced by the tasks it stands for (unchanged without one). */
export async function resolveDatasetSet(config: RunConfig, hooks: DatasetSetHooks = {}): Promise<RunConfig> {
  const set = config.datasets;
  if (!set) return config;
  const manifestFile = path.join(set.dir, DATASET_MANIFEST);
  if (set.collect) {
    if (!fs.existsSync(set.collect)) throw new RunConfigError(`datasets.collect: the collect config ${set.collect} does not exist`);
    const collectConfig = loadCollectConfig(set.collect);
    hooks.log?.(`datasets: ${fs.existsSync(manifestFile) ? 'checking' : 'collecting'} ${set.dir} with ${set.collect}`);
    await collectDatasets(collectConfig, set.dir, { log: hooks.log, onProgress: hooks.onCollectProgress });
  }
  let manifest: DatasetManifest | undefined;
  try {
    manifest = readManifest(manifestFile);
  } catch (error) {
    throw new RunConfigError(`datasets.dir: ${(error as Error).message}`);
  }
  if (!manifest) {
    throw new RunConfigError(`datasets.dir: ${set.dir} holds no ${DATASET_MANIFEST}; collect it first (troupe collect <collect.yaml> --out ${set.dir}) or give datasets.collect`);
  }
  const chosen = chooseTasks(manifest, set.tasks, manifestFile);
  const tasks: TaskConfig[] = chosen.map((t) => ({
    name: t.key,
    id: t.env.id,
    ...(t.env.options ? { options: t.env.options } : {}),
    ...(t.env.module ? { module: t.env.module } : {}),
    dataset: path.join(set.dir, t.file),
  }));
  const { datasets: _resolved, ...rest } = config;
  return { ...rest, tasks };
}

function chooseTasks(manifest: DatasetManifest, which: 'all' | 'train' | 'test' | string[], file: string): DatasetManifest['tasks'] {
  if (which === 'all') return manifest.tasks;
  if (which === 'train' || which === 'test') {
    const side = manifest.tasks.filter((t) => t.split === which);
    if (side.length === 0) throw new RunConfigError(`datasets.tasks: ${file} has no '${which}' tasks (its tasks are not split, or all on the other side)`);
    return side;
  }
  const byKey = new Map(manifest.tasks.map((t) => [t.key, t]));
  const firstAt = new Map<string, number>();
  which.forEach((key, i) => {
    if (firstAt.has(key)) throw new RunConfigError(`datasets.tasks.${i}: '${key}' is listed twice (first at datasets.tasks.${firstAt.get(key)})`);
    firstAt.set(key, i);
  });
  return which.map((key, i) => {
    const t = byKey.get(key);
    if (!t) throw new RunConfigError(`datasets.tasks.${i}: '${key}' is not in ${file} (its tasks: ${manifest.tasks.map((m) => m.key).join(', ')})`);
    return t;
  });
}
