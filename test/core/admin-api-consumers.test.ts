import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../core/consumers/index.ts';
import { echoHandler, pluginSource, send, startGateway, startUpstream, type Reply, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const OP = 'operator-secret-c';
const ACME = 'acme-secret-c';
const GLOBEX = 'globex-secret-c';

/** Authenticates the consumer whose id is in x-consumer: a request shows whether the running config knows it. */
const AUTH = pluginSource('auth', `
export function access(pdk: any) {
  const id = pdk.request.getHeader('x-consumer');
  if (id !== undefined) pdk.client.authenticate({ id }, null);
  const c = pdk.client.getConsumer();
  pdk.serviceRequest.setHeader('x-who', c === null ? 'nobody' : c.id);
}
export function headerFilter(pdk: any) {
  const c = pdk.client.getConsumer();
  pdk.response.setHeader('x-username', c === null ? '' : c.username);
}`);

describe('admin API: consumers and credentials', () => {
  let up: Upstream;
  let gw: TestGateway;
  const api = (path: string, opts: { method?: string; token?: string; body?: unknown } = {}): Promise<Reply> =>
    send(`${gw.adminUrl}${path}`, {
      method: opts.method,
      headers: { authorization: `Bearer ${opts.token ?? OP}`, ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  const file = () => parse(readFileSync(gw.configFile, 'utf8'));

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
admin:
  tokens:
    - { name: ops, sha256: ${sha(OP)} }
    - { name: acme-team, sha256: ${sha(ACME)}, tenant: acme }
    - { name: globex-team, sha256: ${sha(GLOBEX)}, tenant: globex }
tenants:
  - name: acme
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/acme] }]
    plugins: [{ name: auth, path: ./auth.ts }]
    consumers: [{ id: c-old, username: old-timer }]
  - name: globex
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/globex] }]
    consumers: [{ username: secret-agent }]
