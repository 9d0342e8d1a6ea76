import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, send, startUpstream, waitFor, type Reply, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { startRedis, type RedisServer } from '../helpers/redis.ts';

const TOKEN = 'cluster-operator';
const PREFIX = 'itest:';

/**
 * Two real nodes (CLI child processes) and a real redis-server: node 1 under a supervisor
 * with one worker, node 2 in one process (both process models). The config lives in Redis;
 * each node's file only names the Redis (node 1's also seeds it).
 */
describe('two gateway nodes sharing their config through Redis', () => {
  let redis: RedisServer;
  let raw: Redis;
  let up: Upstream;
  let node1: GatewayProcess;
  let node2: GatewayProcess;
  const api = (node: GatewayProcess, path: string, method = 'GET', body?: unknown, headers: Record<string, string> = {}): Promise<Reply> =>
    send(`${node.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  const bootstrap = (workers: number, tenants: string) => `
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT}, tokens: [{ name: ops, sha256: ${createHash('sha256').update(TOKEN).digest('hex')} }] }
workers: ${workers}
log: { access: false }
cluster: { redis: { url: "${redis.url}", keyPrefix: "${PREFIX}" }, pollIntervalMs: 300 }
${tenants}
`;
  const serves = async (node: GatewayProcess, path: string, status = 200) => (await send(`${node.url}${path}`, { headers: { connection: 'close' } }).catch(() => ({ status: 0 }))).status === status;

  beforeAll(async () => {
    redis = await startRedis({ persist: true });
    raw = new Redis(redis.url, { maxRetriesPerRequest: null });
    raw.on('error', () => undefined);
    up = await startUpstream(echoHandler);
    // Node 1 seeds the empty Redis from its file; node 2's file has no tenants: it runs what Redis holds.
    node1 = await spawnGateway(bootstrap(1, `tenants:\n  - name: acme\n    services: [{ name: base, url: "${up.url}" }]\n    routes: [{ name: base, service: base, paths: [/base] }]`));
    node2 = await spawnGateway(bootstrap(0, 'tenants: []'));
  }, 120_000);
  afterAll(async () => {
    await Promise.all([node1?.stop(), node2?.stop()]);
    raw?.disconnect();
    await up?.close();
    await redis?.stop();
  });

  it('the first node seeds the empty Redis; the second runs what Redis holds', async () => {
    expect(await raw.hget(`${PREFIX}config`, 'version')).toBe('1');
    expect(await serves(node2, '/base/x')).toBe(true);
    const s = (await node2.status()).cluster;
    expect(s).toMatchObject({ connected: true, version: 1, redisVersion: 1, refused: null, degraded: null });
    expect((await node1.status()).cluster.version).toBe(1);
    expect((await send(`${node1.adminUrl}/readyz`)).json()).toEqual({ message: 'ready' });
    for (const node of [node1, node2]) {
      const m = await node.metrics();
      expect(m).toMatch(/^isogate_cluster_redis_connected 1$/m);
      expect(m).toMatch(/^isogate_cluster_config_version 1$/m);
      expect(m).toMatch(/^isogate_cluster_config_refused 0$/m);
    }
  });

  /** Adds 20 routes through `from`'s API; for each, the ms from Redis's publish, and from the POST, to `to` serving it. */
  async function propagation(from: GatewayProcess, to: GatewayProcess, tag: string): Promise<{ fromPublish: number[]; fromPost: number[] }> {
    // The test listens on the channel too: t0 is when Redis published the new version.
    const sub = new Redis(redis.url);
    await sub.subscribe(`${PREFIX}config`);
    const fromPublish: number[] = [];
    const fromPost: number[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const published = new Promise<number>((resolve) => sub.once('message', () => resolve(performance.now())));
        const sent = performance.now();
        const post = api(from, '/tenants/acme/routes', 'POST', { name: `${tag}${i}`, service: 'base', paths: [`/${tag}${i}`] });
        const t0 = await published;
        while (!(await serves(to, `/${tag}${i}`))) {
          expect(performance.now() - t0, `route /${tag}${i}`).toBeLessThan(5_000);
          await new Promise((r) => setTimeout(r, 2));
        }
        const t1 = performance.now();
        fromPublish.push(t1 - t0);
        fromPost.push(t1 - sent);
        const r = await post;
        expect(r.status, r.body).toBe(201);
        // The writing node answered once its own workers serve the change.
        expect(await serves(from, `/${tag}${i}`)).toBe(true);
      }
    } finally {
      sub.disconnect();
    }
    return { fromPublish, fromPost };
  }
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return (s[9] + s[10]) / 2;
  };

  it('a route added through one node serves on the other within a second, both ways (medians of 20 reported)', async () => {
    for (const [from, to, tag, what] of [[node1, node2, 'p', 'node 1 -> node 2 (one process)'], [node2, node1, 'q', 'node 2 -> node 1 (supervisor, worker and spare)']] as const) {
      const { fromPublish, fromPost } = await propagation(from, to, tag);
      console.log(`config propagation ${what}, ms: Redis publish -> serves: median ${median(fromPublish).toFixed(1)}, max ${Math.max(...fromPublish).toFixed(1)}; POST sent -> serves: median ${median(fromPost).toFixed(1)}, max ${Math.max(...fromPost).toFixed(1)}`);
      // Within a second of Redis taking it, every time; the POST (which includes the writing node's own compile and reload round) in a second as a median.
      expect(Math.max(...fromPublish)).toBeLessThan(1000);
      expect(median(fromPost)).toBeLessThan(1000);
    }
    // The version is recorded once the cluster file is written, a moment after the swap.
    for (const node of [node1, node2]) await waitFor(async () => (await node.status()).cluster.version === 41, 2_000, 'version 41');
  });

  it('the version is the ETag on every node: a write with a stale If-Match is refused with 412', async () => {
    const a = await api(node2, '/tenants/acme/services');
    const etag = a.headers.etag as string;
    expect(etag).toBe('"v41"');
    expect((await api(node1, '/tenants/acme/services', 'POST', { name: 'other', url: up.url }, { 'if-match': etag })).status).toBe(201);
    const stale = await api(node2, '/tenants/acme/services', 'POST', { name: 'third', url: up.url }, { 'if-match': etag });
    expect(stale.status).toBe(412);
    expect(stale.json().error.code).toBe('ISG_ERR_ADMIN_STALE');
  });

  it('changes made at once on both nodes without If-Match all land (the loser of a race makes its change again on top)', async () => {
    const posts = Array.from({ length: 6 }, (_, i) => api(i % 2 === 0 ? node1 : node2, '/tenants/acme/routes', 'POST', { name: `race${i}`, service: 'base', paths: [`/race${i}`] }));
    const answers = await Promise.all(posts);
    expect(answers.map((a) => a.status), answers.map((a) => a.body).join("\n")).toEqual([201, 201, 201, 201, 201, 201]);
    const doc = JSON.parse((await raw.hget(`${PREFIX}config`, 'doc'))!);
    const names = doc.tenants[0].routes.map((r: { name: string }) => r.name);
    for (let i = 0; i < 6; i++) expect(names).toContain(`race${i}`);
    for (const node of [node1, node2]) for (let i = 0; i < 6; i++) await waitFor(() => serves(node, `/race${i}`), 3_000, `/race${i}`);
  });

  it('a change that does not compile is refused by the node that got it and never reaches Redis', async () => {
    const before = await raw.hget(`${PREFIX}config`, 'version');
    const r = await api(node2, '/tenants/acme/routes', 'POST', { name: 'bad', service: 'nowhere', paths: ['/bad'] });
    expect(r.status).toBe(400);
    expect(r.json().error.details).toEqual(['tenants[0].routes[47].service: tenant "acme" has no service "nowhere"']);
    expect(await raw.hget(`${PREFIX}config`, 'version')).toBe(before);
    expect(await serves(node2, '/p3')).toBe(true);
  });

  it('a version in Redis that does not compile is refused on every node; they keep serving and say so', async () => {
    const v = Number(await raw.hget(`${PREFIX}config`, 'version'));
    const doc = JSON.parse((await raw.hget(`${PREFIX}config`, 'doc'))!);
    const good = JSON.stringify(doc);
    doc.tenants[0].routes.push({ name: 'broken', service: 'nowhere', paths: ['/broken'] });
    await raw.hset(`${PREFIX}config`, 'version', v + 1, 'doc', JSON.stringify(doc));
    await raw.publish(`${PREFIX}config`, String(v + 1));
    for (const node of [node1, node2]) {
      const s = await waitFor(async () => ((await node.status()).cluster.refused?.version === v + 1 ? (await node.status()).cluster : null), 5_000, 'refusal');
      expect(s.version).toBe(v);
      expect(s.refused.error).toMatch(/no service "nowhere"/);
      const ready = await send(`${node.adminUrl}/readyz`);
      expect(ready.status).toBe(200);
      expect(ready.json().degraded).toMatch(new RegExp(`version ${v + 1} was refused`));
      expect(await serves(node, '/p5')).toBe(true);
    }
    // Fixed in Redis: both nodes take the next version.
    doc.tenants[0].routes.pop();
    await raw.hset(`${PREFIX}config`, 'version', v + 2, 'doc', good);
    await raw.publish(`${PREFIX}config`, String(v + 2));
    for (const node of [node1, node2]) await waitFor(async () => (await node.status()).cluster.version === v + 2, 5_000, 'next version');
  });

  it('Redis stopped: both nodes keep serving, report it, refuse changes; restarted: nothing lost, changes flow again', async () => {
    const v = Number(await raw.hget(`${PREFIX}config`, 'version'));
    await redis.stop();
    for (const node of [node1, node2]) {
      await waitFor(async () => (await node.status()).cluster.connected === false, 5_000, 'node sees Redis down');
      const ready = await send(`${node.adminUrl}/readyz`);
      expect(ready.status).toBe(200);
      expect(ready.json().degraded).toMatch(/Redis unreachable/);
      expect(await node.metrics()).toMatch(/^isogate_cluster_redis_connected 0$/m);
      for (let i = 0; i < 20; i++) expect(await serves(node, `/p${i}`)).toBe(true);
    }
    const refused = await api(node1, '/tenants/acme/routes', 'POST', { name: 'while-down', service: 'base', paths: ['/down'] });
    expect(refused.status).toBe(503);
    expect(refused.json().error.code).toBe('ISG_ERR_ADMIN_UNAVAILABLE');
    // Reads still answer, from the config the node runs.
    expect((await api(node2, '/tenants/acme/routes')).status).toBe(200);
    await redis.start();
    for (const node of [node1, node2]) {
      await waitFor(async () => (await node.status()).cluster.connected === true, 10_000, 'node reconnects');
      expect((await node.status()).cluster.version).toBe(v);
    }
    expect(await raw.hget(`${PREFIX}config`, 'version')).toBe(String(v));
    expect((await api(node1, '/tenants/acme/routes', 'POST', { name: 'after', service: 'base', paths: ['/after'] })).status).toBe(201);
    await waitFor(() => serves(node2, '/after'), 2_000, '/after on node 2');
  });

  it('Redis that comes back empty gets the config back from the nodes', async () => {
    const v = Number(await raw.hget(`${PREFIX}config`, 'version'));
    await raw.flushall();
    await waitFor(async () => (await raw.hget(`${PREFIX}config`, 'version')) === String(v), 5_000, 'config written back');
    expect(JSON.parse((await raw.hget(`${PREFIX}config`, 'doc'))!).tenants[0].routes.map((r: { name: string }) => r.name)).toContain('after');
    expect(await serves(node2, '/after')).toBe(true);
    expect((await node1.status()).cluster.refused).toBe(null);
  });

  it('a node restarted while Redis is down starts on its cluster file of the last run, and catches up once Redis is back', async () => {
    const clusterFile = (await node2.status()).config.file as string;
    expect(clusterFile).toMatch(/gateway\.cluster\.yaml$/);
    const cached = readFileSync(clusterFile, 'utf8');
    await node2.stop();
    await redis.stop();
    // The same bootstrap file (no tenants of its own) beside the last run's cluster file; new ports.
    node2 = await spawnGateway(bootstrap(0, 'tenants: []'), { 'gateway.cluster.yaml': cached });
    expect(await serves(node2, '/after')).toBe(true);
    const s = (await node2.status()).cluster;
    expect(s.connected).toBe(false);
    expect((await send(`${node2.adminUrl}/readyz`)).json().degraded).toMatch(/Redis unreachable/);
    await redis.start();
    await waitFor(async () => (await node1.status()).cluster.connected === true, 10_000, 'node 1 reconnects');
    expect((await api(node1, '/tenants/acme/routes', 'POST', { name: 'late', service: 'base', paths: ['/late'] })).status).toBe(201);
    await waitFor(() => serves(node2, '/late'), 10_000, '/late on the restarted node 2');
  }, 90_000);
});
