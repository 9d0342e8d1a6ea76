import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import { configErrors } from './helpers.ts';

describe('plugin key-auth', () => {
  let up: Upstream;
  let gw: TestGateway;
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') => send(`${gw.url}${path}`, { headers, method });

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    const route = (n: string) => `      - { name: ${n}, service: echo, paths: [/${n}] }`;
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes:
${['plain', 'names', 'hide', 'anon', 'anonname', 'anonmissing', 'preflight', 'headeronly', 'realm'].map(route).join('\n')}
    consumers:
      - id: c-alice
        username: alice
        customId: u-1
        credentials: { key-auth: [{ id: k-alice, key: alice-key }, { id: k-uni, key: "ключ-🔑" }] }
      - id: c-guest
        username: guest
    plugins:
      - { name: key-auth, route: plain }
      - { name: key-auth, route: names, config: { key_names: [x-api-key, token] } }
      - { name: key-auth, route: hide, config: { hide_credentials: true } }
      - { name: key-auth, route: anon, config: { anonymous: c-guest } }
      - { name: key-auth, route: anonname, config: { anonymous: guest } }
      - { name: key-auth, route: anonmissing, config: { anonymous: nobody } }
      - { name: key-auth, route: preflight, config: { run_on_preflight: false } }
      - { name: key-auth, route: headeronly, config: { key_in_query: false } }
      - { name: key-auth, route: realm, config: { realm: kong } }
`);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('no key: 401 "No API key found in request" with WWW-Authenticate: Key', async () => {
    const r = await get('/plain');
    expect(r.status).toBe(401);
    expect(r.json()).toEqual({ message: 'No API key found in request' });
    expect(r.headers['www-authenticate']).toBe('Key');
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect((await get('/realm')).headers['www-authenticate']).toBe('Key realm="kong"');
  });

  it('a wrong key: 401 "Unauthorized"; the right one passes with Kong\'s upstream headers', async () => {
    const bad = await get('/plain', { apikey: 'nope' });
    expect(bad.status).toBe(401);
    expect(bad.json()).toEqual({ message: 'Unauthorized' });
    expect(bad.headers['www-authenticate']).toBe('Key');
    const ok = await get('/plain', { apikey: 'alice-key', 'x-consumer-id': 'forged', 'x-anonymous-consumer': 'true' });
    expect(ok.status).toBe(200);
    const h = ok.json().headers;
    expect(h['x-consumer-id']).toBe('c-alice');
    expect(h['x-consumer-username']).toBe('alice');
    expect(h['x-consumer-custom-id']).toBe('u-1');
    expect(h['x-credential-identifier']).toBe('k-alice');
    expect(h['x-anonymous-consumer']).toBeUndefined();
    expect(h.apikey).toBe('alice-key'); // not hidden by default
  });

  it('the key in the query string, and key_names in order', async () => {
    expect((await get('/plain?apikey=alice-key')).status).toBe(200);
    expect((await get('/names', { token: 'alice-key' })).json().headers['x-consumer-id']).toBe('c-alice');
    expect((await get('/names?x-api-key=alice-key')).status).toBe(200);
    expect((await get('/names', { apikey: 'alice-key' })).status).toBe(401);
    expect((await get('/headeronly?apikey=alice-key')).json()).toEqual({ message: 'No API key found in request' });
    const dup = await get('/plain?apikey=a&apikey=b');
    expect(dup.status).toBe(401);
    expect(dup.json()).toEqual({ message: 'Duplicate API key found' });
  });

  it('hide_credentials removes the key from the header and the query', async () => {
    const r = await get('/hide?apikey=alice-key&keep=1');
    expect(r.status).toBe(200);
    expect(r.json().url).toBe('/hide?keep=1');
    const h = await get('/hide', { apikey: 'alice-key' });
    expect(h.json().headers.apikey).toBeUndefined();
    expect(h.json().headers['x-consumer-id']).toBe('c-alice');
  });

  it('anonymous: a failed request goes on as that consumer (by id or username), X-Anonymous-Consumer: true', async () => {
    for (const path of ['/anon', '/anonname']) {
      const r = await get(path, { apikey: 'nope' });
      expect(r.status).toBe(200);
      expect(r.json().headers['x-consumer-id']).toBe('c-guest');
      expect(r.json().headers['x-anonymous-consumer']).toBe('true');
      expect(r.json().headers['x-credential-identifier']).toBeUndefined();
    }
    const real = await get('/anon', { apikey: 'alice-key' });
    expect(real.json().headers['x-consumer-id']).toBe('c-alice');
    const missing = await get('/anonmissing');
    expect(missing.status).toBe(500);
    expect(missing.json()).toEqual({ message: 'An unexpected error occurred' });
  });

  it('run_on_preflight: false lets OPTIONS through unauthenticated', async () => {
    expect((await get('/preflight', {}, 'OPTIONS')).status).toBe(200);
    expect((await get('/preflight')).status).toBe(401);
    expect((await get('/plain', {}, 'OPTIONS')).status).toBe(401);
  });

  it('hostile: unicode keys match exactly, a 12 KB key and control bytes find nothing', async () => {
    expect((await get(`/plain?apikey=${encodeURIComponent('ключ-🔑')}`)).json().headers['x-credential-identifier']).toBe('k-uni');
    expect((await get(`/plain?apikey=${encodeURIComponent('ключ-🔑 ')}`)).status).toBe(401);
    expect((await get('/plain', { apikey: 'k'.repeat(12 * 1024) })).json()).toEqual({ message: 'Unauthorized' });
    expect((await get(`/plain?apikey=alice-key%00`)).status).toBe(401);
    // 20 KB: node's header limit refuses it before any plugin runs
    expect((await get(`/plain?apikey=${'x'.repeat(20000)}`)).status).toBe(431);
  });

  it('a bad config is refused with the field named', async () => {
    const errs = await configErrors(`
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:1" }]
    routes: [{ name: r, service: s }]
    plugins: [{ name: key-auth, config: { key_names: ["bad name"] } }]
`);
    expect(errs.join('\n')).toMatch(/key_names/);
  });
});
