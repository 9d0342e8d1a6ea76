// cpu: the plugin's top-level (module) code spins 900 ms. It runs when the tenant's isolate
// is created (the first request, and again after every isolate kill), synchronously on
// the gateway's event loop. Regression: it was bounded only by a fixed 1000 ms timeout;
// module loading now runs under the watchdog with the plugin's own cpuMs (30 here).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStillServes, plugin, send, startLab, type Lab } from './helpers.ts';

/** Iterations of the spin below that cost `ms` of CPU here (this thread's CPU clock, not the wall). */
function iterationsFor(ms: number): number {
  let x = 0;
  const t0 = process.threadCpuUsage();
  for (let i = 0; i < 2e7; i++) x = (x * 31 + i) | 0;
  const used = process.threadCpuUsage(t0);
  return Math.round((2e7 / ((used.user + used.system) / 1000)) * ms) + (x & 0);
}

// The spin ends at 900 ms of wall time (so the config-time probe, isolated-vm's own 1 s
// timeout, lets it through on any machine) or at ~300 ms of CPU, whichever comes first.
// The limit is judged on the CPU clock, so the event loop's CPU is what is judged here too:
// a loaded machine stretches a 30 ms cut to several hundred ms of wall time (754 ms seen).
const SPIN_CPU_MS = 300;
const EVIL = plugin(`
const t0 = Date.now();
let x = 0;
for (let i = 0; i < ${iterationsFor(SPIN_CPU_MS)} && Date.now() - t0 < 900; i++) x = (x * 31 + i) | 0;
export function access(pdk) { pdk.response.setHeader('x-evil', '1'); }
`);

describe('cpu: module top-level code spinning at isolate creation', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 30 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  // Regression (was a vulnerability): TenantSandbox.#ensure runs plugin top-level code with runSync({timeout: 1000}) on the event loop, outside the watchdog and the plugin's cpuMs; a cold start (forced again by any cpu/memory kill) blocks every tenant for up to ~1 s.
  it('isolate creation is bounded by the plugin limit: the event loop is never blocked for long', async () => {
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const cpu0 = process.threadCpuUsage(); // the gateway's event loop is this thread
    const r = await send(`${lab.url}/evil`); // the first request creates the isolate
    const cpu = process.threadCpuUsage(cpu0);
    h.disable();
    const cpuMs = (cpu.user + cpu.system) / 1000;
    console.log(`cold-start spin: the request took ${Math.round(cpuMs)} ms of the loop's CPU, the loop's longest stall ${Math.round(h.max / 1e6)} ms`);
    expect(r.status === 200 || r.status === 500).toBe(true);
    // Cut at the plugin's 30 ms, plus the isolate's creation; unbounded, the module would
    // spin its ~300 ms of CPU (on a machine that gives this process a third of a core or more).
    expect(cpuMs).toBeLessThan(150);
    expect(h.max / 1e6).toBeLessThan(2000); // and never the whole second a fixed timeout allowed, whatever the load
  });

  it('the neighbour tenant stays served afterwards', async () => {
    await send(`${lab.url}/evil`);
    await expectStillServes(lab);
  });

});
