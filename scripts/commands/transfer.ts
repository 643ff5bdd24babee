import path from 'node:path';
import { RunConfigError } from '../../runtime/training/config-loader';
import { buildMraReport, writeMraReport } from '../../runtime/training/mra-report';
import { collectMraResults, loadMraStudy, planMraStudy, resourceEnvId, studyMethodOf } from '../../runtime/training/mra-study';
import { buildTransferReport, writeTransferReport } from '../../runtime/training/transfer-report';
import { collectTransferResults } from '../../runtime/training/transfer-results';
import { loadTransferStudy, planTransferStudy, runStatus, withTaskLists, writePlanFiles } from '../../runtime/training/transfer-study';
import { jobsOf, refuseQueueOnlyFlags, shown, trainPlannedRuns } from './study-runs';

export interface TransferCommandOptions {
  out?: string;
  jobs?: string;
  dryRun?: boolean;
  sources?: string;
  targets?: string;
  queue?: string;
  backend?: string;
  attempts?: string;
}

/**
 * `troupe transfer <study.yaml>`: plans the study's runs, then trains them `--jobs` at a time as
 * separate processes. A study file with `method: mra` is an MRA study (`runMraStudyCommand`).
 */
export async function runTransferCommand(file: string, opts: TransferCommandOptions): Promise<number> {
  refuseQueueOnlyFlags(opts);
  if (studyMethodOf(file) === 'mra') return runMraStudyCommand(file, opts);
  const jobs = opts.queue === undefined ? jobsOf(opts) : 0;
  const study = withTaskLists(loadTransferStudy(file), { sources: opts.sources?.split(','), targets: opts.targets?.split(',') });
  const outDir = opts.out ?? path.join('runs', 'transfer', path.basename(file).replace(/\.ya?ml$/i, ''));
  const plan = planTransferStudy(study, file, outDir);
  if (opts.queue !== undefined) {
    const { submitStudyCommand } = await import('./queue');
    return submitStudyCommand(plan, opts.queue, opts);
  }
  const counts = { finished: 0, resumable: 0, new: 0 };
  for (const run of plan.runs) counts[runStatus(run)]++;
  process.stdout.write(
    `transfer study ${file} → ${plan.outDir}: ${plan.runs.length} runs (${counts.finished} finished, ${counts.resumable} to resume, ${counts.new} new), ${jobs} at a time\n`,
  );
  if (opts.dryRun) {
    for (const run of plan.runs) process.stdout.write(`  ${runStatus(run).padEnd(9)} ${run.key}${run.dependsOn.length ? `  (after ${run.dependsOn.join(', ')})` : ''}\n`);
    return 0;
  }
  writePlanFiles(plan);
  const outcome = await trainPlannedRuns(plan, jobs, 'transfer');
  process.stdout.write('report: re-evaluating the best checkpoints and computing the statistics…\n');
  const results = await collectTransferResults(plan);
  const report = buildTransferReport(results, plan.study);
  const files = await writeTransferReport(report, results, plan.study, plan.outDir, path.basename(file).replace(/\.ya?ml$/i, ''));
  for (const line of Object.values(report.verdicts)) process.stdout.write(`${line}\n`);
  process.stdout.write(`report: ${files.map(shown).join(', ')}\n`);
  return outcome.failed.length === 0 && outcome.skipped.length === 0 ? 0 : 1;
}

/**
 * An MRA study (`method: mra`): the MRA, unimodal and scratch runs, then each finished run's
 * evaluation (saved beside it and reused), then the report with one verdict per held-out
 * population. Exit code 1 when a run failed or was not started, or an evaluation failed.
 */
export async function runMraStudyCommand(file: string, opts: TransferCommandOptions): Promise<number> {
  if (opts.sources !== undefined || opts.targets !== undefined) {
    throw new RunConfigError(
      `${file} is an MRA study (method: mra): --sources/--targets apply to MTMA transfer studies only; an MRA study names its populations in the file (train_populations, held_out_populations)`,
    );
  }
  const jobs = opts.queue === undefined ? jobsOf(opts) : 0;
  const study = loadMraStudy(file);
  const outDir = opts.out ?? path.join('runs', 'transfer', path.basename(file).replace(/\.ya?ml$/i, ''));
  const plan = planMraStudy(study, file, outDir);
  if (opts.queue !== undefined) {
    // Each worker evaluates the runs it trained; the report job reads the evaluations from their results.
    const { submitStudyCommand } = await import('./queue');
    return submitStudyCommand(plan, opts.queue, opts);
  }
  const counts = { finished: 0, resumable: 0, new: 0 };
  for (const run of plan.runs) counts[runStatus(run)]++;
  process.stdout.write(
    `MRA study ${file} → ${plan.outDir}: ${plan.runs.length} runs (${counts.finished} finished, ${counts.resumable} to resume, ${counts.new} new), ${jobs} at a time\n`,
  );
  for (const b of plan.adaptationBudgets) {
    process.stdout.write(
      `  ${resourceEnvId(b.numAgents)}: adaptation budget ${b.episodes} episodes × ${b.episodeLength} steps (${b.episodeLengthFrom === 'env' ? 'from the env' : 'default episode length'}) = ${b.envSteps} env steps\n`,
    );
  }
  if (opts.dryRun) {
    for (const run of plan.runs) {
      const steps = (run.config.run as { total_env_steps?: number }).total_env_steps;
      process.stdout.write(`  ${runStatus(run).padEnd(9)} ${run.key}  (${steps} env steps)\n`);
    }
    return 0;
  }
  writePlanFiles(plan);
  const outcome = await trainPlannedRuns(plan, jobs, 'mra');
  process.stdout.write('report: evaluating the finished runs (saved evaluations of unchanged runs are reused)…\n');
  const results = await collectMraResults(plan, { log: (line) => process.stdout.write(`[mra-eval] ${line}\n`) });
  for (const f of results.failed) process.stderr.write(`evaluation failed: ${f.key}: ${f.error}\n`);
  const reused = results.runs.filter((r) => r.reused).length;
  process.stdout.write(`${results.runs.length} runs evaluated (${reused} reused)\n`);
  const report = buildMraReport(results, plan);
  const files = await writeMraReport(report, plan.outDir, path.basename(file).replace(/\.ya?ml$/i, ''));
  for (const line of report.verdicts) process.stdout.write(`${line}\n`);
  process.stdout.write(`report: ${files.map(shown).join(', ')}\n`);
  return outcome.failed.length === 0 && outcome.skipped.length === 0 && results.failed.length === 0 ? 0 : 1;
}
