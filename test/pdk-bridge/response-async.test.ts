// Async PDK calls in the response phase (Kong allows its cosockets there): the chain may
// wait on cache, counters, crypto, http and the consumer lookups while the whole upstream
// response stays buffered and the client waits; nothing is sent before the phase ended.
// headerFilter and bodyFilter still refuse them. Real gateway, real upstream, and a second
// local server as the allowlisted outbound host.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, pluginSource, send, startGateway, startUpstream, waitFor, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** The response-phase plugin under test; x-mode picks what it does. */
const RESP = pluginSource(
  'resp',
  `
export async function response(pdk: any, config: any) {
  const mode = pdk.request.getHeader('x-mode');
  const id = pdk.request.getHeader('x-id') ?? '';
  if (mode === 'state') {
    const n = await pdk.counters.increment('resp-hits', 1, 60);
    await pdk.cache.set('status-of-' + id, pdk.serviceResponse.getStatus(), { ttl: 60 });
    const cached = await pdk.cache.get('status-of-' + id);
    pdk.response.setHeader('x-count', String(n));
    pdk.response.setHeader('x-cached', String(cached));
  }
  if (mode === 'http') {
    const r = await pdk.http.request(config.side + '/enrich?id=' + id);
    pdk.response.setRawBody(pdk.response.getRawBody() + '|' + r.status + ':' + r.body);
    pdk.response.setHeader('content-type', 'text/plain');
  }
  if (mode === 'refused') {
    try { await pdk.http.request(config.up + '/'); pdk.response.setHeader('x-refused', 'reached'); }
    catch (e: any) { pdk.response.setHeader('x-refused', e.message); }
  }
  if (mode === 'own') {
    const r = await pdk.http.request(config.side + '/wait?ms=' + pdk.request.getHeader('x-delay') + '&id=' + id);
    pdk.response.setRawBody(pdk.response.getRawBody() + '|' + r.body + '|' + pdk.serviceResponse.getHeader('x-up-id'));
  }
  if (mode === 'slow') {
    await pdk.http.request(config.side + '/wait?ms=' + pdk.request.getHeader('x-delay') + '&id=' + id);
    pdk.response.setHeader('x-late', 'yes');
    pdk.log.info('slow response chain ended for ' + id);
  }
  if (mode === 'throw') {
    await pdk.cache.get('anything');
    throw new Error('broke after the wait');
  }
  if (mode === 'flood') {
    const ps = [];
    for (let i = 0; i < 40; i++) ps.push(pdk.cache.get('k' + i));
    await Promise.all(ps);
  }
  if (mode === 'huge') {
    await pdk.cache.get('anything');
    pdk.response.setRawBody('x'.repeat(5 * 1024 * 1024));
  }
  if (mode === 'consumer') {
    const c = await pdk.client.loadConsumer('alice', true);
    const groups = await pdk.client.getConsumerGroups(c.id);
    let check = 'allowed';
    try { await pdk.client.verifyPassword('b-alice', 'pw'); } catch (e: any) { check = e.message; }
    pdk.response.setHeader('x-consumer', c.username + ':' + groups.join(','));
    pdk.response.setHeader('x-check', check);
  }
  if (mode === 'digest') pdk.response.setHeader('x-digest', await pdk.crypto.digest('sha256', pdk.response.getRawBody()));
}`,
  200,
);

/** A later response plugin of the same chain: runs after RESP's wait, sees what RESP left. */
const TAIL = pluginSource(
  'tail',
  `
export function response(pdk: any) {
  pdk.response.setHeader('x-tail', 'ran');
}`,
  100,
);

/** headerFilter and bodyFilter (a route without a response phase): async calls are refused there. */
const FILTERS = pluginSource(
  'filters',
  `
export function headerFilter(pdk: any) {
  let m = 'allowed';
  try { pdk.cache.get('k'); } catch (e: any) { m = e.message; }
  pdk.response.setHeader('x-hf-refused', m);
}
export function bodyFilter(pdk: any) {
  if (!pdk.response.isLastChunk()) return;
  let m = 'allowed';
  try { pdk.counters.increment('k'); } catch (e: any) { m = e.message; }
  pdk.response.setChunk(pdk.response.getChunk() + '|' + m);
}`,
);

/** Fail-open and slow: past its wallMs it is skipped; what it did before the wait stays. */
const LAZY = pluginSource(
  'lazy',
  `
export async function response(pdk: any, config: any) {
  pdk.response.setHeader('x-lazy', 'started');
  await pdk.http.request(config.side + '/wait?ms=1500&id=lazy');
  pdk.response.setHeader('x-lazy', 'finished');
}`,
  200,
);

/** Fail-open, killed by the CPU limit after its wait: the phase runs again without it. */
const SPINNER = pluginSource(
  'spinner',
  `
export async function response(pdk: any) {
  await pdk.cache.get('k');
  for (;;) {}
}`,
  200,
);

