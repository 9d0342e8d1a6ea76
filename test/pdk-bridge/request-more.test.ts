import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileProxy } from '../../core/config/compile.ts';
import { isTrusted } from '../../core/trusted-proxies.ts';
import { NO_BREAKER, echoHandler, parseRawResponse, pluginSource, rawRequest, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** pdk.request beyond the basics: port, forwarded values, version, raw path, start time, captures. */
const READ = `({
  host: pdk.request.getHost(),
  port: pdk.request.getPort(),
  scheme: pdk.request.getScheme(),
  fScheme: pdk.request.getForwardedScheme(),
  fHost: pdk.request.getForwardedHost(),
  fPort: pdk.request.getForwardedPort(),
  fPath: pdk.request.getForwardedPath(),
  fPrefix: pdk.request.getForwardedPrefix() ?? null,
  version: pdk.request.getHttpVersion(),
  path: pdk.request.getPath(),
  rawPath: pdk.request.getRawPath(),
  withQuery: pdk.request.getPathWithQuery(),
  start: pdk.request.getStartTime(),
  captures: pdk.request.getUriCaptures(),
})`;

const READER = pluginSource('reader', `
export function access(pdk: any) { pdk.response.exit(200, ${READ}); }`);
const LATE = pluginSource('late', `
export function headerFilter(pdk: any) { pdk.response.setHeader('x-read', JSON.stringify(${READ})); }`);

const FORGED = {
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'Public.Example:8443, inner.example',
  'x-forwarded-port': '443',
  'x-forwarded-path': '/outer/path',
  'x-forwarded-prefix': '/outer',
};

function config(up: Upstream, trusted: string): string {
  return `
${NO_BREAKER}
proxy: { trustedProxies: ${trusted} }
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes:
      - { name: read, service: s, paths: [/read/deep], stripPath: true }
      - { name: late, service: s, paths: [/late] }
    plugins:
      - { name: reader, path: ./reader.ts, route: read }
      - { name: late, path: ./late.ts, route: late }
`;
}

describe('pdk.request: more reads', () => {
  let up: Upstream;
  let trusting: TestGateway;
  let wary: TestGateway;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    const files = { 'reader.ts': READER, 'late.ts': LATE };
    trusting = await startGateway(config(up, '["127.0.0.0/8", "::1"]'), files);
    wary = await startGateway(config(up, '["10.0.0.0/8"]'), files);
  });
  afterAll(async () => {
    await trusting.stop();
    await wary.stop();
    await up.close();
  });

  it('reads port, version, raw and normalized path, path with query, start time and the route capture', async () => {
    const before = Date.now();
    const port = Number(new URL(wary.url).port);
    const raw = await rawRequest(port, 'GET /read/./deep/%7Ex/../y?b=2&a=1 HTTP/1.0\r\nHost: Api.Example:9000\r\n\r\n');
    const r = parseRawResponse(raw);
    expect(r.status).toBe(200);
    const got = JSON.parse(r.body);
    expect(got.host).toBe('api.example');
    expect(got.port).toBe(port);
    expect(got.scheme).toBe('http');
    expect(got.version).toBe(1.0);
    expect(got.path).toBe('/read/deep/y');
    expect(got.rawPath).toBe('/read/./deep/%7Ex/../y');
    expect(got.withQuery).toBe('/read/./deep/%7Ex/../y?b=2&a=1');
    expect(got.start).toBeGreaterThanOrEqual(before - 5);
    expect(got.start).toBeLessThanOrEqual(Date.now());
    // Prefix routes only: the one capture is the part of the path the prefix matched.
    expect(got.captures).toEqual({ unnamed: ['/read/deep'], named: {} });
  });

  it('keeps an absolute-form target out of the raw path and answers HTTP/1.1 as 1.1', async () => {
    const port = Number(new URL(wary.url).port);
    const r = parseRawResponse(await rawRequest(port, `GET http://api.example/read/deep/z?q HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n`));
    const got = JSON.parse(r.body);
    expect(got.version).toBe(1.1);
    expect(got.rawPath).toBe('/read/deep/z');
    expect(got.withQuery).toBe('/read/deep/z?q');
  });

  it('believes X-Forwarded-* from a trusted proxy (first value, host without port, lower case)', async () => {
    const got = (await send(`${trusting.url}/read/deep`, { headers: FORGED })).json();
    expect(got.fScheme).toBe('https');
    expect(got.fHost).toBe('public.example');
    expect(got.fPort).toBe(443);
    expect(got.fPath).toBe('/outer/path');
    expect(got.fPrefix).toBe('/outer');
  });

  it('takes the forwarded port from X-Forwarded-Host when X-Forwarded-Port is absent', async () => {
    const got = (await send(`${trusting.url}/read/deep`, { headers: { 'x-forwarded-host': 'p.example:8443' } })).json();
    expect(got.fPort).toBe(8443);
  });

  it('hostile: ignores forged X-Forwarded-* from a peer that is not a trusted proxy', async () => {
    const port = Number(new URL(wary.url).port);
    const got = (await send(`${wary.url}/read/deep/x`, { headers: { ...FORGED, host: 'real.example' } })).json();
    expect(got.fScheme).toBe('http');
    expect(got.fHost).toBe('real.example');
    expect(got.fPort).toBe(port);
    expect(got.fPath).toBe('/read/deep/x');
    expect(got.fPrefix).toBeNull();
  });

  it('reads the same in headerFilter, where the route has no prefix depth', async () => {
    const r = await send(`${wary.url}/late/a?x=1`);
    expect(r.status).toBe(200);
    const got = JSON.parse(r.headers['x-read'] as string);
    expect(got.withQuery).toBe('/late/a?x=1');
    expect(got.captures.unnamed).toEqual(['/late']);
  });
});

describe('proxy.trustedProxies', () => {
  const proxy = (trustedProxies: string[], errors: string[] = []) => compileProxy({ via: 'isogate', trustedProxies, websocket: { idleTimeoutMs: 1000, maxMessageBytes: 1000 } }, errors);

  it('matches addresses and CIDR blocks of both families, an IPv4-mapped peer as its IPv4', () => {
    const { trusted } = proxy(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32']);
    expect(isTrusted(trusted, '10.200.0.1')).toBe(true);
    expect(isTrusted(trusted, '::ffff:10.1.2.3')).toBe(true);
    expect(isTrusted(trusted, '192.168.1.7')).toBe(true);
    expect(isTrusted(trusted, '192.168.1.8')).toBe(false);
    expect(isTrusted(trusted, '2001:db8::1')).toBe(true);
    expect(isTrusted(trusted, '2001:db9::1')).toBe(false);
    expect(isTrusted(trusted, '')).toBe(false);
  });

  it('trusts no one by default, at no cost (no list compiled)', () => {
    expect(proxy([]).trusted).toBeNull();
    expect(isTrusted(null, '127.0.0.1')).toBe(false);
  });

  it('names every bad entry with its path', () => {
    const errors: string[] = [];
    proxy(['10.0.0.0/33', 'example.com', '::1/129', '1.2.3.4/x'], errors);
    expect(errors).toHaveLength(4);
    expect(errors[0]).toBe('proxy.trustedProxies[0]: "10.0.0.0/33" is not an IPv4/IPv6 address or CIDR block (e.g. 10.0.0.0/8, ::1)');
    expect(errors[1]).toMatch(/^proxy.trustedProxies\[1\]: "example.com"/);
  });
});