`, { 'auth.ts': AUTH });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('creates a consumer (id generated), shows it by id and by username, and the proxy knows it at once', async () => {
    expect((await send(`${gw.url}/acme`, { headers: { 'x-consumer': 'c-new' } })).status).toBe(500); // unknown yet
    const created = await api('/tenants/acme/consumers', { method: 'POST', token: ACME, body: { username: 'alice', customId: 'u-1', tags: ['gold'] } });
    expect(created.status, created.body).toBe(201);
    const alice = created.json();
    expect(alice).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), username: 'alice', customId: 'u-1', tags: ['gold'] });
    expect((await api(`/tenants/acme/consumers/${alice.id}`)).json()).toEqual(alice);
    expect((await api('/tenants/acme/consumers/alice')).json()).toEqual(alice);
    const r = await send(`${gw.url}/acme`, { headers: { 'x-consumer': alice.id } });
    expect(r.status).toBe(200);
    expect(r.json().headers['x-who']).toBe(alice.id);
    expect(r.headers['x-username']).toBe('alice');
  });

  it('lists with paging', async () => {
    for (const u of ['p1', 'p2', 'p3']) expect((await api('/tenants/acme/consumers', { method: 'POST', body: { username: u } })).status).toBe(201);
    const first = await api('/tenants/acme/consumers?size=2');
    expect(first.json().data.map((c: { username: string }) => c.username)).toEqual(['old-timer', 'alice']);
    const next = await api(first.json().next);
    expect(next.json().data.map((c: { username: string }) => c.username)).toEqual(['p1', 'p2']);
  });

  it('refuses a duplicate username (409) and credentials in the consumer body (400)', async () => {
    const dup = await api('/tenants/acme/consumers', { method: 'POST', body: { username: 'alice' } });
    expect(dup.status).toBe(409);
    const nested = await api('/tenants/acme/consumers', { method: 'POST', body: { username: 'z', credentials: {} } });
    expect(nested.status).toBe(400);
    expect(nested.json().error.message).toContain('/key-auth');
    const bad = await api('/tenants/acme/consumers', { method: 'POST', body: { username: '' } });
    expect(bad.status).toBe(400);
    expect(bad.json().error.message).toMatch(/tenants\[0\]\.consumers\[\d+\]\.username/);
  });

  it('PUT replaces own fields and keeps credentials; PATCH merges; the id never moves', async () => {
    const key = await api('/tenants/acme/consumers/old-timer/key-auth', { method: 'POST', body: { key: 'kept-key' } });
    expect(key.status, key.body).toBe(201);
    const put = await api('/tenants/acme/consumers/old-timer', { method: 'PUT', body: { username: 'veteran' } });
    expect(put.status, put.body).toBe(200);
    expect(put.json()).toEqual({ id: 'c-old', username: 'veteran' });
    expect((await api('/tenants/acme/consumers/c-old/key-auth')).json().data[0].key).toBe('kept-key');
    const patch = await api('/tenants/acme/consumers/c-old', { method: 'PATCH', body: { tags: ['x'] } });
    expect(patch.json()).toEqual({ id: 'c-old', username: 'veteran', tags: ['x'] });
    const created = await api('/tenants/acme/consumers/by-put', { method: 'PUT', body: {} });
    expect(created.json().username).toBe('by-put');
  });

  it('key-auth: a random key when none is given; by id or key; PATCH and DELETE', async () => {
    const k = await api('/tenants/acme/consumers/alice/key-auth', { method: 'POST', body: {} });
    expect(k.status, k.body).toBe(201);
    const cred = k.json();
    expect(cred.key).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(cred.consumer).toEqual({ id: (await api('/tenants/acme/consumers/alice')).json().id });
    expect((await api(`/tenants/acme/consumers/alice/key-auth/${cred.key}`)).json().id).toBe(cred.id);
    expect((await api(`/tenants/acme/consumers/alice/key-auth/${cred.id}`, { method: 'PATCH', body: { key: 'rotated' } })).json().key).toBe('rotated');
    const taken = await api('/tenants/acme/consumers/p1/key-auth', { method: 'POST', body: { key: 'rotated' } });
    expect(taken.status).toBe(409);
    expect((await api(`/tenants/acme/consumers/alice/key-auth/${cred.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await api(`/tenants/acme/consumers/alice/key-auth/${cred.id}`)).status).toBe(404);
  });

  it('basic-auth: takes a password, stores only an scrypt hash, never shows either', async () => {
    const b = await api('/tenants/acme/consumers/alice/basic-auth', { method: 'POST', body: { username: 'alice', password: 'correct horse' } });
    expect(b.status, b.body).toBe(201);
    expect(b.json()).toEqual({ id: expect.any(String), username: 'alice', consumer: { id: expect.any(String) } });
    const stored = file().tenants[0].consumers.find((c: { username: string }) => c.username === 'alice').credentials['basic-auth'][0];
    expect(stored.password).toBeUndefined();
    expect(stored.password_hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword(stored.password_hash, 'correct horse')).toBe(true);
    expect(readFileSync(gw.configFile, 'utf8')).not.toContain('correct horse');
    const listed = await api('/tenants/acme/consumers/alice/basic-auth');
    expect(listed.body).not.toContain('scrypt');
    expect((await api('/tenants/acme/consumers/alice/basic-auth', { method: 'POST', body: { username: 'x', password_hash: stored.password_hash } })).status).toBe(400);
    expect((await api('/tenants/acme/consumers/alice/basic-auth', { method: 'POST', body: { username: 'y' } })).status).toBe(400);
  });

  it('jwt and acls, like Kong\'s endpoints', async () => {
    const j = await api('/tenants/acme/consumers/alice/jwt', { method: 'POST', body: { key: 'iss-1', secret: 's' } });
    expect(j.status, j.body).toBe(201);
    expect(j.json()).toMatchObject({ key: 'iss-1', algorithm: 'HS256' });
    const noKey = await api('/tenants/acme/consumers/alice/jwt', { method: 'POST', body: { key: 'iss-2', algorithm: 'RS256' } });
    expect(noKey.status).toBe(400);
    expect(noKey.json().error.message).toContain('rsa_public_key');
    expect((await api('/tenants/acme/consumers/alice/acls', { method: 'POST', body: { group: 'admins' } })).status).toBe(201);
    expect((await api('/tenants/acme/consumers/alice/acls/admins')).json().group).toBe('admins');
  });

  it('a tenant token sees and changes only its own tenant\'s consumers', async () => {
    expect((await api('/tenants/globex/consumers', { token: ACME })).status).toBe(404);
    expect((await api('/tenants/globex/consumers/secret-agent', { token: ACME })).status).toBe(404);
    expect((await api('/tenants/globex/consumers', { method: 'POST', token: ACME, body: { username: 'mole' } })).status).toBe(404);
    expect((await api('/tenants/globex/consumers/secret-agent/key-auth', { method: 'POST', token: ACME, body: {} })).status).toBe(404);
    expect((await api('/tenants/globex/consumers', { token: GLOBEX })).json().data.map((c: { username: string }) => c.username)).toEqual(['secret-agent']);
  });

  it('DELETE removes the consumer and its credentials; the proxy forgets it', async () => {
    const id = (await api('/tenants/acme/consumers/alice')).json().id;
    expect((await api('/tenants/acme/consumers/alice', { method: 'DELETE' })).status).toBe(204);
    expect((await api(`/tenants/acme/consumers/${id}`)).status).toBe(404);
    expect((await send(`${gw.url}/acme`, { headers: { 'x-consumer': id } })).status).toBe(500);
  });
});
