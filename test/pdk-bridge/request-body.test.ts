// pdk.request.getRawBody/getBody and pdk.serviceRequest.setRawBody/setBody through real
// requests: the body is buffered only for a chain with a plugin that exports
// reads: ['body'], parsed inside the isolate, over the cap streamed upstream untouched.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import { OUTPUT_CAPS } from '../../sandbox/limits.ts';

const READER = pluginSource(
  'reader',
  `
export const reads = ['body'];
export function access(pdk: any) {
  const mode = pdk.request.getHeader('x-mode');
  switch (mode) {
    case 'raw': pdk.response.exit(200, { raw: pdk.request.getRawBody() });
    case 'parsed': pdk.response.exit(200, { body: pdk.request.getBody() });
    case 'as-json': pdk.response.exit(200, { body: pdk.request.getBody('application/json') });
    case 'null': pdk.response.exit(200, { isNull: pdk.request.getRawBody() === null, parsed: pdk.request.getBody() });
    case 'bad': try { pdk.request.getBody(); } catch (e) { pdk.response.exit(422, { error: String(e.message), realm: e instanceof Error }); }
    case 'set-json': pdk.serviceRequest.setBody({ replaced: true, n: 2 }); return;
    case 'set-form': pdk.serviceRequest.setBody({ a: 'x y', b: ['1', '2'] }, 'application/x-www-form-urlencoded'); return;
    case 'set-multipart': pdk.serviceRequest.setBody({ f: 'v' }, 'multipart/form-data; boundary=XyZ'); return;
    case 'set-raw': pdk.serviceRequest.setRawBody('héllo'); return;
    case 'in-header-filter': return;
    case 'after-await': return pdk.cache.set('k', 1).then(() => pdk.response.exit(200, { raw: pdk.request.getRawBody() }));
  }
}
export function headerFilter(pdk: any) {
  if (pdk.request.getHeader('x-mode') === 'in-header-filter') pdk.request.getRawBody();
}`,
);

/** Does not declare reads: its route streams the body; reading it is an error naming the export. */
const NOREAD = pluginSource(
  'noread',
  `
export function access(pdk: any) {
  if (pdk.request.getHeader('x-mode') === 'raw') pdk.request.getRawBody();
  if (pdk.request.getHeader('x-mode') === 'set-raw') pdk.serviceRequest.setRawBody('replaced');
  pdk.response.setHeader('x-noread', '1');
}`,
);

describe('request body', () => {
  let up: Upstream;
  let gw: TestGateway;

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      const h = createHash('sha256');
      const chunks: Buffer[] = [];
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
        h.update(c);
        if (n <= 4096) chunks.push(c);
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({
          bytes: n, sha256: h.digest('hex'), te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null,
          ct: req.headers['content-type'] ?? null, text: n <= 4096 ? Buffer.concat(chunks).toString('utf8') : null,
        }));
      });
    });
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    limits: { cpuMs: 500, memoryMb: 128 }
    services: [{ name: s, url: "${up.url}" }]
    routes:
      - { name: reads, service: s, paths: [/reads] }
      - { name: noread, service: s, paths: [/noread] }
    plugins:
      - { name: reader, path: ./reader.ts, route: reads, limits: { cpuMs: 500, memoryMb: 128 } }
      - { name: noread, path: ./noread.ts, route: noread }
