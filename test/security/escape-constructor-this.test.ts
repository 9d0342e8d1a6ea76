// escape: `this.constructor.constructor('return process')()` and friends must only ever
// reach the isolate's own Function, never the host's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
function probe(make) {
  try { const v = make(); return v === undefined ? 'undefined' : typeof v === 'object' && v !== null ? 'object:' + Object.keys(v).slice(0, 20).join('/') : typeof v; }
  catch (e) { return 'E:' + e.name; }
}
export function access(pdk) {
  const self = this;
  const out = {
    thisType: typeof self,
    process: probe(() => ({}).constructor.constructor('return process')()),
    processViaThis: probe(() => (self ?? globalThis).constructor.constructor('return process')()),
    require: probe(() => Function('return typeof require === "undefined" ? undefined : require')()),
    globalKeys: probe(() => Function('return this')()),
    hostFnSource: String(({}).constructor.constructor).slice(0, 60),
    evalProcess: probe(() => eval('typeof process === "undefined" ? undefined : process')),
  };
  pdk.response.setHeader('x-probe', encodeURIComponent(JSON.stringify(out)));
}
`);

describe('escape: constructor chain from this / plain objects', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('reaches only the isolate Function: no process, no require', async () => {
    const r = await attack(lab);
    expect(r.status).toBe(200);
    const p = JSON.parse(decodeURIComponent(String(r.headers['x-probe'])));
    expect(p.process).toBe('E:ReferenceError');
    expect(p.processViaThis).toBe('E:ReferenceError');
    expect(p.require).toBe('undefined');
    expect(p.evalProcess).toBe('undefined');
    expect(p.hostFnSource).toContain('[native code]');
    const all = JSON.stringify(p);
    for (const word of ['process', 'require', 'Buffer', 'module', 'ivm', '__isg']) expect(p.globalKeys).not.toContain(word);
    expect(all).not.toMatch(/node_modules|\/tmp\//);
    expect(all).not.toContain(process.cwd());
    await expectStillServes(lab);
  });
});
