// async: a plugin makes async calls past the cap (32 per phase), catching each refusal and
// carrying on. The refusal comes at the call, in the isolate, before anything is encoded;
// the plugin ends as too_large whatever it catches, and its isolate keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPluginFailed, expectStillServes, failures, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export async function access(pdk) {
  const ps = [];
  for (let i = 0; i < 5000; i++) {
    try { ps.push(pdk.cache.get('k' + i).catch(() => null)); } catch {}
  }
  await Promise.all(ps);
  pdk.response.setHeader('x-made', String(ps.length));
}
`);

describe('async: a flood of async calls', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 500 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('ends as too_large; 32 calls were made, not more', async () => {
    expectPluginFailed(await send(`${lab.url}/evil`));
    expect(await failures(lab, 'too_large', { plugin: 'evil' })).toBe(1);
    expect(lab.logs.some((l) => /more than 32 async PDK calls in one phase/.test(String(l.msg)))).toBe(true);
    await expectStillServes(lab);
  });
});
