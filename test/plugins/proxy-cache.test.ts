import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startGateway, startUpstream, waitFor, type Reply, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** proxy-cache through real requests: the upstream counts what reaches it. */
describe('plugin proxy-cache', () => {
  let up: Upstream;
  let gw: TestGateway;
  const calls = new Map<string, number>();
  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      const url = req.url!;
      const n = (calls.get(url) ?? 0) + 1;
      calls.set(url, n);
      const path = url.split('?')[0];
      let type = 'application/json';
      let status = 200;
      const headers: Record<string, string> = { 'x-up': 'yes' };
      let body = JSON.stringify({ url, n, lang: req.headers['accept-language'] ?? null });
      if (path.endsWith('/html')) type = 'text/html';
      if (path.endsWith('/created')) status = 201;
      if (path.endsWith('/huge')) body = JSON.stringify({ n, pad: 'x'.repeat(200_000) });
      if (path.endsWith('/nostore')) headers['cache-control'] = 'no-store';
      if (path.endsWith('/private')) headers['cache-control'] = 'private, max-age=60';
      if (path.endsWith('/maxage1')) headers['cache-control'] = 'public, max-age=1';
      res.writeHead(status, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: up, url: "${up.url}" }]
    routes:
      - { name: plain, service: up, paths: [/plain] }
      - { name: short, service: up, paths: [/short] }
      - { name: vary, service: up, paths: [/vary] }
      - { name: cc, service: up, paths: [/cc] }
    plugins:
      - { name: proxy-cache, route: plain, config: { ignore_uri_case: true } }
      - { name: proxy-cache, route: short, config: { cache_ttl: 1, storage_ttl: 60 } }
      - { name: proxy-cache, route: vary, config: { vary_query_params: [page], vary_headers: [Accept-Language] } }
      - { name: proxy-cache, route: cc, config: { cache_control: true } }
`);
  });
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  /** Sends until the entry stored by the log phase answers (it is stored after the client's answer). */
  const untilHit = (path: string, opts: Parameters<typeof send>[1] = {}): Promise<Reply> =>
    waitFor(async () => {
      const r = await send(`${gw.url}${path}`, opts);
      return r.headers['x-cache-status'] === 'Hit' ? r : null;
    }, 3000, `a Hit for ${path}`);

  it('Miss, then Hit from the cache without calling the upstream, with Age and the stored headers', async () => {
    const first = await send(`${gw.url}/plain/a`);
    expect(first.status).toBe(200);
    expect(first.headers['x-cache-status']).toBe('Miss');
    expect(typeof first.headers['x-cache-key']).toBe('string');
    const hit = await untilHit('/plain/a');
    expect(hit.body).toBe(first.body);
    expect(hit.headers['x-up']).toBe('yes');
    expect(hit.headers['content-type']).toBe('application/json');
    expect(hit.headers.age).toBe('0');
    expect(hit.headers['x-cache-key']).toBe(first.headers['x-cache-key']);
    const before = calls.get('/plain/a');
    await send(`${gw.url}/plain/a`);
    expect(calls.get('/plain/a')).toBe(before);
    // ignore_uri_case: the same entry
    expect((await send(`${gw.url}/plain/A`)).headers['x-cache-status']).toBe('Hit');
  });

  it('Bypass: a method not in request_method, a content type or status not listed', async () => {
    const post = await send(`${gw.url}/plain/a`, { method: 'POST', body: 'x' });
    expect(post.headers['x-cache-status']).toBe('Bypass');
    for (const p of ['/plain/html', '/plain/created']) {
      const r1 = await send(`${gw.url}${p}`);
      expect(r1.headers['x-cache-status']).toBe('Bypass');
      await new Promise((r) => setTimeout(r, 100));
      const r2 = await send(`${gw.url}${p}`);
      expect(r2.headers['x-cache-status']).toBe('Bypass');
      expect(r2.body).not.toBe(r1.body); // the upstream answered again (n grew)
    }
  });

  it('a response too large for an entry is not cached', async () => {
    const r1 = await send(`${gw.url}/plain/huge`);
    expect(r1.status).toBe(200);
    expect(r1.body.length).toBeGreaterThan(200_000);
    expect(r1.headers['x-cache-status']).toBe('Bypass');
    await new Promise((r) => setTimeout(r, 100));
    expect((await send(`${gw.url}/plain/huge`)).headers['x-cache-status']).toBe('Bypass');
    expect(calls.get('/plain/huge')).toBe(2);
  });

  it('HEAD is cached apart from GET', async () => {
    const h1 = await send(`${gw.url}/plain/head`, { method: 'HEAD' });
    expect(h1.headers['x-cache-status']).toBe('Miss');
    const h2 = await untilHit('/plain/head', { method: 'HEAD' });
    expect(h2.status).toBe(200);
    expect(h2.body).toBe('');
    const g = await send(`${gw.url}/plain/head`);
    expect(g.headers['x-cache-status']).toBe('Miss');
    expect(g.body).toContain('"n":');
  });

  it('an entry past cache_ttl, kept by storage_ttl, is refreshed from the upstream', async () => {
    const first = await send(`${gw.url}/short/t`);
    expect(first.headers['x-cache-status']).toBe('Miss');
    await untilHit('/short/t');
    await new Promise((r) => setTimeout(r, 1100));
    const stale = await send(`${gw.url}/short/t`);
    expect(stale.headers['x-cache-status']).toBe('Refresh');
    expect(JSON.parse(stale.body).n).toBeGreaterThan(JSON.parse(first.body).n);
  });

  it('vary_query_params and vary_headers make the key; other arguments do not', async () => {
    await send(`${gw.url}/vary/v?page=1&junk=1`, { headers: { 'accept-language': 'en' } });
    const hit = await untilHit('/vary/v?page=1&junk=2', { headers: { 'accept-language': 'en' } });
    expect(JSON.parse(hit.body).url).toBe('/vary/v?page=1&junk=1');
    expect((await send(`${gw.url}/vary/v?page=2`, { headers: { 'accept-language': 'en' } })).headers['x-cache-status']).toBe('Miss');
    const fr = await send(`${gw.url}/vary/v?page=1`, { headers: { 'accept-language': 'fr' } });
    expect(fr.headers['x-cache-status']).toBe('Miss');
    expect(JSON.parse(fr.body).lang).toBe('fr');
  });

  it('cache_control: no-store and private are not cached, max-age sets the ttl, a request no-cache refreshes, no-store bypasses', async () => {
    for (const p of ['/cc/nostore', '/cc/private']) {
      expect((await send(`${gw.url}${p}`)).headers['x-cache-status']).toBe('Bypass');
      await new Promise((r) => setTimeout(r, 100));
      expect((await send(`${gw.url}${p}`)).headers['x-cache-status']).toBe('Bypass');
    }
    await send(`${gw.url}/cc/maxage1`);
    await untilHit('/cc/maxage1');
    await new Promise((r) => setTimeout(r, 1100));
    // gone from storage with its ttl (no storage_ttl): the upstream answers again
    expect((await send(`${gw.url}/cc/maxage1`)).headers['x-cache-status']).toBe('Miss');

    await send(`${gw.url}/cc/req`);
    await untilHit('/cc/req');
    expect((await send(`${gw.url}/cc/req`, { headers: { 'cache-control': 'no-cache' } })).headers['x-cache-status']).toBe('Refresh');
    expect((await send(`${gw.url}/cc/req`, { headers: { 'cache-control': 'no-store' } })).headers['x-cache-status']).toBe('Bypass');
  });
});
