// memory (runs in a child process: it may abort the process): a plugin builds a 2^28
// character string by doubling (a cheap rope, a few KB of heap) and THROWS it. The
// runtime's describe() then does `'thrown value: ' + String(e)` and slices it to 1024
// characters, which flattens the rope: one 256 MB allocation in a 16 MB isolate, the
// "huge single allocation" class, reached through the runtime's own code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoHandler, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { msUntil, spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { plugin } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) { let s = 'x'; for (let i = 0; i < 28; i++) s += s; throw s; }
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

describe('memory: a thrown rope string flattened by the runtime', () => {
  let up: Upstream;
  let gw: GatewayProcess;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 1
supervisor: { healthIntervalMs: 100, healthTimeoutMs: 1000 }
tenants:
  - name: evil
    limits: { cpuMs: 200, memoryMb: 16 }
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/evil] }]
    plugins: [{ name: evil, path: ./evil.ts, limits: { cpuMs: 200, memoryMb: 16 } }]
  - name: good
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/good] }]
`, { 'evil.ts': EVIL });
  }, 90_000); // spawnGateway alone may take 60 s on a loaded machine
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('the test runner survives; report what the gateway did', async () => {
    const evil = await get(`${gw.url}/evil`, 5000);
    const recoverMs = await msUntil(async () => (await get(`${gw.url}/good`, 500)) === 200, 8000, 'the good tenant to be served');
    const status = await gw.status().catch(() => null);
    const restarts = /isogate_worker_restarts_total\{[^}]*\} \d+/g.exec(await gw.metrics().catch(() => ''))?.[0] ?? 'none';
    console.info(`[memory-thrown-cons-string] evil -> ${evil}; good served after ${recoverMs} ms; restarts: ${restarts}; quarantined: ${JSON.stringify(status?.quarantined ?? null)}`);
    // The secure outcome is a plain 500 (threw or memory) without losing the worker.
    expect([500, 'error: SocketError', 'error: TimeoutError']).toContain(evil);
  }, 30_000);
});
