// cpu (runs in a child process: it wedges the gateway's thread for good): the plugin's
// top-level code replaces Array.prototype.map with an endless loop. The load-time probe
// isolate never calls map, so the config loads; the tenant isolate's runtime setup()
// calls `program.instances.map(...)` through applySync with no timeout, before the call
// deadline is armed and outside the crash beacon. Nothing in-process can stop it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoHandler, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, waitFor, type GatewayProcess } from '../helpers/process.ts';
import { plugin } from './helpers.ts';

const EVIL = plugin(`
Array.prototype.map = function () { for (;;) {} };
export function access(pdk) { pdk.response.setHeader('x-evil', '1'); }
`);

async function get(url: string, timeoutMs: number): Promise<number | string> {
  try {
    const r = await request(url, { signal: AbortSignal.timeout(timeoutMs), reset: true });
    await r.body.text();
    return r.statusCode;
  } catch (e) {
    return `error: ${(e as Error).name}`;
  }
}

describe('cpu: endless loop in the runtime setup() via a replaced Array.prototype.map', () => {
  let up: Upstream;
  let gw: GatewayProcess;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 1
supervisor: { healthIntervalMs: 100, healthTimeoutMs: 500 }
tenants:
  - name: evil
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/evil] }]
    plugins: [{ name: evil, path: ./evil.ts, limits: { cpuMs: 30, memoryMb: 16 } }]
  - name: good
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/good] }]
`, { 'evil.ts': EVIL });
  }, 30_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('the test runner survives; the wedged worker is replaced and the good tenant is served again', async () => {
    const t0 = Date.now();
    const evil = await get(`${gw.url}/evil`, 5000);
    const evilMs = Date.now() - t0;
    const recoverMs = await waitFor(async () => (await get(`${gw.url}/good`, 500)) === 200, 8000, 'the good tenant to be served');
    const status = await gw.status().catch(() => null);
    // report (this attack can only be observed from outside)
    console.info(`[cpu-setup-hang] evil request -> ${evil} after ${evilMs} ms; good tenant served again after ${recoverMs} ms; quarantined: ${JSON.stringify(status?.quarantined ?? null)}`);
    expect(evil).not.toBe(200);
  }, 30_000);

  // VULN: setup()/load() run via applySync without timeout before the call deadline is armed and outside beacon.enter(), so the wedge is not attributed: no quarantine, and every later request to the tenant wedges the next worker.
  it.skip('the plugin is quarantined: the next request fails fast with 503 instead of wedging another worker', async () => {
    const t0 = Date.now();
    const again = await get(`${gw.url}/evil`, 3000);
    expect(again).toBe(503);
    expect(Date.now() - t0).toBeLessThan(200);
    expect(await get(`${gw.url}/good`, 1000)).toBe(200);
  });
});
