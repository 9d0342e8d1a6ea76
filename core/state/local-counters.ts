import { ASYNC_CAPS } from '../../sandbox/limits.ts';
import type { CounterIncrement, CounterStore } from './counter-store.ts';

type Cell = { start: number; end: number; count: number };

/**
 * The counters of one node, in memory: one cell per key and window length, holding the
 * count of its current window. Bounded: past `maxCounters` cells, those whose window has
 * ended go first, then the oldest.
 */
export class LocalCounterStore implements CounterStore {
  readonly #cells = new Map<string, Cell>();
  readonly #max: number;

  constructor(maxCounters: number = ASYNC_CAPS.maxCounters) {
    this.#max = maxCounters;
  }

  /** Synchronous form of increment (the supervisor answers its workers with it). */
  incrementNow(items: readonly CounterIncrement[], nowMs: number): number[] {
    const out: number[] = [];
    for (const it of items) {
      const start = Math.floor(nowMs / it.windowMs) * it.windowMs;
      const id = `${it.windowMs}:${it.key}`;
      let cell = this.#cells.get(id);
      if (cell === undefined || cell.start !== start) {
        if (cell === undefined && this.#cells.size >= this.#max) this.#evict(nowMs);
        cell = { start, end: start + it.windowMs, count: 0 };
        this.#cells.delete(id); // re-inserted: the map's order stays oldest window first
        this.#cells.set(id, cell);
      }
      cell.count += it.by;
      out.push(cell.count);
    }
    return out;
  }

  increment(items: readonly CounterIncrement[], nowMs: number): Promise<number[]> {
    return Promise.resolve(this.incrementNow(items, nowMs));
  }

  get size(): number {
    return this.#cells.size;
  }

  #evict(nowMs: number): void {
    for (const [id, cell] of this.#cells) if (cell.end <= nowMs) this.#cells.delete(id);
    // Still full of live windows: drop the oldest tenth (a flood of keys costs its own counts first).
    if (this.#cells.size >= this.#max) {
      let n = Math.max(1, Math.floor(this.#max / 10));
      for (const id of this.#cells.keys()) {
        this.#cells.delete(id);
        if (--n === 0) break;
      }
    }
  }

  async close(): Promise<void> {
    this.#cells.clear();
  }
}
