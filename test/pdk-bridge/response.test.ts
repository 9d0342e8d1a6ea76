import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** access: answers by itself depending on x-exit. */
const EXITER = pluginSource(
  'exiter',
  `
export function access(pdk: any) {
  switch (pdk.request.getHeader('x-exit')) {
    case 'string': pdk.response.exit(403, 'denied', { 'X-Reason': 'policy', 'X-Num': 7 });
    case 'object': pdk.response.exit(429, { error: 'slow down', n: 1, nested: { ok: true } });
    case 'none': pdk.response.exit(204);
    case 'ctype': pdk.response.exit(200, '<b>hi</b>', { 'Content-Type': 'text/html' });
    case 'unicode': pdk.response.exit(200, 'héllo ✓');
    case 'badstatus': pdk.response.exit(99, 'x');
    case 'badheader': pdk.response.exit(200, 'x', { 'bad name': 'v' });
    case 'set-then-exit':
      pdk.response.setHeader('x-pre', 'set before exit');
      pdk.response.exit(401, 'no');
    case 'async':
      return Promise.resolve().then(() => pdk.response.exit(202, 'later'));
    case 'status-in-access':
      pdk.response.getStatus();
      return;
    case 'set-in-access':
      pdk.response.setHeader('x-from-access', 'yes');
      pdk.response.addHeader('x-up-multi', 'from-access');
      return;
  }
}`,
  200,
);

/** A later plugin of the same chain: must not run once an earlier one exited. */
const AFTER = pluginSource('after', `export function access(pdk: any) { pdk.response.setHeader('x-after', 'ran'); }`, 50);

/** headerFilter: reads the upstream response and edits its headers. */
const HF = pluginSource(
  'hf',
  `
export function headerFilter(pdk: any) {
  const bad = pdk.request.getHeader('x-bad');
  if (bad === 'exit') pdk.response.exit(200, 'too late');
  if (bad === 'setRawBody') pdk.response.setRawBody('x');
  if (bad === 'content-length') pdk.response.setHeader('Content-Length', '1');
  pdk.response.setHeader('x-status', pdk.response.getStatus());
  pdk.response.setHeader('x-up-ct', pdk.response.getHeader('Content-Type'));
  pdk.response.setHeader('x-names', Object.keys(pdk.response.getHeaders()).filter((n) => n.startsWith('x-up')).sort().join(','));
  pdk.response.clearHeader('X-Up-Remove');
  pdk.response.addHeader('x-up-multi', 'added');
  pdk.response.setHeader('x-up-replace', 'new');
}`,
);

/** bodyFilter: changes each chunk, and adds to the last. */
const UPPER = pluginSource(
  'upper',
  `
export function bodyFilter(pdk: any) {
  if (pdk.request.getHeader('x-bad') === 'setHeader') pdk.serviceRequest.setHeader('x', '1');
  const tail = pdk.response.isLastChunk() ? ' (' + pdk.response.getStatus() + ')' : '';
  pdk.response.setChunk(pdk.response.getChunk().toUpperCase() + tail);
}`,
);

