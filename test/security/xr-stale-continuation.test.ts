// cross-request (same tenant): request 1's handler awaits a promise that never settles in
// its call (answered 500, outcome wall). Request 2 resolves it; request 1's continuation
// now runs inside request 2's call: the PDK it holds reads request 2 (another end user's
// headers) and its writes land in request 2's response and ctx. Defence: a call that ends
// pending disposes its isolate, so request 2 meets a fresh isolate with no continuation of
// request 1 in it (and, this plugin being what it is, waits in vain itself).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPluginFailed, expectStillServes, failures, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export async function access(pdk) {
  if (globalThis.wake) { const w = globalThis.wake; globalThis.wake = null; w(); await null; await null; await null; return; }
  await new Promise((r) => { globalThis.wake = r; });
  pdk.response.setHeader('x-stale', 'req1-saw:' + pdk.request.getHeader('x-user'));
  pdk.ctx.set('user', 'alice');
}
`);

describe('cross-request: a stale async continuation of an earlier request', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 200 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('request 1 fails fast as wall', async () => {
    expectPluginFailed(await send(`${lab.url}/evil`, { headers: { 'x-user': 'alice' } }));
    expect(await failures(lab, 'wall', { plugin: 'evil' })).toBe(1);
    await expectStillServes(lab);
  });

  // A call that ends pending ('wall') disposes its isolate, continuations and all.
  it("request 2 carries nothing of request 1's continuation", async () => {
    const r2 = await send(`${lab.url}/evil`, { headers: { 'x-user': 'bob' } });
    expect(r2.headers['x-stale']).toBeUndefined();
    expectPluginFailed(r2);
    expect(await failures(lab, 'wall', { plugin: 'evil' })).toBe(2);
  });
});
