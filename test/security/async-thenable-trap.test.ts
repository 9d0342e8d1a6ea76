// async: thenables where the runtime settles promises. A plugin plants `then` on its own
// Object.prototype so that a cache result would be a thenable (resolving the promise with
// it would call the plugin's then, and a then that never calls back would hang the chain);
// it caches values that are promises, thenables and functions. Results come without a
// prototype, so they never are thenables; what is cached is the JSON the isolate's own
// encoder made (functions and promises encode to nothing), never a plugin object.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStillServes, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export async function access(pdk) {
  await pdk.cache.set('obj', { a: 1 });
  await pdk.cache.set('promise', Promise.resolve(5));
  await pdk.cache.set('thenable', { then(r) { r(6); }, b: 2 });
  await pdk.cache.set('fn', () => 7);
  Object.prototype.then = function () { /* never calls back */ };
  const obj = await pdk.cache.get('obj');
  delete Object.prototype.then;
  const p = await pdk.cache.get('promise');
  const t = await pdk.cache.get('thenable');
  const f = await pdk.cache.get('fn');
  pdk.response.setHeader('x-got', JSON.stringify([obj.a, p, t, f === undefined ? 'undefined' : f]));
}
`);

describe('async: thenable traps around settled promises', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 200 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('the chain finishes; cached values are plain JSON', async () => {
    const r = await send(`${lab.url}/evil`);
    expect(r.status, r.body).toBe(200);
    expect(JSON.parse(r.headers['x-got'] as string)).toEqual([1, {}, { b: 2 }, 'undefined']); // a function encodes to null: set(key, null) caches nothing
    await expectStillServes(lab);
  });
});
