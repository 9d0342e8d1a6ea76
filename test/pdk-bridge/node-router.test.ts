import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_INFO } from '../../pdk-bridge/host/node.ts';
import { VERSION } from '../../core/version.ts';
import { NO_BREAKER, captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, waitFor, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** pdk.node and pdk.router. */
const PLUGIN = pluginSource('where', `
export function access(pdk: any) {
  const route = pdk.router.getRoute();
  try { route.name = 'changed'; } catch { /* strict code throws, sloppy code is ignored */ }
  pdk.response.exit(200, {
    id: pdk.node.getId(),
    host: pdk.node.getHostname(),
    version: pdk.node.getVersion(),
    route,
    service: pdk.router.getService(),
    frozen: Object.isFrozen(route) && Object.isFrozen(route.paths) && pdk.router.getRoute().name === 'invoices',
  });
}
export function log(pdk: any) {
  pdk.log.info('in log ' + pdk.router.getRoute().name + ' ' + pdk.router.getService().name + ' ' + pdk.node.getId());
}`);

describe('pdk.node and pdk.router', () => {
  let up: Upstream;
  let gw: TestGateway;
  const { logger, lines } = captureLogger('info');
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services:
      - { name: billing, url: "http://admin:hunter2@127.0.0.1:${up.port}/v1", timeoutMs: 7000, connectTimeoutMs: 700, retries: 2 }
    routes:
      - { name: invoices, service: billing, hosts: [api.example], paths: [/invoices, /bills], methods: [GET], stripPath: true }
    plugins: [{ name: where, path: ./where.ts }]
`, { 'where.ts': PLUGIN }, { logger });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('tells the gateway id, hostname and version', async () => {
    const got = (await send(`${gw.url}/bills`, { headers: { host: 'api.example' } })).json();
    expect(got.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(got.id).toBe(NODE_INFO.id);
    expect(got.host).toBe(hostname());
    expect(got.version).toBe(VERSION);
  });

  it("tells the matched route and its service in Kong's field names, frozen, without the url's credentials", async () => {
    const r = await send(`${gw.url}/invoices/1`, { headers: { host: 'api.example' } });
    const got = r.json();
    expect(got.route).toEqual({
      id: 't1/invoices', name: 'invoices', protocols: ['http'], methods: ['GET'], hosts: ['api.example'],
      paths: ['/invoices', '/bills'], strip_path: true, preserve_host: true, service: { id: 't1/billing' },
    });
    expect(got.service).toEqual({
      id: 't1/billing', name: 'billing', protocol: 'http', host: '127.0.0.1', port: up.port, path: '/v1',
      retries: 2, connect_timeout: 700, write_timeout: 7000, read_timeout: 7000,
    });
    expect(got.frozen).toBe(true);
    expect(r.body).not.toMatch(/hunter2|admin:/);
  });

  it('answers in the log phase too', async () => {
    await send(`${gw.url}/bills`, { headers: { host: 'api.example' } });
    await waitFor(() => lines.some((l) => l.msg === `in log invoices billing ${NODE_INFO.id}`), 3000, 'the log line');
  });
});
