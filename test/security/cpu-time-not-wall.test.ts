import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoHandler, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { childrenOf } from '../helpers/procs.ts';

// Regression: `cpuMs` was enforced on wall time. With one competing process on its core,
// a plugin needing ~23 ms of CPU under a 50 ms limit was killed 10 times in 12. The limit
// is now judged on the CPU clock of the worker's main thread, with wall time only as a
// backstop (the call's CPU budget + 1 s): a plugin within its CPU limit is not killed
// because the machine is busy, and one far past it still is.
const CPU_MS = 50;
const LOOP = 'let x = 0; for (let i = 0; i < n; i++) x = (x * 31 + i) | 0; return x;';

/** Iterations of LOOP that cost `ms` of CPU here (measured on this process's CPU clock, not the wall). */
function iterationsFor(ms: number): number {
  const run = new Function('n', LOOP) as (n: number) => number;
  for (let i = 0; i < 5; i++) run(1e6); // JIT warm-up, as the isolate's loop gets
  const n = 2e7;
  const t0 = process.threadCpuUsage();
  run(n);
  const used = process.threadCpuUsage(t0);
  const cpuMs = (used.user + used.system) / 1000;
  return Math.round((n / cpuMs) * ms);
}

const BURN = `
export const name = 'burn';
export const version = '1.0.0';
export const priority = 1;
function spin(n) { ${LOOP} }
export function access(pdk, config) { spin(1e5); spin(config.n); }
`;

const hasTaskset = spawnSync('taskset', ['-V']).status === 0;

describe('cpuMs is CPU time, not wall time', () => {
  let up: Upstream;
  let gw: GatewayProcess;
  let hog: ChildProcess | null = null;
  const half = iterationsFor(CPU_MS / 2);
  const triple = iterationsFor(CPU_MS * 3);
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 1
tenants:
  - name: t
    limits: { cpuMs: ${CPU_MS}, cpuBudgetMs: 1000 }
    breaker: { faults: 1000, windowMs: 1000, cooldownMs: 1 }
    services: [{ name: s, url: "${up.url}" }]
    routes:
      - { name: half, service: s, paths: [/half] }
      - { name: triple, service: s, paths: [/triple] }
    plugins:
      - { name: burn, path: ./burn.ts, route: half, config: { n: ${half} } }
      - { name: burn, path: ./burn.ts, route: triple, config: { n: ${triple} } }
`, { 'burn.ts': BURN });
    // The gateway's processes (every thread) and a CPU hog share one core.
    const pids = [gw.child.pid!, ...childrenOf(gw.child.pid!)];
    const core = hasTaskset ? '0' : null;
    if (core !== null) for (const pid of pids) spawnSync('taskset', ['-a', '-p', '-c', core, String(pid)]);
    const hogArgs = ['-e', 'for (;;) {}'];
    hog = core !== null ? spawn('taskset', ['-c', core, process.execPath, ...hogArgs], { stdio: 'ignore' }) : spawn(process.execPath, hogArgs, { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
  }, 90_000);
  afterAll(async () => {
    hog?.kill('SIGKILL');
    await gw?.stop();
    await up?.close();
  });

  it('a plugin using half its CPU limit is never killed while a CPU hog shares its core', async () => {
    const statuses: number[] = [];
    const walls: number[] = [];
    for (let i = 0; i < 12; i++) {
      const t0 = Date.now();
      const r = await request(`${gw.url}/half`);
      await r.body.text();
      walls.push(Date.now() - t0);
      statuses.push(r.statusCode);
    }
    console.log(`cpu: ${half} iterations (~${CPU_MS / 2} ms CPU) under a hog: wall ms ${walls.join(' ')}`);
    expect(statuses).toEqual(Array(12).fill(200));
  }, 60_000);

  it('a plugin burning three times its CPU limit is still stopped, as cpu', async () => {
    const walls: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const r = await request(`${gw.url}/triple`);
      const body = JSON.parse(await r.body.text());
      walls.push(Date.now() - t0);
      expect(r.statusCode).toBe(500);
      expect(body.error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    }
    console.log(`cpu: ${triple} iterations (~${CPU_MS * 3} ms CPU) under a hog: stopped after wall ms ${walls.join(' ')}`);
    // With the core shared, 50 ms of CPU take 100 ms or more of wall time (more when other
    // test files share the core too); the kill lands within a few scheduler ticks of the
    // CPU limit, so before the wall backstop (the call's budget + 1 s) could have fired.
    for (const w of walls) expect(w).toBeLessThan(CPU_MS + 20 + 1000);
    expect(gw.output()).toMatch(/"reason":"cpu"/);
  }, 60_000);
});
