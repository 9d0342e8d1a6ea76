import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** Runs the cache operation the request names and answers with what it got, as JSON in x-out. */
const CACHER = pluginSource(
  'cacher',
  `
export async function access(pdk: any) {
  const op = pdk.request.getHeader('x-op');
  const key = pdk.request.getHeader('x-key') ?? 'k';
  const raw = pdk.request.getHeader('x-value');
  const value = raw === undefined ? undefined : JSON.parse(raw);
  const opts = pdk.request.getHeader('x-opts');
  let out: any;
  if (op === 'set') out = await pdk.cache.set(key, value, opts === undefined ? undefined : JSON.parse(opts));
  else if (op === 'get') { const v = await pdk.cache.get(key); out = v === undefined ? '<undefined>' : v; }
  else if (op === 'delete') out = await pdk.cache.delete(key);
  else if (op === 'probe') out = await pdk.cache.probe(key);
  else if (op === 'mutate') { const v = await pdk.cache.get(key); v.changed = true; out = await pdk.cache.get(key); }
  else if (op === 'badkey') { try { await pdk.cache.get('x'.repeat(600)); } catch (e: any) { out = e.name + ': ' + e.message; } }
  pdk.response.exit(200, { out });
}`,
);

describe('pdk.cache', () => {
  let up: Upstream;
  let gw: TestGateway;
  const op = async (tenant: string, headers: Record<string, string>) => {
    const r = await send(`${gw.url}/${tenant}`, { headers });
    expect(r.status, r.body).toBe(200);
    return r.json().out;
  };

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(
      `
sandbox: { breaker: { faults: 100000 }, cache: { maxEntries: 4, maxBytes: 100000 } }
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/t1] }]
    plugins: [{ name: cacher, path: ./cacher.ts }]
  - name: t2
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/t2] }]
    plugins: [{ name: cacher, path: ./cacher.ts }]
`,
      { 'cacher.ts': CACHER },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('keeps JSON values, per tenant', async () => {
    for (const v of [{ a: [1, 2, { b: null }] }, 'text', 42, [true, false]]) {
      await op('t1', { 'x-op': 'set', 'x-key': 'v', 'x-value': JSON.stringify(v) });
      expect(await op('t1', { 'x-op': 'get', 'x-key': 'v' })).toEqual(v);
    }
    expect(await op('t2', { 'x-op': 'get', 'x-key': 'v' })).toBe('<undefined>');
  });

  it('hands out copies: changing a value read does not change the cache', async () => {
    await op('t1', { 'x-op': 'set', 'x-key': 'm', 'x-value': '{"n":1}' });
    expect(await op('t1', { 'x-op': 'mutate', 'x-key': 'm' })).toEqual({ n: 1 });
  });

  it('expires by ttl (seconds) and tells the ttl left by probe', async () => {
    await op('t1', { 'x-op': 'set', 'x-key': 'ttl', 'x-value': '"soon"', 'x-opts': '{"ttl":0.5}' });
    const p = await op('t1', { 'x-op': 'probe', 'x-key': 'ttl' });
    expect(p.value).toBe('soon');
    expect(p.negative).toBe(false);
    expect(p.ttl).toBeGreaterThan(0);
    expect(p.ttl).toBeLessThanOrEqual(0.5);
    await new Promise((r) => setTimeout(r, 600));
    expect(await op('t1', { 'x-op': 'get', 'x-key': 'ttl' })).toBe('<undefined>');
    expect(await op('t1', { 'x-op': 'probe', 'x-key': 'ttl' })).toBeNull();
  });

  it('caches a miss for negTtl: get answers null, probe says negative', async () => {
    await op('t1', { 'x-op': 'set', 'x-key': 'neg', 'x-value': 'null', 'x-opts': '{"negTtl":0.5}' });
    expect(await op('t1', { 'x-op': 'get', 'x-key': 'neg' })).toBeNull();
    expect(await op('t1', { 'x-op': 'probe', 'x-key': 'neg' })).toMatchObject({ negative: true, value: null });
    await new Promise((r) => setTimeout(r, 600));
    expect(await op('t1', { 'x-op': 'get', 'x-key': 'neg' })).toBe('<undefined>');
  });

  it('deletes', async () => {
    await op('t1', { 'x-op': 'set', 'x-key': 'd', 'x-value': '1' });
    await op('t1', { 'x-op': 'delete', 'x-key': 'd' });
    expect(await op('t1', { 'x-op': 'get', 'x-key': 'd' })).toBe('<undefined>');
  });

  it('is bounded by sandbox.cache.maxEntries: the least recently used goes first', async () => {
    for (let i = 0; i < 6; i++) await op('t2', { 'x-op': 'set', 'x-key': `e${i}`, 'x-value': String(i) });
    expect(await op('t2', { 'x-op': 'get', 'x-key': 'e0' })).toBe('<undefined>');
    expect(await op('t2', { 'x-op': 'get', 'x-key': 'e1' })).toBe('<undefined>');
    expect(await op('t2', { 'x-op': 'get', 'x-key': 'e5' })).toBe(5);
  });

  it('refuses a key over the cap with an error of the plugin realm', async () => {
    expect(await op('t1', { 'x-op': 'badkey' })).toBe('RangeError: cache key of 600 characters exceeds 512');
  });
});
