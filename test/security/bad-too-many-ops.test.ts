// bad return: more operations or bytes than OUTPUT_CAPS allow
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const CASES = {
  ops: (pdk) => { for (let i = 0; i < 1001; i++) pdk.response.addHeader('x-n', 'v'); },
  bytes: (pdk) => { const v = 'b'.repeat(15 * 1024); for (let i = 0; i < 285; i++) pdk.response.addHeader('x-b', v); },
  upstreamOps: (pdk) => { for (let i = 0; i < 1001; i++) pdk.serviceRequest.addHeader('x-l', 'v'); },
};
export function access(pdk) { CASES[pdk.request.getQueryArg('case')](pdk); }
`);

describe(`bad return: more operations or bytes than OUTPUT_CAPS allow`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, memoryMb: 16, cpuMs: 500 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const c of ['bytes', 'ops', 'upstreamOps']) {
    it(`${c}: 500 plugin failure, reason too_large, nothing of it reaches the client or the upstream`, async () => {
      const before = await failures(lab, 'too_large');
      const r = await attack(lab, `/evil?case=${c}`);
      expectPluginFailed(r);
      expect(await failures(lab, 'too_large')).toBe(before + 1);
      expect(r.headers['x-injected']).toBeUndefined();
      expect(JSON.stringify(r.headers)).not.toContain('injected');
      await expectStillServes(lab);
    });
  }
});
