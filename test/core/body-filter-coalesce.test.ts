// The streaming bodyFilter joins the upstream chunks of one read (up to COALESCE_BYTES) into
// one call: order kept, isLastChunk true once, with the data that came with the end; an end
// that comes later is its own call with ''. A chunk set back as it came goes out as the
// upstream's bytes, byte for byte (non-UTF-8 ones too), where a changed one is UTF-8.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COALESCE_BYTES } from '../../core/response-body.ts';
import { NO_BREAKER, pluginSource, signal, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

// 'calls': each call leaves '<' + its chunk + ('$' on the last) + '>'; 'sizes': its chunk's
// length and '$' on the last, comma-separated; 'same': the chunk set back unchanged;
// 'touch', 'mangle': the chunk set back as a new string of the same text; 'flip': a
// different text of the same length.
const FILTER = pluginSource(
  'filter',
  `
export function bodyFilter(pdk: any) {
  const mode = pdk.request.getHeader('x-mode');
  const c = pdk.response.getChunk();
  const end = pdk.response.isLastChunk() ? '$' : '';
  if (mode === 'calls') pdk.response.setChunk('<' + c + end + '>');
  if (mode === 'sizes') pdk.response.setChunk(c.length + end + ',');
  if (mode === 'same') pdk.response.setChunk(c);
  if (mode === 'touch') pdk.response.setChunk(c.split('').join(''));
  if (mode === 'mangle') pdk.response.setChunk(c + '');
  if (mode === 'flip') pdk.response.setChunk(c.replaceAll('c', 'C'));
}`,
);

/** What the 'calls' mode made: the chunks of each call, and which call had the end. */
function calls(text: string): { parts: string[]; ends: number[] } {
  const parts = text.slice(1, -1).split('><');
  const ends = parts.flatMap((p, i) => (p.endsWith('$') ? [i] : []));
  return { parts: parts.map((p) => p.replace(/\$$/, '')), ends };
}

/** 200 chunks of chunked framing in one TCP write: the gateway parses them all from one read. */
function rawResponse(): string {
  let body = '';
  for (let i = 0; i < 200; i++) body += `3\r\nr${String(i % 100).padStart(2, '0')}\r\n`;
  return 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n' + body + '0\r\n\r\n';
}

describe('streaming bodyFilter: chunks of one read in one call', () => {
  let up: Upstream;
  let raw: Server;
  const rawSockets = new Set<Socket>();
  let gw: TestGateway;
  let clientGotFirst = signal();
  const binary = randomBytes(300 * 1024);
  // invalid UTF-8 on purpose: a lone continuation byte, a truncated sequence, an overlong form
  const notUtf8 = Buffer.concat([Buffer.from('abc'), Buffer.from([0x80, 0xe2, 0x82, 0x41, 0xc0, 0xaf, 0xff]), Buffer.from('xyz')]);

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      if (req.url === '/many') {
        // 200 small chunks written at once: they reach the gateway in a few reads
        for (let i = 0; i < 200; i++) res.write(`c${i};`);
        res.end();
        return;
      }
      if (req.url === '/burst') {
        // 400 KB in 4 KB chunks at once: calls are capped in size
        const piece = Buffer.alloc(4096, 'y');
        for (let i = 0; i < 100; i++) res.write(piece);
        res.end();
        return;
      }
      if (req.url === '/late-end') {
        res.write('xy');
        void clientGotFirst.promise.then(() => res.end());
        return;
      }
      if (req.url === '/binary') return void res.end(binary);
      if (req.url === '/not-utf8') return void res.end(notUtf8);
      res.end();
    });
    raw = createServer((socket) => {
      rawSockets.add(socket);
      socket.on('close', () => rawSockets.delete(socket));
      socket.on('data', (d) => {
        if (d.includes('\r\n\r\n')) socket.write(rawResponse());
      });
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    const rawPort = (raw.address() as { port: number }).port;
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    limits: { cpuMs: 200, memoryMb: 32 }
    services: [{ name: s, url: "${up.url}" }, { name: raw, url: "http://127.0.0.1:${rawPort}" }]
    routes: [{ name: r, service: s, paths: [/] }, { name: raw, service: raw, paths: [/raw] }]
    plugins:
      - { name: filter, path: ./filter.ts, limits: { cpuMs: 200 } }
`,
      { 'filter.ts': FILTER },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
    for (const socket of rawSockets) socket.destroy();
    await new Promise<void>((r) => raw.close(() => r()));
  });

  it('many small writes: in order, the end once and on the last call', async () => {
    const r = await request(`${gw.url}/many`, { headers: { 'x-mode': 'calls' } });
    const { parts, ends } = calls(await r.body.text());
    let want = '';
    for (let i = 0; i < 200; i++) want += `c${i};`;
    expect(parts.join('')).toBe(want);
    expect(ends).toEqual([parts.length - 1]);
  });

  it('200 chunks parsed from one read: one call, the end with it', async () => {
    const r = await request(`${gw.url}/raw`, { headers: { 'x-mode': 'calls' } });
    let want = '';
    for (let i = 0; i < 200; i++) want += `r${String(i % 100).padStart(2, '0')}`;
    expect(await r.body.text()).toBe('<' + want + '$>');
  });

  it('a burst: several calls, none over COALESCE_BYTES unless one upstream chunk is (a socket read: <= 64 KB), nothing lost', async () => {
    const r = await request(`${gw.url}/burst`, { headers: { 'x-mode': 'sizes' } });
    const sizes = (await r.body.text()).split(',').filter((s) => s !== '');
    expect(sizes.filter((s) => s.endsWith('$'))).toHaveLength(1);
    expect(sizes.at(-1)!.endsWith('$')).toBe(true);
    const n = sizes.map((s) => Number(s.replace('$', '')));
    expect(n.reduce((a, b) => a + b, 0)).toBe(400 * 1024);
    // node:http may send several writes of one tick as one chunk: the gateway then gets
    // spans of up to a socket read, which go alone; joined ones stay within COALESCE_BYTES
    for (const x of n) expect(x).toBeLessThanOrEqual(Math.max(COALESCE_BYTES, 64 * 1024));
    expect(n.length).toBeGreaterThanOrEqual((400 * 1024) / (64 * 1024));
  });

  it('an end that comes after the data was sent is a call of its own, with an empty chunk', async () => {
    clientGotFirst = signal();
    const r = await request(`${gw.url}/late-end`, { headers: { 'x-mode': 'calls' } });
    let got = '';
    for await (const c of r.body as AsyncIterable<Buffer>) {
      got += c.toString('utf8');
      clientGotFirst.fire(); // the upstream ends only once the client saw the first call's output
    }
    expect(got).toBe('<xy><$>');
  });

  it('a chunk set back unchanged goes out byte for byte: binary and invalid UTF-8', async () => {
    for (const [path, body] of [['/binary', binary], ['/not-utf8', notUtf8]] as const) {
      for (const mode of ['same', 'touch', 'mangle']) {
        const r = await request(`${gw.url}${path}`, { headers: { 'x-mode': mode } });
        const b = Buffer.from(await r.body.arrayBuffer());
        expect(createHash('sha256').update(b).digest('hex'), `${path} ${mode}`).toBe(createHash('sha256').update(body).digest('hex'));
      }
    }
  });

  it('a different text of the same length is a change, not the upstream\'s bytes', async () => {
    const r = await request(`${gw.url}/many`, { headers: { 'x-mode': 'flip' } });
    let want = '';
    for (let i = 0; i < 200; i++) want += `C${i};`;
    expect(await r.body.text()).toBe(want);
  });

  it('a changed chunk goes out as UTF-8 of the text the plugin saw (invalid bytes as U+FFFD)', async () => {
    const r = await request(`${gw.url}/not-utf8`, { headers: { 'x-mode': 'calls' } });
    const b = Buffer.from(await r.body.arrayBuffer());
    expect(b.equals(Buffer.from('<' + notUtf8.toString('utf8') + '$>'))).toBe(true);
  });
});
