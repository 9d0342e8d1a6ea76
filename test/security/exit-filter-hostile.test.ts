// bad return on an exit() response now that headerFilter and bodyFilter run on it: a
// bodyFilter amplifying the exit's body meets the same cap as on an upstream body
// (proxy.bodies.maxFilteredBodyBytes: the plugin faults as too_large, the client gets a
// clean 500); a headerFilter turning the exit into a 204, or a HEAD exit under a bodyFilter
// that grows the body, sends no body bytes and no framing that lies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, parseRawResponse, pluginSource, rawRequest, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const CAP = 4096;

const EVIL = pluginSource(
  'evil',
  `export function access(pdk: any) { pdk.response.exit(403, 'small'); }
export function headerFilter(pdk: any) {
  if (pdk.request.getHeader('x-204') === '1') pdk.response.setStatus(204);
}
export function bodyFilter(pdk: any) {
  const n = Number(pdk.request.getHeader('x-grow') ?? '0');
  if (n > 0) pdk.response.setChunk('x'.repeat(n));
}`,
);

describe('bad return: filters on an exit() response', () => {
  let up: Upstream;
  let gw: TestGateway;
  let hits = 0;
  const { logger, lines } = captureLogger('info');

  beforeAll(async () => {
    up = await startUpstream((_req, res) => {
      hits++;
      res.end('up');
    });
    const yaml = `
${NO_BREAKER}
proxy: { bodies: { maxFilteredBodyBytes: ${CAP} } }
tenants:
  - name: evil
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/evil] }]
    plugins: [{ name: evil, path: ./evil.ts }]
  - name: good
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/good] }]
`.replaceAll('UP', up.url);
    gw = await startGateway(yaml, { 'evil.ts': EVIL }, { logger });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('an exit body grown past the filtered-body cap: 500 with an error id, too_large logged, nothing of it sent', async () => {
    const r = await send(`${gw.url}/evil`, { headers: { 'x-grow': String(CAP + 1) } });
    expect(r.status).toBe(500);
    expect(r.headers['x-isogate-error-id']).toMatch(/^[0-9a-f]{16}$/);
    expect(r.body).not.toContain('xxxx');
    expect(lines.some((l) => l.reason === 'too_large' && l.errorId === r.headers['x-isogate-error-id'])).toBe(true);
    const ok = await send(`${gw.url}/evil`, { headers: { 'x-grow': String(CAP) } });
    expect(ok.status).toBe(403);
    expect(ok.body.length).toBe(CAP);
    expect(ok.headers['content-length']).toBe(String(CAP));
  });

  it('a headerFilter that makes the exit a 204: no body, no Content-Length on the wire, the upstream not called', async () => {
    const before = hits;
    const port = Number(new URL(gw.url).port);
    const raw = await rawRequest(port, 'GET /evil HTTP/1.1\r\nHost: x\r\nx-204: 1\r\nx-grow: 10\r\nConnection: close\r\n\r\n');
    const p = parseRawResponse(raw);
    expect(p.status).toBe(204);
    expect(p.headers['content-length']).toBeUndefined();
    expect(p.headers['transfer-encoding']).toBeUndefined();
    expect(p.body).toBe('');
    expect(hits).toBe(before); // a filter changes the exit's answer, never turns it into a proxied request
  });

  it('a HEAD exit under a growing bodyFilter: the exit\u2019s own Content-Length, no body bytes', async () => {
    const port = Number(new URL(gw.url).port);
    const raw = await rawRequest(port, 'HEAD /evil HTTP/1.1\r\nHost: x\r\nx-grow: 100\r\nConnection: close\r\n\r\n');
    const p = parseRawResponse(raw);
    expect(p.status).toBe(403);
    expect(p.headers['content-length']).toBe('5');
    expect(p.body).toBe('');
  });

  it('the gateway still serves the other tenant', async () => {
    const before = hits;
    const r = await send(`${gw.url}/good`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('up');
    expect(hits - before).toBe(1);
  });
});
