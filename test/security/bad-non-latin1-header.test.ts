// bad return: header values with characters node:http / undici refuse (U+0100 and up,
// other control characters). The host only rejects CR, LF and NUL, so the op is accepted
// and writeHead / dispatch throws later: the failure is misattributed (502 "upstream
// unavailable" or 500 "internal"), is not counted as a plugin fault and never trips the
// breaker, and for response headers the upstream was already called.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPluginFailed, expectStillServes, failures, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const CASES = {
  response: (pdk) => pdk.response.setHeader('x-a', 'caf\\u0100'),
  upstream: (pdk) => pdk.serviceRequest.setHeader('x-a', 'caf\\u0100'),
  exit: (pdk) => pdk.response.exit(200, 'x', { 'x-a': 'caf\\u0100' }),
  control: (pdk) => pdk.response.setHeader('x-a', 'a\\u0001b'),
};
export function access(pdk) { CASES[pdk.request.getQueryArg('case')](pdk); }
`);

describe('bad return: header values outside what HTTP allows (beyond CR/LF/NUL)', () => {
  let lab: Lab;
  let upstreamCalls = 0;
  beforeAll(async () => {
    lab = await startLab({
      evil: EVIL,
      upstream: (req, res) => {
        upstreamCalls++;
        req.resume();
        req.on('end', () => res.end('ok'));
      },
    });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('never puts the bytes on the wire and never takes the gateway down', async () => {
    for (const c of ['response', 'upstream', 'exit', 'control']) {
      const r = await send(`${lab.url}/evil?case=${c}`);
      expect(r.status).toBeGreaterThanOrEqual(500);
      expect(r.headers['x-a']).toBeUndefined();
    }
    await expectStillServes(lab);
  });

  // Regression (was a vulnerability): ops.ts headerValue() only rejects [\r\n\0]; values node/undici refuse (>U+00FF, C0 controls) pass validation and blow up in writeHead/dispatch: 502 ISG_ERR_UPSTREAM_UNAVAILABLE / 500 ISG_ERR_INTERNAL instead of a bad_return plugin failure (uncounted, no breaker, upstream already called).
  for (const c of ['response', 'upstream', 'exit', 'control']) {
    it(`${c}: refused as bad_return before anything is sent upstream`, async () => {
      const calls = upstreamCalls;
      const before = await failures(lab, 'bad_return');
      const r = await send(`${lab.url}/evil?case=${c}`);
      expectPluginFailed(r);
      expect(await failures(lab, 'bad_return')).toBe(before + 1);
      expect(upstreamCalls).toBe(calls);
    });
  }
});
