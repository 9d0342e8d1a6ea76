import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, send, startUpstream, waitFor, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

const PREFIX = 'start:';

/** How a cluster node starts: without Redis, then seeding it; and on a version it cannot compile. */
describe('a cluster node starting', () => {
  let redis: RedisServer;
  let raw: Redis;
  let up: Upstream;
  let node: GatewayProcess | null = null;
  const yaml = () => `
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 0
log: { access: false }
cluster: { redis: { url: "${redis.url}", keyPrefix: "${PREFIX}", connectTimeoutMs: 300 }, pollIntervalMs: 200 }
tenants:
  - name: acme
    services: [{ name: base, url: "${up.url}" }]
    routes: [{ name: base, service: base, paths: [/base] }]
`;

  beforeAll(async () => {
    redis = await startRedis();
    await redis.stop();
    raw = new Redis(redis.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
    raw.on('error', () => undefined);
    up = await startUpstream(echoHandler);
  });
  afterAll(async () => {
    await node?.stop();
    raw?.disconnect();
    await up?.close();
    await redis?.stop();
  });

  it('with Redis down and no cluster file it starts on its bootstrap file, degraded; once Redis is up it seeds it', async () => {
    node = await spawnGateway(yaml());
    expect((await send(`${node.url}/base/1`)).status).toBe(200);
    expect((await node.status()).cluster).toMatchObject({ connected: false, version: 0 });
    expect((await send(`${node.adminUrl}/readyz`)).json().degraded).toMatch(/Redis unreachable/);
    await redis.start();
    await waitFor(async () => (await node!.status()).cluster.version === 1, 10_000, 'seeded and taken');
    expect(await raw.hget(`${PREFIX}config`, 'version')).toBe('1');
    expect((await send(`${node.adminUrl}/readyz`)).json()).toEqual({ message: 'ready' });
  });

  it('a node that cannot compile the version Redis holds does not start: it would serve another config than the cluster', async () => {
    const doc = JSON.parse((await raw.hget(`${PREFIX}config`, 'doc'))!);
    doc.tenants[0].routes.push({ name: 'broken', service: 'nowhere', paths: ['/broken'] });
    await raw.hset(`${PREFIX}config`, 'version', 2, 'doc', JSON.stringify(doc));
    await raw.publish(`${PREFIX}config`, '2');
    // The running node refuses it and keeps serving.
    await waitFor(async () => (await node!.status()).cluster.refused?.version === 2, 5_000, 'refused');
    expect((await send(`${node!.url}/base/1`)).status).toBe(200);
    await expect(spawnGateway(yaml(), {}, [], 20_000)).rejects.toThrow(/no service "nowhere"/);
  });
});
