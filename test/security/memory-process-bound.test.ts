import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoHandler, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';

// The gateway process must not be driven out of memory by one plugin. Under a process
// memory bound (workerMemoryMb: a memory cgroup where the OS allows, and the supervisor's
// resident-size check), a plugin that fills its isolate heap on every request fails only
// its own requests: its isolate is disposed and rebuilt each time, memory comes back, and
// the worker is never replaced.
const HOG = `
export const name = 'hog';
export const version = '1.0.0';
export const priority = 1;
const keep = [];
export function access() { for (;;) keep.push(new Array(100000).fill(keep.length)); }
`;

describe('a plugin that fills its heap on every request', () => {
  let up: Upstream;
  let gw: GatewayProcess;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 1
supervisor: { workerMemoryMb: 400, healthTimeoutMs: 15000 }
limits: { ceilings: { cpuBudgetMs: 100000, cpuMs: 10000 } }
sandbox: { breaker: { faults: 1000 } }
tenants:
  - name: hog
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/hog] }]
    plugins: [{ name: hog, path: ./hog.ts, limits: { memoryMb: 64, cpuMs: 10000 } }]
    limits: { cpuBudgetMs: 100000 }
  - name: good
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/good] }]
`, { 'hog.ts': HOG });
  }, 90_000); // spawnGateway alone may take 60 s on a loaded machine
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('fails its own requests with a memory outcome and never takes the worker down', async () => {
    for (let i = 0; i < 12; i++) {
      const [hog, good] = await Promise.all([request(`${gw.url}/hog`), request(`${gw.url}/good`)]);
      const body = await hog.body.text();
      await good.body.text();
      expect(hog.statusCode).toBe(500);
      expect(JSON.parse(body).error.code).toBe('ISG_ERR_PLUGIN_FAILED');
      expect(good.statusCode).toBe(200);
    }
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/isogate_plugin_failures_total\{tenant="hog",plugin="hog",reason="memory"\} 12/);
    expect(metrics).not.toMatch(/isogate_worker_restarts_total\{/);
    const status = await gw.status();
    expect(status.workers.ready).toBe(1);
    expect(status.quarantined).toEqual([]);
  }, 60_000);
});
