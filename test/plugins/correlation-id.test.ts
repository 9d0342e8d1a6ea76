import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, waitFor, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const UUID4 = '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}';

describe('plugin correlation-id', () => {
  let up: Upstream;
  let gw: TestGateway;
  const { logger, lines } = captureLogger('info');
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    const logs = pluginSource('logs-id', `export function log(pdk: any) { pdk.log.info('serialized id ' + pdk.log.serialize().correlation_id); }`);
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes:
      - { name: defaults, service: echo, paths: [/defaults] }
      - { name: uuid, service: echo, paths: [/uuid] }
      - { name: tracker, service: echo, paths: [/tracker] }
      - { name: exit, service: echo, paths: [/exit] }
    plugins:
      - { name: correlation-id, route: defaults }
      - { name: logs-id, path: ./logs-id.ts, route: defaults }
      - { name: correlation-id, route: uuid, config: { header_name: X-Req, generator: uuid, echo_downstream: true } }
      - { name: correlation-id, route: tracker, config: { generator: tracker, echo_downstream: true } }
      - { name: correlation-id, route: exit, config: { echo_downstream: true } }
      - { name: request-termination, route: exit, config: { status_code: 403 } }
`, { 'logs-id.ts': logs }, { logger });
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('defaults as Kong: Kong-Request-ID, uuid#counter, not echoed', async () => {
    const a = await send(`${gw.url}/defaults`);
    const b = await send(`${gw.url}/defaults`);
    const ida: string = a.json().headers['kong-request-id'];
    const idb: string = b.json().headers['kong-request-id'];
    expect(ida).toMatch(new RegExp(`^${UUID4}#\\d+$`));
    const [seedA, nA] = ida.split('#');
    const [seedB, nB] = idb.split('#');
    expect(seedB).toBe(seedA); // one uuid per isolate
    expect(Number(nB)).toBe(Number(nA) + 1);
    expect(a.headers['kong-request-id']).toBeUndefined();
    // Kong's set_serialize_value: a log plugin finds the id in log.serialize()
    await waitFor(() => lines.some((l) => l.msg === `serialized id ${idb}`), 5000, 'the log line');
  });

  it('uuid generator, own header name, echoed to the client', async () => {
    const r = await send(`${gw.url}/uuid`);
    const id = r.json().headers['x-req'];
    expect(id).toMatch(new RegExp(`^${UUID4}$`));
    expect(r.headers['x-req']).toBe(id);
    expect(r.json().headers['kong-request-id']).toBeUndefined();
    const again = await send(`${gw.url}/uuid`);
    expect(again.json().headers['x-req']).not.toBe(id);
  });

  it('keeps the id the client sent, upstream and back', async () => {
    const r = await send(`${gw.url}/uuid`, { headers: { 'x-req': 'abc-123' } });
    expect(r.json().headers['x-req']).toBe('abc-123');
    expect(r.headers['x-req']).toBe('abc-123');
  });

  it('tracker: isolate id, counter and time in seconds', async () => {
    const r = await send(`${gw.url}/tracker`);
    const id = r.headers['kong-request-id'];
    expect(id).toMatch(/^[0-9a-f]{8}-\d+-\d+\.\d{3}$/);
    expect(r.json().headers['kong-request-id']).toBe(id);
    const seconds = Number(String(id).split('-')[2]);
    expect(Math.abs(seconds - Date.now() / 1000)).toBeLessThan(60);
  });

  it("echoes the id on a later plugin's exit too (Kong's header_filter runs on exits)", async () => {
    const r = await send(`${gw.url}/exit`);
    expect(r.status).toBe(403);
    expect(r.headers['kong-request-id']).toMatch(new RegExp(`^${UUID4}#\\d+$`));
  });

  it('hostile: a 14 KB client id is kept and echoed whole, not cut or refused', async () => {
    const huge = 'x'.repeat(14 * 1024);
    const r = await send(`${gw.url}/uuid`, { headers: { 'x-req': huge } });
    expect(r.status).toBe(200);
    expect(r.headers['x-req']).toBe(huge);
    expect(r.json().headers['x-req']).toBe(huge);
  });
});
