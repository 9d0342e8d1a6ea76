// escape: what async PDK calls hand a plugin, walked to a constructor: the promise, the
// value it resolves to, the error it rejects with. Each must be of the plugin's own realm
// (or have no prototype), never the runtime's realm or a host object.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const PROCESS = 'return typeof process === "undefined" ? undefined : process';
function probe(make) {
  try { const v = make(); return v === undefined ? 'undefined' : v === null ? 'null' : typeof v; }
  catch (e) { return 'E:' + e.name; }
}
export async function access(pdk) {
  const p = pdk.cache.set('obj', { list: [1, { a: 2 }] });
  const out = { promiseRealm: p.constructor === Promise && p instanceof Promise };
  await p;
  const v = await pdk.cache.get('obj');
  out.valueProto = Object.getPrototypeOf(v) === null;
  out.listRealm = Array.isArray(v.list) && v.list instanceof Array;
  out.nestedRealm = Object.getPrototypeOf(v.list[1]) === Object.prototype;
  out.viaPromise = probe(() => p.constructor.constructor(PROCESS)());
  out.viaList = probe(() => v.list.constructor.constructor(PROCESS)());
  try { await pdk.cache.get('x'.repeat(600)); } catch (e) { out.errorRealm = e instanceof RangeError; out.viaError = probe(() => e.constructor.constructor(PROCESS)()); }
  try { await pdk.crypto.digest('md5', 'x'); } catch (e) { out.rejectRealm = e instanceof Error; out.viaReject = probe(() => e.constructor.constructor(PROCESS)()); }
  pdk.response.setHeader('x-probe', encodeURIComponent(JSON.stringify(out)));
}
`);

describe('escape: constructor chains from async PDK values', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('promises, results and errors are of the plugin realm; no host object is reachable', async () => {
    const r = await attack(lab);
    expect(r.status, r.body).toBe(200);
    expect(JSON.parse(decodeURIComponent(String(r.headers['x-probe'])))).toEqual({
      promiseRealm: true,
      valueProto: true,
      listRealm: true,
      nestedRealm: true,
      viaPromise: 'undefined',
      viaList: 'undefined',
      errorRealm: true,
      viaError: 'undefined',
      rejectRealm: true,
      viaReject: 'undefined',
    });
    await expectStillServes(lab);
  });
});
