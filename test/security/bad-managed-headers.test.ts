// bad return: gateway-managed headers (content-length, transfer-encoding, connection, ...)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const CASES = {
  cl: (pdk) => pdk.response.setHeader('Content-Length', '0'),
  te: (pdk) => pdk.response.setHeader('transfer-encoding', 'chunked'),
  upCl: (pdk) => pdk.serviceRequest.setHeader('content-length', '100'),
  upTe: (pdk) => pdk.serviceRequest.addHeader('Transfer-Encoding', 'chunked'),
  exitCl: (pdk) => pdk.response.exit(200, 'hello', { 'content-length': '1' }),
  conn: (pdk) => pdk.response.setHeader('connection', 'close'),
  upgrade: (pdk) => pdk.serviceRequest.setHeader('upgrade', 'websocket'),
  clear: (pdk) => pdk.response.clearHeader('content-length'),
};
export function access(pdk) { CASES[pdk.request.getQueryArg('case')](pdk); }
`);

describe(`bad return: gateway-managed headers (content-length, transfer-encoding, connection, ...)`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, memoryMb: 16 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const c of ['cl', 'te', 'upCl', 'upTe', 'exitCl', 'conn', 'upgrade', 'clear']) {
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
