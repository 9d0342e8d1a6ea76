import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, echoHandler, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import { configErrors } from './helpers.ts';

describe('plugin request-transformer', () => {
  let up: Upstream;
  let gw: TestGateway;
  const query = (url: string) => new URLSearchParams(url.slice(url.indexOf('?') + 1));

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes:
      - { name: h, service: echo, paths: [/h] }
      - { name: q, service: echo, paths: [/q] }
      - { name: uri, service: echo, paths: [/uri] }
      - { name: order, service: echo, paths: [/order] }
      - { name: managed, service: echo, paths: [/managed] }
      - { name: tpl, service: echo, paths: [/tpl] }
      - { name: badtpl, service: echo, paths: [/badtpl] }
      - { name: method, service: echo, paths: [/method] }
    plugins:
      - name: request-transformer
        route: h
        config:
          remove: { headers: [X-Remove] }
          rename: { headers: ["X-Old:X-New"] }
          replace: { headers: ["X-Rep:new", "Host:upstream.test"] }
          add: { headers: ["X-Add:added: with colon", "X-Exists:no"] }
          append: { headers: ["X-App:two", "X-New:second"] }
      - name: request-transformer
        route: q
        config:
          remove: { querystring: [drop] }
          rename: { querystring: ["old:new"] }
          replace: { querystring: ["rep:R R"] }
          add: { querystring: ["add:A", "keep:no"] }
          append: { querystring: ["app:2"] }
      - { name: request-transformer, route: uri, config: { replace: { uri: /replaced/path } } }
      - name: request-transformer
        route: order
        config:
          remove: { headers: [x-a] }
          rename: { headers: ["x-b:x-a"] }
          add: { headers: ["x-a:added", "x-c:c"] }
          replace: { headers: ["x-c:replaced"] }
      - { name: request-transformer, route: managed, config: { add: { headers: ["Content-Length:5"] } } }
      - name: request-transformer
        route: tpl
        config:
          remove: { headers: [x-api-key] }
          add: { headers: ["x-user:$(query_params.user or headers.x_user or 'anon')", "x-key:key=$(headers.x_api_key);", 'x-quoted:$(headers["X-Api-Key"])', "x-none:[$(uri_captures.id)]"] }
          append: { querystring: ["seen:$(headers.x_api_key)"] }
          replace: { uri: "/users/$(query_params.id)" }
      - { name: request-transformer, route: method, config: { http_method: PUT, remove: { body: [] }, add: { json_types: [number] } } }
      - { name: request-transformer, route: badtpl, config: { add: { headers: ["x:$(os.getenv('HOME'))"] } } }
`);
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('headers: remove, rename, replace (only if present; Host always), add (only if absent), append', async () => {
    const r = await send(`${gw.url}/h`, { headers: { 'x-remove': '1', 'x-old': 'oldval', 'x-rep': 'old', 'x-exists': 'yes', 'x-app': 'one' } });
    const h = r.json().headers;
    expect(h['x-remove']).toBeUndefined();
    expect(h['x-old']).toBeUndefined();
    expect(h['x-new']).toBe('oldval, second');
    expect(h['x-rep']).toBe('new');
    expect(h.host).toBe('upstream.test');
    expect(h['x-add']).toBe('added: with colon');
    expect(h['x-exists']).toBe('yes');
    expect(h['x-app']).toBe('one, two');
    const bare = (await send(`${gw.url}/h`)).json().headers;
    expect(bare['x-rep']).toBeUndefined();
    expect(bare['x-new']).toBe('second');
    expect(bare['x-exists']).toBe('no');
  });

  it('querystring: the same five steps', async () => {
    const r = await send(`${gw.url}/q/p?drop=1&old=o&rep=r&keep=k&app=1&x=y%20z`);
    const url: string = r.json().url;
    expect(url.startsWith('/q/p?')).toBe(true);
    const q = query(url);
    expect(q.get('drop')).toBeNull();
    expect(q.get('old')).toBeNull();
    expect(q.get('new')).toBe('o');
    expect(q.get('rep')).toBe('R R');
    expect(q.get('keep')).toBe('k');
    expect(q.getAll('app')).toEqual(['1', '2']);
    expect(q.get('add')).toBe('A');
    expect(q.get('x')).toBe('y z');
    const bare = query((await send(`${gw.url}/q`)).json().url);
    expect([...bare.keys()].sort()).toEqual(['add', 'app', 'keep']);
  });

  it('replace.uri sets the upstream path, the query kept', async () => {
    expect((await send(`${gw.url}/uri/a/b?z=1`)).json().url).toBe('/replaced/path?z=1');
  });

  it("each step sees the one before (Kong's order): removed then renamed onto, added where absent", async () => {
    const h = (await send(`${gw.url}/order`, { headers: { 'x-a': 'client', 'x-b': 'bee' } })).json().headers;
    expect(h['x-a']).toBe('bee'); // removed, then x-b renamed onto it, so add finds it present
    expect(h['x-b']).toBeUndefined();
    expect(h['x-c']).toBe('c'); // replace (step 3) found no x-c: add (step 4) came after it
  });

  it("templates: Kong's $(headers.x) / $(query_params.x) / 'literal' with or, read from the client's request", async () => {
    const r = await send(`${gw.url}/tpl?id=42&user=ada`, { headers: { 'x-api-key': 'k1' } });
    const up = r.json();
    expect(up.url).toBe('/users/42?id=42&user=ada&seen=k1');
    expect(up.headers['x-api-key']).toBeUndefined(); // removed, yet templates still read it
    expect(up.headers['x-user']).toBe('ada');
    expect(up.headers['x-key']).toBe('key=k1;');
    expect(up.headers['x-quoted']).toBe('k1');
    expect(up.headers['x-none']).toBe('[]');
    const anon = (await send(`${gw.url}/tpl?id=1`)).json();
    expect(anon.headers['x-user']).toBe('anon');
    expect((await send(`${gw.url}/tpl?id=1`, { headers: { 'x-user': 'bob' } })).json().headers['x-user']).toBe('bob');
  });

  it('a template that is not one of those forms fails its requests (500), it is never evaluated', async () => {
    expect((await send(`${gw.url}/badtpl`)).status).toBe(500);
  });

  it("http_method changes the upstream method; Kong's empty body parts are accepted", async () => {
    expect((await send(`${gw.url}/method`)).json().method).toBe('PUT');
  });

  it('a gateway-managed header is refused by the host (500), the request never goes up wrong', async () => {
    expect((await send(`${gw.url}/managed`)).status).toBe(500);
  });

  it("hostile: 600 query arguments (under the host's 8 KB query cap), broken escapes and UTF-8 survive the rewrite", async () => {
    const many = Array.from({ length: 600 }, (_, i) => `k${i}=${i}`).join('&');
    const r = await send(`${gw.url}/q?${many}&bad=%zz&u=%C3%A9`);
    expect(r.status).toBe(200);
    const q = query(r.json().url);
    expect(q.get('k599')).toBe('599');
    expect(q.get('u')).toBe('é');
    expect(q.get('bad')).toBe('%zz'); // kept as it was read (undecodable), sent encoded
    expect([...q.keys()].length).toBe(600 + 2 + 3);
  });

  it('refuses entries that are not name:value, naming the field', async () => {
    const errors = await configErrors(`
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s }]
    plugins: [{ name: request-transformer, config: { add: { headers: [no-colon] }, rename: { querystring: ["a"] }, body: {} } }]
`);
    expect(errors.map((e) => e.split(':')[0])).toEqual(expect.arrayContaining(['tenants[0].plugins[0].config.add.headers[0]', 'tenants[0].plugins[0].config.rename.querystring[0]']));
    expect(errors).toContain('tenants[0].plugins[0].config: unknown field "body"');
    const body = await configErrors(`
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s }]
    plugins: [{ name: request-transformer, config: { rename: { body: ["a"] } } }]
`);
    expect(body.map((e) => e.split(':')[0])).toEqual(['tenants[0].plugins[0].config.rename.body[0]']);
  });
});
