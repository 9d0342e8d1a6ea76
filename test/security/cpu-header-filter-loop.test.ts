// cpu: an infinite loop in headerFilter, i.e. inside undici's response-headers callback,
// after the upstream already answered.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) { pdk.serviceRequest.setHeader('x-from-access', '1'); }
export function headerFilter(pdk) { for (;;) {} }
`);

describe('cpu: a loop in headerFilter', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 30 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('answers 500 plugin failure (not a half-sent upstream response), outcome cpu', async () => {
    const r = await attack(lab);
    expectPluginFailed(r);
    expect(r.body).not.toContain('x-from-access');
    expect(r.ms).toBeLessThan(1500);
    expect(await failures(lab, 'cpu', { plugin: 'evil' })).toBe(1);
    await expectStillServes(lab);
  });
});
