import { Pool } from 'undici';

/**
 * undici keep-alive pools, one per upstream origin and connect timeout. Pools outlive
 * config snapshots: a reload that keeps a service keeps its warm connections.
 */
export class UpstreamPools {
  #pools = new Map<string, Pool>();

  get(origin: string, connectTimeoutMs: number): Pool {
    const key = `${origin} ${connectTimeoutMs}`;
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = new Pool(origin, {
        connect: { timeout: connectTimeoutMs },
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: 60_000,
        pipelining: 1,
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}
