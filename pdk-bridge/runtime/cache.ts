// In-isolate runtime: pdk.cache, a per-tenant cache held by the worker (JSON values, an
// LRU bounded in entries and bytes). Async: each call crosses to the host (async.ts).
import type { PdkCache } from '../types.ts';
import { $freeze, list, realm } from './prelude.ts';
import { ASYNC_PHASES, asyncCall, num, shortStr } from './async.ts';

function cacheKey(key: unknown): string {
  return shortStr(key, 'cache key', CAPS.maxStateKeyChars);
}

/** Seconds from an options object ({ ttl, negTtl }), 0 when absent. */
function seconds(opts: any, name: string): number {
  if (opts === undefined || opts === null) return 0;
  const v = num(opts[name], 'cache option ' + name, 0);
  if (v < 0) throw new realm.RangeError(`cache option ${name} must not be negative`);
  return v;
}

export const pdkCache = $freeze({
  /** The cached value, null for a cached miss (negTtl), undefined when nothing is cached. */
  get(key: unknown) {
    const a = list();
    a[0] = cacheKey(key);
    return asyncCall('cache.get', ASYNC_PHASES, 'cache', 'get', a, true);
  },
  /**
   * Caches `value` (JSON data) for opts.ttl seconds (0 or absent: until evicted). A value
   * of null or undefined caches a miss for opts.negTtl seconds, as Kong's mlcache does.
   */
  set(key: unknown, value: unknown, opts?: unknown) {
    const a = list();
    a[0] = cacheKey(key);
    a[1] = value === undefined ? null : value;
    a[2] = seconds(opts, 'ttl');
    a[3] = seconds(opts, 'negTtl');
    return asyncCall('cache.set', ASYNC_PHASES, 'cache', 'set', a, false);
  },
  delete(key: unknown) {
    const a = list();
    a[0] = cacheKey(key);
    return asyncCall('cache.delete', ASYNC_PHASES, 'cache', 'delete', a, false);
  },
  /** null when nothing is cached, else { ttl (seconds left, null: none), negative, value }. */
  probe(key: unknown) {
    const a = list();
    a[0] = cacheKey(key);
    return asyncCall('cache.probe', ASYNC_PHASES, 'cache', 'probe', a, false);
  },
} satisfies PdkCache);
