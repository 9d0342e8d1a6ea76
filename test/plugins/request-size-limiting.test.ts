import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, parseRawResponse, rawRequest, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

describe('plugin request-size-limiting', () => {
  let up: Upstream;
  let gw: TestGateway;
  let port: number;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
proxy: { bodies: { maxRequestBodyBytes: 4096 } }
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes:
      - { name: kb, service: echo, paths: [/kb] }
      - { name: bytes, service: echo, paths: [/bytes] }
      - { name: strict, service: echo, paths: [/strict] }
      - { name: defaults, service: echo, paths: [/defaults] }
    plugins:
      - { name: request-size-limiting, route: kb, config: { allowed_payload_size: 1, size_unit: kilobytes } }
      - { name: request-size-limiting, route: bytes, config: { allowed_payload_size: 10, size_unit: bytes } }
      - { name: request-size-limiting, route: strict, config: { allowed_payload_size: 10, size_unit: bytes, require_content_length: true } }
      - { name: request-size-limiting, route: defaults }
`);
    port = gw.gw.proxyAddress.port;
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('a body at the limit passes, one byte more gets 413 with Kong\'s message', async () => {
    const ok = await send(`${gw.url}/kb`, { method: 'POST', body: 'x'.repeat(1024) });
    expect(ok.status).toBe(200);
    expect(ok.json().bodyBytes).toBe(1024);
    const r = await send(`${gw.url}/kb`, { method: 'POST', body: 'x'.repeat(1025) });
    expect(r.status).toBe(413);
    expect(r.json()).toEqual({ message: 'Request size limit exceeded' });
    expect((await send(`${gw.url}/bytes`, { method: 'POST', body: '12345678901' })).status).toBe(413);
  });

  it('defaults to 128 megabytes: a small body passes', async () => {
    expect((await send(`${gw.url}/defaults`, { method: 'POST', body: 'x'.repeat(100_000) })).status).toBe(200);
  });

  it('Expect: 100-continue gets 417 instead: without the body for a Content-Length over the body buffer cap, else after it (reads: body buffers it first)', async () => {
    const bigRaw = await rawRequest(port, `POST /bytes HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
    const big = parseRawResponse(bigRaw.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, ''));
    expect(big.status).toBe(417);
    expect(JSON.parse(big.body)).toEqual({ message: 'Request size limit exceeded' });
    const raw = await rawRequest(port, `POST /bytes HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n${'y'.repeat(50)}`);
    const r = parseRawResponse(raw.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, ''));
    expect(r.status).toBe(417);
    expect(JSON.parse(r.body)).toEqual({ message: 'Request size limit exceeded' });
  });

  /** A chunked request of `body` (UTF-8) in chunks of 1000 bytes. */
  const chunkedRequest = (path: string, body: string): Buffer => {
    const b = Buffer.from(body);
    const parts: Buffer[] = [Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`)];
    for (let i = 0; i < b.length; i += 1000) {
      const c = b.subarray(i, i + 1000);
      parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
    }
    parts.push(Buffer.from('0\r\n\r\n'));
    return Buffer.concat(parts);
  };

  it('a chunked body is counted in bytes: at the limit it passes, a byte more is 413 (multi-byte characters by their UTF-8 length)', async () => {
    for (const [body, status] of [['x'.repeat(1024), 200], ['x'.repeat(1025), 413], ['é'.repeat(512), 200], ['é'.repeat(512) + 'x', 413], ['😀'.repeat(256), 200], ['😀'.repeat(256) + 'x', 413]] as const) {
      const r = parseRawResponse(await rawRequest(port, chunkedRequest('/kb', body)));
      expect(r.status, `${body.length} characters`).toBe(status);
      if (status === 200) expect(JSON.parse(r.body).bodyBytes).toBe(Buffer.byteLength(body));
      else expect(JSON.parse(r.body)).toEqual({ message: 'Request size limit exceeded' });
    }
  });

  it('binary bytes that are not UTF-8 are not counted larger than they are', async () => {
    const bin = Buffer.alloc(1024, 0xff); // each decodes to U+FFFD (3 bytes in UTF-8)
    const head = Buffer.from(`POST /kb HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n400\r\n`);
    const r = parseRawResponse(await rawRequest(port, Buffer.concat([head, bin, Buffer.from('\r\n0\r\n\r\n')])));
    expect(r.status).toBe(200);
  });

  it('a chunked body over the gateway\'s body buffer cap (proxy.bodies.maxRequestBodyBytes) is refused whatever the limit', async () => {
    const r = parseRawResponse(await rawRequest(port, chunkedRequest('/defaults', 'x'.repeat(5000))));
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toEqual({ message: 'Request size limit exceeded' });
    // with a Content-Length the header decides: over the cap it streams upstream unread
    const ok = await send(`${gw.url}/defaults`, { method: 'POST', body: 'x'.repeat(5000) });
    expect(ok.status).toBe(200);
    expect(ok.json().bodyBytes).toBe(5000);
  });

  it('require_content_length: a chunked body gets 411; without it a small chunked body passes', async () => {
    const chunked = `POST /strict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n`;
    const r = parseRawResponse(await rawRequest(port, chunked));
    expect(r.status).toBe(411);
    expect(JSON.parse(r.body)).toEqual({ message: 'A valid Content-Length header is required' });
    const bodyless = await send(`${gw.url}/strict`);
    expect(bodyless.status).toBe(411);
    const other = parseRawResponse(await rawRequest(port, chunked.replace('/strict', '/bytes')));
    expect(other.status).toBe(200);
  });

  it('hostile: a Content-Length past 2^53 is refused as too large, not wrapped or trusted', async () => {
    // node:http itself refuses lengths of 20 digits (400); 9007199254740993 reaches the plugin
    const raw = await rawRequest(port, `POST /kb HTTP/1.1\r\nHost: x\r\nContent-Length: 9007199254740993\r\nConnection: close\r\n\r\nabc`, 2000);
    const r = parseRawResponse(raw);
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toEqual({ message: 'Request size limit exceeded' });
  });
});
