// bad return: pdk.ctx.shared over OUTPUT_CAPS.maxCtxBytes (64 KB)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const CASES = {
  big: (pdk) => { pdk.ctx.set('big', 'c'.repeat(65 * 1024)); },
  many: (pdk) => { for (let i = 0; i < 9000; i++) pdk.ctx.set('k' + i, 'vvvv'); },
  // encoded only up to the cap: its 32 MiB never turn into JSON
  huge: (pdk) => { pdk.ctx.set('huge', { data: 'h'.repeat(32 * 1024 * 1024) }); },
};
export function access(pdk) { CASES[pdk.request.getQueryArg('case')](pdk); }
`);

describe(`bad return: pdk.ctx.shared over OUTPUT_CAPS.maxCtxBytes (64 KB)`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 200, memoryMb: 128 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const c of ['big', 'many', 'huge']) {
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
