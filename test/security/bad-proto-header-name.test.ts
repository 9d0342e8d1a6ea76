// bad return: header name "__proto__" is a valid token, so ops.ts accepts it; on the
// host `h['__proto__']` is Object.prototype, so addHeader makes the upstream header
// object's prototype an array ([Object.prototype, value]), and undici then fails the
// request as "upstream unavailable". (Object.prototype itself is not polluted.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const CASES = {
  upAdd: (pdk) => pdk.serviceRequest.addHeader('__proto__', 'x-injected'),
  upSet: (pdk) => pdk.serviceRequest.setHeader('__proto__', 'x-injected'),
  rsAdd: (pdk) => pdk.response.addHeader('__proto__', 'x-injected'),
  exit: (pdk) => pdk.response.exit(200, 'ok', { ['__proto__']: 'x-injected', constructor: 'x-injected' }),
  ctor: (pdk) => pdk.serviceRequest.addHeader('constructor', 'x-injected'),
};
export function access(pdk) { CASES[pdk.request.getQueryArg('case')](pdk); }
`);

describe('bad return: __proto__ / constructor as header names', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('does not pollute the host: other tenants and requests are unaffected', async () => {
    for (const c of ['upAdd', 'upSet', 'rsAdd', 'exit', 'ctor']) {
      const r = await attack(lab, `/evil?case=${c}`);
      expect(r.status === 200 || r.status >= 500, `${c}: ${r.status}`).toBe(true);
      expect(({} as Record<string, unknown>)['x-injected']).toBeUndefined();
      expect(Object.getPrototypeOf({})).toBe(Object.prototype);
    }
    const good = await send(`${lab.url}/good`);
    expect(good.body).not.toContain('x-injected');
    await expectStillServes(lab);
  });

  // Regression (was a vulnerability): ops.ts headerName() accepts "__proto__"; sq.add reads h.__proto__ (Object.prototype) as a previous value and assigns an array to h.__proto__: the request fails as 502 ISG_ERR_UPSTREAM_UNAVAILABLE instead of a bad_return plugin fault. Use Object.create(null)/Map for header objects and reject __proto__.
  it('upAdd: refused as bad_return (500 plugin failure)', async () => {
    const before = await failures(lab, 'bad_return');
    expectPluginFailed(await send(`${lab.url}/evil?case=upAdd`));
    expect(await failures(lab, 'bad_return')).toBe(before + 1);
  });
});
