import fs from 'node:fs';
import { writeFileAtomicSync } from './atomic-file';

/**
 * One line of `metrics.jsonl`: a training interval (`kind: 'train'`) or an evaluation, placed
 * by `env_steps` (online runs) or `grad_steps` (offline runs); multi-task runs add `task`.
 */
export type MetricsRecord = { kind: 'train' | 'eval' } & Record<string, number | string | null>;

function isRecordLine(line: string): boolean {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** Fields that measure wall-clock time, which no two runs share; determinism checks ignore them. */
export const WALL_CLOCK_FIELDS: readonly string[] = ['time_s', 'steps_per_s', 'eval_time_s'];

/**
 * Appends metrics records to a JSON-lines file, one `write` per record so a crash loses at most
 * the line being written. On resume the file is cut back to the lines the checkpoint had seen,
 * so the resumed run's lines replace, not duplicate, the ones written after that checkpoint.
 */
export class MetricsLog {
  private count: number;

  private constructor(
    readonly file: string,
    count: number,
  ) {
    this.count = count;
  }

  /** Starts a new file (replacing any old one). */
  static create(file: string): MetricsLog {
    fs.writeFileSync(file, '');
    return new MetricsLog(file, 0);
  }

  /**
   * The first `keepLines` records of `file`, checked: each must be a JSON object, and there must
   * be that many. Lines after them (a crash may have cut the last one off mid-write) are not
   * looked at. Errors name the file and line.
   */
  static checkResumable(file: string, keepLines: number): string[] {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      if (missing && keepLines > 0) throw new Error(`cannot resume metrics ${file}: the file does not exist, but the checkpoint counts ${keepLines} records in it`);
      if (!missing) throw new Error(`cannot resume metrics ${file}: ${(error as Error).message}`);
    }
    const kept: string[] = [];
    const lines = text.split('\n');
    for (let i = 0; i < lines.length && kept.length < keepLines; i++) {
      if (lines[i].length === 0) continue;
      if (!isRecordLine(lines[i])) {
        throw new Error(
          `${file}:${i + 1}: damaged metrics record (expected a JSON object on each line; the checkpoint counts ${keepLines} records before it resumes) — ` +
            `restore the line or the file, or start a new run`,
        );
      }
      kept.push(lines[i]);
    }
    if (kept.length < keepLines) {
      throw new Error(`cannot resume metrics ${file}: the checkpoint had seen ${keepLines} records but the file has ${kept.length}`);
    }
    return kept;
  }

  /** Continues `file`, keeping its first `keepLines` records (checked as in `checkResumable`). */
  static resume(file: string, keepLines: number): MetricsLog {
    const kept = MetricsLog.checkResumable(file, keepLines);
    // Rewritten whole through a rename: a crash here must not lose the records being kept.
    writeFileAtomicSync(file, kept.map((line) => `${line}\n`).join(''));
    return new MetricsLog(file, keepLines);
  }

  /** Records written so far (including kept ones). */
  get records(): number {
    return this.count;
  }

  append(record: MetricsRecord): void {
    fs.appendFileSync(this.file, `${JSON.stringify(record)}\n`);
    this.count++;
  }

  /** All records in the file. */
  static read(file: string): MetricsRecord[] {
    const records: MetricsRecord[] = [];
    for (const [i, line] of fs.readFileSync(file, 'utf8').split('\n').entries()) {
      if (line.length === 0) continue;
      if (!isRecordLine(line)) throw new Error(`${file}:${i + 1}: not a JSON metrics record`);
      records.push(JSON.parse(line) as MetricsRecord);
    }
    return records;
  }
}