describe('pdk.response', () => {
  let up: Upstream;
  let gw: TestGateway;
  let hits = 0;

  beforeAll(async () => {
    up = await startUpstream((_req, res) => {
      hits++;
      res.writeHead(201, { 'content-type': 'text/plain; charset=utf-8', 'x-up-remove': 'gone', 'x-up-multi': 'orig', 'x-up-replace': 'old', 'content-length': '11' });
      res.end('hello world');
    });
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes:
      - { name: ex, service: s, paths: [/ex] }
      - { name: hf, service: s, paths: [/hf] }
      - { name: body, service: s, paths: [/body] }
    plugins:
      - { name: exiter, path: ./exiter.ts, route: ex }
      - { name: after, path: ./after.ts, route: ex }
      - { name: hf, path: ./hf.ts, route: hf }
      - { name: upper, path: ./upper.ts, route: body }
`,
      { 'exiter.ts': EXITER, 'after.ts': AFTER, 'hf.ts': HF, 'upper.ts': UPPER },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  const exit = (mode: string) => send(`${gw.url}/ex`, { headers: { 'x-exit': mode } });

  it('exit with a string body and headers answers without the upstream and skips later plugins', async () => {
    const before = hits;
    const r = await exit('string');
    expect(r.status).toBe(403);
    expect(r.body).toBe('denied');
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.headers['content-length']).toBe('6');
    expect(r.headers['x-reason']).toBe('policy');
    expect(r.headers['x-num']).toBe('7');
    expect(r.headers).not.toHaveProperty('x-after');
    expect(hits).toBe(before);
  });

  it('exit with an object body sends JSON', async () => {
    const r = await exit('object');
    expect(r.status).toBe(429);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.json()).toEqual({ error: 'slow down', n: 1, nested: { ok: true } });
  });

  it('exit without a body sends an empty response', async () => {
    const r = await exit('none');
    expect(r.status).toBe(204);
    expect(r.body).toBe('');
  });

  it('exit keeps a content-type the plugin gave, and counts bytes not characters', async () => {
    const html = await exit('ctype');
    expect(html.headers['content-type']).toBe('text/html');
    expect(html.body).toBe('<b>hi</b>');
    const u = await exit('unicode');
    expect(u.body).toBe('héllo ✓');
    expect(Number(u.headers['content-length'])).toBe(Buffer.byteLength('héllo ✓'));
  });

  it('exit from a promise works too', async () => {
    const r = await exit('async');
    expect(r.status).toBe(202);
    expect(r.body).toBe('later');
  });

  it('headers set before exit are sent with it', async () => {
    const r = await exit('set-then-exit');
    expect(r.status).toBe(401);
    expect(r.headers['x-pre']).toBe('set before exit');
  });

  it('exit with an invalid status or header fails the request', async () => {
    for (const mode of ['badstatus', 'badheader']) {
      const r = await exit(mode);
      expect(r.status, mode).toBe(500);
      expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    }
  });

  it('headers set in access apply to the upstream response; later plugins run when nobody exits', async () => {
    const r = await exit('set-in-access');
    expect(r.status).toBe(201);
    expect(r.body).toBe('hello world');
    expect(r.headers['x-from-access']).toBe('yes');
    expect(r.headers['x-up-multi']).toEqual(['orig', 'from-access']);
    expect(r.headers['x-after']).toBe('ran');
  });

  it('getStatus is refused in access (there is no response yet)', async () => {
    const r = await exit('status-in-access');
    expect(r.status).toBe(500);
  });

  it('headerFilter reads the status and headers and edits them', async () => {
    const r = await send(`${gw.url}/hf`);
    expect(r.status).toBe(201);
    expect(r.body).toBe('hello world');
    expect(r.headers['x-status']).toBe('201');
    expect(r.headers['x-up-ct']).toBe('text/plain; charset=utf-8');
    expect(r.headers['x-names']).toBe('x-up-multi,x-up-remove,x-up-replace');
    expect(r.headers).not.toHaveProperty('x-up-remove');
    expect(r.headers['x-up-multi']).toEqual(['orig', 'added']);
    expect(r.headers['x-up-replace']).toBe('new');
  });

  it('exit, setRawBody and gateway-managed headers are refused in headerFilter', async () => {
    for (const bad of ['exit', 'setRawBody', 'content-length']) {
      const r = await send(`${gw.url}/hf`, { headers: { 'x-bad': bad } });
      expect(r.status, bad).toBe(500);
      expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
      expect(r.headers['x-isogate-error-id']).toBe(r.json().error.id);
    }
  });

  it('bodyFilter changes the body; the length is the filter\'s (a body that came in one read is filtered in one call, whose length is known)', async () => {
    const r = await send(`${gw.url}/body`);
    expect(r.status).toBe(201);
    expect(r.body).toBe('HELLO WORLD (201)');
    // not the upstream's 11: the filter's output, told because the end came with the data
    expect(r.headers['content-length']).toBe('17');
    expect(r.headers).not.toHaveProperty('transfer-encoding');
  });

  it('bodyFilter may not touch the service request', async () => {
    const r = await send(`${gw.url}/body`, { headers: { 'x-bad': 'setHeader' } });
    expect(r.status).toBe(500);
    expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
  });
});
