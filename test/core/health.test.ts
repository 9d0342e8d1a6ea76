import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, send, startGateway, startUpstream, waitFor, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';

/** /healthz (the process is up) and /readyz (it serves a config) on the admin listener, in both modes. */
const yaml = (upstream: string, head = '') => `${head}
tenants:
  - name: t1
    services: [{ name: s, url: "${upstream}" }]
    routes: [{ name: r, service: s }]
`;

describe('health: one process (workers: 0)', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(yaml(up.url));
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('/healthz answers 200 JSON', async () => {
    const r = await send(`${gw.adminUrl}/healthz`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.json()).toEqual({ message: 'ok' });
  });

  it('/readyz answers 200 once the proxy serves its config', async () => {
    const r = await send(`${gw.adminUrl}/readyz`);
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ message: 'ready' });
    expect((await send(`${gw.url}/x`)).status).toBe(200);
  });

  it('an unknown admin path names the health endpoints', async () => {
    const r = await send(`${gw.adminUrl}/health`);
    expect(r.status).toBe(404);
    expect(r.json().error.message).toContain('/healthz');
  });
});

describe('health: supervisor', () => {
  let up: Upstream;
  let gp: GatewayProcess;
  beforeAll(async () => {
    // /hold/... answers after 3 s: a request in flight while the gateway drains (the
    // workers' grace is 5 s), answered on its own so a slow test cannot outlast the grace.
    up = await startUpstream((req, res) => setTimeout(() => echoHandler(req, res), req.url!.startsWith('/hold') ? 3000 : 0));
    gp = await spawnGateway(yaml(up.url, 'listen: { host: 127.0.0.1, port: ${PORT} }\nadmin: { host: 127.0.0.1, port: ${ADMIN_PORT} }\nworkers: 1'), {}, [], 60_000);
  }, 90_000);
  afterAll(async () => {
    await gp?.stop();
    await up?.close();
  });

  it('/healthz and /readyz answer 200 while a worker serves', async () => {
    const h = await send(`${gp.adminUrl}/healthz`);
    expect([h.status, h.json()]).toEqual([200, { message: 'ok' }]);
    const r = await send(`${gp.adminUrl}/readyz`);
    expect([r.status, r.json()]).toEqual([200, { message: 'ready' }]);
    expect(r.headers['content-type']).toBe('application/json');
  });

  it('/readyz answers 503 with the reason while the gateway drains, /healthz still 200', async () => {
    const held = send(`${gp.url}/hold/1`);
    await waitFor(async () => (await gp.status()).counts?.inflight === 1, 20_000, 'the request in flight');
    gp.child.kill('SIGTERM');
    const r = await waitFor(async () => {
      const x = await send(`${gp.adminUrl}/readyz`);
      return x.status === 503 ? x : null;
    }, 3_000, '503 from /readyz');
    expect(r.json()).toEqual({ message: 'stopping' });
    expect((await send(`${gp.adminUrl}/healthz`)).status).toBe(200);
    expect((await held).status).toBe(200); // the request in flight finished
  });
});
