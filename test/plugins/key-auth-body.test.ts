import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileConfig } from '../../core/config/compile.ts';
import { loadConfigFile } from '../../core/config/load.ts';
import { send, startGateway, startUpstream, writeConfig, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** key-auth key_in_body, and the per-instance body buffering (plugin.json readsWhen). */
describe('plugin key-auth: key_in_body', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const out = JSON.stringify({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
      });
    });
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes:
      - { name: body, service: echo, paths: [/body] }
      - { name: hide, service: echo, paths: [/hide] }
      - { name: head, service: echo, paths: [/head] }
    consumers:
      - { id: c1, username: alice, credentials: { key-auth: [{ key: k-alice }] } }
    plugins:
      - { name: key-auth, route: body, config: { key_in_body: true } }
      - { name: key-auth, route: hide, config: { key_in_body: true, hide_credentials: true } }
      - { name: key-auth, route: head }
`);
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  const post = (path: string, body: string, type: string, headers: Record<string, string> = {}) =>
    send(`${gw.url}${path}`, { method: 'POST', body, headers: { 'content-type': type, ...headers } });

  it('the key from a form or JSON body authenticates; a wrong one is 401', async () => {
    const form = await post('/body', 'apikey=k-alice&x=1', 'application/x-www-form-urlencoded');
    expect(form.status).toBe(200);
    expect(form.json().headers['x-consumer-username']).toBe('alice');
    expect(form.json().body).toBe('apikey=k-alice&x=1');
    const json = await post('/body', '{"apikey":"k-alice"}', 'application/json');
    expect(json.status).toBe(200);
    const wrong = await post('/body', '{"apikey":"nope"}', 'application/json');
    expect(wrong.status).toBe(401);
    expect(wrong.json()).toEqual({ message: 'Unauthorized' });
    const none = await post('/body', '{"other":1}', 'application/json');
    expect(none.status).toBe(401);
    expect(none.json()).toEqual({ message: 'No API key found in request' });
    expect((await post('/body', 'not json', 'application/json')).status).toBe(401);
    expect((await post('/body', 'apikey=k-alice&apikey=k-alice', 'application/x-www-form-urlencoded')).json()).toEqual({ message: 'Duplicate API key found' });
  });

  it('the header still comes first', async () => {
    const r = await post('/body', 'apikey=nope', 'application/x-www-form-urlencoded', { apikey: 'k-alice' });
    expect(r.status).toBe(200);
  });

  it('hide_credentials removes the key from the body sent upstream', async () => {
    const r = await post('/hide', 'apikey=k-alice&keep=1', 'application/x-www-form-urlencoded');
    expect(r.status).toBe(200);
    expect(r.json().body).toBe('keep=1');
    const j = await post('/hide', '{"apikey":"k-alice","keep":1}', 'application/json');
    expect(JSON.parse(j.json().body)).toEqual({ keep: 1 });
  });

  it('without key_in_body the body is not read: a body key does not count, and only key_in_body routes buffer', async () => {
    expect((await post('/head', 'apikey=k-alice', 'application/x-www-form-urlencoded')).status).toBe(401);
    const file = writeConfig(`
tenants:
  - name: t1
    services: [{ name: echo, url: "http://127.0.0.1:9" }]
    routes: [{ name: body, service: echo, paths: [/body] }, { name: head, service: echo, paths: [/head] }]
    plugins:
      - { name: key-auth, route: body, config: { key_in_body: true } }
      - { name: key-auth, route: head }
`);
    const compiled = await compileConfig(await loadConfigFile(file), file);
    const reads = Object.fromEntries(compiled.routes.map((r) => [r.name, r.readsBody]));
    expect(reads).toEqual({ body: true, head: false });
  });
});
