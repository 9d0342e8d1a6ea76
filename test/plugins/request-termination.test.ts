import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import { configErrors } from './helpers.ts';

describe('plugin request-termination', () => {
  let up: Upstream;
  let gw: TestGateway;
  let hits = 0;
  beforeAll(async () => {
    up = await startUpstream((_req, res) => {
      hits++;
      res.end('upstream');
    });
    const names = ['defaults', 'msg', 'body', 'jsonbody', 'nomsg', 'trigger', 'echo'];
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: up, url: "${up.url}" }]
    routes:
${names.map((n) => `      - { name: ${n}, service: up, paths: [/${n}] }`).join('\n')}
    plugins:
      - { name: request-termination, route: defaults }
      - { name: request-termination, route: msg, config: { status_code: 403, message: "So long and thanks for all the fish!" } }
      - { name: request-termination, route: body, config: { status_code: 200, body: "<h1>closed</h1>", content_type: text/html } }
      - { name: request-termination, route: jsonbody, config: { status_code: 451, body: '{"why":"legal"}' } }
      - { name: request-termination, route: nomsg, config: { status_code: 410 } }
      - { name: request-termination, route: trigger, config: { status_code: 404, trigger: X-Stop } }
      - { name: request-termination, route: echo, config: { status_code: 200, echo: true, trigger: debug } }
`);
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('defaults as Kong: 503 {"message":"Service unavailable"}, the upstream not called', async () => {
    const before = hits;
    const r = await send(`${gw.url}/defaults`);
    expect(r.status).toBe(503);
    expect(r.json()).toEqual({ message: 'Service unavailable' });
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(hits).toBe(before);
  });

  it('message and status_code', async () => {
    const r = await send(`${gw.url}/msg`);
    expect(r.status).toBe(403);
    expect(r.json()).toEqual({ message: 'So long and thanks for all the fish!' });
  });

  it('raw body with its content_type, or JSON by default', async () => {
    const r = await send(`${gw.url}/body`);
    expect(r.status).toBe(200);
    expect(r.body).toBe('<h1>closed</h1>');
    expect(r.headers['content-type']).toBe('text/html');
    const j = await send(`${gw.url}/jsonbody`);
    expect(j.status).toBe(451);
    expect(j.body).toBe('{"why":"legal"}');
    expect(j.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('a status without a default message has no body', async () => {
    const r = await send(`${gw.url}/nomsg`);
    expect(r.status).toBe(410);
    expect(r.body).toBe('');
  });

  it('trigger: only requests with that header or query argument are answered', async () => {
    const before = hits;
    const pass = await send(`${gw.url}/trigger`);
    expect(pass.status).toBe(200);
    expect(pass.body).toBe('upstream');
    expect(hits).toBe(before + 1);
    const byHeader = await send(`${gw.url}/trigger`, { headers: { 'x-stop': '' } });
    expect(byHeader.status).toBe(404);
    expect(byHeader.json()).toEqual({ message: 'Not found' });
    expect((await send(`${gw.url}/trigger?X-Stop`)).status).toBe(404);
    expect(hits).toBe(before + 1);
  });

  it('echo: a JSON copy of the request, only with the trigger', async () => {
    expect((await send(`${gw.url}/echo`)).body).toBe('upstream');
    const r = await send(`${gw.url}/echo/a?debug=1&x=2&x=3`, { headers: { 'x-mine': 'yes' } });
    expect(r.status).toBe(200);
    const e = r.json();
    expect(e.message).toBeNull();
    expect(e.request).toMatchObject({ scheme: 'http', method: 'GET', path: '/echo/a', query: { debug: '1', x: ['2', '3'] } });
    expect(e.request.headers['x-mine']).toBe('yes');
    expect(e.request.host).toBe('127.0.0.1');
    expect(e.request.port).toBe(gw.gw.proxyAddress.port);
    expect(e.matched_route).toMatchObject({ name: 'echo' });
    expect(e.matched_service).toMatchObject({ name: 'up' });
  });

  it('hostile: echo of an 8 KB header and 500 query arguments comes back whole', async () => {
    const big = 'v'.repeat(8 * 1024);
    const q = Array.from({ length: 500 }, (_, i) => `k${i}=${i}`).join('&');
    const r = await send(`${gw.url}/echo?debug&${q}`, { headers: { 'x-big': big } });
    expect(r.status).toBe(200);
    const e = r.json();
    expect(e.request.headers['x-big']).toBe(big);
    expect(Object.keys(e.request.query)).toHaveLength(501);
  });

  it('refuses message with body, content_type without body, a 1xx status', async () => {
    const yaml = (cfg: string) => `
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s }]
    plugins: [{ name: request-termination, config: ${cfg} }]
`;
    expect(await configErrors(yaml('{ message: a, body: b }'))).toEqual(['tenants[0].plugins[0].config: must NOT be valid']);
    expect((await configErrors(yaml('{ content_type: text/plain }'))).join('\n')).toMatch(/config: must have property body when property content_type is present/);
    expect((await configErrors(yaml('{ status_code: 101 }'))).join('\n')).toMatch(/config\.status_code: must be >= 200/);
  });
});
