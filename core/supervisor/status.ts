import type { ToWorker, WorkerState } from './types.ts';

/** The statuses the workers were asked for over IPC, by request id, until they answer. */
export class StatusRequests {
  #statusSeq = 0;
  #statusWaiters = new Map<number, (s: Record<string, unknown>) => void>();

  /** Each worker's own status, with its state (`serving`, or `spare`); a worker that does not answer within a second says so. */
  ask(live: WorkerState[]): Promise<Record<string, unknown>[]> {
    return Promise.all(
      live.map(
        (w) =>
          new Promise<Record<string, unknown>>((resolve) => {
            const id = ++this.#statusSeq;
            const t = setTimeout(() => {
              this.#statusWaiters.delete(id);
              resolve({ ...who(w), error: 'no answer' });
            }, 1000);
            this.#statusWaiters.set(id, (s) => {
              clearTimeout(t);
              this.#statusWaiters.delete(id);
              resolve(s);
            });
            w.worker.send({ t: 'status', id } satisfies ToWorker);
          }),
      ),
    );
  }

  /** A worker's answer to the request `id`. */
  answer(w: WorkerState, id: number, status: Record<string, unknown>): void {
    const waiter = this.#statusWaiters.get(id);
    if (waiter !== undefined) waiter({ ...who(w), ...status });
  }
}

/** How /status names a worker process: its slot and state, or the hot spare. */
function who(w: WorkerState): Record<string, unknown> {
  return w.spare ? { state: 'spare', pid: w.pid } : { worker: w.index, state: 'serving', pid: w.pid };
}

/**
 * The config and counts of the workers, summed where they add up (live isolates,
 * requests in flight and requests received, as isogate_isolates summed over its `worker` label).
 */
export function summed(workers: Record<string, unknown>[]): { version: unknown; config: unknown; counts: Record<string, unknown> | undefined } {
  const first = workers.find((w) => w.version !== undefined) ?? {};
  let counts: Record<string, unknown> | undefined;
  for (const w of workers) {
    const c = w.counts as Record<string, number> | undefined;
    if (c === undefined) continue;
    if (counts === undefined) counts = { ...c, isolates: 0, inflight: 0, requests: 0 };
    (counts.isolates as number) += c.isolates;
    (counts.inflight as number) += c.inflight;
    (counts.requests as number) += c.requests;
  }
  return { version: first.version, config: first.config, counts };
}
