// In-isolate runtime: pdk.counters, windowed counters shared by all workers of a node
// (what rate limiting needs). Async: each call crosses to the host (07-async.js).
function counterArgs(fn, key, by, windowSeconds) {
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

const pdkCounters = $freeze({
  /** Adds `by` (default 1) to `key` in the current window of `windowSeconds` (default 1); resolves to the new count. */
  increment(key, by, windowSeconds) {
    return asyncCall('counters.increment', ASYNC_PHASES, 'counters', 'increment', counterArgs('counters.increment', key, by, windowSeconds), false);
  },
  /** The count of `key` in the current window of `windowSeconds`. */
  get(key, windowSeconds) {
    return asyncCall('counters.get', ASYNC_PHASES, 'counters', 'increment', counterArgs('counters.get', key, 0, windowSeconds), false);
  },
});
