// bad return: response.exit with an invalid status (out of range, fractional, string,
// NaN), refused by the runtime's own check (threw) - and forged past it (see
// escape-tojson-forge for the host's second check).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const STATUS = { big: 999, zero: 0, negative: -200, fraction: 200.5, string: '200', nan: NaN, huge: 2 ** 40 + 200 };
export function access(pdk) { pdk.response.exit(STATUS[pdk.request.getQueryArg('case')], 'pwned'); }
`);

describe('bad return: response.exit with an invalid status', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const c of ['big', 'zero', 'negative', 'fraction', 'string', 'nan', 'huge']) {
    it(`${c}: 500 plugin failure (threw), the body never reaches the client`, async () => {
      const before = await failures(lab, 'threw', { plugin: 'evil' });
      const r = await attack(lab, `/evil?case=${c}`);
      expectPluginFailed(r);
      expect(r.body).not.toContain('pwned');
      expect(await failures(lab, 'threw', { plugin: 'evil' })).toBe(before + 1);
      await expectStillServes(lab);
    });
  }
});