`,
      { 'reader.ts': READER, 'noread.ts': NOREAD },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  const post = (path: string, mode: string, body: string | Buffer, ct = 'text/plain') =>
    send(`${gw.url}${path}`, { method: 'POST', headers: { 'x-mode': mode, 'content-type': ct }, body });

  it('getRawBody: the body as UTF-8 text; no body is ""', async () => {
    expect((await post('/reads', 'raw', 'héllo ✓')).json()).toEqual({ raw: 'héllo ✓' });
    expect((await send(`${gw.url}/reads`, { headers: { 'x-mode': 'raw' } })).json()).toEqual({ raw: '' });
  });

  it('each request keeps its own body across a wait on an async PDK call, with others in between', async () => {
    const bodies = ['first body', 'second', 'third: é', ''];
    const got = await Promise.all(bodies.map((b) => post('/reads', 'after-await', b)));
    expect(got.map((r) => r.json().raw)).toEqual(bodies);
  });

  it('getBody parses JSON, forms and multipart by the Content-Type', async () => {
    expect((await post('/reads', 'parsed', '{"a":[1,{"b":null}]}', 'application/json; charset=utf-8')).json()).toEqual({ body: { a: [1, { b: null }] } });
    expect((await post('/reads', 'parsed', 'a=1&b=x+y&a=2&c=%C3%A9', 'application/x-www-form-urlencoded')).json()).toEqual({ body: { a: ['1', '2'], b: 'x y', c: 'é' } });
    const mp = '--b0\r\nContent-Disposition: form-data; name="field"\r\n\r\nvalue 1\r\n' +
      '--b0\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n--b0--\r\n';
    expect((await post('/reads', 'parsed', mp, 'multipart/form-data; boundary=b0')).json()).toEqual({ body: { field: 'value 1', file: 'line1\r\nline2' } });
    expect((await post('/reads', 'as-json', '[1,2]', 'text/plain')).json()).toEqual({ body: [1, 2] });
  });

  it('a body that does not parse, or of a type without a parser, is an error in the plugin\'s realm', async () => {
    const bad = await post('/reads', 'bad', '{"a":', 'application/json');
    expect(bad.status).toBe(422);
    expect(bad.json().error).toMatch(/request.getBody: body is not JSON/);
    expect(bad.json().realm).toBe(true);
    expect((await post('/reads', 'bad', 'x', 'image/png')).json().error).toMatch(/cannot parse a body of type "image\/png"/);
  });

  it('setBody encodes by type and the gateway fixes Content-Length; setRawBody sends text as UTF-8', async () => {
    const j = (await post('/reads', 'set-json', 'orig', 'application/json')).json();
    expect(JSON.parse(j.text)).toEqual({ replaced: true, n: 2 });
    expect(j.cl).toBe(String(Buffer.byteLength(j.text)));
    expect(j.te).toBeNull();
    const f = (await post('/reads', 'set-form', 'orig')).json();
    expect(f.text).toBe('a=x%20y&b=1&b=2');
    expect(f.ct).toBe('application/x-www-form-urlencoded');
    const m = (await post('/reads', 'set-multipart', 'orig')).json();
    expect(m.text).toBe('--XyZ\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n--XyZ--\r\n');
    const r = (await post('/reads', 'set-raw', 'orig')).json();
    expect(r.text).toBe('héllo');
    expect(r.cl).toBe(String(Buffer.byteLength('héllo')));
  });

  it('a chunked body is buffered too, and goes upstream with a Content-Length', async () => {
    const chunked = () => Readable.from([Buffer.from('ab'), Buffer.from('cd')]);
    const r = await request(`${gw.url}/reads`, { method: 'POST', headers: { 'x-mode': 'raw' }, body: chunked() });
    expect(await r.body.json()).toEqual({ raw: 'abcd' });
    const fwd = await request(`${gw.url}/reads`, { method: 'POST', headers: { 'x-mode': 'none' }, body: chunked() });
    const got = (await fwd.body.json()) as { text: string; cl: string; te: string | null };
    expect(got).toMatchObject({ text: 'abcd', cl: '4', te: null });
  });

  for (const framing of ['content-length', 'chunked']) {
    it(`over the cap (${framing}): the plugin gets null, the body goes upstream untouched`, async () => {
      const big = randomBytes(OUTPUT_CAPS.maxRequestBodyBytes + 1024);
      const body = framing === 'chunked' ? Readable.from((function* () { for (let i = 0; i < big.length; i += 65536) yield big.subarray(i, i + 65536); })()) : big;
      const r = await request(`${gw.url}/reads`, { method: 'POST', headers: { 'x-mode': 'null' }, body });
      // exit() answers without the upstream: the plugin saw null, and getBody is null too
      expect(await r.body.json()).toEqual({ isNull: true, parsed: null });
      const fwd = await request(`${gw.url}/reads`, { method: 'POST', headers: { 'x-mode': 'in-header-filter-no' }, body: framing === 'chunked' ? Readable.from([big]) : big });
      const got = (await fwd.body.json()) as { bytes: number; sha256: string };
      expect(got.bytes).toBe(big.length);
      expect(got.sha256).toBe(createHash('sha256').update(big).digest('hex'));
    });
  }

  it('over the cap and replaced by setRawBody: the rest of the client body is dropped, the connection goes on', async () => {
    const big = randomBytes(OUTPUT_CAPS.maxRequestBodyBytes + 65536);
    for (let i = 0; i < 2; i++) {
      const r = await request(`${gw.url}/reads`, { method: 'POST', headers: { 'x-mode': 'set-raw' }, body: Readable.from([big.subarray(0, 65536), big.subarray(65536)]) });
      expect(((await r.body.json()) as { text: string }).text).toBe('héllo');
    }
  });

  it('not declared: the body streams untouched (still chunked) and reading it names the missing export', async () => {
    const payload = randomBytes(1024 * 1024);
    const r = await request(`${gw.url}/noread`, { method: 'POST', body: Readable.from([payload.subarray(0, 1000), payload.subarray(1000)]) });
    const got = (await r.body.json()) as { bytes: number; sha256: string; te: string | null; cl: string | null };
    expect(r.headers['x-noread']).toBe('1');
    expect(got.bytes).toBe(payload.length);
    expect(got.sha256).toBe(createHash('sha256').update(payload).digest('hex'));
    expect(got.te).toBe('chunked');
    expect(got.cl).toBeNull();
    const bad = await post('/noread', 'raw', 'x');
    expect(bad.status).toBe(500);
    expect(bad.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
  });

  it('setRawBody works without reads too: the streamed client body is dropped', async () => {
    const r = (await post('/noread', 'set-raw', 'x'.repeat(100_000))).json();
    expect(r.text).toBe('replaced');
  });

  it('phase check: the request body is for rewrite and access only', async () => {
    const r = await post('/reads', 'in-header-filter', 'x');
    expect(r.status).toBe(500);
    expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
  });
});
