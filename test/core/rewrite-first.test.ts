import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { NO_BREAKER, captureLogger, pluginSource, send, startGateway, waitFor, type LogLine, type TestGateway } from '../helpers/gateway.ts';

/**
 * Kong's rewrite phase runs before routing: only tenant-wide instances run in it, once per
 * request, and the route is then chosen within the tenant on the request as rewritten
 * (core/rewrite-first.ts). Real gateway, real upstream (plain HTTP and WebSocket).
 */

/** Tenant-wide. Rewrites /old/* to /new/*, and a few paths to each way a rewrite can end; counts its runs. */
const REWRITER = pluginSource('rewriter', `
let total = 0;
export function rewrite(pdk: any) {
  total++;
  const s = pdk.ctx.shared;
  s.rw = (s.rw ?? 0) + 1;
  pdk.serviceRequest.setHeader('x-rw-total', String(total));
  const route = pdk.router.getRoute();
  pdk.serviceRequest.setHeader('x-rw-route', route === null ? 'none' : route.name);
  const p = pdk.request.getPath();
  if (p.startsWith('/old/')) pdk.serviceRequest.setPath('/new/' + p.slice(5));
  else if (p === '/exit') pdk.response.exit(418, { from: 'rewrite' });
  else if (p === '/boom') throw new Error('rewrite fault');
  else if (p === '/nowhere') pdk.serviceRequest.setPath('/none/here');
  else if (p === '/as-post') { pdk.serviceRequest.setMethod('POST'); pdk.serviceRequest.setPath('/posted'); }
  else if (p === '/set-target') pdk.service.setTarget('127.0.0.1', 1);
  else if (p === '/to-reads') pdk.serviceRequest.setPath('/reads/it');
  else if (p === '/host-move') pdk.serviceRequest.setHeader('host', 'alt.example');
  // hostile: another tenant's route (path and Host), and dot segments that would climb out of the route
  else if (p === '/to-other') { pdk.serviceRequest.setPath('/plain'); pdk.serviceRequest.setHeader('host', 't2.example'); }
  else if (p === '/climb') pdk.serviceRequest.setPath('/new/a/../x/%2e%2e/b');
}
export function access(pdk: any) { pdk.serviceRequest.setHeader('x-rw-count', String(pdk.ctx.shared.rw)); }
export function log(pdk: any) {
  const route = pdk.router.getRoute();
  pdk.log.info('logged ' + (route === null ? 'none' : route.name) + ' after ' + pdk.ctx.shared.rw + ' rewrite');
}`, 2000);

/** Scoped to route `new`: its rewrite handler never runs (Kong's rule), its access does, after the route was chosen on the rewritten path. */
const MARK = pluginSource('mark', `
export function rewrite(pdk: any) { pdk.serviceRequest.setHeader('x-mark-rewrite', 'ran'); }
export function access(pdk: any, conf: any) {
  pdk.serviceRequest.setHeader('x-mark', conf.tag);
  pdk.serviceRequest.setHeader('x-route', pdk.router.getRoute().name);
  pdk.serviceRequest.setHeader('x-saw-path', pdk.request.getPath());
  pdk.serviceRequest.setHeader('x-capture', pdk.request.getUriCaptures().unnamed[0]);
}`, 1000);

/** Scoped to route `reads`: reads the client's body in access (rewrite's plugin does not, so the body is read after routing). */
const READER = pluginSource('reader', `
export const reads = ['body'];
export function access(pdk: any) { pdk.serviceRequest.setHeader('x-body', pdk.request.getRawBody()); }`, 900);

type Seen = { method: string; url: string; headers: IncomingHttpHeaders };

