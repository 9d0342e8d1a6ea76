import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exactPath, normalizePath, stripSegments } from '../../core/router/router.ts';
import { parseRawResponse, pluginSource, rawRequest, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/**
 * The request target goes upstream as the client wrote it: node:http's `req.url` on the
 * upstream side is the raw target of the request line, so the echo below shows the exact
 * bytes the gateway sent. Requests are written on raw sockets (an HTTP client might tidy
 * the target before sending it).
 */

/** Echoes what it got: the raw target, and the path the plugin saw (x-seen-path). */
function recordTarget(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
  const body = JSON.stringify({ url: req.url, seen: req.headers['x-seen-path'] ?? null });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Tells the upstream which path the plugins saw; on /p/set/* rewrites path and query. */
const SEEN = pluginSource(
  'seen',
  `
export function access(pdk: any) {
  const path = pdk.request.getPath();
  pdk.serviceRequest.setHeader('x-seen-path', path);
  if (path.startsWith('/p/set/')) {
    pdk.serviceRequest.setPath('/Set/%7e%2F');
    pdk.serviceRequest.setRawQuery('q=%7E');
  }
}`,
);

describe('the request target goes upstream byte for byte', () => {
  let up: Upstream;
  let gw: TestGateway;

  beforeAll(async () => {
    up = await startUpstream(recordTarget);
    gw = await startGateway(
      `
tenants:
  - name: t1
    services:
      - { name: plain, url: "${up.url}" }
      - { name: based, url: "${up.url}/v1" }
    routes:
      - { name: keep, service: plain, paths: [/keep] }
      - { name: api, service: based, paths: [/api], stripPath: true }
      - { name: deep, service: based, paths: [/deep/er], stripPath: true }
      - { name: plugged, service: plain, paths: [/p], stripPath: true }
    plugins:
      - { name: seen, path: ./seen.ts, route: plugged }
`,
      { 'seen.ts': SEEN },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  /** The raw target the upstream got (and the path the plugin saw), or the status when it was not proxied. */
  async function upstreamGot(target: string): Promise<{ url: string; seen: string | null } | number> {
    const r = parseRawResponse(await rawRequest(gw.gw.proxyAddress.port, `GET ${target} HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n`));
    return r.status === 200 ? JSON.parse(r.body) : r.status;
  }
  const url = async (target: string) => {
    const got = await upstreamGot(target);
    return typeof got === 'number' ? got : got.url;
  };

  it('keeps escapes as sent: case, unreserved characters, %2F', async () => {
    expect(await url('/keep/%7E')).toBe('/keep/%7E');
    expect(await url('/keep/%7e/%e2%82%ac/%E2%82%AC')).toBe('/keep/%7e/%e2%82%ac/%E2%82%AC');
    expect(await url('/keep/a%2fb%2Fc')).toBe('/keep/a%2fb%2Fc');
    expect(await url('/%6Beep/x')).toBe('/%6Beep/x');
    expect(await url('/keep//x')).toBe('/keep//x');
  });

  it('keeps the query as sent, a bare "?" included', async () => {
    expect(await url('/keep/x?')).toBe('/keep/x?');
    expect(await url('/keep?')).toBe('/keep?');
    expect(await url('/keep?a=%7e&b&&c=%2F')).toBe('/keep?a=%7e&b&&c=%2F');
    expect(await url('/keep??x')).toBe('/keep??x');
  });

  it('takes the path of an absolute-form target as sent', async () => {
    expect(await url('http://h.test/keep/%7E?')).toBe('/keep/%7E?');
    expect(await url('http://h.test?x=1')).toBe(404); // path "/": no route
  });

  it('strips as many raw segments as the matched prefix has, and prepends the base path', async () => {
    expect(await url('/api/%7Eu?q=%7e')).toBe('/v1/%7Eu?q=%7e');
    expect(await url('/%61pi/x')).toBe('/v1/x');
    expect(await url('/%61PI/x')).toBe(404); // "%61PI" is "aPI": paths are case-sensitive
    expect(await url('/api')).toBe('/v1');
    expect(await url('/api/')).toBe('/v1'); // the remainder "/" is the base path itself, as before
    expect(await url('/api?')).toBe('/v1?');
    expect(await url('/deep/%65r/%7E')).toBe('/v1/%7E');
    expect(await url('/deep/er')).toBe('/v1');
  });

  it('removes dot segments, so that no ".." climbs out of the route or the base path', async () => {
    // Routed as /api/y: the upstream gets /v1/y, never /v1/../api/y (which is /api/y there).
    expect(await url('/x/../api/y')).toBe('/v1/y');
    expect(await url('/../api/y')).toBe('/v1/y');
    expect(await url('/api/x/../y')).toBe('/v1/y');
    expect(await url('/api/x/%2E%2e/%7E')).toBe('/v1/%7E');
    expect(await url('/api/%2e/z/.')).toBe('/v1/z/');
    expect(await url('/api/..')).toBe(404); // that is "/": no route
    expect(await url('/keep/a/..%2f/b')).toBe('/keep/a/..%2f/b'); // "..%2f" is not a dot segment
    expect(await url('/api%2F..%2Fkeep')).toBe(404); // one segment "api%2F..%2Fkeep": no route
  });

  it('lets plugins see the normalized path, and sends what a plugin set', async () => {
    expect(await upstreamGot('/p/%7Ex/./y?')).toEqual({ url: '/%7Ex/y?', seen: '/p/~x/y' });
    expect(await upstreamGot('/p/set/x?old=1')).toEqual({ url: '/Set/%7e%2F?q=%7E', seen: '/p/set/x' });
  });
});

describe('exactPath and stripSegments', () => {
  it('remove the dot segments normalizePath removes, keeping every other byte', () => {
    const cases: [string, string, string][] = [
      ['/a/b', '/a/b', '/a/b'],
      ['/%7e/%41', '/~/A', '/%7e/%41'],
      ['/a/./b/../c', '/a/c', '/a/c'],
      ['/a/%2e/%2E%2e/%7E', '/%7E'.replace('%7E', '~'), '/%7E'],
      ['/a/.%2E/b', '/b', '/b'],
      ['/..', '/', '/'],
      ['/a/.', '/a/', '/a/'],
      ['/.well-known/%7e', '/.well-known/~', '/.well-known/%7e'],
      ['/.../x', '/.../x', '/.../x'],
      ['/a%2F../b', '/a%2F../b', '/a%2F../b'],
    ];
    for (const [raw, normalized, exact] of cases) {
      expect(normalizePath(raw), raw).toBe(normalized);
      expect(exactPath(raw), raw).toBe(exact);
      // One segment for one segment: that is what lets stripPath work on the raw bytes.
      expect(exactPath(raw).split('/').length, raw).toBe(normalized.split('/').length);
    }
  });

  it('strip whole segments', () => {
    expect(stripSegments('/a/b/c', 0)).toBe('/a/b/c');
    expect(stripSegments('/a/b/c', 1)).toBe('/b/c');
    expect(stripSegments('/a/b/c', 2)).toBe('/c');
    expect(stripSegments('/a/b/c', 3)).toBe('/');
    expect(stripSegments('/a/', 1)).toBe('/');
    expect(stripSegments('/a//b', 1)).toBe('//b');
  });
});

describe('route paths in the config', () => {
  it('must be written normalized: a prefix in another spelling is a config error naming the fix', async () => {
    const err = await startGateway(`
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s, paths: [/ok, /%7Euser/a/../b] }]
`).then(
      async (gw) => {
        await gw.stop();
        return null;
      },
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain('tenants[0].routes[0].paths[1]: "/%7Euser/a/../b" would never match');
    expect(err?.message).toContain('write "/~user/b"');
  });
});
