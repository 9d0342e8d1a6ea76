import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS, type ErrorCode } from '../../core/errors.ts';
import { parserErrorCode } from '../../core/request-checks.ts';
import { parseRawResponse, rawRequest, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

// Requests HTTP does not allow, sent byte for byte over raw sockets to a real gateway: each
// gets the JSON error of core/errors.ts, the connection is closed, and the upstream never
// sees the request.

describe('requests the gateway refuses itself', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  const seen: string[] = [];
  let port: number;

  beforeAll(async () => {
    upstream = await startUpstream((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.host ?? '-'}`);
      res.end('fine');
    });
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: s, url: "${upstream.url}" }]
    routes: [{ name: r, service: s }]
`);
    port = gw.gw.proxyAddress.port;
  });

  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  async function refused(raw: string, code: ErrorCode) {
    const before = seen.length;
    const r = parseRawResponse(await rawRequest(port, raw));
    expect(r.status, r.rawHead).toBe(ERRORS[code].status);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers.connection).toBe('close');
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
    expect(JSON.parse(r.body)).toEqual({ error: { code, message: ERRORS[code].message } });
    expect(seen.slice(before), 'the upstream saw it').toEqual([]);
    return r;
  }

  it('refuses a request line without an HTTP version (HTTP/0.9 style) instead of proxying it', async () => {
    await refused('GET /\r\n\r\n', 'ISG_ERR_NO_HTTP_VERSION');
    await refused('GET /x?y=1\r\n\r\n', 'ISG_ERR_NO_HTTP_VERSION');
  });

  it('refuses HTTP/2.0 and later in an HTTP/1 request line with 505', async () => {
    await refused('GET / HTTP/2.0\r\nHost: a\r\n\r\n', 'ISG_ERR_HTTP_VERSION');
  });

  it('answers an HTTP/1.1 request without Host with a JSON 400 (node alone sends an empty one); HTTP/1.0 may omit it', async () => {
    await refused('GET / HTTP/1.1\r\n\r\n', 'ISG_ERR_MISSING_HOST');
    const ok = parseRawResponse(await rawRequest(port, 'GET /ten HTTP/1.0\r\n\r\n'));
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('fine');
    expect(seen.at(-1)).toMatch(/^GET \/ten /);
  });

  it('refuses two Host header lines, in any case, equal or not (RFC 9112 3.2)', async () => {
    await refused('GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n', 'ISG_ERR_DUPLICATE_HOST');
    await refused('GET / HTTP/1.1\r\nhost: a.example\r\nX-A: 1\r\nHOST: a.example\r\n\r\n', 'ISG_ERR_DUPLICATE_HOST');
  });

  it('applies the same checks to a WebSocket handshake, which node:http hands to the upgrade listener instead', async () => {
    const ws = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';
    await refused(`GET /ws HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n${ws}\r\n`, 'ISG_ERR_DUPLICATE_HOST');
    await refused(`GET /ws HTTP/1.1\r\n${ws}\r\n`, 'ISG_ERR_MISSING_HOST');
  });

  it('refuses a Host that disagrees with an absolute-form target, serves one that agrees (any case)', async () => {
    await refused('GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n', 'ISG_ERR_HOST_MISMATCH');
    await refused('GET http://a.example:8080/x HTTP/1.1\r\nHost: a.example\r\n\r\n', 'ISG_ERR_HOST_MISMATCH');
    await refused('GET http://user@a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n', 'ISG_ERR_HOST_MISMATCH');
    const ok = parseRawResponse(await rawRequest(port, 'GET http://A.example/agree?q=1 HTTP/1.1\r\nHost: a.EXAMPLE\r\nConnection: close\r\n\r\n'));
    expect(ok.status).toBe(200);
    expect(seen.at(-1)).toBe('GET /agree?q=1 a.EXAMPLE');
  });

  it('answers oversized headers with 431 and its own code and message', async () => {
    const r = await refused(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`, 'ISG_ERR_HEADERS_TOO_LARGE');
    expect(r.rawHead.split('\r\n')[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
  });

  it('answers malformed requests on the admin listener with the same JSON errors', async () => {
    const adminPort = gw.gw.adminAddress!.port;
    const r = parseRawResponse(await rawRequest(adminPort, 'GET /status HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n'));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toEqual({ error: { code: 'ISG_ERR_BAD_HEADER', message: ERRORS.ISG_ERR_BAD_HEADER.message } });
  });

  it('names what is wrong for parser errors: header line, body framing, not HTTP at all', async () => {
    await refused('GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n', 'ISG_ERR_BAD_HEADER');
    await refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n', 'ISG_ERR_BAD_FRAMING');
    await refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'ISG_ERR_BAD_FRAMING');
    await refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'ISG_ERR_BAD_FRAMING');
    await refused('NOT HTTP AT ALL\r\n\r\n', 'ISG_ERR_BAD_REQUEST');
  });

  it('maps node\'s header timeout to 408 and unknown parser codes to the generic 400', () => {
    expect(parserErrorCode('ERR_HTTP_REQUEST_TIMEOUT')).toBe('ISG_ERR_REQUEST_TIMEOUT');
    expect(parserErrorCode('HPE_SOMETHING_NEW')).toBe('ISG_ERR_BAD_REQUEST');
    expect(parserErrorCode(undefined)).toBe('ISG_ERR_BAD_REQUEST');
    expect(parserErrorCode('toString')).toBe('ISG_ERR_BAD_REQUEST');
  });

  it('keeps serving well-formed requests after all of that', async () => {
    const r = await send(`${gw.url}/still`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('fine');
  });
});
