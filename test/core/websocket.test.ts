import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { FrameMeter } from '../../core/websocket-tunnel.ts';
import { freePort, parseRawResponse, pluginSource, rawRequest, startGateway, waitFor, type TestGateway } from '../helpers/gateway.ts';

/**
 * A real WebSocket upstream (the `ws` package on a node:http server that also answers plain
 * requests), a real gateway, and `ws` clients: frames go through the gateway's tunnel.
 */
type Upstream = {
  url: string;
  /** Handshakes the upstream accepted: target and headers. */
  handshakes: { url: string; headers: IncomingHttpHeaders }[];
  /** Messages the upstream received. */
  received: { data: Buffer; binary: boolean }[];
  /** Close codes the upstream saw, one per closed connection. */
  closes: number[];
  sockets: WebSocket[];
  close(): Promise<void>;
};

async function startWsUpstream(): Promise<Upstream> {
  const server: Server = createServer((req, res) => {
    const body = JSON.stringify({ url: req.url, upgrade: req.headers.upgrade ?? null });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  const up: Upstream = { url: '', handshakes: [], received: [], closes: [], sockets: [], close: async () => undefined };
  const wss = new WebSocketServer({
    server,
    // The upstream's own refusal of a handshake, to be relayed by the gateway.
    verifyClient: (info: { req: IncomingMessage }, cb: (ok: boolean, code?: number, message?: string) => void) => {
      if (info.req.url?.includes('/deny') === true) cb(false, 401, 'Unauthorized');
      else cb(true);
    },
  });
  wss.on('connection', (ws, req) => {
    up.handshakes.push({ url: req.url ?? '', headers: req.headers });
    up.sockets.push(ws);
    ws.on('message', (data: Buffer, binary: boolean) => {
      up.received.push({ data, binary });
      const text = data.toString();
      if (!binary && text.startsWith('close:')) ws.close(Number(text.slice(6)), 'server says bye');
      else if (!binary && text.startsWith('big:')) ws.send(Buffer.alloc(Number(text.slice(4)), 1));
      else ws.send(data, { binary });
    });
    ws.on('close', (code: number) => up.closes.push(code));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  up.close = () =>
    new Promise<void>((r) => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      server.close(() => r());
    });
  return up;
}

/** Refuses handshakes without `x-key: ok` (403 with a JSON body); tags the accepted ones. */
const GUARD = pluginSource(
  'guard',
  `
export function access(pdk: any) {
  if (pdk.request.getHeader('x-key') !== 'ok') {
    pdk.response.exit(403, { message: 'no key' }, { 'X-Refused-By': 'guard' });
    return;
  }
  pdk.serviceRequest.setHeader('x-checked', pdk.request.getPath());
}`,
);

const THROWS = pluginSource('throws', `export function access(pdk: any) { throw new Error('broken on purpose'); }`);

type Client = { ws: WebSocket; messages: { data: Buffer; binary: boolean }[]; closed: Promise<{ code: number; reason: string }>; upgradeHeaders: IncomingHttpHeaders };

/** Opens a client through the gateway; rejects with the HTTP status when the handshake is refused. */
function connect(url: string, headers: Record<string, string> = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    const messages: Client['messages'] = [];
    let upgradeHeaders: IncomingHttpHeaders = {};
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code: number, reason: Buffer) => r({ code, reason: reason.toString() })));
    ws.on('message', (data: Buffer, binary: boolean) => messages.push({ data, binary }));
    ws.once('upgrade', (res: IncomingMessage) => (upgradeHeaders = res.headers));
    ws.once('open', () => resolve({ ws, messages, closed, upgradeHeaders }));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => reject(Object.assign(new Error(`handshake refused: ${res.statusCode}`), { status: res.statusCode, headers: res.headers, body })));
    });
    ws.once('error', (err) => reject(err));
  });
}

async function refusal(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const err = await connect(url, headers).then(
    (c) => {
      c.ws.terminate();
      throw new Error('the handshake was accepted');
    },
    (e: { status?: number; headers: IncomingHttpHeaders; body: string }) => e,
  );
  if (err.status === undefined) throw err as unknown as Error;
  return err as { status: number; headers: IncomingHttpHeaders; body: string };
}

