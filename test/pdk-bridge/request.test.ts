import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, echoHandler, parseRawResponse, pluginSource, rawRequest, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** pdk.request: reads of the client's request, in every phase. */
const READ_ALL = `({
  method: pdk.request.getMethod(),
  path: pdk.request.getPath(),
  rawQuery: pdk.request.getRawQuery(),
  query: pdk.request.getQuery(),
  a: pdk.request.getQueryArg('a'),
  missing: pdk.request.getQueryArg('nope') ?? null,
  host: pdk.request.getHost(),
  custom: pdk.request.getHeader('X-Custom'),
  customLower: pdk.request.getHeader('x-custom'),
  headers: pdk.request.getHeaders(),
  ip: pdk.request.getClientIp(),
  scheme: pdk.request.getScheme(),
})`;

const READER = pluginSource(
  'reader',
  `
export function access(pdk: any) {
  if (pdk.request.getHeader('x-bad-arg') !== undefined) pdk.request.getHeader(42);
  pdk.response.exit(200, ${READ_ALL});
}`,
);

const LATE_READER = pluginSource(
  'late-reader',
  `
export function headerFilter(pdk: any) {
  pdk.response.setHeader('x-read', JSON.stringify(${READ_ALL}));
}`,
);

describe('pdk.request', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}/base" }]
    routes:
      - { name: read, service: s, paths: [/read], stripPath: true }
      - { name: late, service: s, paths: [/late], stripPath: true }
    plugins:
      - { name: reader, path: ./reader.ts, route: read }
      - { name: late-reader, path: ./late.ts, route: late }
`,
      { 'reader.ts': READER, 'late.ts': LATE_READER },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('reads method, path, query, host, headers, client ip and scheme in access', async () => {
    const r = await send(`${gw.url}/read/a%20b/c?a=1&a=2&b=x+y&c=%C3%A9&flag&=empty`, {
      method: 'PATCH',
      headers: { host: 'Client.Test:8080', 'x-custom': 'hello', 'x-multi': 'one' },
    });
    expect(r.status).toBe(200);
    const got = r.json();
    expect(got.method).toBe('PATCH');
    // The path as the client sent it: not stripped, not decoded, without the query.
    expect(got.path).toBe('/read/a%20b/c');
    expect(got.rawQuery).toBe('a=1&a=2&b=x+y&c=%C3%A9&flag&=empty');
    expect(got.query).toEqual({ a: ['1', '2'], b: 'x y', c: 'é', flag: '', '': 'empty' });
    expect(got.a).toEqual(['1', '2']);
    expect(got.missing).toBeNull();
    expect(got.host).toBe('client.test'); // Kong's get_host: without the port, lower case
    expect(got.custom).toBe('hello');
    expect(got.customLower).toBe('hello');
    expect(got.headers['x-multi']).toBe('one');
    expect(got.headers.host).toBe('Client.Test:8080');
    expect(got.ip).toBe('127.0.0.1');
    expect(got.scheme).toBe('http');
  });

  it('joins repeated headers with ", "', async () => {
    const raw = await rawRequest(gw.gw.proxyAddress.port, 'GET /read HTTP/1.1\r\nHost: h\r\nX-Custom: a\r\nX-Custom: b\r\nConnection: close\r\n\r\n');
    const r = parseRawResponse(raw);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).custom).toBe('a, b');
  });

  it('gives an empty query for a request without one', async () => {
    const got = (await send(`${gw.url}/read`)).json();
    expect(got.rawQuery).toBe('');
    expect(got.query).toEqual({});
    expect(got.path).toBe('/read');
  });

  it('reads the same request in headerFilter', async () => {
    const r = await send(`${gw.url}/late/x?a=9`, { method: 'DELETE', headers: { 'x-custom': 'later' } });
    expect(r.status).toBe(200);
    expect(r.json().url).toBe('/base/x?a=9');
    const got = JSON.parse(r.headers['x-read'] as string);
    expect(got).toMatchObject({ method: 'DELETE', path: '/late/x', rawQuery: 'a=9', a: '9', custom: 'later', ip: '127.0.0.1', scheme: 'http' });
  });

  it('fails the request when a getter is called with a wrong argument type', async () => {
    const r = await send(`${gw.url}/read`, { headers: { 'x-bad-arg': '1' } });
    expect(r.status).toBe(500);
    expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    expect(r.headers['x-isogate-error-id']).toBe(r.json().error.id);
  });
});
