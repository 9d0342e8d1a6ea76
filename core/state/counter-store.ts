/**
 * Windowed counters, what rate limiting needs. Keys arrive namespaced by tenant. One store
 * per node (the local store, held by the supervisor in supervisor mode) or per cluster (Redis).
 */
export type CounterIncrement = { readonly key: string; readonly by: number; readonly windowMs: number };

export interface CounterStore {
  /**
   * Adds each item's `by` to its counter in the fixed window of `windowMs` that holds `nowMs`
   * (window start = floor(nowMs / windowMs) * windowMs) and returns the new counts, in order.
   * `by` 0 reads without adding.
   */
  increment(items: readonly CounterIncrement[], nowMs: number): Promise<number[]>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}
