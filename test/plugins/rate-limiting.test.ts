import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, echoHandler, freePort, pluginSource, send, startGateway, startUpstream, type LogLine, type Reply, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import { inOneWindow } from './rate-limiting-helpers.ts';
import { configErrors, sendFrom } from './helpers.ts';

/** Sets the consumer named by x-user (Kong's auth plugins do this from a credential). */
const AUTH = pluginSource('auth', `
export function access(pdk: any) {
  const u = pdk.request.getHeader('x-user');
  if (typeof u === 'string') pdk.client.authenticate({ id: 'c-' + u }, { id: 'k-' + u });
}`, 1000);


const statuses = (rs: Reply[]) => rs.map((r) => r.status);

describe('plugin rate-limiting', () => {
  let up: Upstream;
  let gw: TestGateway;

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    const route = (n: string, service = 's') => `      - { name: ${n}, service: ${service}, paths: [/${n}] }`;
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }, { name: s2, url: "${up.url}" }]
    routes:
${['sec', 'multi', 'day', 'hdr', 'path', 'cons', 'cred', 'flood', 'ipr'].map((n) => route(n)).join('\n')}
${route('svc1', 's2')}
${route('svc2', 's2')}
    consumers:
      - { id: c-alice, username: alice, credentials: { key-auth: [{ id: k-alice, key: alice-secret-key }] } }
      - { id: c-bob, username: bob, credentials: { key-auth: [{ id: k-bob, key: bob-secret-key }] } }
    plugins:
      - { name: auth, path: ./auth.ts }
      - { name: rate-limiting, route: sec, config: { second: 3, limit_by: ip } }
      - { name: rate-limiting, route: multi, config: { minute: 5, hour: 7, limit_by: ip } }
      - { name: rate-limiting, route: day, config: { day: 2, limit_by: ip, hide_client_headers: true, error_code: 403, error_message: "Slow down" } }
      - { name: rate-limiting, route: hdr, config: { hour: 2, limit_by: header, header_name: x-key } }
      - { name: rate-limiting, route: path, config: { hour: 1, limit_by: path, path: /path/a } }
      - { name: rate-limiting, route: cons, config: { hour: 1 } }
      - { name: rate-limiting, route: cred, config: { hour: 1, limit_by: credential } }
      - { name: rate-limiting, route: flood, config: { hour: 1, limit_by: header, header_name: x-key } }
      - { name: rate-limiting, route: ipr, config: { hour: 1, limit_by: ip } }
      - { name: rate-limiting, service: s2, config: { hour: 3, limit_by: service } }
