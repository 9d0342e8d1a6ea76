// cpu / prototype trick: the plugin turns the array and object helpers a runtime would
// reach for into endless loops, hoping the runtime calls one outside the plugin's limit
// (while encoding the result, starting the next call, reading ctx). The runtime loops by
// index and calls only intrinsics it captured before plugin code ran, so nothing spins and
// the plugin's own requests keep working. (Done at module top level, the same trick only
// breaks the plugin's own bundle: the config load reports it, see the last test.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, plugin, startLab, type Lab } from './helpers.ts';

const TRAPS = `
const spin = function () { for (;;) {} };
Array.prototype.map = spin;
Array.prototype.forEach = spin;
Array.prototype.includes = spin;
Array.prototype.join = spin;
Array.prototype.push = spin;
Array.prototype[Symbol.iterator] = spin;
Object.keys = spin;
JSON.stringify = spin;
`;
const EVIL = plugin(`
let armed = false;
export function access(pdk) {
  if (!armed) { armed = true; ${'${TRAPS}'} }
  pdk.response.setHeader('x-evil', '1');
  pdk.ctx.set('k', 'v');
}
`.replace('${TRAPS}', TRAPS));

describe('cpu: array and object helpers replaced with endless loops at load time', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 50 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('the runtime never calls them: the plugin runs and answers quickly', async () => {
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const r = await attack(lab);
      expect(r.status).toBe(200);
      expect(r.headers['x-evil']).toBe('1');
      expect(Date.now() - t0).toBeLessThan(1_000);
    }
    await expectStillServes(lab);
  });

  it('at module top level the trick breaks only its own bundle, and the config load says so', async () => {
    await expect(startLab({ evil: plugin(`${TRAPS}\nexport function access() {}`), cpuMs: 50 })).rejects.toThrow(/plugin "evil" could not be loaded/);
  });
});
