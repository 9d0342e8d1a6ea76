// The response phase (Kong's): the whole upstream response buffered for chains that have
// one; a plugin changes its status, headers and body; headerFilter and bodyFilter of other
// plugins still run after it; a plugin cannot have both response and headerFilter/bodyFilter.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import { OUTPUT_CAPS } from '../../sandbox/limits.ts';

const RESP = pluginSource(
  'resp',
  `
export function response(pdk: any) {
  const mode = pdk.request.getHeader('x-mode');
  if (mode === 'json') {
    const b = pdk.serviceResponse.getBody();
    b.added = pdk.serviceResponse.getStatus();
    pdk.response.setRawBody(JSON.stringify(b));
    pdk.response.setHeader('x-up-type', pdk.serviceResponse.getHeader('Content-Type'));
    pdk.response.clearHeader('x-up-drop');
  }
  if (mode === 'status') pdk.response.setStatus(203);
  if (mode === 'raw') pdk.response.setRawBody(pdk.response.getRawBody() + '|' + pdk.serviceResponse.getRawBody().length);
  if (mode === 'chunk') pdk.response.getChunk();
  if (mode === 'exit') pdk.response.exit(200, 'no');
}`,
  200,
);

/** Another plugin of the chain: its headerFilter sees what the response phase made, and the upstream's own status. */
const AFTER = pluginSource(
  'after',
  `
export function headerFilter(pdk: any) {
  pdk.response.setHeader('x-hf', pdk.response.getStatus() + '/' + pdk.serviceResponse.getStatus() + '/' + pdk.serviceResponse.getHeader('content-length'));
}
export function bodyFilter(pdk: any) {
  if (pdk.request.getHeader('x-mode') === 'raw' && pdk.response.isLastChunk()) pdk.response.setChunk(pdk.response.getChunk() + '|bf');
}`,
  100,
);

/** serviceRequest.enableBuffering (Kong's): the upstream body readable in headerFilter, without a response phase. */
const BUF = pluginSource(
  'buf',
  `
export function access(pdk: any) { if (pdk.request.getHeader('x-mode') === 'buffer') pdk.serviceRequest.enableBuffering(); }
export function headerFilter(pdk: any) {
  const raw = pdk.serviceResponse.getRawBody();
  pdk.response.setHeader('x-raw', raw === null ? 'null' : String(raw.length));
  if (raw !== null) pdk.response.setHeader('x-list', pdk.serviceResponse.getBody().list.join(','));
}`,
);

const BOTH = pluginSource('both', `export function response(pdk: any) {}\nexport function headerFilter(pdk: any) {}`);

describe('response phase', () => {
  let up: Upstream;
  let gw: TestGateway;
  const body = JSON.stringify({ hello: 'wörld', list: [1, 2] });

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(Buffer.alloc(OUTPUT_CAPS.maxBodyBytes + 1, 0x61));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-up-drop': 'x', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    });
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes:
      - { name: r, service: s, paths: [/] }
      - { name: buf, service: s, paths: [/buf] }
    plugins:
      - { name: resp, path: ./resp.ts, route: r }
      - { name: after, path: ./after.ts, route: r }
      - { name: buf, path: ./buf.ts, route: buf }
`,
      { 'resp.ts': RESP, 'after.ts': AFTER, 'buf.ts': BUF },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  const get = (mode: string, path = '/') => send(`${gw.url}${path}`, { headers: { 'x-mode': mode } });

  it('changes a JSON body and the headers; Content-Length is the new body\'s', async () => {
    const r = await get('json');
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ hello: 'wörld', list: [1, 2], added: 200 });
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength(r.body)));
    expect(r.headers['x-up-type']).toBe('application/json');
    expect(r.headers).not.toHaveProperty('x-up-drop');
  });

  it('changes the status; headerFilter after it sees the new status and the upstream\'s', async () => {
    const r = await get('status');
    expect(r.status).toBe(203);
    expect(r.body).toBe(body);
    expect(r.headers['x-hf']).toBe(`203/200/${Buffer.byteLength(body)}`);
  });

  it('HEAD keeps the upstream\'s Content-Length (no body to measure)', async () => {
    const r = await send(`${gw.url}/`, { method: 'HEAD', headers: { 'x-mode': 'none' } });
    expect(r.status).toBe(200);
    expect(r.body).toBe('');
    expect(r.headers['content-length']).toBe(String(Buffer.byteLength(body)));
  });

  it('the body it sets goes through the bodyFilter of a later plugin', async () => {
    const r = await get('raw');
    expect(r.body).toBe(`${body}|${body.length}|bf`);
  });

  it('phase checks: getChunk and exit are not for the response phase', async () => {
    for (const mode of ['chunk', 'exit']) {
      const r = await get(mode);
      expect(r.status, mode).toBe(500);
      expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    }
  });

  it('an upstream body over the cap fails the request cleanly', async () => {
    const r = await request(`${gw.url}/big`, { headers: { 'x-mode': 'json' } });
    expect(r.statusCode).toBe(500);
    expect(((await r.body.json()) as { error: { code: string } }).error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    expect((await get('json')).status).toBe(200);
  });

  it('serviceRequest.enableBuffering makes the upstream body readable in headerFilter; without it, null', async () => {
    const b = await get('buffer', '/buf');
    expect(b.status).toBe(200);
    expect(b.body).toBe(body);
    expect(b.headers['x-raw']).toBe(String(body.length));
    expect(b.headers['x-list']).toBe('1,2');
    expect(b.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    const s = await get('none', '/buf');
    expect(s.headers['x-raw']).toBe('null');
    expect(s.body).toBe(body);
  });

  it('a plugin with response and headerFilter is refused at load, by name', async () => {
    await expect(startGateway(`
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/] }]
    plugins: [{ name: both, path: ./both.ts }]
`, { 'both.ts': BOTH })).rejects.toThrow(/plugin both exports response and headerFilter/);
  });
});
