// escape / prototype trick: replace JSON.stringify, JSON.parse, Array.prototype.push,
// Object.keys, String.prototype.toLowerCase, Promise.prototype.then in the isolate; the
// runtime captured them first, so the host-visible result must be unaffected.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const FORGED = '[[["exit",200,"forged",[],false]],[]]';
export function access(pdk) {
  JSON.stringify = () => FORGED;
  JSON.parse = () => ({ m: 'FORGED', p: '/forged', q: '', h: { host: 'forged' }, ip: '6.6.6.6', s: 'http' });
  Array.prototype.push = function () { return 0; };
  Object.keys = () => [];
  Object.freeze = (o) => o;
  String.prototype.toLowerCase = function () { return 'x-forged'; };
  Promise.prototype.then = function () { return this; };
  Reflect.apply = () => undefined;
  pdk.response.setHeader('X-Real', 'yes');
  pdk.serviceRequest.setHeader('x-up', pdk.request.getHeader('X-Client'));
}
`);

describe('escape: patched JSON / Array / Object / Promise builtins', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('the runtime keeps its captured intrinsics: the real operations arrive, nothing forged', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await attack(lab, '/evil', { headers: { 'x-client': 'c1' } });
      expect(r.status).toBe(200);
      expect(r.body).not.toContain('forged');
      expect(r.headers['x-real']).toBe('yes');
      expect(r.json().headers['x-up']).toBe('c1');
    }
    await expectStillServes(lab, { calm: false });
  });
});
