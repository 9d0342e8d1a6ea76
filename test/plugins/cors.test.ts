import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, echoHandler, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const ALL_METHODS = 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT';

describe('plugin cors', () => {
  let up: Upstream;
  let gw: TestGateway;
  let hits = 0;
  const preflight = (path: string, origin: string, extra: Record<string, string> = {}) =>
    send(`${gw.url}${path}`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', ...extra } });

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      hits++;
      if (req.url!.endsWith('/vary')) {
        res.writeHead(200, { vary: 'Accept-Encoding', 'access-control-allow-origin': 'https://upstream.test' });
        res.end('v');
        return;
      }
      echoHandler(req, res);
    });
    const names = ['any', 'anycred', 'exact', 'single', 'regex', 'continue', 'absent', 'redos', 'badregex', 'exit'];
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes:
${names.map((n) => `      - { name: ${n}, service: echo, paths: [/${n}] }`).join('\n')}
    plugins:
      - { name: cors, route: any }
      - { name: cors, route: anycred, config: { origins: ["*"], credentials: true } }
      - name: cors
        route: exact
        config:
          origins: [https://app.example.com, "http://localhost:8080"]
          methods: [GET, POST]
          headers: [X-A, X-B]
          exposed_headers: [X-Total, X-Page]
          credentials: true
          max_age: 3600
          private_network: true
      - { name: cors, route: single, config: { origins: [https://only.example.com] } }
      - { name: cors, route: regex, config: { origins: ['(.*\\.)?example\\.org', 'https://[a-z]+\\.example\\.net:8443'] } }
      - { name: cors, route: continue, config: { preflight_continue: true } }
      - { name: cors, route: absent, config: { allow_origin_absent: false } }
      - { name: cors, route: redos, config: { origins: ['(a+)+b'] }, limits: { cpuMs: 20 } }
      - { name: cors, route: badregex, config: { origins: ['(unclosed'] } }
      - { name: cors, route: exit, config: { origins: [https://app.example.com, https://b.example.com], exposed_headers: [X-E] } }
      - { name: request-termination, route: exit, config: { status_code: 401 } }
`);
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('defaults: any origin, "*", also without Origin; preflight answered with the default methods and the requested headers', async () => {
    const r = await send(`${gw.url}/any`, { headers: { origin: 'https://x.test' } });
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBe('*');
    expect(r.headers.vary).toBeUndefined();
    expect((await send(`${gw.url}/any`)).headers['access-control-allow-origin']).toBe('*');
    const before = hits;
    const p = await preflight('/any', 'https://x.test', { 'access-control-request-headers': 'x-one, x-two' });
    expect(p.status).toBe(200);
    expect(p.body).toBe('');
    expect(p.headers['access-control-allow-origin']).toBe('*');
    expect(p.headers['access-control-allow-methods']).toBe(ALL_METHODS);
    expect(p.headers['access-control-allow-headers']).toBe('x-one, x-two');
    expect(p.headers['access-control-max-age']).toBeUndefined();
    expect(hits).toBe(before); // answered at the gateway
  });

  it('credentials with any origin: the Origin is echoed, with Vary', async () => {
    const r = await send(`${gw.url}/anycred`, { headers: { origin: 'https://x.test' } });
    expect(r.headers['access-control-allow-origin']).toBe('https://x.test');
    expect(r.headers['access-control-allow-credentials']).toBe('true');
    expect(r.headers.vary).toBe('Origin');
  });

  it('exact origins, normalized; others get no Allow-Origin but Vary', async () => {
    const r = await send(`${gw.url}/exact`, { headers: { origin: 'https://app.example.com' } });
    expect(r.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(r.headers['access-control-allow-credentials']).toBe('true');
    expect(r.headers['access-control-expose-headers']).toBe('X-Total,X-Page');
    expect(r.headers.vary).toBe('Origin');
    const port = await send(`${gw.url}/exact`, { headers: { origin: 'HTTPS://App.Example.com:443' } });
    expect(port.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect((await send(`${gw.url}/exact`, { headers: { origin: 'http://localhost:8080' } })).headers['access-control-allow-origin']).toBe('http://localhost:8080');
    const evil = await send(`${gw.url}/exact`, { headers: { origin: 'https://evil.test' } });
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
    expect(evil.headers.vary).toBe('Origin');
  });

  it('preflight with configured methods, headers, max_age, credentials and private network', async () => {
    const p = await preflight('/exact', 'https://app.example.com', { 'access-control-request-headers': 'x-ignored', 'access-control-request-private-network': 'true' });
    expect(p.status).toBe(200);
    expect(p.headers).toMatchObject({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-methods': 'GET,POST',
      'access-control-allow-headers': 'X-A,X-B',
      'access-control-max-age': '3600',
      'access-control-allow-credentials': 'true',
      'access-control-allow-private-network': 'true',
      vary: 'Origin',
    });
    const refused = await preflight('/exact', 'https://evil.test');
    expect(refused.status).toBe(200);
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('a single literal origin is sent whatever the Origin (Kong)', async () => {
    const r = await send(`${gw.url}/single`, { headers: { origin: 'https://other.test' } });
    expect(r.headers['access-control-allow-origin']).toBe('https://only.example.com');
  });

  it('regex origins, anchored; by host without ":", by scheme://host:port with it', async () => {
    const at = async (origin: string) => (await send(`${gw.url}/regex`, { headers: { origin } })).headers['access-control-allow-origin'];
    expect(await at('https://api.example.org')).toBe('https://api.example.org');
    expect(await at('http://example.org')).toBe('http://example.org');
    expect(await at('https://example.org.evil.test')).toBeUndefined();
    expect(await at('https://a.example.net:8443')).toBe('https://a.example.net:8443');
    expect(await at('https://a.example.net')).toBeUndefined();
  });

  it('preflight_continue: the upstream answers the preflight, without CORS headers from us', async () => {
    const before = hits;
    const p = await preflight('/continue', 'https://x.test');
    expect(p.status).toBe(200);
    expect(p.json().method).toBe('OPTIONS');
    expect(p.headers['access-control-allow-origin']).toBeUndefined();
    expect(hits).toBe(before + 1);
  });

  it('allow_origin_absent false: no headers without Origin', async () => {
    expect((await send(`${gw.url}/absent`)).headers['access-control-allow-origin']).toBeUndefined();
    expect((await send(`${gw.url}/absent`, { headers: { origin: 'https://x.test' } })).headers['access-control-allow-origin']).toBe('*');
  });

  it("a later plugin's exit carries the CORS headers too, so the browser sees the 401, not a CORS error", async () => {
    const r = await send(`${gw.url}/exit`, { headers: { origin: 'https://b.example.com' } });
    expect(r.status).toBe(401);
    expect(r.headers['access-control-allow-origin']).toBe('https://b.example.com');
    expect(r.headers['access-control-expose-headers']).toBe('X-E');
    expect(r.headers.vary).toBe('Origin');
  });

  it('the upstream\'s own Vary is kept, Origin appended; its Allow-Origin is replaced or cleared', async () => {
    const r = await send(`${gw.url}/exact/vary`, { headers: { origin: 'https://evil.test' } });
    expect(r.headers.vary).toEqual(['Accept-Encoding', 'Origin']); // two Vary lines: the upstream's and ours
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    const ok = await send(`${gw.url}/exact/vary`, { headers: { origin: 'https://app.example.com' } });
    expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.com');
  });

  it('hostile: an origin regex that backtracks is stopped by the CPU limit (500), the gateway goes on', async () => {
    const t0 = Date.now();
    const r = await send(`${gw.url}/redos`, { headers: { origin: 'a'.repeat(40) + 'c' } });
    expect(r.status).toBe(500);
    expect(Date.now() - t0).toBeLessThan(5000);
    const ok = await send(`${gw.url}/redos`, { headers: { origin: 'aaab' } });
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('aaab');
  });

  it('an invalid regex fails its requests with 500, not others', async () => {
    expect((await send(`${gw.url}/badregex`, { headers: { origin: 'https://x.test' } })).status).toBe(500);
    expect((await send(`${gw.url}/any`, { headers: { origin: 'https://x.test' } })).status).toBe(200);
  });
});
