import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CounterStoreUnavailable, RedisCounterStore } from '../../core/cluster/redis-counters.ts';
import type { RedisSettings } from '../../core/cluster/redis.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

/** The Redis counter store against a real redis-server: two store instances are two nodes. */
describe('RedisCounterStore (real redis-server)', () => {
  let redis: RedisServer;
  let settings: RedisSettings;
  let node1: RedisCounterStore;
  let node2: RedisCounterStore;

  beforeAll(async () => {
    redis = await startRedis();
    settings = { url: redis.url, keyPrefix: `t${process.pid}:`, connectTimeoutMs: 1000, commandTimeoutMs: 500 };
    node1 = new RedisCounterStore(settings);
    node2 = new RedisCounterStore(settings);
    await Promise.all([node1.ready(5000), node2.ready(5000)]);
  });
  afterAll(async () => {
    await node1?.close();
    await node2?.close();
    await redis?.stop();
  });

  it('a limit of N over two nodes lets exactly N through, however the calls interleave', async () => {
    const limit = 37;
    const now = Date.now();
    // 100 concurrent calls from each node, all in the same window.
    const calls = Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? node1 : node2).increment([{ key: 'acme:rl:exact', by: 1, windowMs: 60_000 }], now));
    const counts = (await Promise.all(calls)).map((c) => c[0]);
    expect(counts.filter((c) => c <= limit)).toHaveLength(limit);
    // Every count 1..200 was handed out exactly once.
    expect([...counts].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });

  it('answers each item of a call in order; by 0 reads without adding', async () => {
    const now = 1_000_000_000_000;
    expect(await node1.increment([{ key: 'a', by: 2, windowMs: 1000 }, { key: 'b', by: 5, windowMs: 1000 }, { key: 'a', by: 1, windowMs: 1000 }], now)).toEqual([2, 5, 3]);
    expect(await node2.increment([{ key: 'a', by: 0, windowMs: 1000 }, { key: 'never', by: 0, windowMs: 1000 }], now + 999)).toEqual([3, 0]);
    expect(await node2.increment([], now)).toEqual([]);
  });

  it('fixed windows: floor(now / windowMs) * windowMs starts a new count; another window size is another counter', async () => {
    const w = 10_000;
    const start = 1_700_000_000_000 - (1_700_000_000_000 % w);
    expect(await node1.increment([{ key: 'win', by: 1, windowMs: w }], start + w - 1)).toEqual([1]);
    expect(await node2.increment([{ key: 'win', by: 1, windowMs: w }], start)).toEqual([2]);
    expect(await node1.increment([{ key: 'win', by: 1, windowMs: w }], start + w)).toEqual([1]);
    expect(await node1.increment([{ key: 'win', by: 1, windowMs: 2 * w }], start + w)).toEqual([1]);
  });

  it('a counter expires after its window (plus a second for clock skew)', async () => {
    const now = Date.now();
    await node1.increment([{ key: 'ttl', by: 1, windowMs: 500 }], now);
    const start = Math.floor(now / 500) * 500;
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    try {
      const ttl = await raw.pttl(`${settings.keyPrefix}counter:ttl:500:${start}`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(1500);
    } finally {
      raw.disconnect();
    }
  });

  it('many calls in one tick go in few round trips and still get exact counts', async () => {
    const now = Date.now();
    const calls = Array.from({ length: 1500 }, () => node1.increment([{ key: 'batch', by: 1, windowMs: 60_000 }, { key: 'batch2', by: 2, windowMs: 60_000 }], now));
    const counts = await Promise.all(calls);
    expect(counts.map((c) => c[0]).sort((a, b) => a - b)).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
    expect(Math.max(...counts.map((c) => c[1]))).toBe(3000);
  });

  it('costs one round trip per tick: measured per call, alone and with 100 calls in flight (reported)', async () => {
    const key = [{ key: 'cost', by: 1, windowMs: 60_000 }];
    for (let i = 0; i < 200; i++) await node1.increment(key, Date.now()); // warm up
    const alone: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const t0 = performance.now();
      await node1.increment(key, Date.now());
      alone.push(performance.now() - t0);
    }
    alone.sort((a, b) => a - b);
    const t0 = performance.now();
    for (let round = 0; round < 20; round++) await Promise.all(Array.from({ length: 100 }, () => node1.increment(key, Date.now())));
    const perCallLoaded = ((performance.now() - t0) * 1000) / 2000;
    console.log(`RedisCounterStore on loopback: one call alone p50 ${(alone[500] * 1000).toFixed(0)} us, p99 ${(alone[990] * 1000).toFixed(0)} us; 100 calls in flight: ${perCallLoaded.toFixed(1)} us per call`);
    expect(alone[500]).toBeLessThan(50);
  });

  it('while Redis is down, increment rejects at once with CounterStoreUnavailable; it counts again once Redis is back', async () => {
    await redis.stop();
    const t0 = Date.now();
    const err = await node1.increment([{ key: 'down', by: 1, windowMs: 60_000 }], Date.now()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CounterStoreUnavailable);
    expect(Date.now() - t0).toBeLessThan(600);
    await redis.start();
    const deadline = Date.now() + 5000;
    for (;;) {
      const r = await node1.increment([{ key: 'back', by: 1, windowMs: 60_000 }], Date.now()).catch(() => null);
      if (r !== null) {
        expect(r).toEqual([1]);
        break;
      }
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((res) => setTimeout(res, 50));
    }
  });

  it('a closed store rejects', async () => {
    const s = new RedisCounterStore(settings);
    await s.close();
    await expect(s.increment([{ key: 'x', by: 1, windowMs: 1000 }], Date.now())).rejects.toBeInstanceOf(CounterStoreUnavailable);
  });
});
