import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, clearOfWindowStart, echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** Runs the counters call the request's x-case names and answers what it resolved to or the error it got. */
const MANY = pluginSource(
  'many',
  `
const CASES: Record<string, (pdk: any) => Promise<unknown>> = {
  ok: (pdk) => pdk.counters.incrementMany([{ key: 'a', windowSeconds: 60 }, { key: 'a', by: 2, windowSeconds: 3600 }, { key: 'b', by: 0 }]),
  cluster: (pdk) => pdk.counters.incrementMany([{ key: 'c', windowSeconds: 60 }], { cluster: true }),
  one: (pdk) => pdk.counters.increment('c', 1, 60, { cluster: true }),
  empty: (pdk) => pdk.counters.incrementMany([]),
  seventeen: (pdk) => pdk.counters.incrementMany(Array.from({ length: 17 }, (_, i) => ({ key: 'k' + i }))),
  huge: (pdk) => pdk.counters.incrementMany(Array.from({ length: 100000 }, () => ({ key: 'k' }))),
  notArray: (pdk) => pdk.counters.incrementMany({ length: 1, 0: { key: 'a' } }),
  notObject: (pdk) => pdk.counters.incrementMany(['a']),
  negative: (pdk) => pdk.counters.incrementMany([{ key: 'a', by: -1 }]),
  longKey: (pdk) => pdk.counters.incrementMany([{ key: 'x'.repeat(600) }]),
  badOpt: (pdk) => pdk.counters.incrementMany([{ key: 'a' }], { cluster: 'yes' }),
  badWindow: (pdk) => pdk.counters.incrementMany([{ key: 'a', windowSeconds: 86401 }]),
  // A getter that changes the key after it was read once: the host counts what was read.
  getter: (pdk) => { let n = 0; return pdk.counters.incrementMany([{ get key() { n++; return n === 1 ? 'g' : 'x'.repeat(10000); } }]); },
  proxy: (pdk) => pdk.counters.incrementMany(new Proxy([{ key: 'p' }], {})),
};
export async function access(pdk: any) {
  let out: unknown;
  try {
    out = { r: await CASES[pdk.request.getHeader('x-case')](pdk) };
  } catch (e: any) {
    out = { error: e.constructor.name + ': ' + e.message };
  }
  pdk.response.exit(200, out);
}`,
);

describe('pdk.counters.incrementMany', () => {
  let up: Upstream;
  let gw: TestGateway;
  const run = async (c: string, path = '/t1') => (await send(`${gw.url}${path}`, { headers: { 'x-case': c } })).json();

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/t1] }]
    plugins: [{ name: many, path: ./many.ts }]
  - name: t2
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/t2] }]
    plugins: [{ name: many, path: ./many.ts }]
`, { 'many.ts': MANY });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('counts every item in one call, in order, each in its own window; per tenant', async () => {
    // Two calls either side of a minute's start would see the 60 s window begin again (seen in CI: [1, 4, 0]).
    await clearOfWindowStart(60_000);
    expect((await run('ok')).r).toEqual([1, 2, 0]);
    expect((await run('ok')).r).toEqual([2, 4, 0]);
    expect((await run('ok', '/t2')).r).toEqual([1, 2, 0]);
  });

  it('cluster: true on a single node counts on the node (a cluster of one), the same counter as increment', async () => {
    expect((await run('cluster')).r).toEqual([1]);
    expect((await run('one')).r).toBe(2);
  });

  it('hostile arguments are refused with a clear error, nothing is counted', async () => {
    expect((await run('empty')).error).toBe('RangeError: counters.incrementMany: 1 to 16 items');
    expect((await run('huge')).error).toBe('RangeError: counters.incrementMany: 1 to 16 items');
    expect((await run('seventeen')).error).toBe('Error: counters.incrementMany takes 1 to 16 items');
    expect((await run('notArray')).error).toBe('TypeError: counters.incrementMany: items must be an array');
    expect((await run('notObject')).error).toBe('TypeError: counters.incrementMany: item 0 must be an object');
    expect((await run('negative')).error).toBe('RangeError: counters.incrementMany: the increment must be a non-negative integer');
    expect((await run('longKey')).error).toMatch(/^RangeError: counter key of 600 characters exceeds 512/);
    expect((await run('badOpt')).error).toBe('TypeError: counters.incrementMany: options.cluster must be a boolean');
    expect((await run('badWindow')).error).toMatch(/counter window must be a number from 0.001 to 86400/);
  });

  it('a getter is read once, a Proxy array is read as plain data', async () => {
    expect((await run('getter')).r).toEqual([1]);
    expect((await run('proxy')).r).toEqual([1]);
  });
});
