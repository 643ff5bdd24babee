import fs from 'node:fs';

/**
 * One line of `metrics.jsonl`: a training interval (`kind: 'train'`) or an evaluation, placed
 * by `env_steps` (online runs) or `grad_steps` (offline runs); multi-task runs add `task`.
 */
export type MetricsRecord = { kind: 'train' | 'eval' } & Record<string, number | string | null>;

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

  /** Continues `file`, keeping its first `keepLines` records; fails if it has fewer. */
  static resume(file: string, keepLines: number): MetricsLog {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || keepLines > 0) {
        throw new Error(`cannot resume metrics ${file}: ${(error as Error).message}`);
      }
    }
    const lines = text.split('\n').filter((line) => line.length > 0);
    if (lines.length < keepLines) {
      throw new Error(`cannot resume metrics ${file}: the checkpoint had seen ${keepLines} records but the file has ${lines.length}`);
    }
    const kept = lines.slice(0, keepLines);
    fs.writeFileSync(file, kept.map((line) => `${line}\n`).join(''));
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
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line, i) => {
        try {
          return JSON.parse(line) as MetricsRecord;
        } catch {
          throw new Error(`${file}:${i + 1}: not a JSON metrics record`);
        }
      });
  }
}
