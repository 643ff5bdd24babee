import path from 'node:path';
import { Presets, SingleBar } from 'cli-progress';
import { RunConfigError } from '../../runtime/training/config-loader';
import { collectDatasets, loadCollectConfig } from '../../runtime/training/collect-datasets';

export interface CollectCommandOptions {
  out?: string;
  workers?: string;
  progress?: boolean;
}

/** `troupe collect <config.yaml>`: one offline dataset per task, and the manifest `dataset.json`. */
export async function runCollectCommand(file: string, opts: CollectCommandOptions): Promise<void> {
  const config = loadCollectConfig(file);
  const workers = opts.workers === undefined ? undefined : Number(opts.workers);
  if (workers !== undefined && (!Number.isInteger(workers) || workers < 0)) throw new Error(`--workers must be a non-negative integer, got '${opts.workers}'`);
  const outDir = opts.out ?? path.join('runs', 'datasets', path.basename(file).replace(/\.ya?ml$/i, ''));
  const useBar = opts.progress !== false && process.stderr.isTTY === true;
  const bar = useBar ? new SingleBar({ format: '{bar} {percentage}% | {value}/{total} episodes | task {task} | ETA {eta_formatted}', hideCursor: true, barCompleteChar: '█', barIncompleteChar: '░' }, Presets.shades_classic) : undefined;
  let started = false;
  let lastTask = '';
  const outcome = await collectDatasets(config, outDir, {
    workers,
    log: (line) => process.stdout.write(`${line}\n`),
    onProgress: (p) => {
      if (bar) {
        if (!started) bar.start(p.total, 0, { task: p.task });
        started = true;
        bar.update(p.done, { task: p.task });
      } else if (p.task !== lastTask) {
        process.stdout.write(`[collect] task ${p.task} (${p.done}/${p.total} episodes so far)\n`);
      }
      lastTask = p.task;
    },
  })
    .catch((error: unknown) => {
      // Task choices are checked against the env's task family only now; name the file they came from.
      throw error instanceof RunConfigError ? new RunConfigError(`invalid collect config ${file}: ${error.message}`, error.issues) : error;
    })
    .finally(() => bar?.stop());
  const { manifest } = outcome;
  const fmt = (x: number) => x.toFixed(3);
  for (const t of manifest.tasks) process.stdout.write(`${t.key}${t.split ? ` (${t.split})` : ''}: ${t.episodes} episodes, mean return ${fmt(t.meanReturn)}\n`);
  const kept = outcome.kept.length > 0 ? ` (${outcome.kept.length} already complete, kept)` : '';
  process.stdout.write(`${manifest.tasks.length} datasets (${manifest.policy}, quality ${manifest.quality}) in ${outDir}${kept}; manifest ${path.join(outDir, 'dataset.json')}\n`);
}
