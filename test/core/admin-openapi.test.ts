import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES } from '../../core/admin-api/router.ts';
import { echoHandler, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const TOKEN = 'openapi-operator';

describe('admin API OpenAPI document (/openapi.json)', () => {
  let up: Upstream;
  let gw: TestGateway;
  let doc: any;

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
admin: { tokens: [{ name: ops, sha256: ${createHash('sha256').update(TOKEN).digest('hex')} }] }
tenants:
  - name: acme
    services: [{ name: base, url: "${up.url}" }]
    routes: [{ name: base, service: base }]
    plugins: [{ id: cid, name: correlation-id }]
    consumers:
      - id: alice
        username: alice
        credentials: { key-auth: [{ id: k1, key: k1 }], basic-auth: [{ id: b1, username: b1, password_hash: "scrypt$16$1$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }], jwt: [{ id: j1, key: j1, secret: s }], acl: [{ id: a1, group: g }] }
`);
    const r = await send(`${gw.adminUrl}/openapi.json`);
    expect(r.status).toBe(200);
    doc = r.json();
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('is OpenAPI 3.1 and documents exactly the routes the router has', () => {
    expect(doc.openapi).toBe('3.1.0');
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented.sort()).toEqual(ROUTES.map((r) => `${r.method} ${r.path}`).sort());
  });

  it('every documented path and method answers (not 404/405) with an operator token; writes with a stale If-Match change nothing', async () => {
    const before = readFileSync(gw.configFile, 'utf8');
    const ids: Record<string, string> = { services: 'base', routes: 'base', plugins: 'cid', consumers: 'alice' };
    const credentials: Record<string, string> = { 'key-auth': 'k1', 'basic-auth': 'b1', jwt: 'j1', acls: 'a1' };
    for (const [template, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      const kind = /\/tenants\/\{tenant\}\/(\w+)/.exec(template)?.[1];
      const endpoint = /\/consumers\/\{id\}\/([\w-]+)/.exec(template)?.[1];
      const path = template.replace('{tenant}', 'acme').replace('{id}', kind === undefined ? '' : ids[kind]).replace('{credential}', endpoint === undefined ? '' : credentials[endpoint]);
      for (const method of Object.keys(ops)) {
        const write = method !== 'get';
        const r = await send(`${gw.adminUrl}${path}`, {
          method: method.toUpperCase(),
          headers: { authorization: `Bearer ${TOKEN}`, ...(write ? { 'if-match': '"stale"' } : {}) },
          body: method === 'post' || method === 'put' || method === 'patch' ? '{}' : undefined,
        });
        expect([404, 405], `${method} ${path}: ${r.body}`).not.toContain(r.status);
        expect(r.status, `${method} ${path}`).toBe(write ? 412 : 200);
      }
    }
    expect(readFileSync(gw.configFile, 'utf8')).toBe(before);
  });

  it('takes entity schemas from the config schema (a field added there shows up here)', () => {
    expect(doc.components.schemas.Route.properties.stripPath.type).toBe('boolean');
    expect(doc.components.schemas.Tenant.properties.services).toBeUndefined();
    expect(doc.components.schemas.Plugin.properties.id).toBeDefined();
  });
});
