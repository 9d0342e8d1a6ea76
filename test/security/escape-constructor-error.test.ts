// escape: errors thrown by the runtime (a PDK misuse) and by V8 are caught and their
// constructor chains and stacks examined for host objects and host file paths.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, faultLogs, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
function grab(fn) { try { fn(); } catch (e) { return e; } }
export function access(pdk) {
  const errs = {
    pdkMisuse: grab(() => pdk.request.getHeader(42)),
    wrongPhase: grab(() => pdk.response.getRawBody()),
    v8: grab(() => null.x),
    stackOverflow: grab(function f() { f(); }),
  };
  const out = {};
  for (const [k, e] of Object.entries(errs)) {
    let proc;
    try { proc = e.constructor.constructor('return typeof process')(); } catch (x) { proc = 'E:' + x.name; }
    out[k] = { sameRealm: e instanceof Error && e.constructor.constructor === Function, proc, stack: String(e.stack), message: String(e.message) };
  }
  if (pdk.request.getQueryArg('throw') === '1') {
    const e = new Error('secret-detail /etc/passwd');
    throw e;
  }
  pdk.response.setHeader('x-probe', encodeURIComponent(JSON.stringify(out)));
}
`);

describe('escape: constructor chain and stacks via errors', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('errors are isolate errors whose stacks carry no host path', async () => {
    const r = await attack(lab);
    expect(r.status).toBe(200);
    const p = JSON.parse(decodeURIComponent(String(r.headers['x-probe'])));
    for (const k of ['pdkMisuse', 'wrongPhase', 'v8', 'stackOverflow']) {
      expect(p[k].sameRealm, k).toBe(true);
      expect(p[k].proc, k).toBe('undefined');
      expect(p[k].stack, k).not.toMatch(/\/tmp\/|node_modules|\.ts:|file:\/\//);
      expect(p[k].stack, k).not.toContain(process.cwd());
    }
    expect(p.pdkMisuse.message).toContain('must be a string');
    await expectStillServes(lab);
  });

  it('a thrown error fails the request with an id and no detail for the client', async () => {
    const before = await failures(lab, 'threw', { plugin: 'evil' });
    const r = await attack(lab, '/evil?throw=1');
    expectPluginFailed(r);
    expect(r.body).not.toContain('secret-detail');
    expect(await failures(lab, 'threw', { plugin: 'evil' })).toBe(before + 1);
    const f = faultLogs(lab).at(-1)!;
    expect(f.tenant).toBe('evil');
    expect(f.reason).toBe('threw');
    await expectStillServes(lab);
    expect((await send(`${lab.url}/evil`)).status).toBe(200);
  });
});
