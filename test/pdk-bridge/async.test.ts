import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, waitFor, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** Awaits an outbound call to the slow upstream (its delay from x-delay), keeping state across the wait. */
const WAITER = pluginSource(
  'waiter',
  `
export async function access(pdk: any, config: any) {
  const id = pdk.request.getHeader('x-id');
  pdk.ctx.set('before', id);
  pdk.ctx.plugin.mine = 'p-' + id;
  pdk.response.setHeader('x-before', 'b-' + id);
  const r = await pdk.http.request(config.slow + '/wait?ms=' + pdk.request.getHeader('x-delay') + '&id=' + id);
  pdk.response.setHeader('x-after', 'a-' + pdk.request.getHeader('x-id'));
  pdk.response.setHeader('x-ctx-before', String(pdk.ctx.get('before')));
  pdk.response.setHeader('x-plugin-ctx', String(pdk.ctx.plugin.mine));
  pdk.response.setHeader('x-slow-said', r.body);
  pdk.ctx.set('after', id);
}
export function headerFilter(pdk: any) {
  pdk.response.setHeader('x-ctx-after', String(pdk.ctx.get('after')));
  let refused = 'no';
  try { pdk.cache.get('k'); } catch (e: any) { refused = e.message; }
  pdk.response.setHeader('x-hf-refused', refused);
}`,
  200,
);

/** Runs after the waiter: synchronous, sees what the waiter put in ctx after its await. */
const AFTER = pluginSource(
  'after',
  `
export function access(pdk: any) {
  pdk.serviceRequest.setHeader('x-after-saw', String(pdk.ctx.get('after')));
}`,
  100,
);

/** cache and counters in one chain, awaited one after another; fire-and-forget sets; a log-phase count. */
const STATE = pluginSource(
  'state',
  `
export async function access(pdk: any) {
  const mode = pdk.request.getHeader('x-mode');
  if (mode === 'forget') { pdk.cache.set('forgot', 'kept', { ttl: 60 }); return; }
  if (mode === 'flood') { const ps = []; for (let i = 0; i < 40; i++) ps.push(pdk.cache.get('k' + i)); await Promise.all(ps); return; }
  if (mode === 'all') {
    const [a, b] = await Promise.all([pdk.counters.increment('all', 1, 60), pdk.cache.get('forgot')]);
    pdk.response.setHeader('x-all', JSON.stringify([a, b]));
    return;
  }
  await pdk.cache.set('greeting', { hello: pdk.request.getHeader('x-id') }, { ttl: 60 });
  const got = await pdk.cache.get('greeting');
  const n = await pdk.counters.increment('hits', 1, 60);
  pdk.response.setHeader('x-got', JSON.stringify(got));
  pdk.response.setHeader('x-count', String(n));
}
export async function log(pdk: any) {
  const n = await pdk.counters.increment('logged', 1, 60);
  pdk.log.info('log count ' + n + ' for ' + pdk.request.getHeader('x-id'));
}`,
  100,
);

/** Tenant-wide (rewrite runs tenant-wide instances only, before routing); on /rw, rewrite awaits and access (sync) reads what it left in ctx. */
const REWRITER = pluginSource(
  'rewriter',
  `
export async function rewrite(pdk: any) {
  if (pdk.request.getPath() !== '/rw') return;
  const n = await pdk.counters.increment('rw', 1, 60);
  pdk.ctx.set('rewrite-count', n);
  pdk.serviceRequest.setHeader('x-rewrite-count', String(n));
}
export function access(pdk: any) {
  if (pdk.request.getPath() !== '/rw') return;
  pdk.serviceRequest.setHeader('x-access-saw', String(pdk.ctx.get('rewrite-count')));
}`,
  300,
);

/** Fail-open and slow: its wall time runs out, it is skipped, the chain goes on. */
const SLOWPOKE = pluginSource(
  'slowpoke',
  `
export async function access(pdk: any, config: any) {
  pdk.serviceRequest.setHeader('x-slowpoke', 'started');
  await pdk.http.request(config.slow + '/wait?ms=2000&id=x');
  pdk.serviceRequest.setHeader('x-slowpoke', 'finished');
}`,
  200,
);