describe('rewrite runs once the tenant is known, before routing', () => {
  const seen: Seen[] = [];
  let upUrl = '';
  let up: ReturnType<typeof createServer>;
  let wss: WebSocketServer;
  let gw: TestGateway;
  const logs = captureLogger('info');
  let accessFile = '';

  beforeAll(async () => {
    up = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      req.resume();
      req.on('end', () => {
        const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    wss = new WebSocketServer({ server: up });
    wss.on('connection', (ws, req) => {
      seen.push({ method: 'WS', url: req.url!, headers: req.headers });
      ws.on('message', (d: Buffer) => ws.send(d));
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    upUrl = `http://127.0.0.1:${(up.address() as AddressInfo).port}`;
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s1, url: "${upUrl}", preserveHost: false }]
    routes:
      - { name: new, service: s1, paths: [/new], stripPath: true }
      - { name: posts, service: s1, paths: [/posted], methods: [POST] }
      - { name: reads, service: s1, paths: [/reads] }
      - { name: alt, service: s1, hosts: [alt.example], paths: [/] }
    plugins:
      - { name: reader, path: ./reader.ts, route: reads }
      - { name: rewriter, path: ./rewriter.ts }
      - { name: mark, path: ./mark.ts, route: new, config: { tag: "route-new" } }
  - name: t2
    services: [{ name: s2, url: "${upUrl}" }]
    routes:
      - { name: plain, service: s2, hosts: [t2.example], paths: [/plain] }
    plugins:
      - { name: mark, path: ./mark.ts, route: plain, config: { tag: "route-plain" } }
`, { 'rewriter.ts': REWRITER, 'mark.ts': MARK, 'reader.ts': READER }, { logger: logs.logger, accessLog: './access.log' });
    accessFile = join(dirname(gw.configFile), 'access.log');
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    for (const ws of wss?.clients ?? []) ws.terminate();
    wss?.close();
    up?.closeAllConnections();
    await new Promise<void>((r) => (up ? up.close(() => r()) : r()));
  });

  it('a rewritten path picks the route: /old/x is served by route new, whose route-scoped plugin runs in access', async () => {
    const r = await send(`${gw.url}/old/x?q=1`);
    expect(r.status).toBe(200);
    const body = r.json();
    expect(body.url).toBe('/x?q=1'); // route new strips its prefix from the rewritten path; the query is kept
    const h = body.headers;
    expect(h['x-mark']).toBe('route-new');
    expect(h['x-route']).toBe('new');
    expect(h['x-rw-route']).toBe('none'); // router.getRoute() in rewrite: no route yet (Kong: nil)
    expect(h['x-saw-path']).toBe('/old/x'); // request.getPath() is the client's path, as Kong's
    expect(h['x-capture']).toBe('/new'); // the captures are of the path that was routed
    expect(h['x-mark-rewrite']).toBeUndefined(); // a route-scoped rewrite handler never runs (Kong)
  });

  it('rewrite runs exactly once per request, matched as received or not', async () => {
    const a = (await send(`${gw.url}/old/a`)).json().headers;
    const b = (await send(`${gw.url}/new/b`)).json().headers;
    expect(a['x-rw-count']).toBe('1');
    expect(b['x-rw-count']).toBe('1');
    expect(Number(b['x-rw-total'])).toBe(Number(a['x-rw-total']) + 1);
  });

  it('rewrite may change the method, and the route is matched on it', async () => {
    const r = await send(`${gw.url}/as-post`);
    expect(r.status).toBe(200);
    expect(r.json().method).toBe('POST');
    expect(r.json().url).toBe('/posted');
  });

  it('rewrite may change the Host, and the route is matched on it; that Host goes upstream', async () => {
    const r = await send(`${gw.url}/host-move`);
    expect(r.status).toBe(200);
    expect(r.json().url).toBe('/host-move');
    expect(r.json().headers.host).toBe('alt.example'); // the service does not preserve the client's Host, but rewrite set this one
    const plain = await send(`${gw.url}/new/h`);
    expect(plain.json().headers.host).toBe(upUrl.slice('http://'.length)); // the service's own Host otherwise
  });

  it("rewrite's exit() answers without routing or reaching the upstream", async () => {
    const before = seen.length;
    const r = await send(`${gw.url}/exit`);
    expect(r.status).toBe(418);
    expect(r.json()).toEqual({ from: 'rewrite' });
    expect(seen.length).toBe(before);
  });

  it('a rewrite fault is a 500 with an error id, logged with the tenant', async () => {
    const r = await send(`${gw.url}/boom`);
    expect(r.status).toBe(500);
    const id = r.headers['x-isogate-error-id'];
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(r.json().error.errorId ?? r.json().error.error_id ?? r.body).toContain(id as string);
    const line = logs.lines.find((l: LogLine) => l.errorId === id);
    expect(line).toMatchObject({ tenant: 't1', phase: 'rewrite' });
  });

  it('no route after rewrite: the usual 404 JSON', async () => {
    const r = await send(`${gw.url}/nowhere`);
    expect(r.status).toBe(404);
    expect(r.json().error.code).toBe('ISG_ERR_NO_ROUTE');
    // counted once, as the tenant's request without a route, not also as an unmatched one
    const count = (text: string, labels: string) => Number(new RegExp(`^isogate_requests_total\\{${labels}\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    const before = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    await send(`${gw.url}/nowhere`);
    const after = await waitFor(async () => {
      const t = await (await fetch(`${gw.adminUrl}/metrics`)).text();
      return count(t, 'tenant="t1",route="",status="404"') > count(before, 'tenant="t1",route="",status="404"') ? t : null;
    }, 3000, 'the 404 counted');
    expect(count(after, 'tenant="t1",route="",status="404"')).toBe(count(before, 'tenant="t1",route="",status="404"') + 1);
    expect(count(after, 'tenant="",route="",status="404"')).toBe(count(before, 'tenant="",route="",status="404"'));
  });

  it('service.* is for access only: the route, so the service, is not known in rewrite', async () => {
    const r = await send(`${gw.url}/set-target`);
    expect(r.status).toBe(500);
    const line = logs.lines.find((l: LogLine) => l.errorId === r.headers['x-isogate-error-id']);
    expect(String(line?.msg)).toContain('service.setTarget is not allowed in phase rewrite (allowed in: access)');
  });

  it('a tenant without tenant-wide rewrite handlers: its scoped rewrite handler never runs, and no other tenant\'s rewrite reaches its host', async () => {
    const r = await send(`${gw.url}/plain`, { headers: { host: 't2.example' } });
    expect(r.status).toBe(200);
    const h = r.json().headers;
    expect(h['x-mark']).toBe('route-plain');
    expect(h['x-mark-rewrite']).toBeUndefined();
    expect(h['x-rw-count']).toBeUndefined();
    // t2.example is t2's host: t1's rewrite (which would move /old/x to /new/x) does not run there
    const other = await send(`${gw.url}/old/x`, { headers: { host: 't2.example' } });
    expect(other.status).toBe(404);
    expect(other.json().error.code).toBe('ISG_ERR_NO_ROUTE');
  });

  it('a route whose plugin reads the body gets it read after rewrite chose that route; the upstream still gets it whole', async () => {
    const r = await send(`${gw.url}/to-reads`, { method: 'POST', body: 'hello body', headers: { 'content-type': 'text/plain' } });
    expect(r.status).toBe(200);
    expect(r.json().url).toBe('/reads/it');
    expect(r.json().headers['x-body']).toBe('hello body');
    expect(seen.at(-1)!.headers['content-length']).toBe('10');
  });

  it("hostile: a rewrite cannot reach another tenant's route, by path or by Host", async () => {
    const before = seen.length;
    const r = await send(`${gw.url}/to-other`);
    expect(r.status).toBe(404);
    expect(r.json().error.code).toBe('ISG_ERR_NO_ROUTE');
    expect(seen.length).toBe(before);
  });

  it('hostile: dot segments in a rewritten path are resolved before routing; none reaches the upstream', async () => {
    const r = await send(`${gw.url}/climb`);
    expect(r.status).toBe(200);
    const url = r.json().url as string;
    expect(url).toBe('/b');
    expect(r.json().headers['x-route']).toBe('new');
  });

  it('the config load warns of each scoped instance whose rewrite handler will never run', () => {
    const warned = logs.lines.filter((l) => l.level === 40 && l.msg.includes('its rewrite handler never runs')).map((l) => l.msg);
    expect(warned).toHaveLength(2);
    expect(warned[0]).toMatch(/^tenants\[0\]\.plugins\[2\]: plugin "mark" is scoped \(route:new\)/);
    expect(warned[1]).toMatch(/^tenants\[1\]\.plugins\[0\]: plugin "mark" is scoped \(route:plain\)/);
  });

  it('the log phase and the access log see the route chosen after rewrite', async () => {
    await send(`${gw.url}/old/logged`);
    await send(`${gw.url}/exit`);
    await waitFor(() => logs.lines.some((l) => l.msg === 'logged new after 1 rewrite'), 3000, 'log phase line');
    // answered in rewrite: the tenant-wide log handlers still run (as for an exit in access), without a route
    await waitFor(() => logs.lines.some((l) => l.msg === 'logged none after 1 rewrite'), 3000, 'log phase line of the exit');
    const lines = await waitFor(() => {
      if (!existsSync(accessFile)) return null;
      const all = readFileSync(accessFile, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
      return all.some((l) => l.path === '/old/logged') && all.some((l) => l.path === '/exit') ? all : null;
    }, 3000, 'access log lines');
    expect(lines.find((l) => l.path === '/old/logged')).toMatchObject({ tenant: 't1', route: 'new', status: 200 });
    // answered in rewrite, before a route was chosen: the tenant, no route
    expect(lines.find((l) => l.path === '/exit')).toMatchObject({ tenant: 't1', route: '', status: 418 });
  });

  it('a WebSocket handshake runs the tenant rewrite, is routed on the rewritten path, then runs the route\'s access', async () => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/old/chat`);
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    ws.send('ping');
    const echo = await new Promise<string>((r) => ws.once('message', (d: Buffer) => r(d.toString())));
    ws.close();
    expect(echo).toBe('ping');
    const hs = seen.filter((s) => s.method === 'WS').at(-1)!;
    expect(hs.url).toBe('/chat');
    expect(hs.headers['x-mark']).toBe('route-new');
    expect(hs.headers['x-rw-count']).toBe('1');
  });
});

/** Tenant-wide and reads the body: routes by the body's `to` field. */
const BODY_ROUTER = pluginSource('body-router', `
export const reads = ['body'];
export function rewrite(pdk: any) {
  if (pdk.request.getHeader('content-type') !== 'application/json') return;
  const body = pdk.request.getBody('application/json');
  if (body !== null && typeof body.to === 'string') pdk.serviceRequest.setPath(body.to);
}`, 2000);

describe('a rewrite that reads the body', () => {
  let gw: TestGateway;
  let upUrl = '';
  let up: ReturnType<typeof createServer>;

  beforeAll(async () => {
    up = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.stringify({ url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    upUrl = `http://127.0.0.1:${(up.address() as AddressInfo).port}`;
    gw = await startGateway(`
tenants:
  - name: t3
    services: [{ name: s, url: "${upUrl}" }]
    routes:
      - { name: a, service: s, paths: [/a] }
      - { name: b, service: s, paths: [/b] }
    plugins:
      - { name: body-router, path: ./body-router.ts }
      - { name: reader, path: ./reader.ts, route: b }
`, { 'body-router.ts': BODY_ROUTER, 'reader.ts': READER });
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    up?.closeAllConnections();
    await new Promise<void>((r) => (up ? up.close(() => r()) : r()));
  });

  it('routes on what the body says; the route\'s own reader gets the same body, read once, and the upstream gets it whole', async () => {
    const payload = JSON.stringify({ to: '/b/x', pad: 'y'.repeat(1000) });
    const r = await send(`${gw.url}/a`, { method: 'POST', body: payload, headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(200);
    const seen = r.json();
    expect(seen.url).toBe('/b/x');
    expect(seen.headers['x-body']).toBe(payload);
    expect(seen.body).toBe(payload);
  });

  it('a handshake sent to no route after rewrite gets the plain HTTP 404', async () => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/nowhere`);
    const status = await new Promise<number>((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => reject(new Error('opened')));
      ws.once('error', () => {});
    });
    expect(status).toBe(404);
  });
});
