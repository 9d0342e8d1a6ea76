import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { NO_BREAKER, echoHandler, pluginSource, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** pdk.client: the peer and, behind a trusted proxy, the client it forwards for. */
const READER = pluginSource('reader', `
export function access(pdk: any) {
  pdk.response.exit(200, {
    ip: pdk.client.getIp(),
    fIp: pdk.client.getForwardedIp(),
    port: pdk.client.getPort(),
    fPort: pdk.client.getForwardedPort(),
    protocol: pdk.client.getProtocol(),
    terminated: pdk.client.getProtocol(true),
  });
}`);

function config(up: Upstream, trusted: string): string {
  return `
${NO_BREAKER}
proxy: { trustedProxies: ${trusted} }
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/] }]
    plugins: [{ name: reader, path: ./reader.ts }]
`;
}

/** One request on a fresh connection. */
async function fromPort(url: string, headers: Record<string, string>): Promise<{ got: any }> {
  const agent = new Agent();
  const r = await request(url, { headers, dispatcher: agent });
  const got = await r.body.json();
  await agent.close();
  return { got };
}

describe('pdk.client', () => {
  let up: Upstream;
  let trusting: TestGateway;
  let wary: TestGateway;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    trusting = await startGateway(config(up, '["127.0.0.1"]'), { 'reader.ts': READER });
    wary = await startGateway(config(up, '["192.168.0.0/16"]'), { 'reader.ts': READER });
  });
  afterAll(async () => {
    await trusting.stop();
    await wary.stop();
    await up.close();
  });

  it('reads the peer address and port, and http as the protocol', async () => {
    const { got } = await fromPort(`${wary.url}/`, {});
    expect(got.ip).toBe('127.0.0.1');
    expect(got.fIp).toBe('127.0.0.1');
    expect(Number.isInteger(got.port) && got.port > 0 && got.port < 65536).toBe(true);
    expect(got.fPort).toBe(got.port);
    expect(got.protocol).toBe('http');
    expect(got.terminated).toBe('http');
  });

  it('behind a trusted proxy: the last X-Forwarded-For entry and the protocol it terminated', async () => {
    const { got } = await fromPort(`${trusting.url}/`, { 'x-forwarded-for': '203.0.113.9, 198.51.100.7', 'x-forwarded-proto': 'HTTPS' });
    expect(got.ip).toBe('127.0.0.1');
    expect(got.fIp).toBe('198.51.100.7');
    expect(got.protocol).toBe('http');
    expect(got.terminated).toBe('https');
  });

  it('hostile: a forged X-Forwarded-For from an untrusted peer changes nothing', async () => {
    const { got } = await fromPort(`${wary.url}/`, { 'x-forwarded-for': '10.1.2.3', 'x-forwarded-proto': 'https' });
    expect(got.fIp).toBe('127.0.0.1');
    expect(got.terminated).toBe('http');
  });

  it('hostile: a trusted proxy forwarding junk for an address falls back to the peer', async () => {
    const { got } = await fromPort(`${trusting.url}/`, { 'x-forwarded-for': 'not an ip<script>' });
    expect(got.fIp).toBe('127.0.0.1');
  });
});
