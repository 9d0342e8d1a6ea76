import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import { configErrors } from './helpers.ts';

describe('plugin acl', () => {
  let up: Upstream;
  let gw: TestGateway;
  const get = (path: string, key?: string) => send(`${gw.url}${path}`, { headers: key === undefined ? {} : { apikey: key } });

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes:
      - { name: allow, service: echo, paths: [/allow] }
      - { name: deny, service: echo, paths: [/deny] }
      - { name: hidden, service: echo, paths: [/hidden] }
      - { name: noauth, service: echo, paths: [/noauth] }
      - { name: anon, service: echo, paths: [/anon] }
    consumers:
      - id: c-admin
        username: admin
        credentials: { key-auth: [{ key: admin-key }], acl: [{ group: admins }, { group: "ops team" }] }
      - id: c-user
        username: user
        credentials: { key-auth: [{ key: user-key }], acl: [{ group: users }] }
      - id: c-banned
        username: banned
        credentials: { key-auth: [{ key: banned-key }], acl: [{ group: users }, { group: banned }] }
      - { id: c-guest, username: guest }
    plugins:
      - { name: key-auth, route: allow }
      - { name: key-auth, route: deny }
      - { name: key-auth, route: hidden }
      - { name: key-auth, route: anon, config: { anonymous: guest } }
      - { name: acl, route: allow, config: { allow: [admins] } }
      - { name: acl, route: deny, config: { deny: [banned], allow: null } }
      - { name: acl, route: hidden, config: { allow: [users], hide_groups_header: true } }
      - { name: acl, route: noauth, config: { allow: [users] } }
      - { name: acl, route: anon, config: { allow: [users] } }
`);
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('allow: a member passes with X-Consumer-Groups; others get 403 "You cannot consume this service"', async () => {
    const ok = await get('/allow', 'admin-key');
    expect(ok.status).toBe(200);
    expect(ok.json().headers['x-consumer-groups']).toBe('admins, ops team');
    const no = await get('/allow', 'user-key');
    expect(no.status).toBe(403);
    expect(no.json()).toEqual({ message: 'You cannot consume this service' });
  });

  it('deny: a member of a denied group is refused, others pass', async () => {
    expect((await get('/deny', 'banned-key')).status).toBe(403);
    const r = await get('/deny', 'user-key');
    expect(r.status).toBe(200);
    expect(r.json().headers['x-consumer-groups']).toBe('users');
  });

  it('hide_groups_header: no X-Consumer-Groups upstream, and a client cannot send its own', async () => {
    const r = await send(`${gw.url}/hidden`, { headers: { apikey: 'user-key', 'x-consumer-groups': 'admins' } });
    expect(r.status).toBe(200);
    expect(r.json().headers['x-consumer-groups']).toBeUndefined();
  });

  it('no authenticated consumer: 401 Unauthorized', async () => {
    const r = await get('/noauth');
    expect(r.status).toBe(401);
    expect(r.json()).toEqual({ message: 'Unauthorized' });
  });

  it('the anonymous consumer is judged by its own groups (none here): 403', async () => {
    expect((await get('/anon')).status).toBe(403);
    expect((await get('/anon', 'user-key')).status).toBe(200);
  });

  it('a config with both allow and deny, or neither, is refused', async () => {
    const cfg = (c: string) => `
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:1" }]
    routes: [{ name: r, service: s }]
    plugins: [{ name: acl, config: ${c} }]
`;
    expect((await configErrors(cfg('{ allow: [a], deny: [b] }'))).join('\n')).toMatch(/plugins\[0\]\.config/);
    expect((await configErrors(cfg('{}'))).join('\n')).toMatch(/plugins\[0\]\.config/);
    expect((await configErrors(cfg('{ allow: null, deny: null }'))).join('\n')).toMatch(/plugins\[0\]\.config/);
  });
});
