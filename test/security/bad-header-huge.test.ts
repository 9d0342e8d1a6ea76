// bad return: header values over OUTPUT_CAPS.maxHeaderBytes (16 KB), refused by the PDK call
// itself (too_large, before anything is encoded), and a header name no HTTP allows (the host
// refuses it: bad_return)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const CASES = {
  response: (pdk) => pdk.response.setHeader('x-big', 'a'.repeat(17 * 1024)),
  upstream: (pdk) => pdk.serviceRequest.setHeader('x-big', 'a'.repeat(17 * 1024)),
  exit: (pdk) => pdk.response.exit(200, 'x', { 'x-big': 'a'.repeat(17 * 1024) }),
  name: (pdk) => pdk.response.setHeader('x-' + 'n'.repeat(300), 'v'),
};
export function access(pdk) { CASES[pdk.request.getQueryArg('case')](pdk); }
`);

describe(`bad return: header values over OUTPUT_CAPS.maxHeaderBytes (16 KB)`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, memoryMb: 16 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  const OUTCOME: Record<string, string> = { response: 'too_large', upstream: 'too_large', exit: 'too_large', name: 'bad_return' };
  for (const c of ['response', 'upstream', 'exit', 'name']) {
    it(`${c}: 500 plugin failure, reason ${OUTCOME[c]}, nothing of it reaches the client or the upstream`, async () => {
      const before = await failures(lab, OUTCOME[c]);
      const r = await attack(lab, `/evil?case=${c}`);
      expectPluginFailed(r);
      expect(await failures(lab, OUTCOME[c])).toBe(before + 1);
      expect(r.headers['x-injected']).toBeUndefined();
      expect(JSON.stringify(r.headers)).not.toContain('injected');
      await expectStillServes(lab);
    });
  }
});
