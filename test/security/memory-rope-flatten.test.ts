// memory (process level): a rope of 2^28 characters made by doubling (a few KB of heap)
// and flattened in one step by indexOf: a 256 MB allocation in a 64 MB isolate. Before the
// heap check after each call (sandbox/heap-check.ts) this call SUCCEEDED (200) and its
// isolate kept the 256 MB until its next collection; it must now fail (as `memory`), the
// isolate be rebuilt, and the worker keep serving the neighbour.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, evilFailures, startPeakLab, type PeakLab } from './memory-peak.ts';

// Documented in SECURITY.md (Memory): isolate limit + the flat string + 128 MB of margin.
const BOUND_MB = 64 + 256 + 128;

describe('memory: a doubling rope flattened in one step', () => {
  let lab: PeakLab;
  beforeAll(async () => {
    // cpuMs 1000 (the ceiling): the attacker's best case, the CPU limit does not end it first.
    lab = await startPeakLab(`let s = 'x'; for (let i = 0; i < 28; i++) s += s; pdk.response.setHeader('x-n', String(s.indexOf('y')));`, { cpuMs: 1000 });
  }, 90_000); // spawnGateway alone may take 60 s on a loaded machine
  afterAll(async () => {
    await lab?.stop();
  });

  it(`fails as memory (not 200), grows the worker by less than ${BOUND_MB} MB, and the neighbour is served`, async () => {
    const r = await attack(lab, 2);
    console.info(`[memory-rope-flatten] ${JSON.stringify(r)}`);
    expect(r.evil).toEqual([500, 500]);
    // memory from the heap look; cpu when the watchdog ends the flatten first (it measures
    // wall time today, so a machine busy with other work gets there sooner).
    expect((await evilFailures(lab, 'memory')) + (await evilFailures(lab, 'cpu'))).toBe(2);
    expect(r.growthMb).toBeLessThan(BOUND_MB);
    expect(r.victimFailed).toBe(0);
    expect(r.victimOk).toBeGreaterThan(0);
    expect(await lab.gw.metrics()).not.toMatch(/isogate_worker_restarts_total\{/);
  }, 60_000);
});
