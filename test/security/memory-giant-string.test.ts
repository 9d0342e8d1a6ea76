// memory (process level): one giant flat string, V8's longest (2^29 - 24 one-byte
// characters, 512 MB), made in one step in a 64 MB isolate. isolated-vm's near-heap-limit
// callback lets the allocation through (it grants up to 1 GB more and stops the isolate
// only at the next full collection), so the worker does grow by about 512 MB; it must grow
// no further, the call must fail, the worker must keep serving, and the neighbour must
// keep getting answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, containedOrWedgedOnce, startPeakLab, type PeakLab } from './memory-peak.ts';

// Documented in SECURITY.md (Memory): isolate limit + the string + 128 MB of margin.
const BOUND_MB = 64 + 512 + 128;

describe('memory: one giant string made by repeat', () => {
  let lab: PeakLab;
  beforeAll(async () => {
    lab = await startPeakLab(`const s = 'x'.repeat(2 ** 29 - 24); pdk.response.setHeader('x-n', String(s.indexOf('y')));`);
  }, 90_000); // spawnGateway alone may take 60 s on a loaded machine
  afterAll(async () => {
    await lab?.stop();
  });

  it(`fails the call (or its worker is killed once as wedged and the plugin quarantined), grows the worker by less than ${BOUND_MB} MB, and the neighbour is served`, async () => {
    const r = await attack(lab, 2);
    console.info(`[memory-giant-string] ${JSON.stringify(r)}`);
    expect(r.growthMb).toBeLessThan(BOUND_MB);
    const killed = await containedOrWedgedOnce(lab, r);
    // Contained: the neighbour loses nothing. Wedged: it loses what reached the worker in the
    // ~30 ms before the hot spare took over (its client retries every 5 ms), nothing after.
    expect(r.victimFailed).toBeLessThanOrEqual(killed === 0 ? 0 : 8);
    expect(r.victimOk).toBeGreaterThan(0);
  }, 60_000);
});
