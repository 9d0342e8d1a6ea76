// intra-tenant: every PDK getter that returns an object or an array, in every phase that
// offers it, hands the calling plugin values of its own realm (or without a prototype),
// down to the nested values: never an object of the runtime's realm (its constructor chain
// leads to the runtime's Function) nor of another plugin's. And what one plugin does to a
// returned object (a planted key, a pushed element, a replaced value) is never seen by the
// next plugin of the same call, nor by any plugin of the next request.
//
// Two plugin modules (two realms) per route run the same probe one after the other:
// `first` scans each value, then mutates it everywhere it can; `second` scans and must see
// exactly what `first` saw before it mutated. /hf runs access, headerFilter, bodyFilter
// and log; /resp runs a response handler (excluded from headerFilter by Kong's rule) and log.
// Each probe logs one line per getter: realm-check|plugin|phase|getter|problems|value.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, pluginSource, startGateway, startUpstream, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const PROBE = `
export const reads = ['body'];
const MARK = 'planted-by-first';
const OP = Object.prototype;
function endsHere(v) {
  let p = Object.getPrototypeOf(v);
  if (p === null) return true;
  while (Object.getPrototypeOf(p) !== null) p = Object.getPrototypeOf(p);
  return p === OP;
}
function scan(v, path, bad, depth) {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function') || depth > 10) return;
  if (!endsHere(v)) bad.push(path + ': prototype of another realm');
  if (Object.getPrototypeOf(v) !== null) {
    try {
      if (v.constructor.constructor('return this')() !== globalThis) bad.push(path + ': constructor reaches another global');
    } catch (e) { bad.push(path + ': constructor chain threw ' + (e && e.name)); }
  }
  for (const k of Reflect.ownKeys(v)) {
    const d = Object.getOwnPropertyDescriptor(v, k);
    if ('value' in d) scan(d.value, path + '.' + String(k), bad, depth + 1);
    else bad.push(path + '.' + String(k) + ': accessor');
  }
}
function mutate(v, depth) {
  if (v === null || typeof v !== 'object' || depth > 10) return;
  for (const k of Reflect.ownKeys(v)) mutate(v[k], depth + 1);
  try { v.planted = MARK; } catch {}
  if (Array.isArray(v)) { try { v.push(MARK); } catch {} try { v[0] = MARK; } catch {} }
  else for (const k of Object.keys(v)) { try { if (typeof v[k] === 'string') v[k] = MARK; } catch {} }
}
const REQUEST = [
  ['request.getHeaders', (p) => p.request.getHeaders()],
  ['request.getHeader(set-cookie)', (p) => p.request.getHeader('set-cookie')],
  ['request.getQuery', (p) => p.request.getQuery()],
  ['request.getQueryArg(k)', (p) => p.request.getQueryArg('k')],
  ['request.getUriCaptures', (p) => p.request.getUriCaptures()],
  ['client.getConsumer', (p) => p.client.getConsumer()],
  ['client.getCredential', (p) => p.client.getCredential()],
  ['router.getRoute', (p) => p.router.getRoute()],
  ['router.getService', (p) => p.router.getService()],
  ['ctx.plugin', (p) => p.ctx.plugin],
];
const BODY = [
  ['request.getBody(json)', (p) => p.request.getBody()],
  ['request.getBody(form)', (p) => p.request.getBody('application/x-www-form-urlencoded')],
];
const RESPONSE = [
  ['response.getHeaders', (p) => p.response.getHeaders()],
  ['response.getHeader(set-cookie)', (p) => p.response.getHeader('set-cookie')],
];
const SERVICE = [
  ['serviceResponse.getHeaders', (p) => p.serviceResponse.getHeaders()],
  ['serviceResponse.getHeader(set-cookie)', (p) => p.serviceResponse.getHeader('set-cookie')],
];
const SERVICE_BODY = [
  ['serviceResponse.getBody(json)', (p) => p.serviceResponse.getBody()],
  ['serviceResponse.getBody(form)', (p) => p.serviceResponse.getBody('application/x-www-form-urlencoded')],
];
function probe(pdk, phase, getters) {
  const got = [];
  for (const [name, get] of getters) {
    const bad = [];
    let v, json;
    try { v = get(pdk); json = JSON.stringify(v); } catch (e) { bad.push('threw ' + (e && e.name) + ': ' + (e && e.message)); }
    scan(v, name, bad, 0);
    // a second read in the same realm: the same checks (a cached copy must be clean too)
    try { scan(get(pdk), name + '#2', bad, 0); } catch (e) { bad.push('second read threw'); }
    got.push([name, bad, json, v]);
  }
  for (const [name, bad, json, v] of got) {
    pdk.log.info(['realm-check', NAME, phase, name, JSON.stringify(bad), json === undefined ? 'undefined' : json].join('|').slice(0, 4000));
    // ctx.plugin is the instance's own state: its changes are meant to last
    if (ROLE === 'first' && name !== 'ctx.plugin') { mutate(v, 0); try { mutate(getters.find((g) => g[0] === name)[1](pdk), 0); } catch {} }
  }
}
export function access(pdk) {
  if (ROLE === 'first') pdk.client.authenticate({ id: 'c-alice' }, { id: 'k-alice', kind: 'key-auth' });
  probe(pdk, 'access', [...REQUEST, ...BODY]);
}
export function log(pdk) { probe(pdk, 'log', [...REQUEST, ...RESPONSE, ['log.serialize', (p) => p.log.serialize()]]); }
`;

function probePlugin(name: string, role: 'first' | 'second', more: string): string {
  return pluginSource(name, `const NAME = ${JSON.stringify(name)};\nconst ROLE = ${JSON.stringify(role)};\n${PROBE}\n${more}`, role === 'first' ? 100 : 50);
}
const HF = `export function headerFilter(pdk) { probe(pdk, 'headerFilter', [...REQUEST, ...RESPONSE, ...SERVICE]); }
export function bodyFilter(pdk) { if (pdk.response.isLastChunk()) probe(pdk, 'bodyFilter', [...REQUEST, ...RESPONSE]); }`;
const RESP = `export function response(pdk) { probe(pdk, 'response', [...REQUEST, ...RESPONSE, ...SERVICE, ...SERVICE_BODY]); }`;

const UP_BODY = JSON.stringify({ x: [1, { y: 'two' }], z: { w: ['a', 'b'] } });

function upstream(_req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('content-type', 'application/json');
  res.setHeader('set-cookie', ['u1=1', 'u2=2']);
  res.setHeader('x-up', 'u');
  res.end(UP_BODY);
}

type Line = { plugin: string; phase: string; getter: string; bad: string[]; value: string };

describe('intra-tenant: object-returning getters hand out copies of the caller\'s realm', () => {
  let gw: TestGateway;
  let up: Upstream;
  let lines: LogLine[];
  beforeAll(async () => {
    up = await startUpstream(upstream);
    const captured = captureLogger('info');
    lines = captured.lines;
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t
    limits: { cpuMs: 200 }
    services: [{ name: s, url: "${up.url}" }]
    routes:
      - { name: hf, service: s, paths: [/hf] }
      - { name: resp, service: s, paths: [/resp] }
    consumers:
      - { id: c-alice, username: alice, tags: [gold, beta], credentials: { key-auth: [{ id: k-alice, key: alice-secret-key }] } }
    plugins:
      - { name: hf-first, path: ./hf-first.ts, route: hf, limits: { cpuMs: 200 } }
      - { name: hf-second, path: ./hf-second.ts, route: hf, limits: { cpuMs: 200 } }
      - { name: resp-first, path: ./resp-first.ts, route: resp, limits: { cpuMs: 200 } }
      - { name: resp-second, path: ./resp-second.ts, route: resp, limits: { cpuMs: 200 } }
`, {
      'hf-first.ts': probePlugin('hf-first', 'first', HF),
      'hf-second.ts': probePlugin('hf-second', 'second', HF),
      'resp-first.ts': probePlugin('resp-first', 'first', RESP),
      'resp-second.ts': probePlugin('resp-second', 'second', RESP),
    }, { logger: captured.logger });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  function checks(): Line[] {
    const out: Line[] = [];
    for (const l of lines) {
      if (typeof l.msg !== 'string' || !l.msg.startsWith('realm-check|')) continue;
      const [, plugin, phase, getter, bad, ...value] = l.msg.split('|');
      out.push({ plugin, phase, getter, bad: JSON.parse(bad) as string[], value: value.join('|') });
    }
    return out;
  }

  for (const route of ['hf', 'resp']) {
    it(`/${route}: every value is the caller's, and the second plugin never sees the first one's changes`, async () => {
      for (let round = 0; round < 2; round++) {
        lines.length = 0;
        const r = await request(`${gw.url}/${route}/seg?k=1&k=2&j=3`, {
          method: 'POST',
          headers: ['content-type', 'application/json', 'x-one', 'one', 'set-cookie', 'c1=1', 'set-cookie', 'c2=2'],
          body: JSON.stringify({ x: [1, { y: 'two' }] }),
        });
        expect(r.statusCode).toBe(200);
        expect(await r.body.text()).toBe(UP_BODY);
        const phases = route === 'hf' ? ['access', 'headerFilter', 'bodyFilter', 'log'] : ['access', 'response', 'log'];
        let got: Line[] = [];
        const deadline = Date.now() + 3000;
        while (Date.now() < deadline) {
          got = checks();
          if (got.filter((c) => c.phase === 'log').length >= 2 * 13) break;
          await new Promise((res) => setTimeout(res, 20));
        }
        for (const phase of phases) {
          const first = got.filter((c) => c.plugin === `${route}-first` && c.phase === phase);
          const second = got.filter((c) => c.plugin === `${route}-second` && c.phase === phase);
          expect(first.length, `${route} ${phase}`).toBeGreaterThanOrEqual(10);
          expect(second.map((c) => c.getter), `${route} ${phase}`).toEqual(first.map((c) => c.getter));
          for (const c of [...first, ...second]) {
            expect(c.bad, `${c.plugin} ${phase} ${c.getter}`).toEqual([]);
            expect(c.value, `${c.plugin} ${phase} ${c.getter}`).not.toContain('planted');
          }
          // the second plugin sees what the first saw before it changed anything
          for (let i = 0; i < first.length; i++) {
            // ctx.plugin is per instance; log.serialize carries latencies that move between the two reads
            if (first[i].getter === 'ctx.plugin' || first[i].getter === 'log.serialize') continue;
            expect(second[i].value, `${phase} ${first[i].getter}`).toBe(first[i].value);
          }
        }
        // the values are the request's own, and contain objects and arrays worth checking
        const v = (phase: string, getter: string) => got.find((c) => c.plugin === `${route}-second` && c.phase === phase && c.getter === getter)!.value;
        expect(JSON.parse(v('access', 'request.getHeader(set-cookie)'))).toEqual(['c1=1', 'c2=2']);
        expect(JSON.parse(v('access', 'request.getHeaders'))).toMatchObject({ 'x-one': 'one', 'set-cookie': ['c1=1', 'c2=2'] });
        expect(JSON.parse(v('access', 'request.getQuery'))).toEqual({ k: ['1', '2'], j: '3' });
        expect(JSON.parse(v('access', 'request.getUriCaptures'))).toEqual({ unnamed: [`/${route}`], named: {} });
        expect(JSON.parse(v('access', 'request.getBody(json)'))).toEqual({ x: [1, { y: 'two' }] });
        expect(JSON.parse(v('access', 'client.getConsumer'))).toEqual({ id: 'c-alice' });
        const later = route === 'hf' ? 'headerFilter' : 'response';
        expect(JSON.parse(v(later, 'client.getConsumer'))).toMatchObject({ id: 'c-alice', username: 'alice', tags: ['gold', 'beta'] });
        expect(JSON.parse(v(later, 'client.getCredential'))).toMatchObject({ id: 'k-alice', consumer: { id: 'c-alice' } });
        expect(JSON.parse(v(later, 'response.getHeader(set-cookie)'))).toEqual(['u1=1', 'u2=2']);
        expect(JSON.parse(v(later, 'serviceResponse.getHeaders'))).toMatchObject({ 'x-up': 'u', 'set-cookie': ['u1=1', 'u2=2'] });
        if (route === 'resp') expect(JSON.parse(v('response', 'serviceResponse.getBody(json)'))).toEqual(JSON.parse(UP_BODY));
        expect(JSON.parse(v('log', 'log.serialize'))).toMatchObject({ request: { method: 'POST', querystring: { k: ['1', '2'] } }, response: { status: 200 } });
      }
    });
  }
});
