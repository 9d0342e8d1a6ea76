// bad return: an operation the HOST refuses (ops.ts) is recorded with instance -1, i.e.
// plugin="unknown" in metrics and logs, and `gate.fault()` is skipped for instance < 0:
// a plugin that only ever returns bad operations is never tripped by its breaker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPluginFailed, expectStillServes, failures, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) { pdk.response.setHeader('content-length', '0'); }
`);

describe('bad return: attribution of host-refused operations', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, breaker: { faults: 3, windowMs: 10_000, cooldownMs: 30_000 } });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('every such request fails as a plugin failure and the neighbour is served', async () => {
    expectPluginFailed(await send(`${lab.url}/evil`));
    expect(await failures(lab, 'bad_return')).toBeGreaterThanOrEqual(1);
    await expectStillServes(lab);
  });

  // Regression (was a vulnerability): the phase call (then core/pipeline.ts) recorded host-side bad_return with instance -1 (plugin label "unknown") and gate.fault() is skipped for instance < 0, so the breaker never opens for a plugin that keeps returning refused operations.
  it('the fault names the plugin and trips its breaker', async () => {
    for (let i = 0; i < 4; i++) await send(`${lab.url}/evil`);
    expect(await failures(lab, 'bad_return', { plugin: 'evil' })).toBeGreaterThanOrEqual(3);
    const r = await send(`${lab.url}/evil`);
    expect(r.status).toBe(503);
    expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_UNAVAILABLE');
  });
});
