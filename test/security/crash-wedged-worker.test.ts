import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoHandler, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { msUntil, spawnGateway, type GatewayProcess } from '../helpers/process.ts';

// A worker whose thread is stuck (here: a plugin allowed 1 s of CPU while the supervisor
// expects an answer to its pings within 300 ms) is alive but serves nothing. The health
// check must find it, kill it, let the spare take over, and quarantine the plugin.
const SPINNER = `
export const name = 'spinner';
export const version = '1.0.0';
export const priority = 1;
export function access() { for (;;) {} }
`;

describe('a worker that stops answering', () => {
  let up: Upstream;
  let gw: GatewayProcess;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 2
supervisor: { healthIntervalMs: 100, healthTimeoutMs: 300 }
tenants:
  - name: evil
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/evil] }]
    plugins: [{ name: spinner, path: ./spinner.ts, limits: { cpuMs: 1000 } }]
  - name: good
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/good] }]
`, { 'spinner.ts': SPINNER });
  }, 30_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('is detected by the health check, replaced, and its plugin quarantined', async () => {
    const t0 = Date.now();
    const evil = await request(`${gw.url}/evil`).then(
      (r) => r.statusCode,
      () => 'connection lost' as const,
    );
    // Killed by the supervisor before the plugin's own 1 s limit ran out.
    expect(evil).toBe('connection lost');
    expect(Date.now() - t0).toBeLessThan(1_000);
    await msUntil(async () => (await gw.status()).workers.ready === 2, 2_000, 'the worker to be replaced');
    const status = await gw.status();
    expect(status.quarantined).toEqual([expect.objectContaining({ instance: 'evil/spinner@tenant', reason: 'wedged' })]);
    const r = await request(`${gw.url}/evil`);
    await r.body.text();
    expect(r.statusCode).toBe(503);
    const good = await request(`${gw.url}/good`);
    await good.body.text();
    expect(good.statusCode).toBe(200);
    expect(await gw.metrics()).toMatch(/isogate_worker_restarts_total\{reason="wedged"\} 1/);
  }, 30_000);
});
