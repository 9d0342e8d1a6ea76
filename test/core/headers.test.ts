import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRawResponse, rawRequest, send, startGateway, type TestGateway } from '../helpers/gateway.ts';

/**
 * A raw TCP upstream, so the test sees the exact header lines the gateway sent and can
 * answer with hop-by-hop headers that node:http would rewrite. It records each request
 * head and answers with `responseHead` and a small body, then closes the connection.
 */
type RawUpstream = { port: number; url: string; heads: Record<string, string>[]; close(): Promise<void> };

const RESPONSE_HEAD = [
  'HTTP/1.1 200 OK',
  'Content-Type: text/plain',
  'Content-Length: 2',
  'Connection: close, X-Up-Secret',
  'Keep-Alive: timeout=77, max=3',
  'Proxy-Authenticate: Basic realm="up"',
  'Proxy-Connection: keep-alive',
  'Trailer: X-Checksum',
  'Upgrade: h2c',
  'X-Up-Secret: hidden',
  'X-Up-Kept: visible',
  'Set-Cookie: a=1; Path=/',
  'Set-Cookie: b=2; Path=/',
].join('\r\n');

async function startRawUpstream(): Promise<RawUpstream> {
  const heads: Record<string, string>[] = [];
  const server: NetServer = createNetServer((socket) => {
    let buf = '';
    socket.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const parsed = parseRawResponse(`HTTP/1.1 000 request\r\n${buf.slice(buf.indexOf('\r\n') + 2)}`);
      heads.push({ ':request-line': buf.slice(0, buf.indexOf('\r\n')), ...parsed.headers });
      socket.end(`${RESPONSE_HEAD}\r\n\r\nok`);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    heads,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('header handling', () => {
  let up: RawUpstream;
  let gw: TestGateway;
  let port: number;

  beforeAll(async () => {
    up = await startRawUpstream();
    gw = await startGateway(`
tenants:
  - name: t1
    services:
      - { name: keep, url: "${up.url}" }
      - { name: replace, url: "${up.url}", preserveHost: false }
    routes:
      - { name: keep, service: keep, paths: [/keep] }
      - { name: replace, service: replace, paths: [/replace] }
`);
    port = gw.gw.proxyAddress.port;
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  /** Sends raw request lines through the gateway; returns what the upstream got and what the client got. */
  async function exchange(path: string, headerLines: string[]): Promise<{ upstream: Record<string, string>; client: ReturnType<typeof parseRawResponse> }> {
    const before = up.heads.length;
    const raw = await rawRequest(port, `GET ${path} HTTP/1.1\r\n${headerLines.join('\r\n')}\r\n\r\n`);
    const client = parseRawResponse(raw);
    expect(client.status).toBe(200);
    expect(up.heads.length).toBe(before + 1);
    return { upstream: up.heads[before], client };
  }

  it('removes hop-by-hop request headers and the headers Connection names', async () => {
    const { upstream } = await exchange('/keep', [
      'Host: client.test',
      'Connection: close, X-Secret, keep-alive',
      'Keep-Alive: timeout=99',
      'TE: gzip',
      'Trailer: X-Foo',
      'Upgrade: h2c',
      'Proxy-Authorization: Basic c2VjcmV0',
      'Proxy-Connection: keep-alive',
      'X-Secret: do-not-forward',
      'X-Kept: yes',
    ]);
    expect(upstream['x-kept']).toBe('yes');
    for (const h of ['keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection', 'x-secret']) {
      expect(upstream, h).not.toHaveProperty(h);
    }
    // The upstream connection's own Connection header is the gateway's business (undici
    // may send keep-alive); the client's tokens must not be in it.
    expect(upstream.connection ?? 'keep-alive').toBe('keep-alive');
  });

  it('passes on the trailers member of TE, and only that one', async () => {
    const { upstream } = await exchange('/keep', ['Host: client.test', 'TE: gzip;q=0.5, Trailers', 'Connection: close, TE']);
    expect(upstream.te).toBe('trailers');
  });

  it('removes headers named in a repeated Connection header too', async () => {
    const { upstream } = await exchange('/keep', ['Host: client.test', 'Connection: x-one', 'Connection: close, x-two', 'X-One: 1', 'X-Two: 2', 'X-Three: 3']);
    expect(upstream).not.toHaveProperty('x-one');
    expect(upstream).not.toHaveProperty('x-two');
    expect(upstream['x-three']).toBe('3');
  });

  it('removes hop-by-hop response headers and the headers Connection names', async () => {
    const { client } = await exchange('/keep', ['Host: client.test', 'Connection: close']);
    expect(client.headers['x-up-kept']).toBe('visible');
    expect(client.body).toBe('ok');
    for (const h of ['keep-alive', 'proxy-authenticate', 'proxy-connection', 'trailer', 'upgrade', 'x-up-secret']) {
      expect(client.headers, h).not.toHaveProperty(h);
    }
    // The gateway's own Connection header to its client, never the upstream's tokens.
    expect(client.headers.connection?.toLowerCase() ?? '').not.toContain('x-up-secret');
  });

  it('removes hop-by-hop response headers for a keep-alive client (undici)', async () => {
    const r = await send(`${gw.url}/keep`);
    expect(r.status).toBe(200);
    expect(r.headers['x-up-kept']).toBe('visible');
    for (const h of ['proxy-authenticate', 'trailer', 'upgrade', 'x-up-secret']) expect(r.headers, h).not.toHaveProperty(h);
    // node:http announces its own keep-alive timeout to the client; the upstream's must not leak.
    expect(r.headers['keep-alive']).not.toBe('timeout=77, max=3');
  });

  it('sets X-Forwarded-For to the client address, appending to an existing value', async () => {
    const plain = await exchange('/keep', ['Host: client.test', 'Connection: close']);
    expect(plain.upstream['x-forwarded-for']).toBe('127.0.0.1');
    const chained = await exchange('/keep', ['Host: client.test', 'X-Forwarded-For: 203.0.113.7, 10.0.0.1', 'Connection: close']);
    expect(chained.upstream['x-forwarded-for']).toBe('203.0.113.7, 10.0.0.1, 127.0.0.1');
    const repeated = await exchange('/keep', ['Host: client.test', 'X-Forwarded-For: 203.0.113.7', 'X-Forwarded-For: 10.0.0.2', 'Connection: close']);
    expect(repeated.upstream['x-forwarded-for']).toBe('203.0.113.7, 10.0.0.2, 127.0.0.1');
  });

  it('sets X-Forwarded-Proto and X-Forwarded-Host, overriding what the client claimed', async () => {
    const { upstream } = await exchange('/keep', ['Host: client.test:8080', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: spoofed.test', 'Connection: close']);
    expect(upstream['x-forwarded-proto']).toBe('http');
    expect(upstream['x-forwarded-host']).toBe('client.test:8080');
  });

  it("preserves the client's Host by default", async () => {
    const { upstream } = await exchange('/keep', ['Host: client.test:8080', 'Connection: close']);
    expect(upstream.host).toBe('client.test:8080');
    expect(upstream[':request-line']).toBe('GET /keep HTTP/1.1');
  });

  it("sends the service URL's host with preserveHost: false", async () => {
    const { upstream } = await exchange('/replace/x', ['Host: client.test', 'Connection: close']);
    expect(upstream.host).toBe(`127.0.0.1:${up.port}`);
    expect(upstream['x-forwarded-host']).toBe('client.test');
    expect(upstream[':request-line']).toBe('GET /replace/x HTTP/1.1');
  });

  it('keeps every Set-Cookie of the upstream as its own header line', async () => {
    const { client } = await exchange('/keep', ['Host: client.test', 'Connection: close']);
    const cookies = client.rawHead.split('\r\n').filter((l) => l.toLowerCase().startsWith('set-cookie:'));
    expect(cookies).toEqual(['set-cookie: a=1; Path=/', 'set-cookie: b=2; Path=/']);
  });

  it('serves an HTTP/1.0 client', async () => {
    const raw = await rawRequest(port, 'GET /keep HTTP/1.0\r\nHost: old.test\r\n\r\n');
    const r = parseRawResponse(raw);
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok');
    expect(up.heads.at(-1)!.host).toBe('old.test');
  });

  it('keeps end-to-end headers, repeated ones included', async () => {
    const { upstream } = await exchange('/keep', ['Host: client.test', 'Accept: text/plain', 'X-Multi: a', 'X-Multi: b', 'Authorization: Bearer t', 'Connection: close']);
    expect(upstream.accept).toBe('text/plain');
    expect(upstream['x-multi']).toBe('a, b');
    expect(upstream.authorization).toBe('Bearer t');
  });
});
