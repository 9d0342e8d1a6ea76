import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { echoHandler, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { msUntil, spawnGateway, type GatewayProcess } from '../helpers/process.ts';

// A plugin that runs one V8 builtin which never checks for termination (lastIndexOf over
// a sparse array of 2e9 holes: ~40 s in one call) holds its worker's main thread: the
// watchdog's dispose cannot stop it. The worker's sentinel thread must see that the call
// is still running past its CPU limit after the dispose, name the plugin in the beacon
// and kill the process, all within 500 ms of the limit; the hot spare takes over, and the
// plugin is quarantined after this first wedge. The supervisor's health timeout is left
// at its default (3 s): it is not what finds the wedge.
const WEDGE = `
export const name = 'wedge';
export const version = '1.0.0';
export const priority = 1;
export function access() { const a = []; a.length = 2e9; a.lastIndexOf(1); }
`;
const CPU_MS = 50;

describe('a worker wedged in an operation V8 cannot interrupt', () => {
  let up: Upstream;
  let gw: GatewayProcess;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 2
tenants:
  - name: evil
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/evil] }]
    plugins: [{ name: wedge, path: ./wedge.ts, limits: { cpuMs: ${CPU_MS} } }]
  - name: good
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/good] }]
    plugins: [{ name: correlation-id }]
`, { 'wedge.ts': WEDGE });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('is found by its own sentinel within 500 ms of the limit, replaced, and its plugin quarantined at once', async () => {
    // The victim: keep-alive connections (spread over both workers) sending all along.
    const agent = new Agent({ connections: 4, pipelining: 1 });
    let ok = 0;
    let failed = 0;
    let worstMs = 0;
    let running = true;
    const victims = Array.from({ length: 4 }, async () => {
      while (running) {
        const t = Date.now();
        try {
          const r = await request(`${gw.url}/good`, { dispatcher: agent });
          await r.body.text();
          if (r.statusCode === 200) ok++;
          else failed++;
        } catch {
          failed++;
        }
        worstMs = Math.max(worstMs, Date.now() - t);
      }
    });
    await new Promise((r) => setTimeout(r, 300));

    const t0 = Date.now();
    const evil = await request(`${gw.url}/evil`, { reset: true }).then(
      (r) => r.statusCode,
      () => 'connection lost' as const,
    );
    const lostAfter = Date.now() - t0;
    expect(evil).toBe('connection lost');
    // The CPU limit, then at most 500 ms until the process is gone.
    expect(lostAfter).toBeLessThan(CPU_MS + 500);
    await msUntil(async () => (await gw.status()).workers.ready === 2, 5_000, 'the worker to be replaced');
    const status = await gw.status();
    expect(status.quarantined).toEqual([expect.objectContaining({ tenant: 'evil', instance: 'evil/wedge@tenant', reason: 'wedged' })]);
    // Quarantined after the first wedge: the next requests fail fast, and no worker dies again.
    for (let i = 0; i < 3; i++) {
      const r = await request(`${gw.url}/evil`, { reset: true });
      await r.body.text();
      expect(r.statusCode).toBe(503);
    }
    await new Promise((r) => setTimeout(r, 300));
    running = false;
    await Promise.all(victims);
    await agent.close();
    console.log(`wedge: evil connection lost after ${lostAfter} ms (cpuMs ${CPU_MS}); victim ${ok} ok, ${failed} failed, worst ${worstMs} ms`);
    expect(ok).toBeGreaterThan(20);
    // At most the victim requests in flight on the wedged worker when it died.
    expect(failed).toBeLessThanOrEqual(4);
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/isogate_worker_restarts_total\{reason="wedged"\} 1\n/);
    expect(metrics).not.toMatch(/isogate_worker_restarts_total\{reason="crash"\}/);
  }, 60_000);
});
