import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, send, startGateway, startUpstream, type Reply, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const OP = 'operator-secret-http';
const ACME = 'acme-secret-http';

/** tenants[].http.allow decides where pdk.http may go: only an operator token may change it. */
describe('admin API: the outbound allowlist is the operator\'s', () => {
  let up: Upstream;
  let gw: TestGateway;
  const api = (path: string, method: string, token: string, body?: unknown): Promise<Reply> =>
    send(`${gw.adminUrl}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
admin:
  tokens:
    - { name: ops, sha256: ${sha(OP)} }
    - { name: acme-team, sha256: ${sha(ACME)}, tenant: acme }
tenants:
  - name: acme
    http: { allow: ["api.example.com"] }
    services: [{ name: base, url: "${up.url}" }]
    routes: [{ name: base, service: base, paths: [/acme] }]
`);
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('a tenant token may not set it by PATCH or PUT, and its PUT keeps it', async () => {
    const patch = await api('/tenants/acme', 'PATCH', ACME, { http: { allow: ['127.0.0.1:8001'] } });
    expect(patch.status).toBe(403);
    expect(patch.json().error.message).toBe("http: only an operator token may set a tenant's outbound allowlist");
    expect((await api('/tenants/acme', 'PUT', ACME, { http: { allow: ['evil.example'] } })).status).toBe(403);
    const put = await api('/tenants/acme', 'PUT', ACME, { limits: { cpuMs: 40 } });
    expect(put.status, put.body).toBe(200);
    expect(put.json().http).toEqual({ allow: ['api.example.com'] });
    expect((await api('/tenants/acme', 'PATCH', ACME, { http: null })).status).toBe(403);
  });

  it('an operator token may', async () => {
    const r = await api('/tenants/acme', 'PATCH', OP, { http: { allow: ['api.example.com', 'hooks.example.com:443'] } });
    expect(r.status, r.body).toBe(200);
    expect(r.json().http).toEqual({ allow: ['api.example.com', 'hooks.example.com:443'] });
  });
});
