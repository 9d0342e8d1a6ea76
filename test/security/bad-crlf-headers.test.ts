// bad return: CR/LF/NUL in header values (response splitting, request smuggling)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const CASES = {
  response: (pdk) => pdk.response.setHeader('x-a', 'v\\r\\nx-injected: 1'),
  responseLf: (pdk) => pdk.response.addHeader('x-a', 'v\\nx-injected: 1'),
  upstream: (pdk) => pdk.serviceRequest.setHeader('x-a', 'v\\r\\nx-injected: 1'),
  exit: (pdk) => pdk.response.exit(200, 'ok', { 'x-a': 'v\\r\\n\\r\\nHTTP/1.1 200 OK\\r\\nx-injected: 1' }),
  nul: (pdk) => pdk.response.setHeader('x-a', 'v\\u0000x-injected'),
  nameSpace: (pdk) => pdk.response.setHeader('x-injected: 1\\r\\nx-a', 'v'),
};
export function access(pdk) { CASES[pdk.request.getQueryArg('case')](pdk); }
`);

describe(`bad return: CR/LF/NUL in header values (response splitting, request smuggling)`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, memoryMb: 16 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const c of ['response', 'responseLf', 'upstream', 'exit', 'nul', 'nameSpace']) {
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
