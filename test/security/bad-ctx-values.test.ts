// bad return: pdk.ctx.shared holding a cycle or a BigInt
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const CASES = {
  cycle: (pdk) => { const a = {}; a.self = a; pdk.ctx.set('a', a); },
  bigint: (pdk) => { pdk.ctx.set('n', 10n ** 30n); },
  throwingGetter: (pdk) => { pdk.ctx.set('g', { get x() { throw new Error('boom'); } }); },
};
export function access(pdk) { CASES[pdk.request.getQueryArg('case')](pdk); }
`);

describe(`bad return: pdk.ctx.shared holding a cycle or a BigInt`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, memoryMb: 16 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const c of ['cycle', 'bigint', 'throwingGetter']) {
    it(`${c}: 500 plugin failure, reason bad_return, nothing of it reaches the client or the upstream`, async () => {
      const before = await failures(lab, 'bad_return');
      const r = await attack(lab, `/evil?case=${c}`);
      expectPluginFailed(r);
      expect(await failures(lab, 'bad_return')).toBe(before + 1);
      expect(r.headers['x-injected']).toBeUndefined();
      expect(JSON.stringify(r.headers)).not.toContain('injected');
      await expectStillServes(lab);
    });
  }
});
