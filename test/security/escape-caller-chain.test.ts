// escape: sloppy-mode fn.caller / arguments.callee.caller from the plugin's handler up
// into the runtime's dispatcher (which holds ops, the watchdog deadline cells, the chain).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) {
  const out = {};
  try { out.handlerCaller = String(access.caller); } catch (e) { out.handlerCaller = 'E:' + e.name; }
  try { out.getHeaderCaller = String(pdk.request.getHeader.caller); } catch (e) { out.getHeaderCaller = 'E:' + e.name; }
  try { out.arguments = String(pdk.request.getHeader.arguments); } catch (e) { out.arguments = 'E:' + e.name; }
  // a getter run by the runtime (str() reads typeof only, so use toString via header value)
  let seen = 'none';
  const sneaky = { toString() { try { seen = String(sneaky.toString.caller); } catch (e) { seen = 'E:' + e.name; } return 'v'; } };
  try { pdk.response.setHeader('x-a', sneaky); } catch (e) { seen = seen + '/thrown:' + e.name; }
  out.fromRuntime = seen;
  pdk.response.setHeader('x-probe', encodeURIComponent(JSON.stringify(out)));
}
`);

describe('escape: caller chains into the runtime', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('the runtime functions are strict: no caller, no arguments', async () => {
    const r = await attack(lab);
    expect(r.status).toBe(200);
    const p = JSON.parse(decodeURIComponent(String(r.headers['x-probe']))) as Record<string, string>;
    expect(p.handlerCaller).toBe('null');
    expect(p.getHeaderCaller).toMatch(/^E:TypeError|^null$/);
    expect(p.arguments).toMatch(/^E:TypeError|^null$/);
    expect(p.fromRuntime).not.toContain('function');
    expect(JSON.stringify(p)).not.toMatch(/\$deadline|\$current|ops|callSeq/);
    await expectStillServes(lab);
  });
});
