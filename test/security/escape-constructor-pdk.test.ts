// escape: walk from the PDK objects, its functions, the config object and values the PDK
// returns to a constructor, hoping one of them is a host object (a proxied Reference).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
function probe(make) {
  try { const v = make(); return v === undefined ? 'undefined' : v === null ? 'null' : typeof v === 'object' ? 'object' : typeof v; }
  catch (e) { return 'E:' + e.name; }
}
export function access(pdk, config) {
  const F = (x) => x.constructor.constructor;
  const out = {
    pdk: probe(() => F(pdk)('return typeof process === "undefined" ? undefined : process')()),
    fn: probe(() => pdk.request.getHeader.constructor('return typeof process === "undefined" ? undefined : process')()),
    headers: probe(() => F(pdk.request.getHeaders())('return typeof process === "undefined" ? undefined : process')()),
    config: probe(() => F(config)('return typeof process === "undefined" ? undefined : process')()),
    protoOfPdk: Object.getPrototypeOf(pdk) === Object.prototype,
    sameRealm: pdk.request.getHeader.constructor === Function,
    bareConfig: Object.getPrototypeOf(config) === null && Object.getPrototypeOf(pdk.request.getHeaders()) === null,
    frozen: Object.isFrozen(pdk) && Object.isFrozen(pdk.request) && Object.isFrozen(pdk.response),
    ownKeys: Reflect.ownKeys(pdk).map(String),
    fnProps: Object.getOwnPropertyNames(pdk.request.getHeader),
    mutatePdk: probe(() => { 'use strict'; pdk.response.exit = () => {}; return 'mutated'; }),
  };
  pdk.response.setHeader('x-probe', encodeURIComponent(JSON.stringify(out)));
}
`);

describe('escape: constructor chain via pdk objects and config', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, config: { nested: { a: 1 } } });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('every PDK value belongs to the isolate realm; no host object is reachable', async () => {
    const r = await attack(lab);
    expect(r.status).toBe(200);
    const p = JSON.parse(decodeURIComponent(String(r.headers['x-probe'])));
    expect(p.pdk).toBe('undefined');
    expect(p.fn).toBe('undefined');
    // Headers and config have no prototype at all (a planted getter cannot answer for a
    // missing key), so their chain ends at once.
    expect(['undefined', 'E:TypeError']).toContain(p.headers);
    expect(['undefined', 'E:TypeError']).toContain(p.config);
    expect(p.sameRealm).toBe(true);
    expect(p.bareConfig).toBe(true);
    expect(p.frozen).toBe(true);
    expect(p.ownKeys.sort()).toEqual(['cache', 'client', 'counters', 'crypto', 'ctx', 'http', 'log', 'node', 'request', 'response', 'router', 'service', 'serviceRequest', 'serviceResponse']);
    expect(p.fnProps.sort()).toEqual(['length', 'name']);
    expect(p.mutatePdk).toBe('E:TypeError');
    await expectStillServes(lab);
  });
});
