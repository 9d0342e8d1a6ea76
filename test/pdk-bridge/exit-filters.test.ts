// An exit() response goes through headerFilter and bodyFilter as an upstream response does
// (Kong runs header_filter and body_filter on it, kong.response.get_source() is "exit"),
// and the log phase sees it; a chain without filters answers it at once, with no crossing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, pluginSource, send, startGateway, startUpstream, waitFor, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import type { RuntimeRoute } from '../../core/route.ts';

/** Exits in access on `x-exit` (after an async call on `x-async`); sets a response header first. */
const GATE = pluginSource(
  'gate',
  `export async function access(pdk: any) {
  pdk.response.setHeader('x-acc', 'a');
  if (pdk.request.getHeader('x-async') === '1') await pdk.cache.get('k');
  if (pdk.request.getHeader('x-exit') === '1') pdk.response.exit(403, 'denied', { 'X-Exit-H': 'e' });
}`,
  200,
);

/** Reads the response in headerFilter, rewrites the body in bodyFilter, reports in log; faults on request. */
const FILTERS = pluginSource(
  'filters',
  `export function headerFilter(pdk: any) {
  const r = pdk.response;
  r.setHeader('x-hf-status', String(r.getStatus()));
  r.setHeader('x-hf-source', r.getSource());
  r.setHeader('x-hf-ct', String(r.getHeader('content-type')));
  r.setHeader('x-hf-exit-h', String(r.getHeader('x-exit-h')));
  r.setHeader('x-svc-status', String(pdk.serviceResponse.getStatus()));
  if (pdk.request.getHeader('x-set-status') === '1') r.setStatus(418);
  if (pdk.request.getHeader('x-throw') === 'hf') throw new Error('headerFilter threw');
}
export function bodyFilter(pdk: any) {
  if (pdk.request.getHeader('x-throw') === 'bf') throw new Error('bodyFilter threw');
  if (pdk.request.getHeader('x-rewrite') !== '1') return;
  const r = pdk.response;
  r.setChunk('[' + r.getSource() + ' ' + r.getStatus() + ' last=' + r.isLastChunk() + '] ' + r.getChunk().toUpperCase() + ' \\u00e9');
}
export function log(pdk: any) {
  pdk.log.info('exit-log', pdk.request.getHeader('x-tag'), pdk.response.getSource(), pdk.response.getStatus());
}`,
  100,
);

/** Tenant-wide rewrite that exits before routing, on `x-rw-exit`. */
const RW = pluginSource(
  'rw',
  `export function rewrite(pdk: any) {
  if (pdk.request.getHeader('x-rw-exit') === '1') pdk.response.exit(401, 'rewrite says no');
}`,
  300,
);

/** Route-scoped: its headerFilter runs on the route's responses, never on a rewrite exit (answered before routing). */
const ROUTE_HF = pluginSource('route-hf', `export function headerFilter(pdk: any) { pdk.response.setHeader('x-route-hf', '1'); }`);

