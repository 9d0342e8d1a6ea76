import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import { configErrors, sendFrom, startGatewayOn } from './helpers.ts';

// The gateway listens dual-stack (::), so IPv4 clients arrive as ::ffff:127.0.0.x, as on many
// real deployments; clients bind their own loopback address (127.0.0.0/8 and ::1 all reach it).
describe('plugin ip-restriction', () => {
  let up: Upstream;
  let gw: TestGateway;
  let port: number;
  const at = (from: string, path: string) => sendFrom(from, `http://${from.includes(':') ? `[${from}]` : from}:${port}${path}`);

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    const route = (n: string) => `      - { name: ${n}, service: echo, paths: [/${n}] }`;
    const names = ['allow', 'deny', 'both', 'v6', 'mapped', 'zero4', 'zero6', 'edge', 'big'];
    const big = Array.from({ length: 5000 }, (_, i) => `"10.${(i >> 8) & 255}.${i & 255}.0/24"`).join(', ');
    gw = await startGatewayOn(
      '::',
      `
proxy: { trustedProxies: ["::ffff:127.0.0.50/128", 127.0.0.50] }
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes:
${names.map(route).join('\n')}
    plugins:
      - { name: ip-restriction, route: allow, config: { allow: [127.0.0.2, 10.0.0.0/8] } }
      - { name: ip-restriction, route: deny, config: { deny: [127.0.0.0/30], status: 401, message: "go <away> & stay" } }
      - { name: ip-restriction, route: both, config: { allow: [127.0.0.0/8], deny: [127.0.0.5] } }
      - { name: ip-restriction, route: v6, config: { allow: ["::1/128"] } }
      - { name: ip-restriction, route: mapped, config: { deny: ["::ffff:127.0.0.7/128", "::ffff:127.0.1.0/120"] } }
      - { name: ip-restriction, route: zero4, config: { deny: [0.0.0.0/0] } }
      - { name: ip-restriction, route: zero6, config: { deny: ["::/0"] } }
      - { name: ip-restriction, route: edge, config: { allow: [127.0.0.8/32, 127.0.0.9/31, "::1/127"] } }
      - { name: ip-restriction, route: big, config: { deny: [${big}, 127.0.0.10] } }
`,
    );
    port = gw.gw.proxyAddress.port;
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('allow list: inside passes, outside gets 403 and Kong\'s JSON message', async () => {
    expect((await at('127.0.0.2', '/allow')).status).toBe(200);
    const r = await at('127.0.0.1', '/allow');
    expect(r.status).toBe(403);
    expect(r.json()).toEqual({ message: 'Your IP address is not allowed' });
    expect(r.headers['content-type']).toMatch(/^application\/json/);
  });

  it("the refusal's format follows Accept, as Kong's kong.response.error", async () => {
    const url = `http://127.0.0.1:${port}/allow`;
    const html = await sendFrom('127.0.0.1', url, { accept: 'text/html,application/xhtml+xml;q=0.9' });
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(html.body).toContain('<p>Your IP address is not allowed.</p>');
    const plain = await sendFrom('127.0.0.1', url, { accept: 'text/plain' });
    expect(plain.body).toBe('Your IP address is not allowed\n');
    const xml = await sendFrom('127.0.0.1', url, { accept: 'application/xml' });
    expect(xml.body).toContain('<message>Your IP address is not allowed</message>');
    const any = await sendFrom('127.0.0.1', url, { accept: 'image/png, */*' });
    expect(any.json()).toEqual({ message: 'Your IP address is not allowed' });
    // hostile: 2000 ranges before the one it knows; only the first 16 are read
    const long = await sendFrom('127.0.0.1', url, { accept: `${'x/y, '.repeat(2000)}text/html` });
    expect(long.status).toBe(403);
    expect(long.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('deny list with its own status and message', async () => {
    const r = await at('127.0.0.3', '/deny');
    expect(r.status).toBe(401);
    expect(r.json()).toEqual({ message: 'go <away> & stay' });
    const html = await sendFrom('127.0.0.3', `http://127.0.0.3:${port}/deny`, { accept: 'text/html' });
    expect(html.body).toContain('<p>go &lt;away&gt; &amp; stay.</p>');
    expect((await at('127.0.0.4', '/deny')).status).toBe(200);
  });

  it('hostile: X-Forwarded-For counts only from a trusted proxy (Kong realip)', async () => {
    const url = (from: string) => `http://${from}:${port}/deny`;
    expect((await sendFrom('127.0.0.3', url('127.0.0.3'), { 'x-forwarded-for': '127.0.0.200' })).status).toBe(401);
    expect((await sendFrom('127.0.0.4', url('127.0.0.4'), { 'x-forwarded-for': '127.0.0.3' })).status).toBe(200);
    expect((await sendFrom('127.0.0.50', url('127.0.0.50'), { 'x-forwarded-for': '127.0.0.3' })).status).toBe(401);
    expect((await sendFrom('127.0.0.50', url('127.0.0.50'), { 'x-forwarded-for': '127.0.0.4' })).status).toBe(200);
  });

  it('deny wins over allow', async () => {
    expect((await at('127.0.0.5', '/both')).status).toBe(403);
    expect((await at('127.0.0.6', '/both')).status).toBe(200);
  });

  it('IPv6: ::1/128 lets ::1 in and keeps IPv4 out', async () => {
    expect((await at('::1', '/v6')).status).toBe(200);
    expect((await at('127.0.0.1', '/v6')).status).toBe(403);
  });

  it('IPv4-mapped IPv6 entries match IPv4 clients', async () => {
    expect((await at('127.0.0.7', '/mapped')).status).toBe(403);
    expect((await at('127.0.1.200', '/mapped')).status).toBe(403);
    expect((await at('127.0.2.1', '/mapped')).status).toBe(200);
  });

  it('edge prefixes: 0.0.0.0/0 is every IPv4 client and no IPv6 one; ::/0 is everyone', async () => {
    expect((await at('127.0.0.1', '/zero4')).status).toBe(403);
    expect((await at('::1', '/zero4')).status).toBe(200);
    expect((await at('127.0.0.1', '/zero6')).status).toBe(403);
    expect((await at('::1', '/zero6')).status).toBe(403);
  });

  it('edge prefixes: /32, /31 and /127 cover exactly their addresses', async () => {
    expect((await at('127.0.0.8', '/edge')).status).toBe(200);
    expect((await at('127.0.0.9', '/edge')).status).toBe(200); // 127.0.0.8/31 once masked
    expect((await at('127.0.0.10', '/edge')).status).toBe(403);
    expect((await at('::1', '/edge')).status).toBe(200);
  });

  it('hostile: a 5000-block deny list finds its last entry, and lets others through', async () => {
    expect((await at('127.0.0.10', '/big')).status).toBe(403);
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) expect((await at('127.0.0.11', '/big')).status).toBe(200);
    // a lookup per distinct prefix length (two here), not a scan of 5000 blocks
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('refuses bad entries and a config with neither list, naming the field', async () => {
    const yaml = (cfg: string) => `
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s }]
    plugins: [{ name: ip-restriction, config: ${cfg} }]
`;
    const bad = await configErrors(yaml('{ allow: [10.0.0.0/33, "::1/129", 256.0.0.1, "1::2::3", 10.0.0.1] }'));
    expect(bad.filter((d) => d.includes('does not have the expected form')).map((d) => d.split(':')[0])).toEqual([
      'tenants[0].plugins[0].config.allow[0]',
      'tenants[0].plugins[0].config.allow[1]',
      'tenants[0].plugins[0].config.allow[2]',
      'tenants[0].plugins[0].config.allow[3]',
    ]);
    const none = await configErrors(yaml('{ status: 403 }'));
    expect(none.join('\n')).toMatch(/missing required field "allow"/);
    expect((await configErrors(yaml('{ deny: [10.0.0.1], status: 99 }'))).join('\n')).toMatch(/config\.status: must be >= 200/);
  });
});
