// escape / prototype trick: a plugin plants Array.prototype.toJSON hoping it runs inside
// the runtime's encoding of the call result, to rewrite the string the host parses. The
// runtime encodes its result with its own encoder (no toJSON, no prototype lookups), so
// the forgery never reaches the host: the real operations of the call are applied.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const FORGED = {
  status: [['exit', 999, 'pwned', [], false]],
  managed: [['rs.set', 'content-length', '0'], ['rs.set', 'transfer-encoding', 'chunked']],
  crlf: [['rs.set', 'x-a', 'v\\r\\nset-cookie: admin=1']],
  phase: [['rs.body', 'replaced-in-access']],
  unknown: [['fs.read', '/etc/passwd']],
  shape: 'not-an-array',
  faults: 'FAULTS',
};
export function access(pdk) {
  const which = pdk.request.getQueryArg('forge');
  Array.prototype.toJSON = function () {
    delete Array.prototype.toJSON; // once, for the outer [ops, faults]
    if (which === 'faults') return [[], [[0, 'cpu', 'blame'], [999, 'threw', 'x']]];
    const ops = FORGED[which];
    return typeof ops === 'string' ? ops : [ops, []];
  };
  pdk.response.setHeader('x-real', '1');
}
`);

describe('escape: Array.prototype.toJSON forges the result string', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const forge of ['status', 'managed', 'crlf', 'phase', 'unknown', 'shape', 'faults']) {
    it(`a forged result (${forge}) never replaces the real one`, async () => {
      const before = await failures(lab, 'bad_return');
      const r = await attack(lab, `/evil?forge=${forge}`);
      expect(r.status).toBe(200);
      expect(r.headers['x-real']).toBe('1');
      expect(r.body).not.toContain('pwned');
      expect(r.headers['set-cookie']).toBeUndefined();
      expect(await failures(lab, 'bad_return')).toBe(before);
      await expectStillServes(lab);
    });
  }

  it('the gateway still answers normally once the trick is gone', async () => {
    const r = await send(`${lab.url}/calm`);
    expect(r.status).toBe(200);
  });
});