/** The upstream: its body and x-up-id name the request (x-id). */
function upstream(req: IncomingMessage, res: ServerResponse): void {
  const id = String(req.headers['x-id'] ?? '');
  const body = 'up:' + id;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length), 'x-up-id': id });
  res.end(body);
}

/** Ids of the calls the outbound host got, in order. */
const sideHits: string[] = [];

/** The allowlisted outbound host. */
function side(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, 'http://x');
  const id = url.searchParams.get('id');
  sideHits.push(String(id));
  if (url.pathname === '/wait') {
    setTimeout(() => res.end('slow:' + id), Number(url.searchParams.get('ms') ?? 0));
    return;
  }
  res.end('enriched:' + id);
}

describe('async PDK calls in the response phase', () => {
  let up: Upstream;
  let sideSrv: Upstream;
  let gw: TestGateway;
  let lines: LogLine[];
  const get = (path: string, headers: Record<string, string>) => send(`${gw.url}${path}`, { headers });

  beforeAll(async () => {
    up = await startUpstream(upstream);
    sideSrv = await startUpstream(side);
    const captured = captureLogger('debug');
    lines = captured.lines;
    const cfg = `{ side: "${sideSrv.url}", up: "${up.url}" }`;
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    http: { allow: ["127.0.0.1:${sideSrv.port}"] }
    services: [{ name: s, url: "${up.url}" }]
    consumers:
      - id: c-alice
        username: alice
        credentials:
          acl: [{ group: gold }]
    routes:
      - { name: r, service: s, paths: [/r] }
      - { name: f, service: s, paths: [/f] }
      - { name: fo, service: s, paths: [/fo] }
    plugins:
      - { name: resp, path: ./resp.ts, route: r, limits: { wallMs: 400 }, config: ${cfg} }
      - { name: tail, path: ./tail.ts, route: r }
      - { name: filters, path: ./filters.ts, route: f }
      - { name: lazy, path: ./lazy.ts, route: fo, failOpen: true, limits: { wallMs: 200 }, config: ${cfg} }
      - { name: tail, path: ./tail.ts, route: fo }
  - name: t2
    limits: { cpuMs: 50 }
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: spin, service: s, paths: [/spin] }]
    plugins:
      - { name: spinner, path: ./spinner.ts, failOpen: true }
      - { name: tail, path: ./tail.ts }
`,
      { 'resp.ts': RESP, 'tail.ts': TAIL, 'filters.ts': FILTERS, 'lazy.ts': LAZY, 'spinner.ts': SPINNER },
      { logger: captured.logger },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
    await sideSrv.close();
  });

  it('counters and cache: the results go into response headers; the chain goes on after the wait', async () => {
    const r1 = await get('/r', { 'x-mode': 'state', 'x-id': 's1' });
    expect(r1.status).toBe(200);
    expect(r1.body).toBe('up:s1');
    expect(r1.headers['content-length']).toBe('5');
    expect(r1.headers['x-cached']).toBe('200');
    expect(r1.headers['x-tail']).toBe('ran');
    const r2 = await get('/r', { 'x-mode': 'state', 'x-id': 's2' });
    expect(Number(r2.headers['x-count'])).toBe(Number(r1.headers['x-count']) + 1);
  });

  it('crypto on the host, over the buffered body', async () => {
    const { createHash } = await import('node:crypto');
    const r = await get('/r', { 'x-mode': 'digest', 'x-id': 'd' });
    expect(r.headers['x-digest']).toBe(createHash('sha256').update('up:d').digest('hex'));
  });

  it('an http call to an allowlisted host: its answer goes into the body, Content-Length the new one\'s', async () => {
    const r = await get('/r', { 'x-mode': 'http', 'x-id': 'h1' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('up:h1|200:enriched:h1');
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength(r.body)));
    expect(r.headers['content-type']).toBe('text/plain');
  });

  it('an http call to a host the tenant may not reach is refused with a clear error', async () => {
    const r = await get('/r', { 'x-mode': 'refused' });
    expect(r.status).toBe(200);
    expect(r.headers['x-refused']).toBe(`http.request: host 127.0.0.1:${up.port} is not in this tenant's allowlist`);
  });

  it('consumer lookups are allowed (Kong\'s load_consumer), the credential checks are not', async () => {
    const r = await get('/r', { 'x-mode': 'consumer' });
    expect(r.status).toBe(200);
    expect(r.headers['x-consumer']).toBe('alice:gold');
    expect(r.headers['x-check']).toBe('client.verifyPassword is not allowed in phase response (allowed in: rewrite, access)');
  });

  it('two requests waiting at once, resumed in the other order, each get their own upstream body', async () => {
    const a = get('/r', { 'x-mode': 'own', 'x-id': 'A', 'x-delay': '250' });
    await new Promise((r) => setTimeout(r, 50));
    const b = await get('/r', { 'x-mode': 'own', 'x-id': 'B', 'x-delay': '10' });
    const ra = await a;
    expect(b.body).toBe('up:B|slow:B|B');
    expect(ra.body).toBe('up:A|slow:A|A');
    expect(ra.status).toBe(200);
  });

  it('waiting past wallMs: 504 with an error id, none of the upstream response sent', async () => {
    const r = await get('/r', { 'x-mode': 'slow', 'x-id': 'late', 'x-delay': '1000' });
    expect(r.status).toBe(504);
    expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_TIMEOUT');
    const errorId = r.headers['x-isogate-error-id'];
    expect(errorId).toMatch(/^[0-9a-f]{16}$/);
    expect(r.headers).not.toHaveProperty('x-up-id');
    expect(r.headers).not.toHaveProperty('x-late');
    expect(r.body).not.toContain('up:late');
    const line = lines.find((l) => l.errorId === errorId)!;
    expect(line).toMatchObject({ reason: 'timeout', plugin: 'resp', phase: 'response' });
  });

  it('a fault after the wait: 500 with the error id of the log line', async () => {
    const r = await get('/r', { 'x-mode': 'throw' });
    expect(r.status).toBe(500);
    expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    const line = lines.find((l) => l.errorId === r.headers['x-isogate-error-id'])!;
    expect(line).toMatchObject({ reason: 'threw', plugin: 'resp', phase: 'response' });
    expect(String(line.msg)).toContain('broke after the wait');
  });

  it('caps hold across the wait: the async call cap and the body cap', async () => {
    const flood = await get('/r', { 'x-mode': 'flood' });
    expect(flood.status).toBe(500);
    expect(lines.some((l) => l.reason === 'too_large' && l.phase === 'response' && /more than 32 async PDK calls/.test(String(l.msg)))).toBe(true);
    const huge = await get('/r', { 'x-mode': 'huge' });
    expect(huge.status).toBe(500);
    expect(huge.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    expect(lines.some((l) => l.reason === 'too_large' && l.phase === 'response' && l.errorId === huge.headers['x-isogate-error-id'])).toBe(true);
  });

  it('a fail-open plugin past its wallMs is skipped: what it did before the wait stays, the chain goes on', async () => {
    const r = await get('/fo', { 'x-id': 'fo' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('up:fo');
    expect(r.headers['x-lazy']).toBe('started');
    expect(r.headers['x-tail']).toBe('ran');
    expect(lines.some((l) => l.reason === 'timeout' && l.plugin === 'lazy' && l.failOpen === true)).toBe(true);
  });

  it('a fail-open plugin killed by its CPU limit after its wait: the phase runs again without it', async () => {
    const r = await get('/spin', { 'x-id': 'sp' });
    expect(r.status).toBe(200);
    expect(r.body).toBe('up:sp');
    expect(r.headers['x-tail']).toBe('ran');
    expect(lines.some((l) => l.reason === 'cpu' && l.plugin === 'spinner' && l.phase === 'response')).toBe(true);
  });

  it('a client that leaves while the chain waits: the chain still ends, nothing is written late, the gateway serves on', async () => {
    const from = lines.length;
    const ac = new AbortController();
    const gone = fetch(`${gw.url}/r`, { headers: { 'x-mode': 'slow', 'x-id': 'gone', 'x-delay': '300' }, signal: ac.signal }).catch((e: unknown) => e);
    // the response phase is waiting once its outbound call arrived
    await waitFor(() => sideHits.includes('gone'), 5000, 'the chain to wait');
    ac.abort();
    // no response head reached the client while the chain waited (fetch would have resolved)
    expect(await gone).toBeInstanceOf(Error);
    // the chain ends on its own after the client left (its frame is freed), and its result is dropped
    await waitFor(() => lines.find((l) => l.msg === 'slow response chain ended for gone'), 3000, 'the chain to end');
    await new Promise((r) => setTimeout(r, 50));
    expect(lines.slice(from).filter((l) => l.level >= 50)).toEqual([]);
    const next = await get('/r', { 'x-mode': 'slow', 'x-id': 'next', 'x-delay': '0' });
    expect(next.status).toBe(200);
    expect(next.headers['x-late']).toBe('yes');
    expect(next.body).toBe('up:next');
  });

  it('headerFilter and bodyFilter still refuse async calls, naming the phase', async () => {
    const r = await get('/f', { 'x-id': 'f' });
    expect(r.status).toBe(200);
    expect(r.headers['x-hf-refused']).toBe('cache.get is not allowed in phase headerFilter (allowed in: rewrite, access, response, log)');
    expect(r.body).toBe('up:f|counters.increment is not allowed in phase bodyFilter (allowed in: rewrite, access, response, log)');
  });
});
