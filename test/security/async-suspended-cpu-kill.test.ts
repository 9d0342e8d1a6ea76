// async: request A of a tenant waits on an outbound call; meanwhile request B of the same
// tenant spins past its CPU limit and the watchdog disposes the isolate, A's frame with it.
// When A's answer comes, its chain is gone: A fails with a clear fault (no instance blamed,
// an error id), nothing crashes, and the tenant's next requests get a fresh isolate.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callingOutYaml, expectPluginFailed, expectStillServes, failures, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export async function access(pdk, config) {
  if (pdk.request.getHeader('x-mode') === 'spin') { for (;;) {} }
  const r = await pdk.http.request(config.up + '/slow');
  pdk.response.setHeader('x-waited', r.body);
}
`);

function slow(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/slow') setTimeout(() => res.end('done'), 600);
  else res.end('ok');
}

describe('async: a suspended chain whose isolate is killed meanwhile', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({
      evil: EVIL,
      upstream: slow,
      yaml: callingOutYaml(50),
    });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('the waiting request fails clearly, the spinning one as cpu, and the tenant serves again', async () => {
    const waiting = send(`${lab.url}/evil`);
    await new Promise((r) => setTimeout(r, 150));
    expectPluginFailed(await send(`${lab.url}/evil`, { headers: { 'x-mode': 'spin' } }));
    expectPluginFailed(await waiting);
    expect(await failures(lab, 'cpu', { plugin: 'evil' })).toBe(1);
    expect(lab.logs.some((l) => /the isolate this chain waited in was replaced meanwhile/.test(String(l.msg)))).toBe(true);
    const again = await send(`${lab.url}/evil`);
    expect(again.status).toBe(200);
    expect(again.headers['x-waited']).toBe('done');
    await expectStillServes(lab);
  });
});
