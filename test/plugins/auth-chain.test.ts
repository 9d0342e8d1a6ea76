import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/**
 * A realistic route: cors (2000) answers preflights and decorates every answer, key-auth
 * (1250) authenticates, acl (950) lets only the `partners` group in, response-transformer
 * (800) edits what goes back. Kong's order by priority, each plugin unaware of the others.
 * (rate-limiting, from another branch, belongs here too once it is on main: per consumer.)
 */
describe('an auth chain: cors + key-auth + acl + response-transformer', () => {
  let up: Upstream;
  let gw: TestGateway;
  const ORIGIN = 'https://app.example.com';
  const get = (headers: Record<string, string> = {}, method = 'GET') => send(`${gw.url}/api/orders`, { method, headers: { origin: ORIGIN, ...headers } });

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
tenants:
  - name: shop
    services: [{ name: orders, url: "${up.url}" }]
    routes: [{ name: api, service: orders, paths: [/api] }]
    consumers:
      - id: c-partner
        username: partner
        customId: p-7
        credentials: { key-auth: [{ id: k-partner, key: partner-key }], acl: [{ group: partners }] }
      - id: c-intern
        username: intern
        credentials: { key-auth: [{ id: k-intern, key: intern-key }], acl: [{ group: staff }] }
    plugins:
      - { name: cors, route: api, config: { origins: ["${ORIGIN}"], credentials: true, exposed_headers: [x-served-by] } }
      - { name: key-auth, route: api, config: { key_names: [x-api-key], hide_credentials: true } }
      - { name: acl, route: api, config: { allow: [partners] } }
      - { name: response-transformer, route: api, config: { add: { headers: ["x-served-by:isogate"] }, remove: { headers: [x-upstream-secret] } } }
`);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('a preflight is answered by cors without a key', async () => {
    const r = await get({ 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-api-key' }, 'OPTIONS');
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(String(r.headers['access-control-allow-headers']).toLowerCase()).toContain('x-api-key');
  });

  it('a partner gets through: consumer headers upstream, key hidden, CORS and transformed headers back', async () => {
    const r = await get({ 'x-api-key': 'partner-key' });
    expect(r.status).toBe(200);
    const up = r.json().headers;
    expect(up['x-consumer-id']).toBe('c-partner');
    expect(up['x-consumer-custom-id']).toBe('p-7');
    expect(up['x-credential-identifier']).toBe('k-partner');
    expect(up['x-consumer-groups']).toBe('partners');
    expect(up['x-api-key']).toBeUndefined();
    expect(r.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(r.headers['access-control-allow-credentials']).toBe('true');
    expect(r.headers['x-served-by']).toBe('isogate');
  });

  it('a consumer outside the group: 403 from acl, still with CORS headers for the browser', async () => {
    const r = await get({ 'x-api-key': 'intern-key' });
    expect(r.status).toBe(403);
    expect(r.json()).toEqual({ message: 'You cannot consume this service' });
    expect(r.headers['access-control-allow-origin']).toBe(ORIGIN);
  });

  it('no key or a wrong one: 401 from key-auth, acl never runs', async () => {
    const none = await get();
    expect(none.status).toBe(401);
    expect(none.json()).toEqual({ message: 'No API key found in request' });
    expect(none.headers['www-authenticate']).toBe('Key');
    expect(none.headers['access-control-allow-origin']).toBe(ORIGIN);
    const wrong = await get({ 'x-api-key': 'guess' });
    expect(wrong.json()).toEqual({ message: 'Unauthorized' });
  });

  it('forged consumer headers from the client never reach the upstream', async () => {
    const r = await get({ 'x-api-key': 'partner-key', 'x-consumer-id': 'c-admin', 'x-consumer-groups': 'admins', 'x-anonymous-consumer': 'true', 'x-consumer-custom-id': 'x' });
    const up = r.json().headers;
    expect(up['x-consumer-id']).toBe('c-partner');
    expect(up['x-consumer-groups']).toBe('partners');
    expect(up['x-anonymous-consumer']).toBeUndefined();
    expect(up['x-consumer-custom-id']).toBe('p-7');
  });
});
