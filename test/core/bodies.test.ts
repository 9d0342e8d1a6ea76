import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRawResponse, send, signal, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const SIZE = 20 * 1024 * 1024;
const CHUNK = 256 * 1024;
const sha256 = (b: Buffer | Buffer[]) => {
  const h = createHash('sha256');
  for (const c of Array.isArray(b) ? b : [b]) h.update(c);
  return h.digest('hex');
};

/** A promise with its resolver, for handshakes between the test's client and upstream. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms (buffered?)`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

describe('bodies stream through the gateway', () => {
  const payload = randomBytes(SIZE);
  const payloadHash = sha256(payload);
  let up: Upstream;
  let gw: TestGateway;
  /** Fired by the upstream when the first bytes of an upload arrive (handshake for the streaming check). */
  let firstUploadBytes = signal();
  /** The download handler waits on this after its first chunk. */
  let clientGotFirstBytes = signal();

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      if (req.url?.startsWith('/upload') === true) {
        const h = createHash('sha256');
        let n = 0;
        req.on('data', (c: Buffer) => {
          if (n === 0) firstUploadBytes.fire();
          n += c.length;
          h.update(c);
        });
        req.on('end', () => res.end(JSON.stringify({ bytes: n, sha256: h.digest('hex'), te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null })));
        return;
      }
      if (req.url?.startsWith('/download') === true) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) });
        // First chunk, then wait until the client has it: a buffering gateway never lets that happen.
        res.write(payload.subarray(0, CHUNK));
        void clientGotFirstBytes.promise.then(() => res.end(payload.subarray(CHUNK)));
        return;
      }
      if (req.url?.startsWith('/status/') === true) {
        req.resume();
        req.on('end', () => {
          const code = Number(req.url!.slice('/status/'.length));
          const body = code === 204 || code === 304 ? '' : 'hello';
          const headers: Record<string, string> = { 'content-type': 'text/plain', 'x-method': req.method ?? '', 'x-got': String(req.headers['content-length'] ?? '') };
          if (body !== '') headers['content-length'] = '5';
          res.writeHead(code, headers);
          res.end(body === '' ? undefined : body);
        });
        return;
      }
      res.writeHead(404).end();
    });
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: up, url: "${up.url}", timeoutMs: 10000 }]
    routes:
      - { name: plain, service: up, paths: [/plain], stripPath: true }
      - { name: plugged, service: up, paths: [/plugged], stripPath: true }
    plugins:
      - name: correlation-id
        route: plugged
        config: { echo_downstream: true }
`);
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  for (const prefix of ['/plain', '/plugged']) {
    it(`uploads 20 MB byte-exact with Content-Length (${prefix})`, async () => {
      const r = await request(`${gw.url}${prefix}/upload`, { method: 'POST', body: payload });
      expect(r.statusCode).toBe(200);
      const got = (await r.body.json()) as { bytes: number; sha256: string; cl: string | null };
      expect(got.bytes).toBe(SIZE);
      expect(got.sha256).toBe(payloadHash);
      expect(got.cl).toBe(String(SIZE));
    });

    it(`downloads 20 MB byte-exact, streaming (${prefix})`, async () => {
      clientGotFirstBytes = signal();
      const r = await request(`${gw.url}${prefix}/download`);
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-length']).toBe(String(SIZE));
      const chunks: Buffer[] = [];
      let n = 0;
      const done = (async () => {
        for await (const c of r.body as AsyncIterable<Buffer>) {
          chunks.push(c);
          n += c.length;
          if (n >= CHUNK) clientGotFirstBytes.fire();
        }
      })();
      await within(done, 10_000, 'download');
      expect(n).toBe(SIZE);
      expect(sha256(chunks)).toBe(payloadHash);
    });
  }

  it('uploads 20 MB chunked (no Content-Length), streaming before the client finishes', async () => {
    firstUploadBytes = signal();
    const half = SIZE / 2;
    // The second half is only sent once the upstream saw the first bytes.
    async function* body(): AsyncGenerator<Buffer> {
      for (let i = 0; i < half; i += CHUNK) yield payload.subarray(i, i + CHUNK);
      await within(firstUploadBytes.promise, 5_000, 'upload first bytes');
      for (let i = half; i < SIZE; i += CHUNK) yield payload.subarray(i, i + CHUNK);
    }
    const r = await within(request(`${gw.url}/plain/upload`, { method: 'PUT', body: Readable.from(body()) }), 15_000, 'upload');
    expect(r.statusCode).toBe(200);
    const got = (await r.body.json()) as { bytes: number; sha256: string; te: string | null; cl: string | null };
    expect(got.bytes).toBe(SIZE);
    expect(got.sha256).toBe(payloadHash);
    expect(got.cl).toBeNull();
    expect(got.te).toBe('chunked');
  });

  it('answers HEAD with the headers and no body', async () => {
    const r = await send(`${gw.url}/plain/status/200`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers['x-method']).toBe('HEAD');
    expect(r.body).toBe('');
  });

  it('passes 204 and 304 through without a body', async () => {
    for (const code of [204, 304]) {
      const r = await send(`${gw.url}/plain/status/${code}`);
      expect(r.status).toBe(code);
      expect(r.body).toBe('');
    }
  });

  it('answers Expect: 100-continue and forwards the body', async () => {
    const port = gw.gw.proxyAddress.port;
    const raw = await new Promise<string>((resolvePromise, reject) => {
      const socket = connect(gw.gw.proxyAddress.port, '127.0.0.1');
      let got = '';
      let sent = false;
      socket.on('data', (c: Buffer) => {
        got += c.toString('latin1');
        // The body goes out only once the gateway said 100 Continue.
        if (!sent && got.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
          sent = true;
          socket.write('abcde');
        }
      });
      socket.on('end', () => resolvePromise(got));
      socket.on('error', reject);
      socket.write('POST /plain/status/201 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
    });
    expect(raw.startsWith('HTTP/1.1 100 Continue\r\n\r\n')).toBe(true);
    const r = parseRawResponse(raw.slice('HTTP/1.1 100 Continue\r\n\r\n'.length));
    expect(r.status).toBe(201);
    expect(r.headers['x-got']).toBe('5');
    expect(r.body).toBe('hello');
  });
});
