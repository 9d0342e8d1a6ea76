// async: a plugin floods the counters with fresh keys (32 per request, the async call cap).
// The node's store is bounded (sandbox/limits.ts maxCounters; the oldest windows go first),
// a key over its cap is refused in the isolate, and a stable key still counts exactly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStillServes, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export async function access(pdk) {
  if (pdk.request.getHeader('x-mode') === 'flood') {
    const ps = [];
    for (let i = 0; i < 32; i++) ps.push(pdk.counters.increment('k' + Math.random() + 'x'.repeat(400), 1, 86400));
    await Promise.all(ps);
    return;
  }
  if (pdk.request.getHeader('x-mode') === 'long') {
    try { await pdk.counters.increment('k'.repeat(100000)); } catch (e) { pdk.response.setHeader('x-refused', e.name + ': ' + e.message); }
    return;
  }
  pdk.response.setHeader('x-count', String(await pdk.counters.increment('stable', 1, 3600)));
}
`);

describe('async: a flood of counter keys', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 200 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('floods, and a stable key still counts exactly', async () => {
    const before = Number((await send(`${lab.url}/evil`)).headers['x-count']);
    for (let round = 0; round < 10; round++) {
      const rs = await Promise.all(Array.from({ length: 10 }, () => send(`${lab.url}/evil`, { headers: { 'x-mode': 'flood' } })));
      for (const r of rs) expect(r.status).toBe(200);
    }
    expect(Number((await send(`${lab.url}/evil`)).headers['x-count'])).toBe(before + 1);
    await expectStillServes(lab);
  }, 60_000);

  it('a key over the cap is refused in the isolate', async () => {
    const r = await send(`${lab.url}/evil`, { headers: { 'x-mode': 'long' } });
    expect(r.headers['x-refused']).toBe('RangeError: counter key of 100000 characters exceeds 512');
  });
});
