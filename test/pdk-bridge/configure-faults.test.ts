// A configure that fails disables its own plugin for the tenant's config: its instances
// fail as a plugin fault (fail-open ones are skipped), with the reason in the log; the
// tenant's other plugins, configured or not, serve.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const THROWS = pluginSource('throws', `
export function configure(pdk: any, configs: any[]) {
  pdk.log.warn('checking ' + configs.length + ' configs');
  throw new Error('no key configured');
}
export function access(pdk: any) { pdk.response.setHeader('x-throws', 'ran'); }
`, 200);

const ASYNC = pluginSource('later', `
export async function configure() {}
export function access(pdk: any) { pdk.response.setHeader('x-later', 'ran'); }
`, 150);

const GOOD = pluginSource('good', `
let ready = 'no';
export function configure(pdk: any, configs: any[]) { ready = 'yes:' + configs.length; }
export function access(pdk: any) { pdk.response.setHeader('x-good', ready); }
`, 100);

describe('a failing configure', () => {
  let up: Upstream;
  let gw: TestGateway;
  const { logger, lines } = captureLogger('info');
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
sandbox: { breaker: { faults: 100000 } }
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:${up.port}" }]
    routes:
      - { name: throws, service: s, paths: [/throws] }
      - { name: open, service: s, paths: [/open] }
      - { name: later, service: s, paths: [/later] }
      - { name: good, service: s, paths: [/good] }
    plugins:
      - { name: throws, path: ./throws.ts, route: throws }
      - { name: throws, path: ./throws.ts, route: open, failOpen: true }
      - { name: later, path: ./later.ts, route: later }
      - { name: good, path: ./good.ts }
`, { 'throws.ts': THROWS, 'later.ts': ASYNC, 'good.ts': GOOD }, { logger });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it("the tenant's other plugin is configured and serves", async () => {
    const r = await send(`${gw.url}/good`);
    expect(r.status).toBe(200);
    expect(r.headers['x-good']).toBe('yes:1');
  });

  it('fails its fail-closed instances with the clear error, every time', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await send(`${gw.url}/throws`);
      expect(r.status).toBe(500);
      expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
      expect(r.headers['x-throws']).toBeUndefined();
      expect(r.headers['x-good']).toBeUndefined(); // the chain stopped at the failed plugin (priority 200 runs first)
    }
    const faults = lines.filter((l) => l.msg === 'plugin fault: plugin configure failed: Error: no key configured');
    expect(faults).toHaveLength(2);
    expect(faults[0]).toMatchObject({ tenant: 't1', plugin: 'throws', reason: 'threw' });
  });

  it('skips its fail-open instances: the rest of the chain runs', async () => {
    const r = await send(`${gw.url}/open`);
    expect(r.status).toBe(200);
    expect(r.headers['x-throws']).toBeUndefined();
    expect(r.headers['x-good']).toBe('yes:1');
  });

  it('says so once in the log, with what it logged before it threw', () => {
    const disabled = lines.filter((l) => String(l.msg).startsWith('plugin disabled for this config'));
    expect(disabled.map((l) => [l.plugin, l.msg])).toEqual([
      ['throws', 'plugin disabled for this config: plugin configure failed: Error: no key configured'],
      ['later', 'plugin disabled for this config: plugin configure failed: configure returned a promise: it must be synchronous (no async PDK call is available there)'],
    ]);
    const said = lines.filter((l) => l.phase === 'configure' && l.msg === 'checking 2 configs');
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ level: 40, plugin: 't1/throws@route:throws' });
  });

  it('a configure that returns a promise disables its plugin too', async () => {
    const r = await send(`${gw.url}/later`);
    expect(r.status).toBe(500);
    expect(r.headers['x-later']).toBeUndefined();
  });
});

const AUTH = pluginSource('auth', `
export function access(pdk: any) {
  const id = pdk.request.getHeader('x-consumer');
  if (id !== undefined) pdk.client.authenticate({ id }, null);
}`, 1000);

describe("a failing configure, reached through a consumer's chain", () => {
  let up: Upstream;
  let gw: TestGateway;
  const { logger, lines } = captureLogger('info');
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
sandbox: { breaker: { faults: 100000 } }
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:${up.port}" }]
    routes: [{ name: r, service: s, paths: [/r] }]
    consumers: [{ id: c-alice, username: alice }]
    plugins:
      - { name: auth, path: ./auth.ts }
      - { name: throws, path: ./throws.ts, consumer: c-alice }
`, { 'auth.ts': AUTH, 'throws.ts': THROWS }, { logger });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('runs nothing of the disabled plugin: the switched chain fails with the reason', async () => {
    expect((await send(`${gw.url}/r`)).status).toBe(200); // the base chain has no instance of it
    const r = await send(`${gw.url}/r`, { headers: { 'x-consumer': 'c-alice' } });
    expect(r.status).toBe(500);
    expect(r.headers['x-throws']).toBeUndefined();
    const fault = lines.find((l) => String(l.msg).startsWith('plugin fault:'));
    expect(fault).toMatchObject({ plugin: 'throws', reason: 'threw' });
    expect(fault?.msg).toBe('plugin fault: Error: plugin disabled: its configure failed: Error: no key configured');
  });
});
