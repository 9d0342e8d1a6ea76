import { createHash } from 'node:crypto';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../core/gateway.ts';
import { createLogger } from '../../core/log.ts';
import { captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, type Reply, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const OP = 'operator-secret-1';
const ACME = 'acme-secret-1';
const OTHER = 'globex-secret-1';

function configYaml(up: Upstream): string {
  return `
limits: { ceilings: { cpuMs: 100 } }
admin:
  tokens:
    - { name: ops, sha256: ${sha(OP)} }
    - { name: acme-team, sha256: ${sha(ACME)}, tenant: acme }
    - { name: globex-team, sha256: ${sha(OTHER)}, tenant: globex }
tenants:
  - name: acme
    services: [{ name: base, url: "${up.url}" }]
    routes: [{ name: base, service: base, paths: [/acme] }]
  - name: globex
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, hosts: [globex.test] }]
`;
}

describe('admin API (one process)', () => {
  let up: Upstream;
  let gw: TestGateway;
  const api = (path: string, opts: { method?: string; token?: string | null; body?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> => {
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token === undefined ? OP : opts.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    return send(`${gw.adminUrl}${path}`, { method: opts.method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  };

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(configYaml(up));
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('answers 401 with WWW-Authenticate: Bearer without a token or with a bad one', async () => {
    const none = await api('/tenants', { token: null });
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(none.json().error.code).toBe('ISG_ERR_ADMIN_UNAUTHORIZED');
    const bad = await api('/tenants', { token: 'nope' });
    expect(bad.status).toBe(401);
    expect(bad.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('lists tenants with Kong paging (size, offset, next)', async () => {
    const first = await api('/tenants?size=1');
    expect(first.status).toBe(200);
    const p1 = first.json();
    expect(p1.data.map((t: any) => t.name)).toEqual(['acme']);
    expect(typeof p1.offset).toBe('string');
    expect(p1.next).toBe(`/tenants?size=1&offset=${p1.offset}`);
    const p2 = (await api(p1.next)).json();
    expect(p2.data.map((t: any) => t.name)).toEqual(['globex']);
    expect(p2.next).toBeNull();
    expect(p2.offset).toBeUndefined();
    expect((await api('/tenants?size=0')).status).toBe(400);
    expect(first.headers.etag).toMatch(/^"[0-9a-f]+"$/);
  });

  it('creates a service, a route and a plugin by POST, and a request through the proxy reaches them', async () => {
    const s = await api('/tenants/acme/services', { method: 'POST', body: { name: 'orders', url: `${up.url}/v1` } });
    expect(s.status, s.body).toBe(201);
    expect(s.json()).toMatchObject({ name: 'orders', url: `${up.url}/v1`, timeoutMs: 60000 });
    const r = await api('/tenants/acme/routes', { method: 'POST', body: { name: 'orders', service: 'orders', paths: ['/orders'], stripPath: true } });
    expect(r.status, r.body).toBe(201);
    const p = await api('/tenants/acme/plugins', { method: 'POST', body: { name: 'correlation-id', route: 'orders', config: { header_name: 'X-Trace' } } });
    expect(p.status, p.body).toBe(201);
    const plugin = p.json();
    expect(plugin.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(plugin.config).toEqual({ header_name: 'X-Trace', generator: 'uuid#counter', echo_downstream: false });

    const res = await send(`${gw.url}/orders/42`);
    expect(res.status).toBe(200);
    expect(res.json().url).toBe('/v1/42');
    expect(res.json().headers['x-trace']).toMatch(/.+/);

    expect((await api(`/tenants/acme/plugins/${plugin.id}`)).json().config.header_name).toBe('X-Trace');
    expect((await api('/tenants/acme/routes/orders')).json().paths).toEqual(['/orders']);
    // Written back: the file holds the change (no defaults filled in) and a restart would load it.
    const file = parse(readFileSync(gw.configFile, 'utf8'));
    expect(file.tenants[0].routes[1]).toEqual({ name: 'orders', service: 'orders', paths: ['/orders'], stripPath: true });
    expect(file.tenants[0].plugins[0].id).toBe(plugin.id);
  });

  it('refuses an invalid change with 400 and the field path; nothing changes, the file neither', async () => {
    const before = readFileSync(gw.configFile, 'utf8');
    const version = gw.gw.snapshot.version;
    const r = await api('/tenants/acme/routes', { method: 'POST', body: { name: 'bad', service: 'base', paths: ['no-slash'] } });
    expect(r.status).toBe(400);
    const e = r.json().error;
    expect(e.code).toBe('ISG_ERR_ADMIN_INVALID');
    expect(e.message).toMatch(/^tenants\[0\]\.routes\[2\]\.paths\[0\]: "no-slash" does not have the expected form/);
    const missing = await api('/tenants/acme/routes', { method: 'POST', body: { name: 'bad', service: 'nowhere' } });
    expect(missing.status).toBe(400);
    expect(missing.json().error.details).toContain('tenants[0].routes[2].service: tenant "acme" has no service "nowhere"');
    expect((await api('/tenants/acme/routes', { method: 'POST', body: '[1]' as unknown })).json().error.code).toBe('ISG_ERR_ADMIN_BAD_BODY');
    expect(readFileSync(gw.configFile, 'utf8')).toBe(before);
    expect(gw.gw.snapshot.version).toBe(version);
    expect((await api('/tenants/acme/routes/bad')).status).toBe(404);
  });

  it('answers 409 for a duplicate name and for a host and path another tenant claims', async () => {
    const dup = await api('/tenants/acme/services', { method: 'POST', body: { name: 'orders', url: up.url } });
    expect(dup.status).toBe(409);
    expect(dup.json().error.code).toBe('ISG_ERR_ADMIN_CONFLICT');
    expect((await api('/tenants', { method: 'POST', body: { name: 'acme' } })).status).toBe(409);
    const claim = await api('/tenants/globex/routes', { method: 'POST', body: { name: 'steal', service: 's', paths: ['/acme'] } });
    expect(claim.status).toBe(409);
    expect(claim.json().error.details.join('\n')).toMatch(/both claim host \(any host\) path \/acme/);
  });

  it('answers 412 for a stale If-Match and applies a current one', async () => {
    const etag = (await api('/tenants/acme/services/orders')).headers.etag as string;
    const ok = await api('/tenants/acme/services/orders', { method: 'PATCH', body: { timeoutMs: 30000 }, headers: { 'if-match': etag } });
    expect(ok.status, ok.body).toBe(200);
    expect(ok.json().timeoutMs).toBe(30000);
    expect(ok.headers.etag).not.toBe(etag);
    const stale = await api('/tenants/acme/services/orders', { method: 'PATCH', body: { timeoutMs: 1000 }, headers: { 'if-match': etag } });
    expect(stale.status).toBe(412);
    expect(stale.json().error.code).toBe('ISG_ERR_ADMIN_STALE');
    expect((await api('/tenants/acme/services/orders')).json().timeoutMs).toBe(30000);
  });

  it('PUT creates or replaces, PATCH merges (null deletes), DELETE removes; unknown ids are 404 JSON', async () => {
    const put = await api('/tenants/acme/services/extra', { method: 'PUT', body: { url: up.url, preserveHost: false } });
    expect(put.status, put.body).toBe(200);
    expect(put.json()).toMatchObject({ name: 'extra', preserveHost: false });
    const patched = await api('/tenants/acme/services/extra', { method: 'PATCH', body: { preserveHost: null } });
    expect(patched.json().preserveHost).toBe(true);
    const del = await api('/tenants/acme/services/extra', { method: 'DELETE' });
    expect(del.status).toBe(204);
    const gone = await api('/tenants/acme/services/extra');
    expect(gone.status).toBe(404);
    expect(gone.json().error).toEqual({ code: 'ISG_ERR_ADMIN_NOT_FOUND', message: 'tenant "acme" has no service "extra"' });
    expect((await api('/tenants/nobody')).status).toBe(404);
    expect((await api('/tenants/acme/nothing')).status).toBe(404);
    expect((await api('/tenants/%E0%A4%A')).status).toBe(404);
    const m = await api('/tenants', { method: 'DELETE' });
    expect(m.status).toBe(405);
    expect(m.headers.allow).toBe('GET, POST');
  });

  it('an operator creates, changes and deletes a tenant', async () => {
    const t = await api('/tenants', { method: 'POST', body: { name: 'initech', services: [{ name: 's', url: up.url }], routes: [{ name: 'r', service: 's', paths: ['/initech'] }] } });
    expect(t.status, t.body).toBe(201);
    expect(t.json()).toEqual({ name: 'initech' });
    expect((await send(`${gw.url}/initech`)).status).toBe(200);
    const p = await api('/tenants/initech', { method: 'PATCH', body: { limits: { cpuMs: 20 } } });
    expect(p.json()).toEqual({ name: 'initech', limits: { cpuMs: 20 } });
    expect((await api('/tenants/initech', { method: 'PATCH', body: { routes: [] } })).status).toBe(400);
    expect((await api('/tenants/initech', { method: 'DELETE' })).status).toBe(204);
    expect((await send(`${gw.url}/initech`)).status).toBe(404);
  });

  it('a tenant token sees only its own tenant and cannot raise its limits, create tenants or use host files', async () => {
    const list = await api('/tenants', { token: ACME });
    expect(list.json().data.map((t: any) => t.name)).toEqual(['acme']);
    // Other tenants do not exist for it (Kong workspaces: another workspace's entities are not found).
    expect((await api('/tenants/globex', { token: ACME })).status).toBe(404);
    expect((await api('/tenants/globex/routes', { token: ACME })).status).toBe(404);
    expect((await api('/tenants/globex/routes/r', { method: 'DELETE', token: ACME })).status).toBe(404);
    expect((await api('/tenants/globex', { method: 'PATCH', token: ACME, body: { limits: { cpuMs: 1 } } })).status).toBe(404);
    // Its own limits: within the operator's ceilings only.
    const above = await api('/tenants/acme', { method: 'PATCH', token: ACME, body: { limits: { cpuMs: 500 } } });
    expect(above.status).toBe(400);
    expect(above.json().error.message).toBe('tenants[0].limits.cpuMs: 500 is above the ceiling 100');
    expect((await api('/tenants/acme', { method: 'PATCH', token: ACME, body: { limits: { cpuMs: 50 } } })).status).toBe(200);
    // Operator-only: creating, deleting, renaming tenants; plugin files.
    expect((await api('/tenants', { method: 'POST', token: ACME, body: { name: 'mine' } })).status).toBe(403);
    expect((await api('/tenants/acme', { method: 'DELETE', token: ACME })).status).toBe(403);
    expect((await api('/tenants/acme', { method: 'PATCH', token: ACME, body: { name: 'renamed' } })).status).toBe(403);
    const file = await api('/tenants/acme/plugins', { method: 'POST', token: ACME, body: { name: 'x', path: '/etc/passwd' } });
    expect(file.status).toBe(403);
    expect(file.json().error.message).toMatch(/^path: only an operator token/);
    // It changes its own entities.
    const own = await api('/tenants/acme/routes/base', { method: 'PATCH', token: ACME, body: { methods: ['GET'] } });
    expect(own.status, own.body).toBe(200);
    expect(parse(readFileSync(gw.configFile, 'utf8')).limits).toEqual({ ceilings: { cpuMs: 100 } });
  });

  it('in-flight requests finish on the snapshot they started on while a change is applied', async () => {
    const slow = await startUpstream((_req, res) => setTimeout(() => res.end('slow done'), 400));
    try {
      expect((await api('/tenants/globex/services/s', { method: 'PATCH', body: { url: slow.url } })).status).toBe(200);
      const inflight = send(`${gw.url}/`, { headers: { host: 'globex.test' } });
      await new Promise((r) => setTimeout(r, 100));
      const before = gw.gw.snapshot;
      expect(before.inflight).toBe(1);
      expect((await api('/tenants/globex/services/s', { method: 'PATCH', body: { url: up.url } })).status).toBe(200);
      expect(gw.gw.snapshot).not.toBe(before);
      const res = await inflight;
      expect(res.body).toBe('slow done');
      expect((await send(`${gw.url}/`, { headers: { host: 'globex.test' } })).json().url).toBe('/');
    } finally {
      await slow.close();
    }
  });

  it('keeps the changes across a restart (the file is the store)', async () => {
    const again = await Gateway.start({ configFile: gw.configFile, listen: { host: '127.0.0.1', port: 0 }, admin: false, logger: createLogger('silent') });
    try {
      const res = await send(`http://127.0.0.1:${again.proxyAddress.port}/orders/7`);
      expect(res.status).toBe(200);
      expect(res.json().url).toBe('/v1/7');
      expect(res.json().headers['x-trace']).toMatch(/.+/);
    } finally {
      await again.stop(0);
    }
  });

  it('refuses a change when the file was made invalid by hand, naming it', async () => {
    const good = readFileSync(gw.configFile, 'utf8');
    writeFileSync(gw.configFile, `${good}\nbogus: 1\n`);
    try {
      const r = await api('/tenants/acme/services', { method: 'POST', body: { name: 'z', url: up.url } });
      expect(r.status).toBe(500);
      expect(r.json().error.code).toBe('ISG_ERR_ADMIN_STORE');
      expect(r.json().error.details).toEqual(['(root): unknown field "bogus"']);
    } finally {
      writeFileSync(gw.configFile, good);
    }
  });
});

describe('POST /tenants/{tenant}/plugins/{id}/reload', () => {
  it("loads the plugin's new code; another tenant keeps its isolate", async () => {
    const up = await startUpstream(echoHandler);
    const version = (v: number) => pluginSource('stamp', `export function access(pdk: any) { pdk.serviceRequest.setHeader('x-stamp', '${v}'); }`);
    const gw = await startGateway(
      `
admin: { tokens: [{ name: ops, sha256: ${sha(OP)} }] }
tenants:
  - name: a
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/a] }]
    plugins: [{ id: stamp, name: stamp, path: ./stamp.ts }]
  - name: b
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/b] }]
    plugins: [{ name: correlation-id }]
`,
      { 'stamp.ts': version(1) },
    );
    try {
      expect((await send(`${gw.url}/a`)).json().headers['x-stamp']).toBe('1');
      const b = gw.gw.snapshot.sandboxes.get('b');
      const file = join(dirname(gw.configFile), 'stamp.ts');
      writeFileSync(file, version(2));
      utimesSync(file, new Date(), new Date(Date.now() + 5000)); // a different mtime, whatever the clock's resolution
      expect((await send(`${gw.url}/a`)).json().headers['x-stamp']).toBe('1'); // nothing reloads by itself
      const r = await send(`${gw.adminUrl}/tenants/a/plugins/stamp/reload`, { method: 'POST', headers: { authorization: `Bearer ${OP}` } });
      expect(r.status, r.body).toBe(200);
      expect(r.json().id).toBe('stamp');
      expect((await send(`${gw.url}/a`)).json().headers['x-stamp']).toBe('2');
      expect(gw.gw.snapshot.sandboxes.get('b')).toBe(b);
      expect((await send(`${gw.adminUrl}/tenants/a/plugins/nope/reload`, { method: 'POST', headers: { authorization: `Bearer ${OP}` } })).status).toBe(404);
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});

describe('admin.tokens in the config', () => {
  it('is validated like any field: a token must be stored as 64 hex digits of SHA-256', async () => {
    await expect(startGateway('admin: { tokens: [{ name: ops, sha256: secret }] }\ntenants: []')).rejects.toThrow(
      /admin\.tokens\[0\]\.sha256: "secret" does not have the expected form \(SHA-256 of the token/,
    );
  });
});

describe('admin API without a token', () => {
  it('is read-only on loopback, says so in the log, and tells how to configure a token', async () => {
    const up = await startUpstream(echoHandler);
    const { logger, lines } = captureLogger('info');
    const gw = await startGateway(`tenants: [{ name: a, services: [{ name: s, url: "${up.url}" }], routes: [{ name: r, service: s }] }]`, {}, { logger });
    try {
      expect(lines.filter((l) => /admin API is read-only/.test(l.msg))).toHaveLength(1);
      const list = await send(`${gw.adminUrl}/tenants/a/routes`);
      expect(list.status).toBe(200);
      expect(list.json().data[0].name).toBe('r');
      const before = readFileSync(gw.configFile, 'utf8');
      const post = await send(`${gw.adminUrl}/tenants/a/routes`, { method: 'POST', body: JSON.stringify({ name: 'x', service: 's' }) });
      expect(post.status).toBe(403);
      expect(post.json().error.code).toBe('ISG_ERR_ADMIN_READ_ONLY');
      expect(post.json().error.message).toMatch(/add admin\.tokens with the sha256 of a token/);
      expect(readFileSync(gw.configFile, 'utf8')).toBe(before);
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});
