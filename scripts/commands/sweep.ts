import path from 'node:path';
import { buildSweepReport, loadSweepStudy, planSweepStudy, sweepName, sweepRunDataFromDisk, writeSweepReport } from '../../runtime/training/sweep-study';
import { runStatus, writePlanFiles } from '../../runtime/training/transfer-study';
import { jobsOf, refuseQueueOnlyFlags, shown, trainPlannedRuns } from './study-runs';

export interface SweepCommandOptions {
  out?: string;
  jobs?: string;
  dryRun?: boolean;
  queue?: string;
  backend?: string;
  attempts?: string;
}

/**
 * `troupe sweep <study.yaml>`: every grid combination × seed as a `troupe train` process, `--jobs`
 * at a time on this machine (again to resume), then the report ranking the conditions.
 */
export async function runSweepCommand(file: string, opts: SweepCommandOptions): Promise<number> {
  refuseQueueOnlyFlags(opts);
  const study = loadSweepStudy(file);
  const outDir = opts.out ?? path.join('runs', 'sweeps', sweepName(study, file));
  const plan = planSweepStudy(study, file, outDir);
  if (opts.queue !== undefined) {
    const { submitStudyCommand } = await import('./queue');
    return submitStudyCommand(plan, opts.queue, opts);
  }
  const jobs = jobsOf(opts);
  const counts = { finished: 0, resumable: 0, new: 0 };
  for (const run of plan.runs) counts[runStatus(run)]++;
  process.stdout.write(
    `sweep ${file} → ${shown(plan.outDir)}: ${plan.conditions.length} conditions × ${plan.runs.length / plan.conditions.length} seeds = ${plan.runs.length} runs (${counts.finished} finished, ${counts.resumable} to resume, ${counts.new} new), ${jobs} at a time\n`,
  );
  if (opts.dryRun) {
    for (const run of plan.runs) process.stdout.write(`  ${runStatus(run).padEnd(9)} ${run.key}\n`);
    return 0;
  }
  writePlanFiles(plan);
  const outcome = await trainPlannedRuns(plan, jobs, 'sweep');
  const report = buildSweepReport(plan, sweepRunDataFromDisk);
  const files = writeSweepReport(report, plan.outDir);
  if (report.best) process.stdout.write(`best: ${report.best} (${report.metric} ${report.conditions[0].estimate.toFixed(3)} [${report.conditions[0].lower.toFixed(3)}, ${report.conditions[0].upper.toFixed(3)}])\n`);
  process.stdout.write(`report: ${files.map(shown).join(', ')}\n`);
  return outcome.failed.length === 0 && outcome.skipped.length === 0 ? 0 : 1;
}
