// client.authenticate with forged or huge objects: a consumer id the tenant does not have,
// a real id with a forged username, tags or credential, and strings or arrays far past the
// caps. Each gets a clear error (in the plugin's realm, or the call's bad_return on the
// host); nothing is encoded past a cap, the consumer's chain is never taken on a forgery,
// and the neighbour tenant is served throughout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pluginSource, send } from '../helpers/gateway.ts';
import { startAuthLab, type AuthLab } from './auth-helpers.ts';

const EVIL = pluginSource('evil', `
const HUGE = 'x'.repeat(8 * 1024 * 1024);
const CASES: Record<string, () => [any, any]> = {
  unknown: () => [{ id: 'c-mallory' }, null],
  'forged-username': () => [{ id: 'c-alice', username: 'root' }, null],
  'forged-tags': () => [{ id: 'c-alice', tags: ['admin'] }, null],
  'stolen-credential': () => [{ id: 'c-bob' }, { id: 'k-alice' }],
  'unknown-credential': () => [{ id: 'c-alice' }, { id: 'k-nope' }],
  'huge-id': () => [{ id: HUGE }, null],
  'huge-username': () => [{ id: 'c-alice', username: HUGE }, null],
  'many-tags': () => [{ id: 'c-alice', tags: new Array(1e6).fill('t') }, null],
  'huge-tag': () => [{ id: 'c-alice', tags: [HUGE] }, null],
  'huge-credential': () => [null, { id: HUGE }],
  'proto-id': () => [{ id: '__proto__' }, null],
  'real': () => [{ id: 'c-alice' }, { id: 'k-alice', kind: 'key-auth' }],
};
export function access(pdk: any) {
  const which = pdk.request.getQueryArg('case');
  const [c, cr] = CASES[which]();
  if (pdk.request.getQueryArg('catch') === '1') {
    try { pdk.client.authenticate(c, cr); } catch (e: any) { pdk.response.setHeader('x-error', e.constructor.name + ': ' + e.message); }
  } else {
    pdk.client.authenticate(c, cr);
  }
}`, 100);

describe('security: client.authenticate with forged or huge objects', () => {
  let lab: AuthLab;
  beforeAll(async () => {
    lab = await startAuthLab(EVIL);
  }, 60_000);
  afterAll(async () => {
    await lab?.stop();
  });

  const attack = async (query: string) => {
    const [r, good] = await Promise.all([send(`${lab.gw.url}/evil?${query}`), send(`${lab.gw.url}/good`)]);
    expect(good.status).toBe(200);
    expect(good.headers['x-benign']).toBe('ok');
    return r;
  };

  it('the real consumer switches to its chain (the control case)', async () => {
    const r = await attack('case=real');
    expect(r.status).toBe(200);
    expect([r.headers['x-marker'], r.headers['x-marker-hf']]).toEqual(['alice', 'alice']);
  });

  for (const c of ['unknown', 'forged-username', 'forged-tags', 'stolen-credential', 'unknown-credential', 'proto-id']) {
    it(`${c}: the host refuses the operation; the request fails, nothing of the call applies`, async () => {
      const r = await attack(`case=${c}`);
      expect(r.status).toBe(500);
      expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
      expect(r.headers['x-marker']).toBeUndefined();
      expect(lab.lines.some((l) => l.reason === 'bad_return' && /^plugin fault: auth: /.test(String(l.msg)))).toBe(true);
    });
  }

  for (const [c, message] of [
    ['huge-id', 'RangeError: consumer.id must have 1 to 256 characters'],
    ['huge-username', 'RangeError: consumer.username must have 1 to 256 characters'],
    ['many-tags', 'RangeError: consumer.tags: at most 64 tags'],
    ['huge-tag', 'RangeError: consumer.tags[0] must have 1 to 256 characters'],
    ['huge-credential', 'RangeError: credential.id must have 1 to 256 characters'],
  ] as const) {
    it(`${c}: refused in the isolate with a clear error before anything is encoded`, async () => {
      const caught = await attack(`case=${c}&catch=1`);
      expect(caught.status).toBe(200);
      expect(caught.headers['x-error']).toBe(message);
      expect(caught.headers['x-marker']).toBe('anyone'); // no switch
      const thrown = await attack(`case=${c}`);
      expect(thrown.status).toBe(500);
    });
  }
});
