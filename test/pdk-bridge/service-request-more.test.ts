import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** pdk.serviceRequest: setHeaders, setScheme, setMethod, setQuery, clearQueryArg. */
const PLUGIN = pluginSource('sq', `
export function access(pdk: any) {
  const q = pdk.request.getQueryArg('do');
  const caught = (f: () => void) => { try { f(); } catch (e: any) { pdk.response.exit(200, { err: e.message }); } };
  if (q === 'headers') pdk.serviceRequest.setHeaders({ 'x-a': '1', 'x-b': ['2', '3'], 'x-n': 4 });
  if (q === 'method') pdk.serviceRequest.setMethod('PUT');
  if (q === 'bad-method') caught(() => pdk.serviceRequest.setMethod('CONNECT'));
  if (q === 'scheme') pdk.serviceRequest.setScheme('http');
  if (q === 'bad-scheme') caught(() => pdk.serviceRequest.setScheme('ftp'));
  if (q === 'query') pdk.serviceRequest.setQuery({ b: 'x y', a: ['1', '2'], flag: true, off: false, n: 3, 'é': '&' });
  if (q === 'bad-query') caught(() => pdk.serviceRequest.setQuery({ a: { nested: 1 } }));
  if (q === 'flood') { const h: Record<string, string> = {}; for (let i = 0; i < 1200; i++) h['x-' + i] = 'v'; pdk.serviceRequest.setHeaders(h); }
  if (q === 'huge-header') pdk.serviceRequest.setHeaders({ 'x-big': 'v'.repeat(17000) });
  if (q === 'bad-headers') caught(() => pdk.serviceRequest.setHeaders(['x']));
  if (q === 'clear') { pdk.serviceRequest.clearQueryArg('a'); pdk.serviceRequest.clearQueryArg('b c'); }
}
export function headerFilter(pdk: any) {
  try { pdk.serviceRequest.setHeaders({ a: '1' }); } catch (e: any) { pdk.response.setHeader('x-err', e.message); }
}`);

describe('pdk.serviceRequest: more setters', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/] }]
    plugins: [{ name: sq, path: ./sq.ts }]
`, { 'sq.ts': PLUGIN });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('sets several upstream headers at once, an array as repeated headers', async () => {
    const got = (await send(`${gw.url}/?do=headers`, { headers: { 'x-a': 'client' } })).json();
    expect(got.headers['x-a']).toBe('1');
    expect(got.headers['x-b']).toBe('2, 3');
    expect(got.headers['x-n']).toBe('4');
  });

  it('sets the method sent upstream, and refuses one Kong does not list or undici cannot send', async () => {
    expect((await send(`${gw.url}/?do=method`)).json().method).toBe('PUT');
    expect((await send(`${gw.url}/?do=bad-method`)).json().err).toMatch(/^serviceRequest.setMethod: method must be one of GET, HEAD/);
  });

  it('keeps http as the scheme, and refuses any scheme but http and https', async () => {
    expect((await send(`${gw.url}/?do=scheme`)).json().url).toBe('/?do=scheme');
    expect((await send(`${gw.url}/?do=bad-scheme`)).json().err).toMatch(/"http" or "https"/);
  });

  it("encodes a query table as Kong's set_query does", async () => {
    expect((await send(`${gw.url}/p?do=query`)).json().url).toBe('/p?b=x%20y&a=1&a=2&flag&n=3&%C3%A9=%26');
    expect((await send(`${gw.url}/?do=bad-query`)).json().err).toMatch(/argument a must be/);
  });

  it('clears every occurrence of a query argument, by its decoded name', async () => {
    expect((await send(`${gw.url}/p?a=1&do=clear&a=2&b+c=3&b%20c=4&ab=5`)).json().url).toBe('/p?do=clear&ab=5');
  });

  it('hostile: a header flood, a huge header or a non-object fail with a clear error, nothing else harmed', async () => {
    expect((await send(`${gw.url}/?do=flood`)).status).toBe(500);
    expect((await send(`${gw.url}/?do=huge-header`)).status).toBe(500);
    expect((await send(`${gw.url}/?do=bad-headers`)).json().err).toBe('serviceRequest.setHeaders: headers must be an object of name -> value');
    expect((await send(`${gw.url}/?do=headers`)).json().headers['x-a']).toBe('1');
  });

  it('phase check: setHeaders in headerFilter throws an error naming both phases', async () => {
    expect((await send(`${gw.url}/`)).headers['x-err']).toBe('serviceRequest.setHeaders is not allowed in phase headerFilter (allowed in: rewrite, access)');
  });
});
