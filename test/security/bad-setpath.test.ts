// bad return: serviceRequest.setPath/setRawQuery with an authority, no leading slash, spaces or fragments
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const CASES = {
  noSlash: (pdk) => pdk.serviceRequest.setPath('evil.example/x'),
  absolute: (pdk) => pdk.serviceRequest.setPath('http://169.254.169.254/latest/meta-data'),
  empty: (pdk) => pdk.serviceRequest.setPath(''),
  space: (pdk) => pdk.serviceRequest.setPath('/a HTTP/1.1\\r\\nx-injected: 1'),
  query: (pdk) => pdk.serviceRequest.setPath('/a?b=1'),
  hash: (pdk) => pdk.serviceRequest.setPath('/a#b'),
  rawQuery: (pdk) => pdk.serviceRequest.setRawQuery('a=1 HTTP/1.1\\r\\nx-injected: 1'),
};
export function access(pdk) { CASES[pdk.request.getQueryArg('case')](pdk); }
`);

describe(`bad return: serviceRequest.setPath/setRawQuery with an authority, no leading slash, spaces or fragments`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, memoryMb: 16 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const c of ['noSlash', 'absolute', 'empty', 'space', 'query', 'hash', 'rawQuery']) {
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
