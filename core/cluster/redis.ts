import { Redis } from 'ioredis';

/** The `cluster.redis` block of the config, defaults applied (core/config/schema.ts). */
export type RedisSettings = {
  url: string;
  keyPrefix: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
};

/**
 * A connection to the cluster's Redis. Commands fail at once while it is down (no offline
 * queue: a rate-limited request must not wait for a reconnect, and a config read must say
 * Redis is unreachable rather than hang); ioredis reconnects in the background, backing
 * off to at most a second, so a node catches up within about a second of Redis coming back.
 * `subscriber` connections keep their queue: SUBSCRIBE is sent once connected and again
 * after every reconnect.
 */
export function connectRedis(s: RedisSettings, options: { subscriber?: boolean; name?: string } = {}): Redis {
  const client = new Redis(s.url, {
    connectionName: options.name,
    connectTimeout: s.connectTimeoutMs,
    commandTimeout: options.subscriber === true ? undefined : s.commandTimeoutMs,
    enableOfflineQueue: options.subscriber === true,
    maxRetriesPerRequest: options.subscriber === true ? null : 0,
    retryStrategy: (times) => Math.min(50 * times, 1000),
    lazyConnect: false,
  });
  // ioredis emits 'error' on every failed connection attempt; the owner reports state changes itself.
  client.on('error', () => undefined);
  return client;
}

/** Resolves once `client` is connected, or rejects after `ms`. */
export function whenReady(client: Redis, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      client.off('ready', ok);
      reject(new Error(`no connection to Redis within ${ms} ms`));
    }, ms);
    const ok = () => {
      clearTimeout(t);
      resolve();
    };
    client.once('ready', ok);
  });
}

/** The URL without its password, for logs and /status. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
