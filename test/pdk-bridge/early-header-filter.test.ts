// headerFilter run early, inside the access crossing, for chains whose every headerFilter
// plugin declares `readsResponse: false`: the same headers as a headerFilter crossing at
// header time, on upstream responses and on exit() responses, with one crossing per request.
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';
import type { RuntimeRoute } from '../../core/route.ts';
import { EARLY_HEADER_FILTER } from '../../pdk-bridge/phases.ts';

/** Runs first: access sets a header and ctx; headerFilter sets and adds headers, reads ctx and the request. */
const FIRST = (early: boolean) => pluginSource(
  'first',
  `${early ? 'export const readsResponse = false;' : ''}
export function access(pdk: any) {
  pdk.response.setHeader('x-a', 'first-access');
  pdk.response.setHeader('x-override', 'from-access');
  pdk.ctx.set('seen', pdk.request.getHeader('x-in') ?? 'none');
  pdk.ctx.plugin.mine = 'p-' + (pdk.request.getHeader('x-in') ?? 'none');
  pdk.log.setSerializeValue('request.tag', 't');
}
export function headerFilter(pdk: any) {
  pdk.response.setHeader('x-order', 'first');
  pdk.response.setHeader('x-override', 'first-hf');
  pdk.response.addHeader('x-multi', 'first');
  pdk.response.setHeader('x-ctx', pdk.ctx.get('seen'));
  pdk.response.setHeader('x-ctx-plugin', String(pdk.ctx.plugin.mine));
  pdk.response.clearHeader('x-up-remove');
  if (pdk.request.getHeader('x-status') === '1') pdk.response.setStatus(202);
  if (pdk.request.getHeader('x-throw') === 'first') throw new Error('first threw in headerFilter');
}`,
  200,
);

/** Runs second: may exit in access; its headerFilter overrides the first's. */
const SECOND = (early: boolean) => pluginSource(
  'second',
  `${early ? 'export const readsResponse = false;' : ''}
export async function access(pdk: any) {
  if (pdk.request.getHeader('x-async') === '1') await pdk.cache.get('k');
  if (pdk.request.getHeader('x-exit') === '1') pdk.response.exit(403, 'no', { 'x-exit-h': 'e' });
  if (pdk.request.getHeader('x-auth') === '1') pdk.client.authenticate(null, { id: 'ext-1', kind: 'oidc' });
}
export function headerFilter(pdk: any) {
  pdk.response.setHeader('x-order', 'second');
  pdk.response.addHeader('x-multi', 'second');
  pdk.response.setHeader('x-second-url', pdk.request.getPath());
  const cred = pdk.client.getCredential();
  if (cred !== null) pdk.response.setHeader('x-cred', cred.id + '/' + cred.kind);
}`,
  100,
);

/** access only: nothing to cross for at header time, in the body or in log. */
const ONLY_ACCESS = pluginSource('only-access', `export function access(pdk: any) { pdk.response.setHeader('x-only', '1'); }`);

/** Throws in access: opens its breaker (tenant brk's breaker opens at one fault). */
const BAD = pluginSource('bad', `export function access() { throw new Error('bad'); }`);

const tenant = (name: string, early: boolean, failOpen = false) => `
  - name: ${name}
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/${name}] }]
    plugins:
      - { name: first, path: ./first-${early}.ts, failOpen: ${failOpen} }
      - { name: second, path: ./second-${early}.ts }`;

