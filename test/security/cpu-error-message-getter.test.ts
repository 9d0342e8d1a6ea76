// cpu: a loop in the getter of a thrown error's message (read by the runtime's describe())
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, faultLogs, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) { const e = new Error("x"); Object.defineProperty(e, "message", { get() { for (;;) {} } }); throw e; }
`);

describe(`cpu: a loop in the getter of a thrown error's message (read by the runtime's describe())`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 30 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('fails the request fast with outcome "cpu"; the neighbour tenant is served meanwhile', async () => {
    const r = await attack(lab);
    expectPluginFailed(r);
    expect(r.ms).toBeLessThan(1500);
    expect(await failures(lab, 'cpu', { plugin: 'evil' })).toBe(1);
    const f = faultLogs(lab).find((l) => l.reason === 'cpu');
    expect(f?.tenant).toBe('evil');
    expect(f?.plugin).toBe('evil');
    await expectStillServes(lab);
  });
});