function slowHandler(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
  const url = new URL(req.url!, 'http://x');
  if (url.pathname === '/wait') {
    setTimeout(() => res.end('slow:' + url.searchParams.get('id')), Number(url.searchParams.get('ms') ?? 0));
    return;
  }
  res.end('ok');
}

describe('async PDK calls: suspension and resumption', () => {
  let up: Upstream;
  let slow: Upstream;
  let gw: TestGateway;
  let lines: LogLine[];

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    slow = await startUpstream(slowHandler);
    const captured = captureLogger('debug');
    lines = captured.lines;
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    http: { allow: ["127.0.0.1:${slow.port}"] }
    limits: { wallMs: 1500 }
    services: [{ name: s, url: "${up.url}" }]
    routes:
      - { name: w, service: s, paths: [/w] }
      - { name: st, service: s, paths: [/st] }
      - { name: rw, service: s, paths: [/rw] }
      - { name: fo, service: s, paths: [/fo] }
    plugins:
      - { name: rewriter, path: ./rewriter.ts }
      - { name: slowpoke, path: ./slowpoke.ts, route: fo, failOpen: true, limits: { wallMs: 200 }, config: { slow: "${slow.url}" } }
      - { name: after, path: ./after.ts, route: fo }
      - { name: waiter, path: ./waiter.ts, route: w, config: { slow: "${slow.url}" } }
      - { name: after, path: ./after.ts, route: w }
      - { name: state, path: ./state.ts, route: st }
`,
      { 'waiter.ts': WAITER, 'after.ts': AFTER, 'state.ts': STATE, 'rewriter.ts': REWRITER, 'slowpoke.ts': SLOWPOKE },
      { logger: captured.logger },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
    await slow.close();
  });

  it('keeps ops, ctx and the request of a chain across its wait, and the chain goes on after it', async () => {
    const r = await send(`${gw.url}/w`, { headers: { 'x-id': 'one', 'x-delay': '10' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-before']).toBe('b-one');
    expect(r.headers['x-after']).toBe('a-one');
    expect(r.headers['x-ctx-before']).toBe('one');
    expect(r.headers['x-slow-said']).toBe('slow:one');
    expect(r.headers['x-ctx-after']).toBe('one');
    expect(r.json().headers['x-after-saw']).toBe('one');
  });

  it('two requests of one tenant suspended at once, resumed in the other order, each keep their own state', async () => {
    const a = send(`${gw.url}/w`, { headers: { 'x-id': 'A', 'x-delay': '400' } });
    await new Promise((r) => setTimeout(r, 50));
    const b = send(`${gw.url}/w`, { headers: { 'x-id': 'B', 'x-delay': '10' } });
    const rb = await b;
    expect(rb.headers['x-after']).toBe('a-B'); // B finished while A still waited
    const ra = await a;
    for (const [r, id] of [[ra, 'A'], [rb, 'B']] as const) {
      expect(r.status).toBe(200);
      expect(r.headers['x-before']).toBe('b-' + id);
      expect(r.headers['x-after']).toBe('a-' + id);
      expect(r.headers['x-ctx-before']).toBe(id);
      expect(r.headers['x-plugin-ctx']).toBe('p-' + id);
      expect(r.headers['x-slow-said']).toBe('slow:' + id);
      expect(r.json().headers['x-after-saw']).toBe(id);
    }
  });

  it('many concurrent suspended chains each come back with their own request', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `c${i}`);
    const rs = await Promise.all(ids.map((id, i) => send(`${gw.url}/w`, { headers: { 'x-id': id, 'x-delay': String((i * 37) % 120) } })));
    rs.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.headers['x-after']).toBe('a-' + ids[i]);
      expect(r.json().headers['x-after-saw']).toBe(ids[i]);
    });
  });

  it('refuses async calls in headerFilter with the phase error', async () => {
    const r = await send(`${gw.url}/w`, { headers: { 'x-id': 'h', 'x-delay': '0' } });
    expect(r.headers['x-hf-refused']).toBe('cache.get is not allowed in phase headerFilter (allowed in: rewrite, access, response, log)');
  });

  it('a phase waiting past wallMs faults as timeout: 504 with an error id', async () => {
    const r = await send(`${gw.url}/w`, { headers: { 'x-id': 'late', 'x-delay': '3000' } });
    expect(r.status).toBe(504);
    expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_TIMEOUT');
    expect(r.headers['x-isogate-error-id']).toMatch(/^[0-9a-f]{16}$/);
    expect(lines.some((l) => l.reason === 'timeout' && l.plugin === 'waiter')).toBe(true);
  });

  it('cache and counters awaited one after another', async () => {
    const r1 = await send(`${gw.url}/st`, { headers: { 'x-id': 's1' } });
    expect(r1.status).toBe(200);
    expect(JSON.parse(r1.headers['x-got'] as string)).toEqual({ hello: 's1' });
    const r2 = await send(`${gw.url}/st`, { headers: { 'x-id': 's2' } });
    expect(Number(r2.headers['x-count'])).toBe(Number(r1.headers['x-count']) + 1);
  });

  it('an unawaited call is still performed; Promise.all of two services', async () => {
    expect((await send(`${gw.url}/st`, { headers: { 'x-mode': 'forget' } })).status).toBe(200);
    const r = await waitFor(async () => {
      const x = await send(`${gw.url}/st`, { headers: { 'x-mode': 'all' } });
      return JSON.parse(x.headers['x-all'] as string)[1] === 'kept' ? x : null;
    });
    expect(JSON.parse(r.headers['x-all'] as string)[0]).toBeGreaterThan(0);
  });

  it('log handlers may await too', async () => {
    await send(`${gw.url}/st`, { headers: { 'x-id': 'logme' } });
    const line = await waitFor(() => lines.find((l) => /^log count \d+ for logme$/.test(l.msg)), 3000, 'log line');
    expect(line.plugin).toBe('t1/state@route:st');
  });

  it('more async calls than the cap fail the plugin as too_large', async () => {
    const r = await send(`${gw.url}/st`, { headers: { 'x-mode': 'flood' } });
    expect(r.status).toBe(500);
    expect(lines.some((l) => l.reason === 'too_large' && /more than 32 async PDK calls/.test(l.msg))).toBe(true);
  });

  it('rewrite may await; access after it sees its ctx', async () => {
    const r = await send(`${gw.url}/rw`);
    expect(r.status).toBe(200);
    const h = r.json().headers;
    expect(h['x-access-saw']).toBe(h['x-rewrite-count']);
    expect(Number(h['x-rewrite-count'])).toBeGreaterThan(0);
  });

  it('a fail-open plugin past its wallMs is skipped: what it did before the wait stays, the chain goes on', async () => {
    const r = await send(`${gw.url}/fo`);
    expect(r.status).toBe(200);
    expect(r.json().headers['x-slowpoke']).toBe('started');
    expect(r.json().headers['x-after-saw']).toBe('undefined');
    expect(lines.some((l) => l.reason === 'timeout' && l.plugin === 'slowpoke' && l.failOpen === true)).toBe(true);
  });

  it('many log handlers awaiting at once: each one ends (a waiting batch item goes on alone)', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `lb${i}`);
    await Promise.all(ids.map((id) => send(`${gw.url}/st`, { headers: { 'x-id': id } })));
    for (const id of ids) await waitFor(() => lines.find((l) => l.msg.endsWith(` for ${id}`)), 3000, `log line of ${id}`);
  });

  it('a client that leaves while its chain waits: the result is dropped, nothing breaks', async () => {
    const ac = new AbortController();
    const gone = fetch(`${gw.url}/w`, { headers: { 'x-id': 'gone', 'x-delay': '300' }, signal: ac.signal }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 80));
    ac.abort();
    await gone;
    await new Promise((r) => setTimeout(r, 400));
    const r = await send(`${gw.url}/w`, { headers: { 'x-id': 'next', 'x-delay': '0' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-after']).toBe('a-next');
  });
});