describe('WebSocket proxying', () => {
  let up: Upstream;
  let gw: TestGateway;
  let wsUrl: string;

  beforeAll(async () => {
    up = await startWsUpstream();
    const dead = await freePort();
    gw = await startGateway(
      `
proxy: { websocket: { idleTimeoutMs: 800, maxMessageBytes: 4096 } }
tenants:
  - name: t1
    services:
      - { name: up, url: "${up.url}" }
      - { name: based, url: "${up.url}/base" }
      - { name: down, url: "http://127.0.0.1:${dead}", connectTimeoutMs: 1000 }
    routes:
      - { name: open, service: up, paths: [/ws] }
      - { name: guarded, service: based, paths: [/guarded], stripPath: true }
      - { name: down, service: down, paths: [/down] }
      - { name: broken, service: up, paths: [/broken] }
    plugins:
      - { name: guard, path: ./guard.ts, route: guarded }
      - { name: throws, path: ./throws.ts, route: broken }
`,
      { 'guard.ts': GUARD, 'throws.ts': THROWS },
    );
    wsUrl = gw.url.replace('http:', 'ws:');
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('round-trips text and binary frames', async () => {
    const c = await connect(`${wsUrl}/ws/chat?room=%7E1`);
    c.ws.send('hello');
    c.ws.send(Buffer.from([0, 1, 2, 255]));
    c.ws.send('x'.repeat(3000));
    await waitFor(() => c.messages.length === 3, 3000, 'three echoes');
    expect(c.messages[0]).toEqual({ data: Buffer.from('hello'), binary: false });
    expect(c.messages[1]).toEqual({ data: Buffer.from([0, 1, 2, 255]), binary: true });
    expect(c.messages[2].data.toString()).toBe('x'.repeat(3000));
    const hs = up.handshakes.at(-1)!;
    expect(hs.url).toBe('/ws/chat?room=%7E1');
    expect(hs.headers.via).toBe('1.1 isogate');
    expect(hs.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(c.upgradeHeaders.via).toBe('1.1 isogate');
    c.ws.close(1000, 'done');
    expect(await c.closed).toEqual({ code: 1000, reason: 'done' });
  });

  it('closes from the client: the upstream sees the close code', async () => {
    const before = up.closes.length;
    const c = await connect(`${wsUrl}/ws`);
    c.ws.close(4000, 'client says bye');
    expect((await c.closed).code).toBe(4000);
    await waitFor(() => up.closes.length > before, 3000, 'the upstream close');
    expect(up.closes.at(-1)).toBe(4000);
  });

  it('closes from the upstream: the client sees its close code and reason', async () => {
    const c = await connect(`${wsUrl}/ws`);
    c.ws.send('close:4001');
    expect(await c.closed).toEqual({ code: 4001, reason: 'server says bye' });
  });

  it('runs the access chain on the handshake: a refusal is a plain HTTP response', async () => {
    const hits = up.handshakes.length;
    const r = await refusal(`${wsUrl}/guarded/x`);
    expect(r.status).toBe(403);
    expect(r.headers['x-refused-by']).toBe('guard');
    expect(JSON.parse(r.body)).toEqual({ message: 'no key' });
    expect(up.handshakes.length).toBe(hits);
  });

  it('fails a handshake whose plugin faults with 500 and an error id, as for any request', async () => {
    const r = await refusal(`${wsUrl}/broken`);
    expect(r.status).toBe(500);
    const body = JSON.parse(r.body);
    expect(body.error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    expect(r.headers['x-isogate-error-id']).toBe(body.error.id);
  });

  it('lets an accepted handshake through with the upstream headers the plugins set', async () => {
    const c = await connect(`${wsUrl}/guarded/%7Ex`, { 'x-key': 'ok' });
    const hs = up.handshakes.at(-1)!;
    expect(hs.url).toBe('/base/%7Ex');
    expect(hs.headers['x-checked']).toBe('/guarded/~x');
    c.ws.send('ping');
    await waitFor(() => c.messages.length === 1, 3000, 'the echo');
    c.ws.close();
    await c.closed;
  });

  it("relays the upstream's own refusal", async () => {
    const r = await refusal(`${wsUrl}/ws/deny`);
    expect(r.status).toBe(401);
    expect(r.headers.via).toBe('1.1 isogate');
  });

  it('answers 404 without a route and 502 when the service is down, as JSON', async () => {
    const none = await refusal(`${wsUrl}/nothing`);
    expect(none.status).toBe(404);
    expect(JSON.parse(none.body).error.code).toBe('ISG_ERR_NO_ROUTE');
    const down = await refusal(`${wsUrl}/down`);
    expect(down.status).toBe(502);
    expect(JSON.parse(down.body).error.code).toBe('ISG_ERR_UPSTREAM_UNAVAILABLE');
  });

  it('closes an idle tunnel with 1001 (going away), on both sides', async () => {
    const before = up.closes.length;
    const c = await connect(`${wsUrl}/ws`);
    const t0 = Date.now();
    const { code } = await c.closed;
    expect(code).toBe(1001);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    await waitFor(() => up.closes.length > before, 3000, 'the upstream side closed');
  });

  it('keeps a tunnel with traffic open past the idle timeout', async () => {
    const c = await connect(`${wsUrl}/ws`);
    for (let i = 0; i < 6; i++) {
      c.ws.send(`tick ${i}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
    expect(c.messages.length).toBe(6);
    c.ws.close();
    await c.closed;
  });

  it('closes the tunnel on a message above maxMessageBytes: 1009 to a client that sent it', async () => {
    const c = await connect(`${wsUrl}/ws`);
    const count = up.received.length;
    c.ws.send(Buffer.alloc(5000));
    expect((await c.closed).code).toBe(1009);
    expect(up.received.length).toBe(count);
  });

  it('closes the tunnel on a message above maxMessageBytes from the upstream', async () => {
    const c = await connect(`${wsUrl}/ws`);
    c.ws.send('big:5000');
    expect((await c.closed).code).toBe(1006); // closed without a close frame: the client got part of a frame
    expect(c.messages).toEqual([]);
  });

  it('proxies a request with another Upgrade as a plain request, without the Upgrade', async () => {
    const raw = await rawRequest(gw.gw.proxyAddress.port, 'GET /ws/plain HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, close\r\nUpgrade: h2c\r\n\r\n');
    const r = parseRawResponse(raw);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ url: '/ws/plain', upgrade: null });
  });
});

describe('WebSocket tunnels and the gateway lifecycle', () => {
  it('stop() closes open tunnels instead of waiting for them', async () => {
    const up = await startWsUpstream();
    const gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: up, url: "${up.url}" }]
    routes: [{ name: open, service: up, paths: [/ws] }]
`);
    try {
      const c = await connect(`${gw.url.replace('http:', 'ws:')}/ws`);
      const t0 = Date.now();
      await gw.stop();
      expect(Date.now() - t0).toBeLessThan(2000);
      await c.closed;
    } finally {
      await up.close();
    }
  });
});

describe('WebSocket settings', () => {
  it('are validated: a zero idle timeout is refused with the field named', async () => {
    const err = await startGateway(`
proxy: { websocket: { idleTimeoutMs: 0 } }
tenants: []
`).then(
      async (gw) => {
        await gw.stop();
        return null;
      },
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain('proxy.websocket.idleTimeoutMs');
  });
});

describe('FrameMeter', () => {
  const frame = (opcode: number, fin: boolean, len: number, masked = true): Buffer => {
    const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
    const h = Buffer.alloc(2 + ext + (masked ? 4 : 0));
    h[0] = (fin ? 0x80 : 0) | opcode;
    h[1] = (masked ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
    if (ext === 2) h.writeUInt16BE(len, 2);
    if (ext === 8) h.writeUInt32BE(len, 6);
    return Buffer.concat([h, Buffer.alloc(len, 7)]);
  };

  it('sums the fragments of a message, not the control frames between them', () => {
    const m = new FrameMeter(1000);
    expect(m.feed(Buffer.concat([frame(1, false, 400), frame(9, true, 100), frame(0, false, 400)]))).toBe(true);
    expect(m.feed(frame(0, true, 201))).toBe(false);
    const n = new FrameMeter(1000);
    expect(n.feed(Buffer.concat([frame(2, true, 1000), frame(2, true, 1000, false)]))).toBe(true);
  });

  it('follows headers and payloads split at any byte', () => {
    const wire = Buffer.concat([frame(1, true, 300), frame(2, true, 70000), frame(1, true, 5)]);
    const m = new FrameMeter(100_000);
    for (let i = 0; i < wire.length; i += 7) expect(m.feed(wire.subarray(i, i + 7))).toBe(true);
    expect(m.atBoundary).toBe(true);
    expect(new FrameMeter(69_999).feed(wire)).toBe(false);
  });
});
