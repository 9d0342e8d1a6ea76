import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import { configErrors } from './helpers.ts';

const BODY = { a: 1, b: 'x', old: 'o', rep: 'r', arr: [1], s: 'str' };

describe('plugin response-transformer', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      const path = req.url!.replace(/^\/[a-z]+/, '');
      let type = 'application/json; charset=utf-8';
      let body = JSON.stringify(BODY);
      if (path === '/text') type = 'text/plain';
      if (path === '/proto') body = '{"__proto__":{"polluted":true},"a":1}';
      if (path === '/broken') body = '{not json';
      res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'x-up-remove': 'r', 'x-old': 'o', 'x-rep': 'old', 'x-keep': 'k' });
      res.end(body);
    });
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: up, url: "${up.url}" }]
    routes:
      - { name: hdr, service: up, paths: [/hdr] }
      - { name: json, service: up, paths: [/json] }
      - { name: proto, service: up, paths: [/proto] }
    plugins:
      - name: response-transformer
        route: hdr
        config:
          remove: { headers: [X-Up-Remove, X-Keep] }
          rename: { headers: ["X-Old:X-New", "X-Absent:X-Never"] }
          replace: { headers: ["X-Rep:new", "X-Missing:m"] }
          add: { headers: ["X-Add:a: b", "X-Keep:again"] }
          append: { headers: ["X-Rep:also", "X-App:1"] }
      - name: response-transformer
        route: json
        config:
          remove: { json: [a] }
          rename: { json: ["old:new"] }
          replace: { json: ["rep:R", "missing:M"] }
          add: { json: ["n:5", "flag:true", "b:no"], json_types: [number, boolean] }
          append: { json: ["arr:2", "s:more", "fresh:f"] }
      - name: response-transformer
        route: proto
        config:
          replace: { json: ["__proto__:safe"] }
          add: { json: ["constructor:c", "toString:t"] }
`);
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it("headers in Kong's order, each step deciding on the upstream's headers", async () => {
    const r = await send(`${gw.url}/hdr`);
    expect(r.status).toBe(200);
    expect(r.headers['x-up-remove']).toBeUndefined();
    expect(r.headers['x-old']).toBeUndefined();
    expect(r.headers['x-new']).toBe('o');
    expect(r.headers['x-never']).toBeUndefined();
    expect(r.headers['x-rep']).toEqual(['new', 'also']);
    expect(r.headers['x-missing']).toBeUndefined();
    expect(r.headers['x-add']).toBe('a: b');
    expect(r.headers['x-keep']).toBeUndefined(); // removed; add saw the upstream had it (Kong)
    expect(r.headers['x-app']).toBe('1');
    expect(JSON.parse(r.body)).toEqual(BODY); // no json edits: the body as it came
  });

  it('JSON body: remove, rename, replace, add (typed), append; Content-Length follows', async () => {
    const r = await send(`${gw.url}/json`);
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ b: 'x', new: 'o', rep: 'R', arr: [1, '2'], s: ['str', 'more'], fresh: ['f'], n: 5, flag: true });
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
  });

  it('a body that is not JSON by its Content-Type, or does not parse, is sent as it came', async () => {
    expect(JSON.parse((await send(`${gw.url}/json/text`)).body)).toEqual(BODY);
    expect((await send(`${gw.url}/json/broken`)).body).toBe('{not json');
  });

  it('hostile: "__proto__", "constructor" and "toString" are plain fields, not prototype edits', async () => {
    const r = await send(`${gw.url}/proto/proto`);
    expect(r.status).toBe(200);
    expect(r.body).toContain('"__proto__":"safe"');
    const parsed = JSON.parse(r.body);
    expect(Object.hasOwn(parsed, '__proto__')).toBe(true);
    expect(parsed.constructor).toBe('c');
    expect(parsed.toString).toBe('t');
    expect(parsed.a).toBe(1);
  });

  it('refuses a json number that is not one, and bad entries, at config load or first response', async () => {
    const errors = await configErrors(`
tenants:
  - name: t1
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s }]
    plugins: [{ name: response-transformer, config: { add: { headers: ["no colon"], json_types: [integer] } } }]
`);
    expect(errors.map((e) => e.split(':')[0])).toEqual(expect.arrayContaining(['tenants[0].plugins[0].config.add.headers[0]', 'tenants[0].plugins[0].config.add.json_types[0]']));
  });
});
