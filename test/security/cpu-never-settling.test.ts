// cpu: a handler whose promise never settles (no timers exist to settle it)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, faultLogs, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export async function access(pdk) { await new Promise(() => {}); pdk.response.setHeader("x-never", "1"); }
`);

describe(`cpu: a handler whose promise never settles (no timers exist to settle it)`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 30 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('fails the request fast with outcome "wall"; the neighbour tenant is served meanwhile', async () => {
    const r = await attack(lab);
    expectPluginFailed(r);
    expect(r.ms).toBeLessThan(300);
    expect(await failures(lab, 'wall', { plugin: 'evil' })).toBe(1);
    const f = faultLogs(lab).find((l) => l.reason === 'wall');
    expect(f?.tenant).toBe('evil');
    expect(f?.plugin).toBe('evil');
    await expectStillServes(lab);
  });
});
