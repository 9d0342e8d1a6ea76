// escape: dynamic import(), require, process.env, fs: module loading and host APIs must
// not exist in the isolate.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
async function attempt(fn) { try { const v = await fn(); return 'ok:' + typeof v; } catch (e) { return 'E:' + e.name + ':' + String(e.message).slice(0, 60); } }
export async function access(pdk) {
  const spec = (s) => s; // keep esbuild from resolving the specifiers
  const out = {
    importFs: await attempt(() => import(spec('node:fs'))),
    importFile: await attempt(() => import(spec('file:///etc/passwd'))),
    importData: await attempt(() => import(spec('data:text/javascript,export default globalThis.process'))),
    requireFs: await attempt(() => globalThis['req' + 'uire']('fs')),
    processEnv: await attempt(() => globalThis['pro' + 'cess'].env),
    fnProcess: await attempt(() => Function('return process.env')()),
    importMeta: await attempt(() => Function('return import.meta')()),
  };
  pdk.response.setHeader('x-probe', encodeURIComponent(JSON.stringify(out)));
}
`);

describe('escape: import(), require, process, fs', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('every attempt fails inside the isolate', async () => {
    const r = await attack(lab);
    expect(r.status).toBe(200);
    const p = JSON.parse(decodeURIComponent(String(r.headers['x-probe']))) as Record<string, string>;
    for (const [k, v] of Object.entries(p)) expect(v, k).toMatch(/^E:/);
    expect(JSON.stringify(p)).not.toMatch(/root:/);
    expect(JSON.stringify(p)).not.toContain(process.cwd()); // the host's own path
    await expectStillServes(lab);
  });
});
