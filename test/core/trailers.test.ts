import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRawResponse, rawRequest, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/**
 * A real upstream that sends trailers on a chunked body (/chunked), or a Content-Length
 * body (/sized); it records the TE header it got. Clients are raw sockets so that the test
 * sees the framing and the trailer section as the gateway wrote them.
 */
describe('response trailers', () => {
  let up: Upstream;
  let gw: TestGateway;
  let port: number;
  const te: (string | string[] | null)[] = [];

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      te.push(req.headers.te ?? null);
      if (req.url === '/t/sized') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5' });
        res.end('sized');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'X-Checksum, Grpc-Status' });
      res.write('hello ');
      res.write('world');
      res.addTrailers({ 'X-Checksum': 'abc123', 'Grpc-Status': '0' });
      res.end();
    });
    gw = await startGateway(`
tenants:
  - name: t1
    services:
      - { name: up, url: "${up.url}" }
    routes:
      - { name: t, service: up, paths: [/t] }
`);
    port = gw.gw.proxyAddress.port;
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  async function get(path: string, headerLines: string[], version = '1.1') {
    const raw = await rawRequest(port, `GET ${path} HTTP/${version}\r\nHost: h\r\n${headerLines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`);
    return parseRawResponse(raw);
  }

  it('relays trailers, with the Trailer header, to a client that sent TE: trailers', async () => {
    const r = await get('/t/chunked', ['TE: trailers']);
    expect(r.status).toBe(200);
    expect(r.headers['transfer-encoding']).toBe('chunked');
    expect(r.headers.trailer).toBe('X-Checksum, Grpc-Status');
    // The last chunk, then the trailer section.
    expect(r.body).toMatch(/\r\n0\r\nx-checksum: abc123\r\ngrpc-status: 0\r\n\r\n$/);
    expect(r.body).toContain('hello ');
    expect(te.at(-1)).toBe('trailers');
  });

  it('drops trailers and the Trailer header for a client that did not ask for them', async () => {
    const r = await get('/t/chunked', []);
    expect(r.status).toBe(200);
    expect(r.headers).not.toHaveProperty('trailer');
    expect(r.body).toMatch(/\r\n0\r\n\r\n$/);
    expect(r.body).not.toContain('abc123');
    expect(te.at(-1)).toBeNull();
  });

  it('drops them for an HTTP/1.0 client (no chunked framing) and still answers', async () => {
    const r = await get('/t/chunked', ['TE: trailers'], '1.0');
    expect(r.status).toBe(200);
    expect(r.headers).not.toHaveProperty('trailer');
    expect(r.headers).not.toHaveProperty('transfer-encoding');
    expect(r.body).toBe('hello world');
  });

  it('keeps a Content-Length body as it is: not re-chunked, TE: trailers or not', async () => {
    for (const lines of [['TE: trailers'], []]) {
      const r = await get('/t/sized', lines);
      expect(r.status).toBe(200);
      expect(r.headers['content-length']).toBe('5');
      expect(r.headers).not.toHaveProperty('transfer-encoding');
      expect(r.body).toBe('sized');
    }
  });
});
