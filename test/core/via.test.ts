import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.ts';
import { parseRawResponse, pluginSource, rawRequest, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** Echoes the Via it got; answers with a Via of its own when asked (x-up-via). */
function viaEcho(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
  const body = JSON.stringify({ via: req.headers.via ?? null });
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  const upVia = req.headers['x-up-via'];
  if (typeof upVia === 'string') headers.via = upVia;
  res.writeHead(200, headers);
  res.end(body);
}

const EXIT = pluginSource('exit', `export function access(pdk: any) { pdk.response.exit(403, { message: 'no' }); }`);

function config(upstream: string, proxy: string): string {
  return `
${proxy}
tenants:
  - name: t1
    services:
      - { name: up, url: "${upstream}" }
    routes:
      - { name: r, service: up, paths: [/r] }
      - { name: refused, service: up, paths: [/refused] }
    plugins:
      - { name: exit, path: ./exit.ts, route: refused }
`;
}

describe('Via (RFC 9110 section 7.6.3)', () => {
  let up: Upstream;
  let gw: TestGateway;

  beforeAll(async () => {
    up = await startUpstream(viaEcho);
    gw = await startGateway(config(up.url, ''), { 'exit.ts': EXIT });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('is added on the request and on the response, "1.1 isogate" by default', async () => {
    const r = await send(`${gw.url}/r`);
    expect(r.json().via).toBe('1.1 isogate');
    expect(r.headers.via).toBe('1.1 isogate');
  });

  it('is appended to the Via of earlier hops, both ways', async () => {
    const r = await send(`${gw.url}/r`, { headers: { via: '1.0 fred, 1.1 p.example.net', 'x-up-via': '1.1 backend' } });
    expect(r.json().via).toBe('1.0 fred, 1.1 p.example.net, 1.1 isogate');
    expect(r.headers.via).toBe('1.1 backend, 1.1 isogate');
  });

  it('names the protocol version the gateway received: 1.0 for an HTTP/1.0 client', async () => {
    const raw = parseRawResponse(await rawRequest(gw.gw.proxyAddress.port, 'GET /r HTTP/1.0\r\nHost: h\r\n\r\n'));
    expect(raw.status).toBe(200);
    expect(JSON.parse(raw.body).via).toBe('1.0 isogate');
    expect(raw.headers.via).toBe('1.1 isogate'); // the response came from the upstream over HTTP/1.1
  });

  it('is not added to responses the gateway makes itself', async () => {
    const none = await send(`${gw.url}/nothing`);
    expect(none.status).toBe(404);
    expect(none.headers).not.toHaveProperty('via');
    const refused = await send(`${gw.url}/refused`);
    expect(refused.status).toBe(403);
    expect(refused.headers).not.toHaveProperty('via');
  });
});

describe('Via settings', () => {
  let up: Upstream;
  beforeAll(async () => {
    up = await startUpstream(viaEcho);
  });
  afterAll(async () => {
    await up.close();
  });

  it('uses the configured pseudonym', async () => {
    const gw = await startGateway(config(up.url, 'proxy: { via: edge-7.example }'), { 'exit.ts': EXIT });
    try {
      const r = await send(`${gw.url}/r`, { headers: { via: '1.1 a' } });
      expect(r.json().via).toBe('1.1 a, 1.1 edge-7.example');
      expect(r.headers.via).toBe('1.1 edge-7.example');
    } finally {
      await gw.stop();
    }
  });

  it('can be turned off: earlier hops are still passed on', async () => {
    const gw = await startGateway(config(up.url, 'proxy: { via: false }'), { 'exit.ts': EXIT });
    try {
      const plain = await send(`${gw.url}/r`);
      expect(plain.json().via).toBeNull();
      expect(plain.headers).not.toHaveProperty('via');
      const chained = await send(`${gw.url}/r`, { headers: { via: '1.1 a', 'x-up-via': '1.1 b' } });
      expect(chained.json().via).toBe('1.1 a');
      expect(chained.headers.via).toBe('1.1 b');
    } finally {
      await gw.stop();
    }
  });

  it('refuses a pseudonym that is not an HTTP token', async () => {
    const err = await startGateway(config(up.url, 'proxy: { via: "my proxy" }'), { 'exit.ts': EXIT }).then(
      async (gw) => {
        await gw.stop();
        return null;
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect(String((err as Error).message)).toContain('proxy.via');
  });
});
