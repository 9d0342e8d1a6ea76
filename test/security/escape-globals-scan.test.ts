// escape: scan the global object (own and inherited, symbols too) for anything of
// isolated-vm or the host: ivm, Reference, ExternalCopy, __isg_shared, process, the
// SharedArrayBuffer of the watchdog; and the builtins the lockdown removes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) {
  const names = new Set();
  for (let o = globalThis; o !== null; o = Object.getPrototypeOf(o)) for (const k of Reflect.ownKeys(o)) names.add(String(k));
  const suspicious = [];
  for (const k of names) {
    let v;
    try { v = globalThis[k]; } catch { continue; }
    if (v instanceof SharedArrayBufferLike) suspicious.push(k);
    if (typeof v === 'function' && !String(v).includes('[native code]') && !String(v).startsWith('class')) suspicious.push(k);
  }
  const byName = {};
  for (const k of ['ivm', '_ivm', 'Reference', 'ExternalCopy', 'Isolate', 'Context', 'Callback', '__isg_shared', '__isg_probe',
    '__isg_exports', '$shared', 'process', 'require', 'module', 'Buffer', 'global', 'setTimeout', 'setImmediate', 'fetch',
    'WebAssembly', 'SharedArrayBuffer', 'Atomics', 'FinalizationRegistry']) byName[k] = typeof globalThis[k];
  pdk.response.setHeader('x-probe', encodeURIComponent(JSON.stringify({ byName, suspicious, count: names.size })));
}
const SharedArrayBufferLike = typeof SharedArrayBuffer === 'function' ? SharedArrayBuffer : function () {};
`);

describe('escape: globalThis scan for isolated-vm and host objects', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('finds nothing of isolated-vm or the host, and the locked-down builtins are gone', async () => {
    const r = await attack(lab);
    expect(r.status).toBe(200);
    const p = JSON.parse(decodeURIComponent(String(r.headers['x-probe'])));
    for (const [k, t] of Object.entries(p.byName)) expect(t, k).toBe('undefined');
    expect(p.suspicious).toEqual([]);
    await expectStillServes(lab);
  });
});
