// memory (process level): a Map grown one small entry at a time until the heap limit: V8
// collects more and more often as the heap fills, so the call ends on CPU or memory; the
// worker must barely grow and the neighbour be served.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, evilFailures, startPeakLab, type PeakLab } from './memory-peak.ts';

// Documented in SECURITY.md (Memory): isolate limit + 64 MB of margin.
const BOUND_MB = 64 + 64;

describe('memory: Map growth', () => {
  let lab: PeakLab;
  beforeAll(async () => {
    lab = await startPeakLab(`const m = new Map(); for (let n = 0; ; n++) m.set(n, { n, s: String(n) });`);
  }, 90_000); // spawnGateway alone may take 60 s on a loaded machine
  afterAll(async () => {
    await lab?.stop();
  });

  it(`fails the call, grows the worker by less than ${BOUND_MB} MB, and the neighbour is served`, async () => {
    const r = await attack(lab, 3);
    console.info(`[memory-map-growth] ${JSON.stringify(r)}`);
    // Each attempt fails as its fault (500), except that the attacker's tenant may already be
    // throttled (503) by the CPU fair share: its calls burn CPU up to their limit on a
    // saturated worker. Either way the call never succeeds, and every 500 is a counted fault.
    expect(r.evil[0]).toBe(500);
    for (const status of r.evil) expect([500, 503]).toContain(status);
    const faults = r.evil.filter((s) => s === 500).length;
    expect((await evilFailures(lab, 'cpu')) + (await evilFailures(lab, 'memory'))).toBe(faults);
    expect(r.growthMb).toBeLessThan(BOUND_MB);
    expect(r.victimFailed).toBe(0);
  }, 60_000);
});
