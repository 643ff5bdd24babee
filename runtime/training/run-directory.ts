import fs from 'node:fs';
import path from 'node:path';
import { type CheckpointData, writeCheckpoint } from '../core/checkpoint';
import { learningCurveSvg } from '../core/learning-curve-plot';
import { MetricsLog, type MetricsRecord } from '../core/metrics-log';
import { serializeRunConfig } from './config-loader';
import type { RunConfig } from './run-config';

export const CHECKPOINT_DIR = 'checkpoints';

/**
 * The files of one run: `config.yaml` (the resolved config), `run.json` (backend, platform,
 * workers, where a resume came from), `metrics.jsonl`, `checkpoints/` (the last few, a `latest`
 * pointer), `summary.json` and `learning-curve.svg`.
 */
export class RunDirectory {
  readonly metricsFile: string;
  readonly checkpointDir: string;
  private metrics!: MetricsLog;

  constructor(
    readonly dir: string,
    private readonly keepCheckpoints = 3,
  ) {
    this.metricsFile = path.join(dir, 'metrics.jsonl');
    this.checkpointDir = path.join(dir, CHECKPOINT_DIR);
  }

  /** Creates the folder and writes the config; the metrics start empty, or continue a resumed run's first `logIndex` records. */
  open(config: RunConfig, resumeLogIndex?: number): void {
    fs.mkdirSync(this.dir, { recursive: true });
    fs.writeFileSync(path.join(this.dir, 'config.yaml'), serializeRunConfig(config));
    this.metrics = resumeLogIndex === undefined ? MetricsLog.create(this.metricsFile) : MetricsLog.resume(this.metricsFile, resumeLogIndex);
  }

  writeRunInfo(info: Record<string, unknown>): void {
    fs.writeFileSync(path.join(this.dir, 'run.json'), `${JSON.stringify(info, null, 2)}\n`);
  }

  /** Records written so far (including a resumed run's kept ones). */
  get records(): number {
    return this.metrics.records;
  }

  append(record: MetricsRecord): void {
    this.metrics.append(record);
  }

  writePlot(title: string): void {
    fs.writeFileSync(path.join(this.dir, 'learning-curve.svg'), learningCurveSvg(MetricsLog.read(this.metricsFile), title));
  }

  writeSummary(summary: object): void {
    fs.writeFileSync(path.join(this.dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  }

  writeCheckpoint(name: string, data: CheckpointData): Promise<string> {
    return writeCheckpoint(this.checkpointDir, name, data, { keepLast: this.keepCheckpoints });
  }
}
