import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRawResponse, rawRequest, send, startGateway, startUpstream, waitFor, type TestGateway, type Upstream } from '../helpers/gateway.ts';

describe('upstream failures and malformed requests', () => {
  let closedPort: number;
  let slow: Upstream;
  let ok: Upstream;
  let garbage: NetServer;
  let garbageUrl: string;
  let gw: TestGateway;
  /** Requests the slow upstream got: whether each was aborted before its answer. */
  const slowSeen: { url: string; closedEarly: boolean | null }[] = [];

  beforeAll(async () => {
    // Port 1 (tcpmux): nothing listens there, and unlike a port freed a moment ago no other
    // test's server can take it meanwhile.
    closedPort = 1;
    ok = await startUpstream((_req, res) => res.end('fine'));
    slow = await startUpstream((req, res) => {
      const entry = { url: req.url ?? '', closedEarly: null as boolean | null };
      slowSeen.push(entry);
      res.on('close', () => {
        entry.closedEarly = !res.writableFinished;
      });
      if (req.url === '/slow/stall-body') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        return; // never ends
      }
      const t = setTimeout(() => res.end('too late'), 3000);
      res.on('close', () => clearTimeout(t));
    });
    garbage = createNetServer((socket) => {
      socket.on('data', () => socket.end('THIS IS NOT HTTP\r\n\r\n'));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
    garbageUrl = `http://127.0.0.1:${(garbage.address() as AddressInfo).port}`;
    gw = await startGateway(`
tenants:
  - name: t1
    services:
      - { name: closed, url: "http://127.0.0.1:${closedPort}", connectTimeoutMs: 500 }
      - { name: slow, url: "${slow.url}", timeoutMs: 200 }
      - { name: ok, url: "${ok.url}" }
      - { name: garbage, url: "${garbageUrl}" }
    routes:
      - { name: closed, service: closed, paths: [/closed] }
      - { name: slow, service: slow, paths: [/slow] }
      - { name: ok, service: ok, paths: [/ok] }
      - { name: garbage, service: garbage, paths: [/garbage] }
`);
  });
  afterAll(async () => {
    await gw.stop();
    await slow.close();
    await ok.close();
    await new Promise<void>((r) => garbage.close(() => r()));
  });

  it('answers 502 ISG_ERR_UPSTREAM_UNAVAILABLE when the upstream refuses the connection', async () => {
    const r = await send(`${gw.url}/closed`);
    expect(r.status).toBe(502);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.json().error.code).toBe('ISG_ERR_UPSTREAM_UNAVAILABLE');
    // Every 5xx carries an error id, in the body and the header, quoted by the log line.
    expect(r.json().error.id).toMatch(/^[0-9a-f]{16}$/);
    expect(r.headers['x-isogate-error-id']).toBe(r.json().error.id);
    expect(r.body.replace(r.json().error.id, '')).not.toContain(String(closedPort)); // no host details to the client
  });

  it('answers 502 ISG_ERR_UPSTREAM_BAD_RESPONSE when the upstream does not speak HTTP', async () => {
    const r = await send(`${gw.url}/garbage`);
    expect(r.status).toBe(502);
    expect(r.json().error.code).toBe('ISG_ERR_UPSTREAM_BAD_RESPONSE');
  });

  it('answers 504 ISG_ERR_UPSTREAM_TIMEOUT after the service timeoutMs', async () => {
    const t0 = performance.now();
    const r = await send(`${gw.url}/slow/headers`);
    const elapsed = performance.now() - t0;
    expect(r.status).toBe(504);
    expect(r.json().error.code).toBe('ISG_ERR_UPSTREAM_TIMEOUT');
    expect(elapsed).toBeGreaterThanOrEqual(150);
    // undici runs headers/body timeouts on its coarse "fast timers" (~0.5-1 s resolution).
    expect(elapsed).toBeLessThan(2500);
    // The gateway gave up on the upstream request too.
    await waitFor(() => slowSeen.find((s) => s.url === '/slow/headers')?.closedEarly === true, 2000, 'upstream request closed');
  });

  it('cuts the client connection when the upstream stalls mid-body past timeoutMs', async () => {
    const t0 = performance.now();
    const r = await request(`${gw.url}/slow/stall-body`);
    expect(r.statusCode).toBe(200);
    await expect(r.body.text()).rejects.toThrow();
    expect(performance.now() - t0).toBeLessThan(2500);
  });

  it('aborts the upstream request when the client disconnects', async () => {
    const ac = new AbortController();
    const pending = request(`${gw.url}/slow/abandoned`, { signal: ac.signal }).catch((err: Error) => err);
    await waitFor(() => slowSeen.some((s) => s.url === '/slow/abandoned'), 2000, 'upstream got the request');
    const entry = slowSeen.find((s) => s.url === '/slow/abandoned')!;
    expect(entry.closedEarly).toBeNull();
    ac.abort();
    expect(await pending).toBeInstanceOf(Error);
    // Well before the 200 ms timeout would have closed it.
    const t0 = performance.now();
    await waitFor(() => entry.closedEarly === true, 2000, 'upstream request aborted');
    expect(performance.now() - t0).toBeLessThan(150);
  });

  it('answers 400 to a request that is not HTTP, and keeps serving', async () => {
    const raw = await rawRequest(gw.gw.proxyAddress.port, 'GARBAGE GARBAGE GARBAGE\r\n\r\n');
    const r = parseRawResponse(raw);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toEqual({ error: { code: 'ISG_ERR_BAD_REQUEST', message: 'malformed request' } });
    expect((await send(`${gw.url}/ok`)).body).toBe('fine');
  });

  it('answers 400 to a malformed header line, and keeps serving', async () => {
    const raw = await rawRequest(gw.gw.proxyAddress.port, 'GET /ok HTTP/1.1\r\nHost: x\r\nBad Header Name: y\r\n\r\n');
    expect(parseRawResponse(raw).status).toBe(400);
    const nul = await rawRequest(gw.gw.proxyAddress.port, 'GET /ok HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n');
    expect(parseRawResponse(nul).status).toBe(400);
    expect((await send(`${gw.url}/ok`)).body).toBe('fine');
  });

  it('answers 431 to oversized headers', async () => {
    const raw = await rawRequest(gw.gw.proxyAddress.port, `GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    expect(parseRawResponse(raw).status).toBe(431);
    expect((await send(`${gw.url}/ok`)).body).toBe('fine');
  });

  it('answers 400 ISG_ERR_BAD_REQUEST to a request target that is not a path', async () => {
    const raw = await rawRequest(gw.gw.proxyAddress.port, 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const r = parseRawResponse(raw);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error.code).toBe('ISG_ERR_BAD_REQUEST');
  });

  it('routes an absolute-form request target on its path', async () => {
    const raw = await rawRequest(gw.gw.proxyAddress.port, 'GET http://elsewhere.test/ok?x=1 HTTP/1.1\r\nHost: elsewhere.test\r\nConnection: close\r\n\r\n');
    const r = parseRawResponse(raw);
    expect(r.status).toBe(200);
    expect(r.body).toBe('fine');
  });

  it('still serves many requests after all of the above', async () => {
    const replies = await Promise.all(Array.from({ length: 20 }, () => send(`${gw.url}/ok`)));
    expect(replies.map((r) => r.status)).toEqual(Array(20).fill(200));
  });
});
