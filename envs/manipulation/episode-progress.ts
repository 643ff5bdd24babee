/**
 * Episode bookkeeping shared by the single-arm and multi-arm tabletop envs: the step count,
 * truncation at the horizon, success at any step so far (what evaluation counts), and the lines
 * their renders show of it. Both envs report these the same way.
 */

/** What the render's score line shows of the last step's evaluation. */
export interface ScoredStep {
  reward: number;
  objToTarget: number;
  success: boolean;
}

export class EpisodeProgress {
  private steps = 0;
  private succeeded = false;

  constructor(
    private readonly envId: string,
    private readonly horizon: number,
  ) {}

  get stepCount(): number {
    return this.steps;
  }

  /** Whether the task's criterion held at any step of this episode (the episode's success). */
  get episodeSuccess(): boolean {
    return this.succeeded;
  }

  start(): void {
    this.steps = 0;
    this.succeeded = false;
  }

  /** Counts a step whose criterion was `success`; true when the episode is now truncated. */
  advance(success: boolean): boolean {
    this.steps++;
    if (success) this.succeeded = true;
    return this.steps >= this.horizon;
  }

  /** `<id> step n/horizon`, with ` (success)` once the episode has succeeded when `showSuccess`. */
  title(showSuccess: boolean): string {
    return `${this.envId} step ${this.steps}/${this.horizon}${showSuccess && this.succeeded ? ' (success)' : ''}`;
  }

  /** The render's last line: the last step's score (dashes before the first step). */
  scoreLine(e: ScoredStep): string {
    const stepped = this.steps > 0;
    return `reward ${stepped ? e.reward.toFixed(3) : '-'}  obj_to_target ${stepped ? e.objToTarget.toFixed(3) : '-'}  success ${stepped ? e.success : '-'}  episode_success ${this.succeeded}`;
  }
}

/** Throws unless `reset()` started an episode that has not ended yet. */
export function requireRunningEpisode<E>(envId: string, episode: E | null, liveAgents: number): asserts episode is E {
  if (episode === null) throw new Error(`${envId}: call reset() before step()`);
  if (liveAgents === 0) throw new Error(`${envId}: the episode is over; call reset() before step()`);
}

/** Throws for render modes other than 'ansi'/'text' and 'svg'. */
export function checkRenderMode(envId: string, mode: string): void {
  if (mode !== 'ansi' && mode !== 'text' && mode !== 'svg') throw new Error(`${envId}: render mode '${mode}' is not supported (use 'ansi'/'text' or 'svg')`);
}
