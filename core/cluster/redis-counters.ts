import type { Redis } from 'ioredis';
import type { CounterIncrement, CounterStore } from '../state/counter-store.ts';
import { connectRedis, whenReady, type RedisSettings } from './redis.ts';

/**
 * What increment() rejects with when Redis cannot answer (down, unreachable, slower than
 * commandTimeoutMs). Nothing was counted that the caller can rely on: the caller decides,
 * per plugin config, whether the request goes through (fail open) or is refused (fail closed).
 */
export class CounterStoreUnavailable extends Error {
  override readonly name = 'CounterStoreUnavailable';
}

/** Keys of one script call at most: a tick with more items runs several calls in one pipeline. */
const MAX_KEYS_PER_CALL = 512;
/** Counters outlive their window by this much: clocks of two nodes may differ by this. */
const CLOCK_SKEW_MS = 1000;

// KEYS[i]: the counter of one window; ARGV[2i-1]: by, ARGV[2i]: its time to live in ms. One
// script run is atomic, so every increment sees every earlier one of any node: exact counts.
const INCREMENT_LUA = `
local out = {}
for i = 1, #KEYS do
  local by = tonumber(ARGV[2 * i - 1])
  if by == 0 then
    out[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  else
    out[i] = redis.call('INCRBY', KEYS[i], by)
    if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i]) end
  end
end
return out`;

type Pending = { keys: string[]; args: (string | number)[]; resolve: (n: number[]) => void; reject: (e: Error) => void };
type WithScript = Redis & { isogateIncrement(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]> };

/**
 * Windowed counters shared by every node of a cluster, in Redis. Every call's items go in
 * one script run (one round trip), and the calls made in one tick of the event loop are
 * sent together (one script run per up to MAX_KEYS_PER_CALL keys, pipelined): batching
 * that keeps counts exact, since Redis still applies each increment in order and answers
 * each one's new count. A counter is the key `<prefix>counter:<key>:<windowMs>:<window
 * start>`, expiring after its window (plus CLOCK_SKEW_MS).
 *
 * When Redis is down, increment() rejects at once with CounterStoreUnavailable (no queue,
 * no retry: a request must not wait for a reconnect).
 */
export class RedisCounterStore implements CounterStore {
  readonly #redis: WithScript;
  readonly #prefix: string;
  readonly #owned: boolean;
  #pending: Pending[] = [];
  #scheduled = false;
  #closed = false;

  /** `redis`: an existing connection (not closed by close()), else one is opened from `settings`. */
  constructor(settings: RedisSettings, redis?: Redis) {
    this.#owned = redis === undefined;
    const client = redis ?? connectRedis(settings, { name: 'isogate-counters' });
    client.defineCommand('isogateIncrement', { lua: INCREMENT_LUA });
    this.#redis = client as WithScript;
    this.#prefix = `${settings.keyPrefix}counter:`;
  }

  /** Resolves once connected (a node starts serving before: its first calls may be refused). */
  ready(timeoutMs: number): Promise<void> {
    return whenReady(this.#redis, timeoutMs);
  }

  increment(items: readonly CounterIncrement[], nowMs: number): Promise<number[]> {
    if (this.#closed) return Promise.reject(new CounterStoreUnavailable('the counter store is closed'));
    if (items.length === 0) return Promise.resolve([]);
    const keys: string[] = [];
    const args: (string | number)[] = [];
    for (const { key, by, windowMs } of items) {
      const start = Math.floor(nowMs / windowMs) * windowMs;
      keys.push(`${this.#prefix}${key}:${windowMs}:${start}`);
      args.push(by, start + windowMs - nowMs + CLOCK_SKEW_MS);
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ keys, args, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Sends the tick's calls: consecutive calls share a script run while it stays under MAX_KEYS_PER_CALL keys. */
  #flush(): void {
    this.#scheduled = false;
    const calls = this.#pending;
    this.#pending = [];
    const pipeline = this.#redis.pipeline() as unknown as WithScript & { exec(): Promise<[Error | null, unknown][] | null> };
    const groups: Pending[][] = [];
    let group: Pending[] = [];
    let size = 0;
    for (const c of calls) {
      if (size + c.keys.length > MAX_KEYS_PER_CALL && group.length > 0) {
        groups.push(group);
        group = [];
        size = 0;
      }
      group.push(c);
      size += c.keys.length;
    }
    groups.push(group);
    for (const g of groups) {
      const keys = g.flatMap((c) => c.keys);
      void pipeline.isogateIncrement(keys.length, ...keys, ...g.flatMap((c) => c.args));
    }
    const fail = (err: Error) => {
      const e = new CounterStoreUnavailable(`Redis did not answer: ${err.message}`);
      for (const c of calls) c.reject(e);
    };
    pipeline.exec().then((results) => {
      if (results === null) return fail(new Error('the pipeline was discarded'));
      groups.forEach((g, i) => {
        const [err, counts] = results[i];
        if (err !== null) {
          const e = new CounterStoreUnavailable(`Redis did not answer: ${err.message}`);
          for (const c of g) c.reject(e);
          return;
        }
        let at = 0;
        for (const c of g) {
          c.resolve((counts as number[]).slice(at, at + c.keys.length));
          at += c.keys.length;
        }
      });
    }, fail);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned) this.#redis.disconnect();
  }
}
