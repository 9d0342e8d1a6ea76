import type { ToWorker, WorkerState } from './types.ts';

/**
 * Questions the supervisor asks its workers over IPC (their /status, their metrics), by
 * request id, until they answer. A worker that gives no answer in time is answered for:
 * one slow or dying worker never holds up, or fails, the admin endpoint asking all.
 */
export class WorkerAsks {
  #seq = 0;
  #waiters = new Map<number, (value: unknown) => void>();

  /** Sends `kind` to each worker; each one's answer, or `missing(w)` after `timeoutMs`. */
  ask<T>(live: WorkerState[], kind: 'status' | 'metrics', timeoutMs: number, missing: (w: WorkerState) => T): Promise<T[]> {
    return Promise.all(
      live.map(
        (w) =>
          new Promise<T>((resolve) => {
            const id = ++this.#seq;
            const t = setTimeout(() => {
              this.#waiters.delete(id);
              resolve(missing(w));
            }, timeoutMs);
            this.#waiters.set(id, (value) => {
              clearTimeout(t);
              this.#waiters.delete(id);
              resolve(value as T);
            });
            // A worker exiting as it is asked loses the message (slots.ts logs it): the timeout answers.
            w.worker.send({ t: kind, id } satisfies ToWorker);
          }),
      ),
    );
  }

  /** A worker's answer to the request `id` (a late one, past its timeout, is dropped). */
  answer(id: number, value: unknown): void {
    this.#waiters.get(id)?.(value);
  }
}
