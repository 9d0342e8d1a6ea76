// async: a plugin tries to park huge values in the cache. A value over the argument cap is
// refused in the isolate before it is encoded whole (the plugin ends as too_large, even if
// it catches); values under it fill the tenant's cache only up to its byte bound, the
// least recently used going first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectPluginFailed, expectStillServes, failures, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export async function access(pdk) {
  const mode = pdk.request.getHeader('x-mode');
  if (mode === 'huge') {
    try { await pdk.cache.set('big', 'x'.repeat(2 * 1024 * 1024)); } catch {}
    return;
  }
  if (mode === 'huge-object') {
    const o = {};
    for (let i = 0; i < 3000; i++) o['k' + i] = 'y'.repeat(1000);
    try { await pdk.cache.set('big', o); } catch {}
    return;
  }
  if (mode === 'fill') {
    for (let i = 0; i < 24; i++) await pdk.cache.set('fill' + i, 'z'.repeat(900 * 1024));
    return;
  }
  const first = await pdk.cache.get('fill0');
  const last = await pdk.cache.get('fill23');
  pdk.response.setHeader('x-first', String(first === undefined ? 'gone' : first.length));
  pdk.response.setHeader('x-last', String(last === undefined ? 'gone' : last.length));
}
`);

describe('async: huge cache values', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 500, memoryMb: 64 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('a value over the cap fails the plugin as too_large, caught or not', async () => {
    expectPluginFailed(await send(`${lab.url}/evil`, { headers: { 'x-mode': 'huge' } }));
    expectPluginFailed(await send(`${lab.url}/evil`, { headers: { 'x-mode': 'huge-object' } }));
    expect(await failures(lab, 'too_large', { plugin: 'evil' })).toBe(2);
    await expectStillServes(lab);
  });

  it('values under the cap fill the cache only to its byte bound (16 MB by default)', async () => {
    expect((await send(`${lab.url}/evil`, { headers: { 'x-mode': 'fill' } })).status).toBe(200);
    const r = await send(`${lab.url}/evil`);
    expect(r.headers['x-first']).toBe('gone');
    expect(r.headers['x-last']).toBe(String(900 * 1024));
    await expectStillServes(lab);
  });
});
