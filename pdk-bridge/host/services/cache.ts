import { LRUCache } from 'lru-cache';
import { ASYNC_CAPS, OUTPUT_CAPS } from '../../../sandbox/limits.ts';
import { ASYNC_PHASES } from '../phases.ts';
import { argNumber, argString, type Service } from './types.ts';

/** A cached value as JSON text (a miss cached by negTtl: null), and when it expires (0: never). */
type Entry = { readonly json: string; readonly negative: boolean; readonly expires: number };

/** One tenant's cache in this worker: an LRU bounded by entries and by bytes (keys and JSON values). */
export class TenantCache {
  readonly #lru: LRUCache<string, Entry>;

  constructor(maxEntries: number, maxBytes: number) {
    this.#lru = new LRUCache<string, Entry>({ max: maxEntries, maxSize: maxBytes, sizeCalculation: (e, key) => Math.max(1, e.json.length + key.length) });
  }

  /** The live entry of `key`, or undefined (an expired one is dropped). */
  entry(key: string, now: number): Entry | undefined {
    const e = this.#lru.get(key);
    if (e === undefined) return undefined;
    if (e.expires !== 0 && e.expires <= now) {
      this.#lru.delete(key);
      return undefined;
    }
    return e;
  }

  set(key: string, json: string, negative: boolean, ttlSeconds: number, now: number): void {
    this.#lru.set(key, { json, negative, expires: ttlSeconds > 0 ? now + ttlSeconds * 1000 : 0 });
  }

  delete(key: string): void {
    this.#lru.delete(key);
  }

  get size(): number {
    return this.#lru.size;
  }

  get bytes(): number {
    return this.#lru.calculatedSize;
  }
}

const key = (v: unknown) => argString(v, 'cache key', OUTPUT_CAPS.maxStateKeyChars);
const ttl = (v: unknown, what: string) => argNumber(v, what, 0, ASYNC_CAPS.maxCacheTtlSeconds);

/** pdk.cache: per tenant, per worker (pdk-bridge/runtime/cache.ts). */
export const cacheService: Service = {
  name: 'cache',
  methods: {
    get: {
      phases: ASYNC_PHASES,
      run(args, cc) {
        const e = cc.services.cache.entry(key(args[0]), Date.now());
        return e === undefined ? '[]' : '[' + e.json + ']';
      },
    },
    set: {
      phases: ASYNC_PHASES,
      run(args, cc) {
        const k = key(args[0]);
        const value = args[1];
        const t = ttl(args[2], 'ttl');
        const neg = ttl(args[3], 'negTtl');
        const cache = cc.services.cache;
        if (value === null) {
          // A miss is cached only when negTtl says for how long (mlcache's neg_ttl); else the key is cleared.
          if (neg > 0) cache.set(k, 'null', true, neg, Date.now());
          else cache.delete(k);
        } else {
          cache.set(k, JSON.stringify(value), false, t, Date.now());
        }
        return 'true';
      },
    },
    delete: {
      phases: ASYNC_PHASES,
      run(args, cc) {
        cc.services.cache.delete(key(args[0]));
        return 'true';
      },
    },
    probe: {
      phases: ASYNC_PHASES,
      run(args, cc) {
        const now = Date.now();
        const e = cc.services.cache.entry(key(args[0]), now);
        if (e === undefined) return 'null';
        const left = e.expires === 0 ? 'null' : String(Math.max(0, (e.expires - now) / 1000));
        return `{"ttl":${left},"negative":${e.negative},"value":${e.json}}`;
      },
    },
  },
};
