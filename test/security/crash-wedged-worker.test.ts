import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { echoHandler, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { readFileSync } from 'node:fs';
import { msUntil, spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { alive, childrenOf } from '../helpers/procs.ts';

/** CPU time of a process's main thread in ms (its tid is its pid), or null once it is gone. */
function mainThreadCpuMs(pid: number): number | null {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return null;
  }
}

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
// Shares the evil tenant's isolate: calling it first makes the isolate on both workers, so
// the timing below is the wedged call's, not a cold start's.
const WARM = `
export const name = 'warm';
export const version = '1.0.0';
export const priority = 1;
export function access() {}
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
    routes:
      - { name: r, service: s, paths: [/evil] }
      - { name: warm, service: s, paths: [/warm] }
    plugins:
      - { name: wedge, path: ./wedge.ts, route: r, limits: { cpuMs: ${CPU_MS} } }
      - { name: warm, path: ./warm.ts, route: warm }
  - name: good
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/good] }]
    plugins: [{ name: correlation-id }]
`, { 'wedge.ts': WEDGE, 'warm.ts': WARM });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('is found by its own sentinel within a second of the limit, replaced, and its plugin quarantined at once', async () => {
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
    for (let i = 0; i < 6; i++) {
      const r = await request(`${gw.url}/warm`, { reset: true });
      await r.body.text();
      expect(r.statusCode).toBe(200);
    }
    await new Promise((r) => setTimeout(r, 300));

    // The limit is CPU time: watch each worker's main-thread CPU clock, to know when the
    // wedged one passed its limit on a machine that other work slows down.
    const workers = childrenOf(gw.child.pid!);
    const samples = new Map(workers.map((pid) => [pid, [] as [number, number][]]));
    const t0 = Date.now();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const pid of workers) {
          const cpu = mainThreadCpuMs(pid);
          if (cpu !== null) samples.get(pid)!.push([Date.now(), cpu]);
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const evil = await request(`${gw.url}/evil`, { reset: true }).then(
      (r) => r.statusCode,
      () => 'connection lost' as const,
    );
    const lostAt = Date.now();
    sampling = false;
    await sampler;
    expect(evil).toBe('connection lost');
    // The connection drops as the kill lands; the multi-threaded process may take a few
    // milliseconds more to be gone from /proc (its threads are torn down after its sockets).
    let dead = workers.filter((pid) => !alive(pid));
    for (let i = 0; i < 100 && dead.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      dead = workers.filter((pid) => !alive(pid));
    }
    expect(dead.length).toBe(1);
    // When the wedged worker's main thread had spent the plugin's CPU limit since the
    // request was sent (an upper bound: it served a few other requests in that time too).
    const own = samples.get(dead[0])!;
    const limitAt = own.find(([, cpu]) => cpu - own[0][1] >= CPU_MS)?.[0] ?? lostAt;
    const afterLimit = lostAt - limitAt;
    const lostAfter = lostAt - t0;
    // The sentinel kills once the thread ran on 200 ms and 20 ms of CPU past the watchdog's
    // dispose (~250 ms past the limit on an idle machine), or at 800 ms of wall time past it
    // when a loaded machine gives the thread less (763 ms seen at load 25): at most ~1 s past
    // the limit, and well before the supervisor's 3 s health timeout, which is not what finds it.
    console.log(`wedged: connection lost ${afterLimit} ms after the limit, ${lostAfter} ms after the request`);
    expect(afterLimit).toBeLessThan(1_100);
    expect(lostAfter).toBeLessThan(3_000);
    await msUntil(async () => (await gw.status()).workers.ready === 2, 5_000, 'the worker to be replaced');
    const status = await gw.status();
    expect(status.quarantined).toEqual([expect.objectContaining({ tenant: 'evil', instance: 'evil/wedge@route:r', reason: 'wedged' })]);
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
    console.log(`wedge: evil connection lost ${afterLimit} ms after its CPU limit passed, ${lostAfter} ms after it was sent (cpuMs ${CPU_MS}); victim ${ok} ok, ${failed} failed, worst ${worstMs} ms`);
    expect(ok).toBeGreaterThan(20);
    // At most the victim requests in flight on the wedged worker when it died.
    expect(failed).toBeLessThanOrEqual(4);
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/isogate_worker_restarts_total\{reason="wedged"\} 1\n/);
    expect(metrics).not.toMatch(/isogate_worker_restarts_total\{reason="crash"\}/);
  }, 60_000);
});