describe('exit() through headerFilter, bodyFilter and log', () => {
  let up: Upstream;
  let gw: TestGateway;
  let hits = 0;
  const { logger, lines } = captureLogger('info');

  beforeAll(async () => {
    up = await startUpstream((_req, res) => {
      hits++;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('hello');
    });
    const yaml = `
${NO_BREAKER}
tenants:
  - name: filt
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/filt] }]
    plugins:
      - { name: gate, path: ./gate.ts }
      - { name: filters, path: ./filters.ts }
  - name: plain
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/plain] }]
    plugins:
      - { name: gate, path: ./gate.ts }
  - name: rwt
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/rwt] }]
    plugins:
      - { name: rw, path: ./rw.ts }
      - { name: filters, path: ./filters.ts }
      - { name: route-hf, path: ./route-hf.ts, route: r }
`.replaceAll('UP', up.url);
    gw = await startGateway(yaml, { 'gate.ts': GATE, 'filters.ts': FILTERS, 'rw.ts': RW, 'route-hf.ts': ROUTE_HF }, { logger });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  const crossings = (tenant: string) => (gw.gw.snapshot.routes.find((r) => r.tenant === tenant)! as RuntimeRoute).sandbox!.crossings;

  it('headerFilter runs on an access exit: the exit status, headers and source; its headers are sent', async () => {
    const before = hits;
    const r = await send(`${gw.url}/filt`, { headers: { 'x-exit': '1' } });
    expect(hits).toBe(before);
    expect(r.status).toBe(403);
    expect(r.body).toBe('denied');
    expect(r.headers['x-hf-status']).toBe('403');
    expect(r.headers['x-hf-source']).toBe('exit');
    expect(r.headers['x-hf-ct']).toBe('text/plain; charset=utf-8');
    expect(r.headers['x-hf-exit-h']).toBe('e');
    // no upstream response: serviceResponse reads the response, as in log on an error
    expect(r.headers['x-svc-status']).toBe('403');
    expect(r.headers['x-exit-h']).toBe('e');
    expect(r.headers['x-acc']).toBe('a'); // access's response header, as on an upstream response
    expect(r.headers['content-length']).toBe('6');
  });

  it('on an upstream response the same plugin reads source "service"', async () => {
    const r = await send(`${gw.url}/filt`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('hello');
    expect(r.headers['x-hf-source']).toBe('service');
    expect(r.headers['x-hf-status']).toBe('200');
  });

  it('response.setStatus in headerFilter changes the exit status', async () => {
    const r = await send(`${gw.url}/filt`, { headers: { 'x-exit': '1', 'x-set-status': '1' } });
    expect(r.status).toBe(418);
    expect(r.body).toBe('denied');
    expect(r.headers['x-hf-status']).toBe('403');
  });

  it('bodyFilter rewrites the exit body, as one last chunk, with the Content-Length of the new body', async () => {
    const r = await send(`${gw.url}/filt`, { headers: { 'x-exit': '1', 'x-rewrite': '1' } });
    expect(r.status).toBe(403);
    const body = '[exit 403 last=true] DENIED \u00e9';
    expect(r.body).toBe(body);
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(r.headers['transfer-encoding']).toBeUndefined();
  });

  it('an exit after an async access call goes through the filters too', async () => {
    const r = await send(`${gw.url}/filt`, { headers: { 'x-exit': '1', 'x-async': '1', 'x-rewrite': '1' } });
    expect(r.status).toBe(403);
    expect(r.body).toBe('[exit 403 last=true] DENIED \u00e9');
    expect(r.headers['x-hf-source']).toBe('exit');
  });

  it('one crossing per phase on an exit: access, headerFilter, bodyFilter, log', async () => {
    await send(`${gw.url}/filt`, { headers: { 'x-exit': '1' } });
    await new Promise((r) => setTimeout(r, 200)); // the log batches of the requests so far
    const before = crossings('filt');
    await send(`${gw.url}/filt`, { headers: { 'x-exit': '1' } });
    await waitFor(() => crossings('filt') - before >= 4, 3000, 'the log crossing');
    await new Promise((r) => setTimeout(r, 100));
    expect(crossings('filt') - before).toBe(4);
  });

  for (const [phase, header] of [['headerFilter', 'hf'], ['bodyFilter', 'bf']] as const) {
    it(`a ${phase} fault on an exit answers 500 with an error id, not the exit`, async () => {
      const before = hits;
      const r = await send(`${gw.url}/filt`, { headers: { 'x-exit': '1', 'x-throw': header } });
      expect(hits).toBe(before);
      expect(r.status).toBe(500);
      expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
      expect(r.headers['x-isogate-error-id']).toMatch(/^[0-9a-f]{16}$/);
      expect(r.headers['x-exit-h']).toBeUndefined();
      expect(r.body).not.toContain('denied');
    });
  }

  it('a chain without filters answers an exit as before: the exit alone, one crossing (access)', async () => {
    await send(`${gw.url}/plain`, { headers: { 'x-exit': '1' } });
    const before = crossings('plain');
    const r = await send(`${gw.url}/plain`, { headers: { 'x-exit': '1' } });
    expect(crossings('plain') - before).toBe(1);
    expect(r.status).toBe(403);
    expect(r.body).toBe('denied');
    const { date: _d, connection: _c, 'keep-alive': _k, ...rest } = r.headers;
    expect(rest).toEqual({ 'x-exit-h': 'e', 'x-acc': 'a', 'content-type': 'text/plain; charset=utf-8', 'content-length': '6' });
  });

  it('the log phase runs on an exit and reads source "exit" and its status', async () => {
    const tag = 'tag-' + Math.random().toString(36).slice(2);
    await send(`${gw.url}/filt`, { headers: { 'x-exit': '1', 'x-tag': tag } });
    const line = await waitFor(() => lines.find((l) => l.phase === 'log' && l.msg.includes(tag)), 3000, 'log line');
    expect(line.msg).toBe(`exit-log ${tag} exit 403`);
  });

  it('a tenant-wide rewrite exit runs the tenant-wide headerFilter, bodyFilter and log (before any route)', async () => {
    const before = hits;
    const tag = 'rw-' + Math.random().toString(36).slice(2);
    const r = await send(`${gw.url}/rwt`, { headers: { 'x-rw-exit': '1', 'x-rewrite': '1', 'x-tag': tag } });
    expect(hits).toBe(before);
    expect(r.status).toBe(401);
    expect(r.headers['x-hf-source']).toBe('exit');
    expect(r.headers['x-hf-status']).toBe('401');
    expect(r.headers['x-route-hf']).toBeUndefined(); // no route was chosen: only tenant-wide instances
    const body = '[exit 401 last=true] REWRITE SAYS NO \u00e9';
    expect(r.body).toBe(body);
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    const line = await waitFor(() => lines.find((l) => l.phase === 'log' && l.msg.includes(tag)), 3000, 'log line');
    expect(line.msg).toBe(`exit-log ${tag} exit 401`);
    // the route's own requests still run the filters once
    const ok = await send(`${gw.url}/rwt`, { headers: { 'x-rewrite': '1' } });
    expect(ok.status).toBe(200);
    expect(ok.headers['x-route-hf']).toBe('1');
    // the end comes with the data when both arrive in one read (core/response-body.ts joins them), else in a call of its own
    expect(ok.body).toMatch(/\[service 200 last=(true|false)\] HELLO/);
  });

  it('a rewrite-exit headerFilter fault answers 500 with an error id', async () => {
    const r = await send(`${gw.url}/rwt`, { headers: { 'x-rw-exit': '1', 'x-throw': 'hf' } });
    expect(r.status).toBe(500);
    expect(r.headers['x-isogate-error-id']).toMatch(/^[0-9a-f]{16}$/);
  });
});
