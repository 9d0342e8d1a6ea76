import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, waitFor, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** pdk.log.serialize (Kong's basic serializer shape) and setSerializeValue. */
const PLUGIN = pluginSource('logger', `
export function access(pdk: any) {
  const q = pdk.request.getQueryArg('do');
  const caught = (f: () => void) => { try { f(); } catch (e: any) { pdk.response.exit(200, { err: e.message }); } };
  if (q === 'values') {
    pdk.log.setSerializeValue('extra.plan', 'gold');
    pdk.log.setSerializeValue('request.headers.x-drop', undefined);
    pdk.log.setSerializeValue('latencies.request', -5, { mode: 'add' });
    pdk.log.setSerializeValue('nothing.here', 1, { mode: 'replace' });
  }
  if (q === 'cyclic') caught(() => { const o: any = {}; o.o = o; pdk.log.setSerializeValue('x', o); });
  if (q === 'bigint') caught(() => pdk.log.setSerializeValue('x', 10n));
  if (q === 'proto') caught(() => pdk.log.setSerializeValue('__proto__.polluted', 1));
  if (q === 'mode') caught(() => pdk.log.setSerializeValue('x', 1, { mode: 'merge' }));
  if (q === 'huge') pdk.log.setSerializeValue('x', 'y'.repeat(17000));
  if (q === 'many') for (let i = 0; i < 300; i++) pdk.log.setSerializeValue('k' + i, i);
  if (q === 'early') caught(() => pdk.log.serialize());
}
export function headerFilter(pdk: any) {
  if (pdk.request.getQueryArg('do') === 'values') pdk.log.setSerializeValue('extra.late', true);
}
export function log(pdk: any) {
  pdk.log.info('serialized ' + JSON.stringify(pdk.log.serialize()));
}`);

describe('pdk.log.serialize', () => {
  let up: Upstream;
  let gw: TestGateway;
  const { logger, lines } = captureLogger('info');
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}/base" }, { name: down, url: "http://127.0.0.1:1" }]
    routes: [{ name: r, service: s, paths: [/api], stripPath: true }, { name: d, service: down, paths: [/down] }]
    plugins: [{ name: logger, path: ./logger.ts }]
`, { 'logger.ts': PLUGIN }, { logger });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  async function serialized(marker: string): Promise<any> {
    const line = await waitFor(() => lines.find((l) => String(l.msg).startsWith('serialized ') && String(l.msg).includes(marker)), 3000, marker);
    return JSON.parse(String(line.msg).slice('serialized '.length));
  }

  it("has Kong's basic serializer fields", async () => {
    const before = Date.now();
    const r = await send(`${gw.url}/api/items?id=7&m=one`, { headers: { host: 'shop.example', authorization: 'Bearer secret', 'x-drop': 'me' } });
    expect(r.status).toBe(200);
    const s = await serialized('id=7');
    const port = new URL(gw.url).port;
    expect(s.request.uri).toBe('/api/items?id=7&m=one');
    expect(s.request.url).toBe(`http://shop.example:${port}/api/items?id=7&m=one`);
    expect(s.request.querystring).toEqual({ id: '7', m: 'one' });
    expect(s.request.method).toBe('GET');
    expect(s.request.headers.authorization).toBe('REDACTED');
    expect(s.request.headers['x-drop']).toBe('me');
    expect(s.request.size).toBeGreaterThan(50);
    expect(s.upstream_uri).toBe('/base/items?id=7&m=one');
    expect(s.response.status).toBe(200);
    expect(s.response.headers['content-type']).toBe('application/json');
    expect(s.response.size).toBeGreaterThan(Number(r.headers['content-length']));
    expect(s.latencies.request).toBeGreaterThanOrEqual(s.latencies.proxy);
    expect(s.latencies.proxy).toBeGreaterThanOrEqual(0);
    expect(s.latencies.kong).toBeGreaterThanOrEqual(0);
    expect(s.tries).toEqual([{ ip: '127.0.0.1', port: up.port }]);
    expect(s.client_ip).toBe('127.0.0.1');
    expect(s.started_at).toBeGreaterThanOrEqual(before - 5);
    expect(s.route).toMatchObject({ id: 't1/r', name: 'r', paths: ['/api'], strip_path: true, service: { id: 't1/s' } });
    expect(s.service).toMatchObject({ id: 't1/s', name: 's', host: '127.0.0.1', port: up.port, path: '/base' });
    expect(s.consumer).toBeUndefined();
  });

  it('shows the headers of an error the gateway answered with, and no upstream latency', async () => {
    const r = await send(`${gw.url}/down?m=err`);
    expect(r.status).toBe(502);
    const s = await serialized('m=err');
    expect(s.response.status).toBe(502);
    expect(s.response.headers['x-isogate-error-id']).toBe(r.headers['x-isogate-error-id']);
    expect(s.latencies.proxy).toBe(-1);
    expect(s.tries).toEqual([{ ip: '127.0.0.1', port: 1 }]);
  });

  it('applies setSerializeValue from earlier phases: set, add, replace, delete, nested keys', async () => {
    await send(`${gw.url}/api/v?do=values`, { headers: { 'x-drop': 'me' } });
    const s = await serialized('do=values');
    expect(s.extra).toEqual({ plan: 'gold', late: true });
    expect(s.request.headers['x-drop']).toBeUndefined();
    expect(s.latencies.request).not.toBe(-5); // mode add: it exists already
    expect(s.nothing).toBeUndefined(); // mode replace: it did not exist
  });

  it('hostile: refuses cyclic, BigInt, prototype keys and unknown modes with a clear error', async () => {
    expect((await send(`${gw.url}/api?do=cyclic`)).json().err).toMatch(/circular/i);
    expect((await send(`${gw.url}/api?do=bigint`)).json().err).toMatch(/BigInt/);
    expect((await send(`${gw.url}/api?do=proto`)).json().err).toBe('log.setSerializeValue key __proto__.polluted has an empty or forbidden segment');
    expect((await send(`${gw.url}/api?do=mode`)).json().err).toBe("log.setSerializeValue mode must be 'set', 'add' or 'replace'");
  });

  it('hostile: a huge value or too many values fail the request as too_large, nothing else harmed', async () => {
    expect((await send(`${gw.url}/api?do=huge`)).status).toBe(500);
    expect((await send(`${gw.url}/api?do=many`)).status).toBe(500);
    expect(lines.filter((l) => l.reason === 'too_large' && String(l.msg).includes('setSerializeValue')).length).toBe(2);
    expect((await send(`${gw.url}/api/after`)).status).toBe(200);
  });

  it('phase check: serialize outside the log phase throws an error naming both', async () => {
    expect((await send(`${gw.url}/api?do=early`)).json().err).toBe('log.serialize is not allowed in phase access (allowed in: log)');
  });
});
