// bad return: response.exit(100 | 101 | 103, ...) was accepted (the PDK allowed 100-599) and
// written as the FINAL response. A client or a front proxy treats a 1xx as interim and
// takes the NEXT response on the keep-alive connection as the answer: response desync
// (one client's request answered with the response to the next request, possibly another
// user's or another tenant's on a shared front connection); 101 may switch a front proxy
// into tunnel mode.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, failures, plugin, rawExchange, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) { pdk.response.exit(Number(pdk.request.getQueryArg('status')), 'PLUGINBODY'); }
`);

function statusLines(raw: string): number[] {
  return [...raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

describe('bad return: response.exit with an informational (1xx) status', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('exit(204) sends no body bytes that could be read as a next response', async () => {
    const raw = await rawExchange(lab.port, 'GET /evil?status=204 HTTP/1.1\r\nHost: a\r\n\r\nGET /good HTTP/1.1\r\nHost: a\r\n\r\n', 600);
    expect(statusLines(raw)).toEqual([204, 200]);
    expect(raw).not.toContain('PLUGINBODY');
    await expectStillServes(lab);
  });

  // Regression (was a vulnerability): exit accepts 100-199 (runtime and host both check 100..599); node writes a 1xx as the final response, so the following response on the connection is taken as this request's answer (response desync). Exit should require 200-599 (or refuse 1xx as bad_return).
  for (const status of [100, 101, 103]) {
    it(`exit(${status}) is refused: the client gets a final status for its own request`, async () => {
      const raw = await rawExchange(lab.port, `GET /evil?status=${status} HTTP/1.1\r\nHost: a\r\n\r\nGET /good HTTP/1.1\r\nHost: a\r\n\r\n`, 600);
      const lines = statusLines(raw);
      expect(lines[0]).toBeGreaterThanOrEqual(200);
      expect(lines[0]).toBe(500);
      const before = await failures(lab, 'threw', { plugin: 'evil' });
      const r = await attack(lab, `/evil?status=${status}`);
      expect(r.status).toBe(500);
      // refused by the PDK call itself (SECURITY.md, outcome threw), before any operation exists
      expect(await failures(lab, 'threw', { plugin: 'evil' })).toBe(before + 1);
    });
  }
});