describe('headerFilter in the access crossing (readsResponse: false)', () => {
  let up: Upstream;
  let gw: TestGateway;
  let hits = 0;

  beforeAll(async () => {
    up = await startUpstream((_req, res) => {
      hits++;
      res.writeHead(200, { 'content-type': 'text/plain', 'x-override': 'upstream', 'x-multi': 'up', 'x-up-remove': 'gone', 'x-up-keep': 'kept' });
      res.end('hello');
    });
    const yaml = `
${NO_BREAKER}
tenants:${tenant('early', true)}${tenant('late', false)}${tenant('earlyopen', true, true)}${tenant('lateopen', false, true)}
  - name: brk
    breaker: { faults: 1, windowMs: 60000, cooldownMs: 60000 }
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/brk] }, { name: bad, service: s, paths: [/brkbad] }]
    plugins:
      - { name: first, path: ./first-true.ts, route: r }
      - { name: second, path: ./second-true.ts, route: r }
      - { name: bad, path: ./bad.ts, route: bad }
  - name: only
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/only] }]
    plugins: [{ name: only-access, path: ./only.ts }]
`.replaceAll('UP', up.url);
    gw = await startGateway(yaml, { 'first-true.ts': FIRST(true), 'first-false.ts': FIRST(false), 'second-true.ts': SECOND(true), 'second-false.ts': SECOND(false), 'only.ts': ONLY_ACCESS, 'bad.ts': BAD });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  const route = (tenant: string): RuntimeRoute => gw.gw.snapshot.routes.find((r) => r.tenant === tenant)! as RuntimeRoute;
  const crossings = (tenant: string) => route(tenant).sandbox!.crossings;
  /** isogate_plugin_call_duration_seconds_count of a tenant's phase (0 when the series does not exist). */
  async function calls(tenant: string, phase: string): Promise<number> {
    const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    const re = new RegExp(`^isogate_plugin_call_duration_seconds_count\\{[^}]*tenant="${tenant}"[^}]*phase="${phase}"[^}]*\\} (\\d+)$`, 'm');
    const m = re.exec(text);
    return m === null ? 0 : Number(m[1]);
  }
  const pick = (r: Awaited<ReturnType<typeof send>>) => {
    const h = r.headers;
    return { status: r.status, body: r.body, a: h['x-a'], order: h['x-order'], override: h['x-override'], multi: h['x-multi'], ctx: h['x-ctx'], ctxPlugin: h['x-ctx-plugin'], url: h['x-second-url'], remove: h['x-up-remove'], keep: h['x-up-keep'], exitH: h['x-exit-h'] };
  };

  it('the compiled chain is early only when every headerFilter plugin declares readsResponse: false', () => {
    expect(route('early').chainPhases & EARLY_HEADER_FILTER).toBe(EARLY_HEADER_FILTER);
    expect(route('late').chainPhases & EARLY_HEADER_FILTER).toBe(0);
    expect(route('only').chainPhases & EARLY_HEADER_FILTER).toBe(0);
  });

  it('sends the same headers as a headerFilter crossing, in the same order and precedence', async () => {
    const e = await send(`${gw.url}/early`, { headers: { 'x-in': 'v1' } });
    const l = await send(`${gw.url}/late`, { headers: { 'x-in': 'v1' } });
    expect(pick(e)).toEqual({ ...pick(l), url: '/early' });
    expect(e.status).toBe(200);
    expect(e.body).toBe('hello');
    expect(e.headers['x-order']).toBe('second'); // the later plugin wins
    expect(e.headers['x-override']).toBe('first-hf'); // headerFilter over access over the upstream
    expect(e.headers['x-multi']).toEqual(['up', 'first', 'second']);
    expect(e.headers['x-ctx']).toBe('v1'); // ctx written in access
    expect(e.headers['x-ctx-plugin']).toBe('p-v1'); // and ctx.plugin
    expect(e.headers['x-up-remove']).toBeUndefined();
    expect(e.headers['x-up-keep']).toBe('kept');
    expect(e.headers['x-a']).toBe('first-access');
  });

  it('response.setStatus applies at header time', async () => {
    const e = await send(`${gw.url}/early`, { headers: { 'x-status': '1' } });
    const l = await send(`${gw.url}/late`, { headers: { 'x-status': '1' } });
    expect(e.status).toBe(202);
    expect(l.status).toBe(202);
  });

  it('an early chain crosses once per request; a headerFilter crossing is not made', async () => {
    const before = { c: crossings('early'), access: await calls('early', 'access'), hf: await calls('early', 'headerFilter') };
    const lateBefore = crossings('late');
    for (let i = 0; i < 5; i++) {
      expect((await send(`${gw.url}/early`)).headers['x-order']).toBe('second');
      await send(`${gw.url}/late`);
    }
    expect(crossings('early') - before.c).toBe(5);
    expect(await calls('early', 'access') - before.access).toBe(5);
    expect(await calls('early', 'headerFilter') - before.hf).toBe(0);
    expect(crossings('late') - lateBefore).toBe(10);
  });

  it('a chain with no headerFilter, bodyFilter or log handler crosses only for access', async () => {
    const before = crossings('only');
    for (let i = 0; i < 4; i++) expect((await send(`${gw.url}/only`)).headers['x-only']).toBe('1');
    expect(crossings('only') - before).toBe(4);
    for (const phase of ['headerFilter', 'bodyFilter', 'log', 'response']) expect(await calls('only', phase)).toBe(0);
  });

  it('an exit() in access gets the early headerFilter headers (Kong runs header_filter on it)', async () => {
    const before = hits;
    const e = await send(`${gw.url}/early`, { headers: { 'x-exit': '1', 'x-in': 'x' } });
    expect(hits).toBe(before);
    expect(e.status).toBe(403);
    expect(e.body).toBe('no');
    expect(e.headers['x-exit-h']).toBe('e');
    expect(e.headers['x-order']).toBe('second');
    expect(e.headers['x-override']).toBe('first-hf');
    expect(e.headers['x-multi']).toEqual(['first', 'second']);
    expect(e.headers['x-ctx']).toBe('x');
    const s = await send(`${gw.url}/early`, { headers: { 'x-exit': '1', 'x-status': '1' } });
    expect(s.status).toBe(202);
  });

  it('a chain that waits on an async PDK call in access falls back to the header-time crossing, with the same headers', async () => {
    const before = crossings('early');
    const hf = await calls('early', 'headerFilter');
    const e = await send(`${gw.url}/early`, { headers: { 'x-async': '1', 'x-in': 'a' } });
    const l = await send(`${gw.url}/late`, { headers: { 'x-async': '1', 'x-in': 'a' } });
    expect(pick(e)).toEqual({ ...pick(l), url: '/early' });
    expect(e.headers['x-ctx']).toBe('a');
    expect(await calls('early', 'headerFilter') - hf).toBe(1);
    expect(crossings('early') - before).toBe(3); // access, its resume, headerFilter
  });

  it('an access that authenticates falls back to the header-time crossing: headerFilter sees the host\u2019s record', async () => {
    const before = crossings('early');
    const e = await send(`${gw.url}/early`, { headers: { 'x-auth': '1' } });
    const l = await send(`${gw.url}/late`, { headers: { 'x-auth': '1' } });
    expect(e.headers['x-cred']).toBe('ext-1/oidc');
    expect(pick(e)).toEqual({ ...pick(l), url: '/early' });
    expect(crossings('early') - before).toBe(2);
  });

  it('while a breaker of the tenant is open, an early chain crosses at header time, with the same headers', async () => {
    const route = gw.gw.snapshot.routes.find((r) => r.tenant === 'brk' && r.name === 'r')! as RuntimeRoute;
    expect((await send(`${gw.url}/brk`)).headers['x-order']).toBe('second');
    expect((await send(`${gw.url}/brkbad`)).status).toBe(500);
    expect((await send(`${gw.url}/brkbad`)).status).toBe(503); // the breaker is open
    const before = route.sandbox!.crossings;
    const e = await send(`${gw.url}/brk`, { headers: { 'x-in': 'b' } });
    const l = await send(`${gw.url}/late`, { headers: { 'x-in': 'b' } });
    expect(pick(e)).toEqual({ ...pick(l), url: '/brk' });
    expect(route.sandbox!.crossings - before).toBe(2);
  });

  it('a fail-closed headerFilter fault answers as at header time: 500 with an error id, after the upstream was called', async () => {
    const before = hits;
    const e = await send(`${gw.url}/early`, { headers: { 'x-throw': 'first' } });
    const l = await send(`${gw.url}/late`, { headers: { 'x-throw': 'first' } });
    expect(hits - before).toBe(2);
    for (const r of [e, l]) {
      expect(r.status).toBe(500);
      expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
      expect(r.headers['x-isogate-error-id']).toMatch(/^[0-9a-f]{16}$/);
      expect(r.headers['x-order']).toBeUndefined();
    }
  });

  it('a fail-open headerFilter fault answers as at header time: the other plugins\u2019 headers, and what the culprit set before it threw', async () => {
    const e = await send(`${gw.url}/earlyopen`, { headers: { 'x-throw': 'first' } });
    const l = await send(`${gw.url}/lateopen`, { headers: { 'x-throw': 'first' } });
    expect(pick(e)).toEqual({ ...pick(l), url: '/earlyopen' });
    expect(e.status).toBe(200);
    expect(e.headers['x-order']).toBe('second');
  });

  it('a headerFilter fault on an exit() fails the request as at header time', async () => {
    const e = await send(`${gw.url}/early`, { headers: { 'x-exit': '1', 'x-throw': 'first' } });
    expect(e.status).toBe(500);
    expect(e.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
  });
});
