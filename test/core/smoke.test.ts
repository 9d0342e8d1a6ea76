import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

describe('end to end', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes: [{ name: echo, service: echo, paths: [/echo] }]
    plugins:
      - name: correlation-id
        config: { echo_downstream: true }
`);
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('proxies through a sandboxed plugin', async () => {
    const r = await send(`${gw.url}/echo`);
    expect(r.status).toBe(200);
    const id = r.headers['kong-request-id'];
    expect(typeof id).toBe('string');
    expect(r.json().headers['kong-request-id']).toBe(id);
  });
});
