// escape: constructor chains through promises, async functions, generators and the
// promise machinery the runtime uses to await a handler (then hijacking).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
function probe(make) {
  try { const v = make(); return v === undefined ? 'undefined' : typeof v; } catch (e) { return 'E:' + e.name; }
}
export async function access(pdk) {
  const p = Promise.resolve(1);
  const asyncFn = async function () {};
  const gen = function* () {};
  const out = {
    promise: probe(() => p.constructor.constructor('return typeof process === "undefined" ? undefined : process')()),
    asyncCtor: probe(() => asyncFn.constructor('return typeof process === "undefined" ? undefined : process')),
    genCtor: probe(() => gen.constructor('yield 1').constructor.constructor('return typeof require === "undefined" ? undefined : require')()),
    rejection: await (async () => { try { await Promise.reject(new TypeError('x')); } catch (e) { return e.constructor.constructor === Function; } })(),
  };
  // Replace the global then: the runtime must keep using the one it captured.
  const realThen = Promise.prototype.then;
  Promise.prototype.then = function (a, b) { globalThis.__thenHijacked = (globalThis.__thenHijacked || 0) + 1; return realThen.call(this, a, b); };
  await null;
  out.asyncCtorIsRealm = Object.getPrototypeOf(asyncFn).constructor.constructor === Function;
  pdk.response.setHeader('x-probe', encodeURIComponent(JSON.stringify(out)));
}
`);

describe('escape: constructor chain via promises', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('promise and async constructors stay in the isolate', async () => {
    const r = await attack(lab);
    expect(r.status).toBe(200);
    const p = JSON.parse(decodeURIComponent(String(r.headers['x-probe'])));
    expect(p.promise).toBe('undefined');
    expect(p.asyncCtor).toBe('function');
    expect(p.genCtor).toBe('undefined');
    expect(p.rejection).toBe(true);
    expect(p.asyncCtorIsRealm).toBe(true);
    await expectStillServes(lab);
    // a second request after the global then was replaced still works
    expect((await attack(lab)).status).toBe(200);
  });
});
