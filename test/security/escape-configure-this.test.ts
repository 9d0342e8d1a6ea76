// escape: what configure(pdk, configs) is called with must lead nowhere but the plugin's
// own realm. Regression (found while building it): called as a method of the runtime's
// module record, configure got that record as `this` (its realm record, pdk, handlers,
// the other instances' data); it is now called as a plain function. The configs array and
// its elements are the plugin realm's (the array) or prototype-less (the configs), and
// configure's pdk functions are that realm's too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStillServes, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
let report = {};
export function configure(pdk, configs) {
  const self = this;
  report = {
    self: self === undefined ? 'undefined' : self === globalThis ? 'global' : 'leaked: ' + Object.keys(self).join(','),
    arrayRealm: Object.getPrototypeOf(configs) === Array.prototype,
    configProto: Object.getPrototypeOf(configs[0]) === null,
    fnRealm: pdk.log.info.constructor === Function && pdk.node.getId.constructor === Function,
    caller: (() => { try { return String(configure.caller); } catch (e) { return 'refused'; } })(),
  };
}
export function access(pdk) { pdk.response.exit(200, report); }
`);

describe("escape: configure's this, arguments and pdk", () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, config: { a: 1 } });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it("reach only the plugin's own realm", async () => {
    const r = await send(`${lab.url}/evil`);
    expect(r.status).toBe(200);
    const got = r.json();
    expect(['undefined', 'global']).toContain(got.self);
    expect(got.arrayRealm).toBe(true);
    expect(got.configProto).toBe(true);
    expect(got.fnRealm).toBe(true);
    expect(got.caller === 'null' || got.caller === 'refused').toBe(true);
    await expectStillServes(lab);
  });
});
