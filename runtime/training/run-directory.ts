import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomicSync } from '../core/atomic-file';
import { type CheckpointData, writeCheckpoint } from '../core/checkpoint';
import { learningCurveSvg } from '../core/learning-curve-plot';
import { MetricsLog, type MetricsRecord } from '../core/metrics-log';
import { serializeRunConfig } from './config-loader';
import type { RunConfig } from './run-config';

export const CHECKPOINT_DIR = 'checkpoints';
export const CONFIG_FILE = 'config.yaml';
export const RUN_INFO_FILE = 'run.json';

/** The hash run.json keeps of config.yaml, so a resume can tell that the file was edited. */
export function configFileHash(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The files of one run: `config.yaml` (the resolved config), `run.json` (backend, platform,
 * workers, where a resume came from), `metrics.jsonl`, `checkpoints/` (the last few, a `latest`
 * pointer), `summary.json` and `learning-curve.svg`. Every file but the append-only metrics is
 * replaced whole through a rename, so a crash never leaves one half-written.
 */
export class RunDirectory {
  readonly metricsFile: string;
  readonly checkpointDir: string;
  private metrics!: MetricsLog;
  private configHash?: string;

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
    const text = serializeRunConfig(config);
    writeFileAtomicSync(path.join(this.dir, CONFIG_FILE), text);
    this.configHash = configFileHash(text);
    this.metrics = resumeLogIndex === undefined ? MetricsLog.create(this.metricsFile) : MetricsLog.resume(this.metricsFile, resumeLogIndex);
  }

  /** Writes run.json: `info` and the hash of the config.yaml `open` wrote (`config_sha256`). */
  writeRunInfo(info: Record<string, unknown>): void {
    writeFileAtomicSync(path.join(this.dir, RUN_INFO_FILE), `${JSON.stringify({ ...info, config_sha256: this.configHash ?? null }, null, 2)}\n`);
  }

  /** Records written so far (including a resumed run's kept ones). */
  get records(): number {
    return this.metrics.records;
  }

  append(record: MetricsRecord): void {
    this.metrics.append(record);
  }

  writePlot(title: string): void {
    writeFileAtomicSync(path.join(this.dir, 'learning-curve.svg'), learningCurveSvg(MetricsLog.read(this.metricsFile), title));
  }

  writeSummary(summary: object): void {
    writeFileAtomicSync(path.join(this.dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  }

  writeCheckpoint(name: string, data: CheckpointData): Promise<string> {
    return writeCheckpoint(this.checkpointDir, name, data, { keepLast: this.keepCheckpoints });
  }
}