`, { 'auth.ts': AUTH });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  const get = (path: string, headers: Record<string, string> = {}) => send(`${gw.url}${path}`, { headers });

  it('second: the limit per second, Kong headers counting down, then 429 with Retry-After and Kong body', async () => {
    await inOneWindow(1, 700);
    const rs: Reply[] = [];
    for (let i = 0; i < 5; i++) rs.push(await get('/sec'));
    expect(statuses(rs)).toEqual([200, 200, 200, 429, 429]);
    expect(rs.map((r) => r.headers['x-ratelimit-remaining-second'])).toEqual(['2', '1', '0', '0', '0']);
    expect(rs[0].headers['x-ratelimit-limit-second']).toBe('3');
    expect(rs[0].headers['ratelimit-limit']).toBe('3');
    expect(rs[1].headers['ratelimit-remaining']).toBe('1');
    expect(rs[0].headers['ratelimit-reset']).toBe('1');
    expect(rs[3].headers['retry-after']).toBe('1');
    expect(rs[3].json()).toEqual({ message: 'API rate limit exceeded' });
    expect(rs[3].headers['content-type']).toMatch(/^application\/json/);
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20));
    expect((await get('/sec')).status).toBe(200); // a new second
  });

  it('minute and hour together: both X-RateLimit-*, RateLimit-* of the window with fewest left; refused after the smaller', async () => {
    await inOneWindow(60, 5000);
    const first = await get('/multi');
    expect(first.headers).toMatchObject({ 'x-ratelimit-limit-minute': '5', 'x-ratelimit-remaining-minute': '4', 'x-ratelimit-limit-hour': '7', 'x-ratelimit-remaining-hour': '6', 'ratelimit-limit': '5', 'ratelimit-remaining': '4' });
    const reset = Number(first.headers['ratelimit-reset']);
    expect(reset).toBeGreaterThan(0);
    expect(reset).toBeLessThanOrEqual(60);
    const rest: Reply[] = [];
    for (let i = 0; i < 5; i++) rest.push(await get('/multi'));
    expect(statuses(rest)).toEqual([200, 200, 200, 200, 429]);
    expect(Number(rest[4].headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(rest[4].headers['x-ratelimit-remaining-minute']).toBe('0');
  });

  it('day, hide_client_headers, error_code and error_message', async () => {
    const rs = [await get('/day'), await get('/day'), await get('/day', { accept: 'text/plain' })];
    expect(statuses(rs)).toEqual([200, 200, 403]);
    for (const r of rs) expect(Object.keys(r.headers).filter((h) => h.includes('ratelimit'))).toEqual([]);
    expect(rs[2].body).toBe('Slow down\n');
    expect(rs[2].headers['retry-after']).toBeUndefined(); // Kong's: hidden too
  });

  it('limit_by header: each value its own count; without the header, by IP', async () => {
    expect(statuses([await get('/hdr', { 'x-key': 'a' }), await get('/hdr', { 'x-key': 'a' }), await get('/hdr', { 'x-key': 'a' })])).toEqual([200, 200, 429]);
    expect((await get('/hdr', { 'x-key': 'b' })).status).toBe(200);
    expect(statuses([await sendFrom('127.0.0.9', `${gw.url}/hdr`), await sendFrom('127.0.0.9', `${gw.url}/hdr`), await sendFrom('127.0.0.9', `${gw.url}/hdr`)])).toEqual([200, 200, 429]);
  });

  it('limit_by ip: each client address its own count', async () => {
    expect(statuses([await sendFrom('127.0.0.2', `${gw.url}/ipr`), await sendFrom('127.0.0.2', `${gw.url}/ipr`)])).toEqual([200, 429]);
    expect((await sendFrom('127.0.0.3', `${gw.url}/ipr`)).status).toBe(200);
  });

  it('limit_by path: the configured path counts alone, other paths by IP', async () => {
    expect(statuses([await get('/path/a'), await get('/path/a')])).toEqual([200, 429]);
    expect(statuses([await get('/path/b'), await get('/path/c')])).toEqual([200, 429]);
  });

  it('limit_by consumer (default) and credential: per consumer, anonymous by IP', async () => {
    expect(statuses([await get('/cons', { 'x-user': 'alice' }), await get('/cons', { 'x-user': 'alice' })])).toEqual([200, 429]);
    expect((await get('/cons', { 'x-user': 'bob' })).status).toBe(200);
    expect(statuses([await sendFrom('127.0.0.4', `${gw.url}/cons`), await sendFrom('127.0.0.4', `${gw.url}/cons`)])).toEqual([200, 429]);
    expect(statuses([await get('/cred', { 'x-user': 'alice' }), await get('/cred', { 'x-user': 'alice' }), await get('/cred', { 'x-user': 'bob' })])).toEqual([200, 429, 200]);
  });

  it('limit_by service: every route and client of the service shares one count', async () => {
    const rs = [await sendFrom('127.0.0.5', `${gw.url}/svc1`), await sendFrom('127.0.0.6', `${gw.url}/svc2`), await get('/svc1'), await get('/svc2')];
    // The instance is the service's: its key names the route too (Kong's), so each route counts apart.
    expect(rs.map((r) => r.headers['x-ratelimit-remaining-hour'])).toEqual(['2', '2', '1', '1']);
    expect(statuses([await get('/svc1'), await get('/svc1')])).toEqual([200, 429]);
  });

  it('hostile: 10k distinct header values each get their own counter, and the limit still holds after the flood', { timeout: 240_000 }, async () => {
    const N = 10_000;
    let ok = 0;
    let next = 0;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        if ((await get('/flood', { 'x-key': `flood-${i}` })).status === 200) ok++;
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    expect(ok).toBe(N); // each value was new
    expect(statuses([await get('/flood', { 'x-key': 'flood-17' }), await get('/flood', { 'x-key': 'after' }), await get('/flood', { 'x-key': 'after' })])).toEqual([429, 200, 429]);
  });

  it('hostile: a huge header value is counted by its SHA-256 (no refused key, distinct values apart)', async () => {
    const big = 'x'.repeat(12_000);
    expect(statuses([await get('/flood', { 'x-key': big + '1' }), await get('/flood', { 'x-key': big + '1' }), await get('/flood', { 'x-key': big + '2' })])).toEqual([200, 429, 200]);
  });
});

describe('plugin rate-limiting: the counters store fails', () => {
  let up: Upstream;
  let gw: TestGateway;
  let lines: LogLine[];

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    const captured = captureLogger('debug');
    lines = captured.lines;
    // A cluster Redis nobody listens on: every cluster counters call fails at once.
    const port = await freePort();
    gw = await startGateway(`
