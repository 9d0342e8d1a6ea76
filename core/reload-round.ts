/** How one reload went in the workers of a supervisor. */
export type ReloadOutcome = {
  acceptedBy: string[];
  rejected: { who: string; error: string }[];
  /** Workers that did not answer in time (died, or stuck). */
  noAnswer: string[];
};

/**
 * One config reload under a supervisor: it waits for the answer of every worker it was
 * sent to (or a timeout), then reports once, so a reload is logged and counted once
 * however many workers there are.
 */
export class ReloadRound<W> {
  readonly #waiting: Map<W, string>;
  readonly #outcome: ReloadOutcome = { acceptedBy: [], rejected: [], noAnswer: [] };
  readonly #onDone: (o: ReloadOutcome) => void;
  readonly #timer: NodeJS.Timeout;
  #done = false;

  /** `workers`: each worker and the name log lines give it ("0", "1", "spare"). */
  constructor(workers: Map<W, string>, onDone: (o: ReloadOutcome) => void, timeoutMs = 30_000) {
    this.#waiting = workers;
    this.#onDone = onDone;
    this.#timer = setTimeout(() => this.#finish(), timeoutMs);
    this.#timer.unref();
    if (workers.size === 0) this.#finish();
  }

  get done(): boolean {
    return this.#done;
  }

  reply(w: W, ok: boolean, error = 'unknown error'): void {
    const who = this.#waiting.get(w);
    if (who === undefined || this.#done) return;
    this.#waiting.delete(w);
    if (ok) this.#outcome.acceptedBy.push(who);
    else this.#outcome.rejected.push({ who, error });
    if (this.#waiting.size === 0) this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#outcome.noAnswer = [...this.#waiting.values()];
    this.#onDone(this.#outcome);
  }
}
