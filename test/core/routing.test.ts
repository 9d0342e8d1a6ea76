import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrefixRouter, normalizeHost, normalizePath, type Routable } from '../../core/router/router.ts';
import { echoHandler, parseRawResponse, rawRequest, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/**
 * Each route forwards to its own service whose URL has the base path /_/<route>, so the
 * path the echo upstream saw names the route that matched.
 */
describe('routing through the gateway', () => {
  let up: Upstream;
  let gw: TestGateway;
  const tagged = ['exact', 'wild', 'deepwild', 'api', 'apiv1', 'postonly', 'anymethod', 'multi'];

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
tenants:
  - name: t1
    services:
${tagged.map((n) => `      - { name: ${n}, url: "${up.url}/_/${n}" }`).join('\n')}
      - { name: plain, url: "${up.url}" }
      - { name: based, url: "${up.url}/base/" }
    routes:
      - { name: exact, service: exact, hosts: [api.test], paths: [/h] }
      - { name: wild, service: wild, hosts: ["*.example.com"], paths: [/h] }
      - { name: deepwild, service: deepwild, hosts: ["*.deep.example.com"], paths: [/h] }
      - { name: api, service: api, paths: [/api] }
      - { name: apiv1, service: apiv1, paths: [/api/v1] }
      - { name: postonly, service: postonly, paths: [/m], methods: [POST, PUT] }
      - { name: multi, service: multi, paths: [/one, /two/] }
      - { name: strip, service: plain, paths: [/strip], stripPath: true }
      - { name: nostrip, service: plain, paths: [/keep] }
      - { name: based, service: based, paths: [/based], stripPath: true }
      - { name: based-keep, service: based, paths: [/bk] }
`);
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  /** The upstream path (with query) of a request, or the status when it was not proxied. */
  async function seen(path: string, opts: { host?: string; method?: string } = {}): Promise<string | number> {
    const r = await send(`${gw.url}${path}`, { method: opts.method, headers: opts.host === undefined ? undefined : { host: opts.host } });
    if (r.status !== 200) return r.status;
    return r.json().url as string;
  }

  it('matches an exact host, case-insensitively and with or without a port', async () => {
    expect(await seen('/h', { host: 'api.test' })).toBe('/_/exact/h');
    expect(await seen('/h', { host: 'API.Test:8080' })).toBe('/_/exact/h');
    expect(await seen('/h', { host: 'api.test.' })).toBe('/_/exact/h');
    expect(await seen('/h', { host: 'other.test' })).toBe(404);
    expect(await seen('/h', { host: 'xapi.test' })).toBe(404);
  });

  it('matches a *.example.com wildcard on subdomains only, not the apex', async () => {
    expect(await seen('/h', { host: 'a.example.com' })).toBe('/_/wild/h');
    expect(await seen('/h', { host: 'b.c.example.com:1234' })).toBe('/_/wild/h');
    expect(await seen('/h', { host: 'example.com' })).toBe(404);
    expect(await seen('/h', { host: 'notexample.com' })).toBe(404);
    expect(await seen('/h', { host: 'a.example.com.evil' })).toBe(404);
  });

  it('prefers the most specific wildcard', async () => {
    expect(await seen('/h', { host: 'x.deep.example.com' })).toBe('/_/deepwild/h');
    expect(await seen('/h', { host: 'deep.example.com' })).toBe('/_/wild/h');
  });

  it('matches path prefixes on whole segments only', async () => {
    expect(await seen('/api')).toBe('/_/api/api');
    expect(await seen('/api/')).toBe('/_/api/api/');
    expect(await seen('/api/x/y?q=1')).toBe('/_/api/api/x/y?q=1');
    expect(await seen('/apix')).toBe(404);
    expect(await seen('/ap')).toBe(404);
  });

  it('picks the longest matching prefix', async () => {
    expect(await seen('/api/v1')).toBe('/_/apiv1/api/v1');
    expect(await seen('/api/v1/users')).toBe('/_/apiv1/api/v1/users');
    expect(await seen('/api/v1x')).toBe('/_/api/api/v1x');
    expect(await seen('/api/v2/users')).toBe('/_/api/api/v2/users');
  });

  it('matches any of several paths, a trailing slash in the config being ignored', async () => {
    expect(await seen('/one/a')).toBe('/_/multi/one/a');
    expect(await seen('/two')).toBe('/_/multi/two');
    expect(await seen('/two/b')).toBe('/_/multi/two/b');
    expect(await seen('/three')).toBe(404);
  });

  it('filters on the method', async () => {
    expect(await seen('/m', { method: 'POST' })).toBe('/_/postonly/m');
    expect(await seen('/m', { method: 'PUT' })).toBe('/_/postonly/m');
    expect(await seen('/m', { method: 'GET' })).toBe(404);
    expect(await seen('/m', { method: 'DELETE' })).toBe(404);
  });

  it('strips the matched prefix with stripPath, keeping the query', async () => {
    expect(await seen('/strip/a/b?x=1&y=2')).toBe('/a/b?x=1&y=2');
    expect(await seen('/strip')).toBe('/');
    expect(await seen('/strip?x=1')).toBe('/?x=1');
    expect(await seen('/strip/')).toBe('/');
    expect(await seen('/keep/a')).toBe('/keep/a');
  });

  it("prepends the service URL's base path", async () => {
    expect(await seen('/based')).toBe('/base');
    expect(await seen('/based/x?q=1')).toBe('/base/x?q=1');
    expect(await seen('/bk/y')).toBe('/base/bk/y');
  });

  it('routes on the path alone and passes the raw query through unchanged', async () => {
    expect(await seen('/api?a=%20b&c&/apix')).toBe('/_/api/api?a=%20b&c&/apix');
    expect(await seen('/apix?/api')).toBe(404);
  });

  it('routes on the normalized path, and sends the client bytes upstream without their dot segments', async () => {
    // Raw requests: an HTTP client might clean up the path before sending it.
    const raw = async (target: string) => {
      const r = parseRawResponse(await rawRequest(gw.gw.proxyAddress.port, `GET ${target} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`));
      return r.status === 200 ? (JSON.parse(r.body).url as string) : r.status;
    };
    // "/keep/../api/x" must not ride the /keep route while the upstream serves /api/x.
    expect(await raw('/keep/../api/x')).toBe('/_/api/api/x');
    expect(await raw('/keep/%2e%2E/api/x')).toBe('/_/api/api/x');
    // Routed as /api/v1/users; the escape goes upstream as the client wrote it (it used to be
    // decoded: the upstream got the normalized path), the "." segment does not.
    expect(await raw('/%61pi/v1/./users')).toBe('/_/apiv1/%61pi/v1/users');
    expect(await raw('/api/v1/../v2?q=1')).toBe('/_/api/api/v2?q=1');
    expect(await raw('/../../api')).toBe('/_/api/api');
    // Escapes are no longer rewritten on the way upstream (was "/keep/a%2Fb~").
    expect(await raw('/keep/a%2fb%7E')).toBe('/keep/a%2fb%7E');
    expect(await raw('/apix/../nothing')).toBe(404);
  });

  it('answers an unmatched request with 404 and a JSON body ISG_ERR_NO_ROUTE', async () => {
    const r = await send(`${gw.url}/nothing/here`);
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.json()).toEqual({ error: { code: 'ISG_ERR_NO_ROUTE', message: 'no route matches this request' } });
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
  });
});

describe('PrefixRouter', () => {
  type R = Routable & { name: string };
  const r = (name: string, paths: string[], hosts: string[] | null = null, methods: string[] | null = null): R => ({ name, paths, hosts, methods });
  const routes: R[] = [
    r('root', ['/']),
    r('api', ['/api']),
    r('api-get', ['/api/items'], null, ['GET']),
    r('host-api', ['/api'], ['svc.test']),
    r('wild', ['/'], ['*.w.test']),
    r('wild-deep', ['/'], ['*.a.w.test']),
    r('upper', ['/up'], ['UPPER.Test']),
  ];
  const router = new PrefixRouter(routes, 4);
  const name = (host: string | undefined, method: string, path: string) => router.match(host, method, path)?.route.name ?? null;

  it('falls back to routes without hosts when the host has no match for the path', () => {
    expect(name('svc.test', 'GET', '/api/x')).toBe('host-api');
    expect(name('svc.test', 'GET', '/other')).toBe('root');
    expect(name(undefined, 'GET', '/api')).toBe('api');
    expect(name('', 'GET', '/api')).toBe('api');
  });

  it('goes on to a shorter prefix when the longer one filters out the method', () => {
    expect(name(undefined, 'GET', '/api/items')).toBe('api-get');
    expect(name(undefined, 'POST', '/api/items')).toBe('api');
  });

  it('reports the matched prefix (for stripPath)', () => {
    expect(router.match(undefined, 'GET', '/api/items/1')?.prefix).toBe('/api/items');
    expect(router.match(undefined, 'GET', '/zzz')?.prefix).toBe('/');
    // depth: how many segments stripPath removes from the client's own path.
    expect(router.match(undefined, 'GET', '/api/items/1')?.depth).toBe(2);
    expect(router.match(undefined, 'GET', '/api/x')?.depth).toBe(1);
    expect(router.match(undefined, 'GET', '/zzz')?.depth).toBe(0);
  });

  it('answers the same without its cache (a few routes, no hosts): longest prefix, whole segments, methods', () => {
    const small = new PrefixRouter([r('root', ['/']), r('api', ['/api/']), r('api-get', ['/api/items'], null, ['GET']), r('post', ['/p'], null, ['POST'])]);
    const at = (method: string, path: string) => small.match('any.host:80', method, path);
    expect(at('GET', '/api/items/1')).toMatchObject({ route: { name: 'api-get' }, prefix: '/api/items', depth: 2 });
    expect(at('POST', '/api/items')?.route.name).toBe('api');
    expect(at('GET', '/apix')?.route.name).toBe('root');
    expect(at('GET', '/p')?.route.name).toBe('root');
    expect(at('POST', '/p/q')?.route.name).toBe('post');
    const none = new PrefixRouter([r('api', ['/api'])]);
    expect(none.match(undefined, 'GET', '/other')).toBeNull();
    expect(none.match(undefined, 'GET', '/api')?.depth).toBe(1);
  });

  it('lower-cases configured hosts and the most specific wildcard wins', () => {
    expect(name('upper.test', 'GET', '/up')).toBe('upper');
    expect(name('x.a.w.test', 'GET', '/')).toBe('wild-deep');
    expect(name('x.w.test', 'GET', '/')).toBe('wild');
    expect(name('w.test', 'GET', '/')).toBe('root');
  });

  it('gives the same answers from its cache as on the first lookup, beyond its size', () => {
    const queries: [string | undefined, string, string][] = [];
    for (let i = 0; i < 20; i++) queries.push([i % 2 === 0 ? 'svc.test' : `h${i}.w.test`, i % 3 === 0 ? 'POST' : 'GET', i % 4 === 0 ? '/api/items' : `/api/${i}`]);
    const first = queries.map((q) => name(...q));
    const again = queries.map((q) => name(...q));
    expect(again).toEqual(first);
    expect(first).toContain('host-api');
    expect(first).toContain('wild');
  });

  it('returns null when nothing matches', () => {
    const only = new PrefixRouter([r('a', ['/a'], ['a.test'])]);
    expect(only.match('a.test', 'GET', '/b')).toBeNull();
    expect(only.match('b.test', 'GET', '/a')).toBeNull();
    expect(only.match('a.test', 'GET', '/a/b')?.route.name).toBe('a');
  });

  it('normalizes paths (RFC 3986 dot segments, unreserved escapes)', () => {
    const cases: [string, string][] = [
      ['/a/b', '/a/b'],
      ['/a/./b', '/a/b'],
      ['/a/b/../c', '/a/c'],
      ['/a/..', '/'],
      ['/..', '/'],
      ['/a/.', '/a/'],
      ['/a/b/..', '/a/'],
      ['/a//b', '/a//b'],
      ['/.well-known/x', '/.well-known/x'],
      ['/..x/y', '/..x/y'],
      ['/%7euser/%41%2f%2a', '/~user/A%2F%2A'],
      ['/%2e%2e/%2E/x', '/x'],
      ['/bad%zz', '/bad%zz'],
    ];
    for (const [input, want] of cases) expect(normalizePath(input), input).toBe(want);
  });

  it('normalizes hosts', () => {
    expect(normalizeHost('Example.COM:8000')).toBe('example.com');
    expect(normalizeHost('example.com.')).toBe('example.com');
    expect(normalizeHost('[::1]:80')).toBe('[::1]');
    expect(normalizeHost('[::1]')).toBe('[::1]');
  });
});
