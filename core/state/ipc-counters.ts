import type { CounterIncrement, CounterStore } from './counter-store.ts';
import type { LocalCounterStore } from './local-counters.ts';

/** Worker -> supervisor: a batch of increments; supervisor -> worker: their counts. */
export type CountersRequest = { t: 'counters'; id: number; items: CounterIncrement[]; now: number };
export type CountersReply = { t: 'counters'; id: number; counts: number[] };

type Waiter = { resolve(counts: number[]): void; reject(err: Error): void; from: number; n: number };

/**
 * A worker's view of the node's counters, held by the supervisor: the increments of one
 * event-loop tick go in one IPC message, answered by one reply.
 */
export class IpcCounterStore implements CounterStore {
  #queue: CounterIncrement[] = [];
  #waiters: Waiter[] = [];
  #pending = new Map<number, Waiter[]>();
  #ids = 0;
  #scheduled = false;
  #onMessage = (m: unknown): void => {
    const r = m as CountersReply;
    if (r === null || typeof r !== 'object' || r.t !== 'counters') return;
    const ws = this.#pending.get(r.id);
    if (ws === undefined) return;
    this.#pending.delete(r.id);
    for (const w of ws) {
      const counts = Array.isArray(r.counts) ? r.counts.slice(w.from, w.from + w.n) : [];
      if (counts.length === w.n) w.resolve(counts);
      else w.reject(new Error('counters: the supervisor answered with the wrong shape'));
    }
  };

  constructor() {
    process.on('message', this.#onMessage);
  }

  increment(items: readonly CounterIncrement[], _nowMs: number): Promise<number[]> {
    if (!process.connected) return Promise.reject(new Error('counters: the supervisor is gone'));
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject, from: this.#queue.length, n: items.length });
      for (const it of items) this.#queue.push(it);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  #flush = (): void => {
    this.#scheduled = false;
    const items = this.#queue;
    const waiters = this.#waiters;
    this.#queue = [];
    this.#waiters = [];
    const id = ++this.#ids;
    this.#pending.set(id, waiters);
    // The supervisor's clock decides the window, the same for every worker.
    const m: CountersRequest = { t: 'counters', id, items, now: 0 };
    try {
      process.send!(m);
    } catch (err) {
      this.#pending.delete(id);
      for (const w of waiters) w.reject(err as Error);
    }
  };

  async close(): Promise<void> {
    process.off('message', this.#onMessage);
    for (const ws of this.#pending.values()) for (const w of ws) w.reject(new Error('counters: closed'));
    this.#pending.clear();
  }
}

const MAX_BATCH = 10_000;

/** The supervisor's side: answers one worker's batch from the node's store; a malformed batch gets no counts. */
export function answerCounters(store: LocalCounterStore, m: CountersRequest, reply: (r: CountersReply) => void): void {
  const items = Array.isArray(m.items) && m.items.length <= MAX_BATCH ? m.items : [];
  const ok = items.every((it) => it !== null && typeof it === 'object' && typeof it.key === 'string' && Number.isInteger(it.by) && it.by >= 0 && Number.isInteger(it.windowMs) && it.windowMs > 0);
  reply({ t: 'counters', id: m.id, counts: ok ? store.incrementNow(items, Date.now()) : [] });
}