${NO_BREAKER}
cluster: { redis: { url: "redis://127.0.0.1:${port}", connectTimeoutMs: 200, commandTimeoutMs: 200 } }
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: open, service: s, paths: [/open] }, { name: closed, service: s, paths: [/closed] }, { name: local, service: s, paths: [/local] }]
    plugins:
      - { name: rate-limiting, route: open, config: { minute: 1, policy: redis, limit_by: ip } }
      - { name: rate-limiting, route: closed, config: { minute: 1, policy: redis, limit_by: ip, fault_tolerant: false } }
      - { name: rate-limiting, route: local, config: { minute: 1, policy: local, limit_by: ip } }
`, {}, { logger: captured.logger });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('fault_tolerant (default): requests go through unlimited, without headers, and the error is logged', async () => {
    const rs = [await send(`${gw.url}/open`), await send(`${gw.url}/open`)];
    expect(statuses(rs)).toEqual([200, 200]);
    expect(rs[0].headers['ratelimit-limit']).toBeUndefined();
    expect(lines.some((l) => /rate-limiting: failed to get usage:.*counters: the store did not answer/.test(String(l.msg)))).toBe(true);
  });

  it('fault_tolerant false: 500 with Kong message', async () => {
    const r = await send(`${gw.url}/closed`);
    expect(r.status).toBe(500);
    expect(r.json()).toEqual({ message: 'An unexpected error occurred' });
  });

  it('policy local on the same node still counts (the node store does not need Redis)', async () => {
    await inOneWindow(60, 3000);
    expect(statuses([await send(`${gw.url}/local`), await send(`${gw.url}/local`)])).toEqual([200, 429]);
  });
});

describe('plugin rate-limiting: bad configs', () => {
  const config = (c: string) => `
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s, paths: [/] }]
    plugins: [{ name: rate-limiting, config: ${c} }]
`;
  it('refuses a config without a window, header without header_name, path without path, Kong month', async () => {
    const cases: [string, RegExp][] = [
      ['{ limit_by: ip }', /config: missing required field "second"/],
      ['{ minute: 1, limit_by: header }', /config: missing required field "header_name"/],
      ['{ minute: 1, limit_by: path }', /config: missing required field "path"/],
      ['{ minute: 1, month: 10 }', /month/],
      ['{ minute: -1 }', /minute/],
      ['{ minute: 1, policy: memory }', /policy/],
    ];
    for (const [c, re] of cases) expect((await configErrors(config(c))).join('\n')).toMatch(re);
  });
});
