// In-isolate runtime: pdk.counters, windowed counters shared by all workers of a node
// (what rate limiting needs). Async: each call crosses to the host (async.ts).
import type { PdkCounters } from '../types.ts';
import { $freeze, $isArray, list, realm } from './prelude.ts';
import { ASYNC_PHASES, asyncCall, num, shortStr } from './async.ts';

function counterArgs(fn: string, key: unknown, by: unknown, windowSeconds: unknown): unknown[] {
  const a = list();
  a[0] = shortStr(key, 'counter key', CAPS.maxStateKeyChars);
  const n = num(by, 'counter increment', 1);
  if ((n | 0) !== n || n < 0) throw new realm.RangeError(`${fn}: the increment must be a non-negative integer`);
  a[1] = n;
  const w = num(windowSeconds, 'counter window', 1);
  if (w <= 0) throw new realm.RangeError(`${fn}: the window must be a positive number of seconds`);
  a[2] = w;
  return a;
}

/** The `cluster` option of a call: true for the cluster's store (Redis), false for the node's. */
function clusterOpt(fn: string, opts: unknown): boolean {
  if (opts === undefined || opts === null) return false;
  if (typeof opts !== 'object') throw new realm.TypeError(`${fn}: options must be an object`);
  const c = (opts as { cluster?: unknown }).cluster;
  if (c !== undefined && typeof c !== 'boolean') throw new realm.TypeError(`${fn}: options.cluster must be a boolean`);
  return c === true;
}

export const pdkCounters = $freeze({
  /** Adds `by` (default 1) to `key` in the current window of `windowSeconds` (default 1); resolves to the new count. */
  increment(key: unknown, by?: unknown, windowSeconds?: unknown, opts?: unknown) {
    const a = counterArgs('counters.increment', key, by, windowSeconds);
    a[3] = clusterOpt('counters.increment', opts);
    return asyncCall('counters.increment', ASYNC_PHASES, 'counters', 'increment', a, false);
  },
  /** The count of `key` in the current window of `windowSeconds`. */
  get(key: unknown, windowSeconds?: unknown, opts?: unknown) {
    const a = counterArgs('counters.get', key, 0, windowSeconds);
    a[3] = clusterOpt('counters.get', opts);
    return asyncCall('counters.get', ASYNC_PHASES, 'counters', 'increment', a, false);
  },
  /**
   * Several counters in one crossing and one store call (rate-limiting's windows):
   * `items` a list of { key, by, windowSeconds }; resolves to their new counts, in order.
   */
  incrementMany(items: unknown, opts?: unknown) {
    const fn = 'counters.incrementMany';
    if (!$isArray(items)) throw new realm.TypeError(`${fn}: items must be an array`);
    const n = items.length;
    // The host caps the count (ASYNC_CAPS.maxCounterBatch); this bound only stops a huge copy here.
    if (n === 0 || n > 64) throw new realm.RangeError(`${fn}: 1 to 16 items`);
    const out = list();
    for (let i = 0; i < n; i++) {
      const it = items[i] as { key?: unknown; by?: unknown; windowSeconds?: unknown } | null;
      if (it === null || typeof it !== 'object') throw new realm.TypeError(`${fn}: item ${i} must be an object`);
      out[i] = counterArgs(fn, it.key, it.by, it.windowSeconds);
    }
    const a = list();
    a[0] = out;
    a[1] = clusterOpt(fn, opts);
    return asyncCall(fn, ASYNC_PHASES, 'counters', 'incrementMany', a, false);
  },
} satisfies PdkCounters);
