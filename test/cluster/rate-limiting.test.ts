import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { burst, inOneWindow } from '../plugins/rate-limiting-helpers.ts';

/**
 * Two real nodes (CLI children: node 1 under a supervisor with one worker, node 2 in one
 * process) and a real redis-server; rate-limiting with policy redis counts in the cluster's
 * Redis, so a limit of N over both nodes lets exactly N through.
 */
describe('rate-limiting, policy redis, two gateway nodes', () => {
  let redis: RedisServer;
  let up: Upstream;
  let node1: GatewayProcess;
  let node2: GatewayProcess;
  const bootstrap = (workers: number, tenants: string) => `
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: ${workers}
log: { access: false }
cluster: { redis: { url: "${redis.url}", keyPrefix: "rltest:" }, pollIntervalMs: 300 }
${tenants}
`;

  beforeAll(async () => {
    redis = await startRedis();
    up = await startUpstream(echoHandler);
    node1 = await spawnGateway(bootstrap(1, `tenants:
  - name: acme
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/rl] }, { name: l, service: s, paths: [/local] }, { name: c, service: s, paths: [/closed] }]
    plugins:
      - { name: rate-limiting, route: r, config: { hour: 30, limit_by: service, policy: redis } }
      - { name: rate-limiting, route: l, config: { hour: 5, limit_by: service, policy: local } }
      - { name: rate-limiting, route: c, config: { hour: 1000, limit_by: service, policy: redis, fault_tolerant: false } }`));
    node2 = await spawnGateway(bootstrap(0, 'tenants: []'));
  }, 120_000);

  afterAll(async () => {
    await Promise.all([node1?.stop(), node2?.stop()]);
    await up?.close();
    await redis?.stop();
  });

  it('a limit of N over both nodes lets exactly N through', { timeout: 60_000 }, async () => {
    await inOneWindow(3600, 30_000);
    const statuses = await burst((i) => `${(i % 2 === 0 ? node1 : node2).url}/rl/${i}`, 80, 16);
    expect(statuses.filter((r) => r.status === 200).length).toBe(30);
    expect(statuses.filter((r) => r.status === 429).length).toBe(50);
  });

  it('policy local stays per node: each node lets its own N through', { timeout: 60_000 }, async () => {
    await inOneWindow(3600, 30_000);
    const one = await burst(() => `${node1.url}/local`, 10, 4);
    const two = await burst(() => `${node2.url}/local`, 10, 4);
    expect([one.filter((r) => r.status === 200).length, two.filter((r) => r.status === 200).length]).toEqual([5, 5]);
  });

  it('Redis down: fault_tolerant lets requests through unlimited (the limit above is spent), fail-closed answers 500', { timeout: 60_000 }, async () => {
    expect((await burst(() => `${node2.url}/closed`, 1, 1))[0].status).toBe(200);
    expect((await burst(() => `${node2.url}/rl`, 1, 1))[0].status).toBe(429);
    await redis.stop();
    for (const node of [node1, node2]) {
      expect((await burst(() => `${node.url}/rl`, 3, 1)).map((r) => r.status)).toEqual([200, 200, 200]);
      const closed = (await burst(() => `${node.url}/closed`, 1, 1))[0];
      expect(closed.status).toBe(500);
      expect(closed.json()).toEqual({ message: 'An unexpected error occurred' });
    }
  });
});
