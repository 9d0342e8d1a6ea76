import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, clearOfWindowStart, echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { LocalCounterStore } from '../../core/state/local-counters.ts';

/** Increments (or reads) the counter the request names; also counts in this worker's cache, a witness of which worker served. */
const COUNTER = pluginSource(
  'counter',
  `
export async function access(pdk: any) {
  const key = pdk.request.getHeader('x-key') ?? 'k';
  const win = Number(pdk.request.getHeader('x-window') ?? '60');
  const mode = pdk.request.getHeader('x-mode');
  if (mode === 'bad') { try { await pdk.counters.increment(key, -1, win); } catch (e: any) { pdk.response.exit(200, { error: e.message }); } }
  const n = mode === 'read' ? await pdk.counters.get(key, win) : await pdk.counters.increment(key, 1, win);
  const local = ((await pdk.cache.get('local')) ?? 0) + 1;
  await pdk.cache.set('local', local);
  pdk.response.exit(200, { n, local });
}`,
);

const tenants = (url: string) => `
tenants:
  - name: t1
    services: [{ name: s, url: "${url}" }]
    routes: [{ name: r, service: s, paths: [/t1] }]
    plugins: [{ name: counter, path: ./counter.ts }]
  - name: t2
    services: [{ name: s, url: "${url}" }]
    routes: [{ name: r, service: s, paths: [/t2] }]
    plugins: [{ name: counter, path: ./counter.ts }]
`;

describe('pdk.counters (one process)', () => {
  let up: Upstream;
  let gw: TestGateway;
  const count = async (path: string, headers: Record<string, string> = {}) => (await send(`${gw.url}${path}`, { headers })).json();

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`${NO_BREAKER}\n${tenants(up.url)}`, { 'counter.ts': COUNTER });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('counts in a window, per tenant; get reads without adding', async () => {
    await clearOfWindowStart(60_000); // the 60 s window must not begin again between these
    expect((await count('/t1', { 'x-key': 'a' })).n).toBe(1);
    expect((await count('/t1', { 'x-key': 'a' })).n).toBe(2);
    expect((await count('/t1', { 'x-key': 'a', 'x-mode': 'read' })).n).toBe(2);
    expect((await count('/t2', { 'x-key': 'a' })).n).toBe(1);
  });

  it('counts concurrent requests exactly', async () => {
    await clearOfWindowStart(60_000);
    const rs = await Promise.all(Array.from({ length: 30 }, () => count('/t1', { 'x-key': 'conc' })));
    expect(rs.map((r) => r.n).sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('starts again in the next window', async () => {
    const first = (await count('/t1', { 'x-key': 'w', 'x-window': '0.2' })).n;
    expect(first).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 250));
    expect((await count('/t1', { 'x-key': 'w', 'x-window': '0.2' })).n).toBe(1);
  });

  it('refuses a negative increment in the plugin', async () => {
    expect((await count('/t1', { 'x-mode': 'bad' })).error).toBe('counters.increment: the increment must be a non-negative integer');
  });
});

describe('the local counter store', () => {
  it('stays within its bound under a flood of keys', () => {
    const store = new LocalCounterStore(100);
    for (let i = 0; i < 1000; i++) store.incrementNow([{ key: `k${i}`, by: 1, windowMs: 60_000 }], 1000);
    expect(store.size).toBeLessThanOrEqual(100);
    expect(store.incrementNow([{ key: 'k999', by: 1, windowMs: 60_000 }], 1000)).toEqual([2]);
  });
});

describe('pdk.counters under the supervisor (real CLI, two workers)', () => {
  let up: Upstream;
  let gp: GatewayProcess;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gp = await spawnGateway(`listen: { host: 127.0.0.1, port: \${PORT} }\nadmin: { host: 127.0.0.1, port: \${ADMIN_PORT} }\nworkers: 2\n${NO_BREAKER}\n${tenants(up.url)}`, { 'counter.ts': COUNTER });
  }, 90_000); // spawnGateway alone may take 60 s on a loaded machine
  afterAll(async () => {
    await gp?.stop();
    await up?.close();
  });

  it('shares one count between the workers of the node', async () => {
    const rs: { n: number; local: number }[] = [];
    for (let i = 0; i < 40; i++) rs.push((await send(`${gp.url}/t1`, { headers: { 'x-key': 'shared', connection: 'close' } })).json());
    expect(rs.map((r) => r.n)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // The per-worker cache counted fewer than the shared counter: more than one worker served.
    expect(rs.some((r) => r.local < r.n)).toBe(true);
  }, 60_000);
});
