// In-isolate runtime: pdk.counters, windowed counters shared by all workers of a node
// (what rate limiting needs). Async: each call crosses to the host (async.ts).
import type { PdkCounters } from '../types.ts';
import { $freeze, list, realm } from './prelude.ts';
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

export const pdkCounters = $freeze({
  /** Adds `by` (default 1) to `key` in the current window of `windowSeconds` (default 1); resolves to the new count. */
  increment(key: unknown, by?: unknown, windowSeconds?: unknown) {
    return asyncCall('counters.increment', ASYNC_PHASES, 'counters', 'increment', counterArgs('counters.increment', key, by, windowSeconds), false);
  },
  /** The count of `key` in the current window of `windowSeconds`. */
  get(key: unknown, windowSeconds?: unknown) {
    return asyncCall('counters.get', ASYNC_PHASES, 'counters', 'increment', counterArgs('counters.get', key, 0, windowSeconds), false);
  },
} satisfies PdkCounters);
