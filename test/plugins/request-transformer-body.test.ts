import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** request-transformer's body part: the upstream answers with the body it got. */
describe('plugin request-transformer: body', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const out = JSON.stringify({ type: req.headers['content-type'] ?? null, length: req.headers['content-length'] ?? null, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(out);
      });
    });
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: echo, url: "${up.url}" }]
    routes:
      - { name: b, service: echo, paths: [/b] }
      - { name: hdr, service: echo, paths: [/hdr] }
    plugins:
      - name: request-transformer
        route: b
        config:
          remove: { body: [secret] }
          rename: { body: ["old:new"] }
          replace: { body: ["rep:R", "missing:M", "num:42"], json_types: [string, string, number] }
          add: { body: ["flag:true", "from:$(headers.x_from)", "rep:never"], json_types: [boolean, string, string] }
          append: { body: ["list:3", "text:more", "fresh:f"], json_types: [number] }
      - { name: request-transformer, route: hdr, config: { add: { headers: ["X-A:1"] } } }
`);
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  const post = async (path: string, body: string, type?: string, headers: Record<string, string> = {}) => {
    const r = await send(`${gw.url}${path}`, { method: 'POST', body, headers: { ...(type === undefined ? {} : { 'content-type': type }), ...headers } });
    expect(r.status).toBe(200);
    return r.json() as { type: string | null; length: string | null; body: string };
  };

  it("JSON: Kong's order, json_types by position, templates, with the new Content-Length", async () => {
    const sent = { secret: 's', old: 'o', rep: 'r', num: 1, list: [1, 2], text: 't', keep: { a: 1 } };
    const r = await post('/b', JSON.stringify(sent), 'application/json', { 'x-from': 'client' });
    const got = JSON.parse(r.body);
    expect(got).toEqual({ new: 'o', rep: 'R', num: 42, list: [1, 2, 3], text: ['t', 'more'], keep: { a: 1 }, flag: true, from: 'client', fresh: ['f'] });
    expect(r.length).toBe(String(Buffer.byteLength(r.body)));
    expect(r.type).toBe('application/json');
  });

  it('form: the same steps on fields (values stay text), encoded as a form', async () => {
    const r = await post('/b', 'secret=s&old=o&rep=r&text=t&keep=a%20b', 'application/x-www-form-urlencoded');
    const f = new URLSearchParams(r.body);
    expect(f.get('secret')).toBeNull();
    expect(f.get('new')).toBe('o');
    expect(f.get('rep')).toBe('R');
    expect(f.getAll('text')).toEqual(['t', 'more']);
    expect(f.get('keep')).toBe('a b');
    expect(f.get('flag')).toBe('true');
    expect(f.getAll('list')).toEqual(['3']);
    expect(r.type).toBe('application/x-www-form-urlencoded');
  });

  it('untouched: JSON that does not parse, a JSON array, another type, no body', async () => {
    expect((await post('/b', '{"secret": ', 'application/json')).body).toBe('{"secret": ');
    expect((await post('/b', '[1,2]', 'application/json')).body).toBe('[1,2]');
    expect((await post('/b', 'secret=s', 'text/plain')).body).toBe('secret=s');
    const none = await send(`${gw.url}/b`);
    expect(none.json().body).toBe('');
  });

  it('hostile: a __proto__ field stays a field, it does not become a prototype', async () => {
    const r = await post('/b', '{"__proto__": {"polluted": true}, "secret": 1}', 'application/json');
    const got = JSON.parse(r.body);
    expect(Object.keys(got)).toContain('__proto__');
    expect(got.secret).toBeUndefined();
    expect(got.flag).toBe(true);
  });

  it('a route without body edits still passes the client body through unchanged (buffered: reads body)', async () => {
    const body = 'é'.repeat(1000);
    const r = await post('/hdr', body, 'text/plain');
    expect(r.body).toBe(body);
  });
});
