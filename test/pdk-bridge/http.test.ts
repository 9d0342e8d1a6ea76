import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** Calls pdk.http.request(x-url, x-opts) (x-times times) and answers with the response or the error. */
const CALLER = pluginSource(
  'caller',
  `
export async function access(pdk: any) {
  const url = pdk.request.getHeader('x-url');
  const opts = JSON.parse(pdk.request.getHeader('x-opts') ?? '{}');
  const times = Number(pdk.request.getHeader('x-times') ?? '1');
  const out: any[] = [];
  for (let i = 0; i < times; i++) {
    try { out.push(await pdk.http.request(url, opts)); } catch (e: any) { out.push({ error: e.message }); }
  }
  pdk.response.exit(200, times === 1 ? out[0] : out);
}`,
);

/** Declares capabilities.http: only a host the operator did not allow, so nothing is left. */
const NARROW = `export const name = 'narrow';\nexport const version = '1.0.0';\nexport const priority = 1;\nexport const capabilities = { http: ['elsewhere.example'] };\n${CALLER.split('\n').slice(3).join('\n')}`;

function target(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, 'http://x');
  if (url.pathname === '/slow') { setTimeout(() => res.end('late'), 1000); return; }
  if (url.pathname === '/huge') { res.end('x'.repeat(2 * 1024 * 1024)); return; }
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    res.setHeader('x-target', 'yes');
    res.end(JSON.stringify({ method: req.method, path: req.url, header: req.headers['x-sent'], body }));
  });
}

describe('pdk.http', () => {
  let up: Upstream;
  let tgt: Upstream;
  let gw: TestGateway;
  const call = async (path: string, headers: Record<string, string>) => {
    const r = await send(`${gw.url}${path}`, { headers });
    expect(r.status, r.body).toBe(200);
    return r.json();
  };

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    tgt = await startUpstream(target);
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    http: { allow: ["127.0.0.1:${tgt.port}", "localhost"] }
    services: [{ name: s, url: "${up.url}" }]
    routes:
      - { name: r, service: s, paths: [/h] }
      - { name: n, service: s, paths: [/n] }
    plugins:
      - { name: caller, path: ./caller.ts, route: r }
      - { name: narrow, path: ./narrow.ts, route: n }
`,
      { 'caller.ts': CALLER, 'narrow.ts': NARROW },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
    await tgt.close();
  });

  it('calls an allowed host: method, headers and body out; status, headers and body back', async () => {
    const r = await call('/h', { 'x-url': `${tgt.url}/p?q=1`, 'x-opts': JSON.stringify({ method: 'POST', headers: { 'x-sent': 'hi' }, body: 'payload' }) });
    expect(r.status).toBe(200);
    expect(r.headers['x-target']).toBe('yes');
    expect(JSON.parse(r.body)).toEqual({ method: 'POST', path: '/p?q=1', header: 'hi', body: 'payload' });
  });

  it('refuses a host the tenant is not allowed, the admin listener among them', async () => {
    expect((await call('/h', { 'x-url': `${up.url}/` })).error).toBe(`http.request: host 127.0.0.1:${up.port} is not in this tenant's allowlist`);
    const admin = new URL(gw.adminUrl);
    expect((await call('/h', { 'x-url': `${gw.adminUrl}/metrics` })).error).toBe(`http.request: host 127.0.0.1:${admin.port} is not in this tenant's allowlist`);
  });

  it('refuses a name that resolves to loopback, even when the name is allowed', async () => {
    // 127.0.0.1 is listed for the target's port only: not for the upstream's
    expect((await call('/h', { 'x-url': `http://localhost:${up.port}/` })).error).toMatch(/resolves to (127\.0\.0\.1|::1), a loopback or link-local address the allowlist does not name/);
  });

  it('a plugin that declares capabilities.http gets only the intersection', async () => {
    expect((await call('/n', { 'x-url': `${tgt.url}/` })).error).toBe(`http.request: host 127.0.0.1:${tgt.port} is not in this tenant's allowlist`);
  });

  it('times out by timeoutMs', async () => {
    expect((await call('/h', { 'x-url': `${tgt.url}/slow`, 'x-opts': '{"timeoutMs":100}' })).error).toBe('http.request: timed out after 100 ms');
  });

  it('caps the response body and the calls per phase', async () => {
    expect((await call('/h', { 'x-url': `${tgt.url}/huge` })).error).toBe('http.request: response body larger than 1048576 bytes');
    const many = await call('/h', { 'x-url': `${tgt.url}/`, 'x-times': '9' });
    expect(many.slice(0, 8).every((r: any) => r.status === 200)).toBe(true);
    expect(many[8].error).toBe('http.request: more than 8 calls in one phase');
  });
});
