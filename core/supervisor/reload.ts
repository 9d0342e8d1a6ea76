import type { Counter } from 'prom-client';
import type { Logger } from '../log.ts';
import { ReloadRound, type ReloadOutcome } from '../reload-round.ts';
import type { ToWorker, WorkerState } from './types.ts';

/** The worker processes a reload goes to, as the supervisor holds them now. */
export type ReloadTargets = {
  /** The serving workers still connected, each with the name log lines give it. */
  serving(): Map<WorkerState, string>;
  spare(): WorkerState | null;
};

/**
 * Config reloads under the supervisor, each a round of ReloadRound over the workers it
 * went to, logged and counted once (isogate_config_reloads_total) for all of them.
 */
export class Reloads {
  readonly #log: Logger;
  readonly #reloads: Counter<'result'>;
  readonly #targets: ReloadTargets;
  #reloadSeq = 0;
  /** Reload seq -> the round waiting for the workers' answers. */
  #reloadRounds = new Map<number, ReloadRound<WorkerState>>();
  /** A reload tried in the hot spare first: the serving workers reload only once it loaded there. */
  #reloadInSpare: WorkerState | null = null;

  constructor(log: Logger, reloads: Counter<'result'>, targets: ReloadTargets) {
    this.#log = log;
    this.#reloads = reloads;
    this.#targets = targets;
  }

  /**
   * Reloads the config: in the hot spare first, then, once it loaded there, in the serving
   * workers. A config that hangs or kills its worker while loading costs the spare only;
   * the workers keep serving the running config. Without a loaded spare, every worker
   * reloads at once. Either way the reload is reported once: the workers do not log their
   * own result, the supervisor logs one line saying who accepted or rejected it, and
   * counts it once.
   */
  reload(): void {
    const spare = this.#targets.spare();
    if (spare !== null && spare.loaded && spare.worker.isConnected() && this.#reloadInSpare === null) {
      this.#log.debug('reloading config in the hot spare first');
      this.#reloadInSpare = spare;
      this.#reloadRound(new Map([[spare, 'spare']]), (first) => {
        this.#reloadInSpare = null;
        if (first.acceptedBy.length === 0) return this.#reported(first, 'the hot spare could not load it; the workers keep the running config');
        // The new config loaded somewhere: now the serving workers take it.
        this.#reloadRound(this.#targets.serving(), (rest) => this.#reported({ ...rest, acceptedBy: [...first.acceptedBy, ...rest.acceptedBy] }));
      });
      return;
    }
    this.#log.debug('reloading config in every worker');
    this.#reloadRound(new Map([...this.#targets.serving(), ...(spare !== null && spare.worker.isConnected() ? [[spare, 'spare'] as const] : [])]), (o) => this.#reported(o));
  }

  /**
   * An admin API change: every serving worker and the loaded spare reload the file at once
   * (the API has validated it), reported once like any reload. Resolves with the errors of
   * those that refused or did not answer.
   */
  forApi(): Promise<string[]> {
    const targets = this.#targets.serving();
    const spare = this.#targets.spare();
    if (spare !== null && spare.loaded && spare.worker.isConnected()) targets.set(spare, 'spare');
    return new Promise((resolve) =>
      this.#reloadRound(targets, (o) => {
        this.#reported(o);
        resolve([...o.rejected.map((r) => r.error), ...o.noAnswer.map((who) => `worker ${who} did not answer the reload`)]);
      }),
    );
  }

  /** A worker's answer to the reload `seq`. */
  reply(w: WorkerState, seq: number, ok: boolean, error?: string): void {
    this.#reloadRounds.get(seq)?.reply(w, ok, error);
  }

  /** A worker that dies during a reload answers it as a rejection (the hot spare dying on the new config among them). */
  died(w: WorkerState, reason: string): void {
    for (const round of this.#reloadRounds.values()) round.reply(w, false, `worker ${w.spare ? 'spare' : w.index} died (${reason}) while loading the new config`);
  }

  #reloadRound(targets: Map<WorkerState, string>, onDone: (o: ReloadOutcome) => void): void {
    const seq = ++this.#reloadSeq;
    const round = new ReloadRound(targets, (o) => {
      this.#reloadRounds.delete(seq);
      onDone(o);
    });
    if (round.done) return;
    this.#reloadRounds.set(seq, round);
    for (const w of targets.keys()) w.worker.send({ t: 'reload', seq } satisfies ToWorker);
  }

  #reported({ acceptedBy, rejected, noAnswer }: ReloadOutcome, why = 'the running config stays'): void {
    const missing = noAnswer.length > 0 ? noAnswer : undefined;
    if (rejected.length === 0 && acceptedBy.length > 0) {
      this.#reloads.labels('ok').inc();
      this.#log.info({ acceptedBy, noAnswer: missing }, 'config reloaded');
      return;
    }
    this.#reloads.labels('error').inc();
    const error = rejected[0]?.error ?? 'no worker answered';
    this.#log.error({ rejectedBy: rejected.map((r) => r.who), acceptedBy, noAnswer: missing }, `config reload rejected, ${why}: ${error}`);
  }
}
