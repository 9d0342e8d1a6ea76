import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

// Kong's precedence, most specific first, as (route, service, consumer) flags: written out
// here independently of core/config/chains.ts, which the test holds to it.
const LEVELS = [
  { tag: 'tenant', route: false, service: false, consumer: false },
  { tag: 'service', route: false, service: true, consumer: false },
  { tag: 'route', route: true, service: false, consumer: false },
  { tag: 'consumer', route: false, service: false, consumer: true },
  { tag: 'route+service', route: true, service: true, consumer: false },
  { tag: 'service+consumer', route: false, service: true, consumer: true },
  { tag: 'route+consumer', route: true, service: false, consumer: true },
  { tag: 'route+service+consumer', route: true, service: true, consumer: true },
] as const;

/**
 * Authenticates the consumer whose id is in x-consumer, in rewrite when x-auth-phase says
 * so, else in access; reports what getConsumer says in each phase.
 */
const AUTH = pluginSource('auth', `
function go(pdk: any, phase: string) {
  const id = pdk.request.getHeader('x-consumer');
  if (id === undefined || pdk.request.getHeader('x-auth-phase') !== phase) return;
  pdk.client.authenticate({ id }, null);
}
export function rewrite(pdk: any) { go(pdk, 'rewrite'); }
export function access(pdk: any) {
  go(pdk, 'access');
  const c = pdk.client.getConsumer();
  pdk.serviceRequest.setHeader('x-auth-saw', c === null ? 'none' : c.id);
}`, 1000);

/** Says which instance ran: its config's tag, upstream in access and on the response in headerFilter. */
const marker = (name: string, priority: number) => pluginSource(name, `
export function access(pdk: any, conf: any) { pdk.serviceRequest.setHeader('x-${name}', conf.tag); }
export function headerFilter(pdk: any, conf: any) { pdk.response.setHeader('x-${name}', conf.tag); }`, priority);

/**
 * After auth in priority, with a rewrite handler too: its tenant-wide instance has run in
 * rewrite by the time access authenticates (a scoped instance's rewrite never runs: Kong).
 */
const lateSource = (name: string) => pluginSource(name, `
export function rewrite(pdk: any, conf: any) { pdk.serviceRequest.setHeader('x-${name}-rewrite', conf.tag); }
export function access(pdk: any, conf: any) { pdk.serviceRequest.setHeader('x-${name}', conf.tag); }
export function headerFilter(pdk: any, conf: any) { pdk.response.setHeader('x-${name}', conf.tag); }`, 500);

const NAMES = LEVELS.map((_, k) => `m${k}`);

/** Plugin m<k> has an instance at every level up to k, each aimed at route r1 / service s1 / consumer alice. */
function instances(): string {
  const out: string[] = [];
  NAMES.forEach((name, k) => {
    for (let l = 0; l <= k; l++) {
      const L = LEVELS[l];
      const scope = [L.route ? 'route: r1' : '', L.service ? 'service: s1' : '', L.consumer ? 'consumer: alice' : ''].filter(Boolean).join(', ');
      out.push(`      - { name: ${name}, path: ./${name}.ts, ${scope}${scope === '' ? '' : ', '}config: { tag: "${L.tag}" } }`);
    }
  });
  return out.join('\n');
}

/** What must win for m<k> on `route` (and its service) when `consumer` authenticated: the highest level up to k that applies. */
function expected(k: number, route: string, consumer: string | null): string {
  const service = route === 'r3' ? 's2' : 's1';
  for (let l = k; l >= 0; l--) {
    const L = LEVELS[l];
    if (L.route && route !== 'r1') continue;
    if (L.service && service !== 's1') continue;
    if (L.consumer && consumer !== 'alice') continue;
    return L.tag;
  }
  return '';
}

describe('plugin scoping: Kong precedence through real requests', () => {
  let up: Upstream;
  let gw: TestGateway;

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    const files: Record<string, string> = { 'auth.ts': AUTH, 'early.ts': marker('early', 2000), 'late.ts': lateSource('late'), 'keep.ts': lateSource('keep') };
    for (const n of NAMES) files[`${n}.ts`] = marker(n, 500);
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s1, url: "${up.url}" }, { name: s2, url: "${up.url}" }]
    routes:
      - { name: r1, service: s1, paths: [/r1] }
      - { name: r2, service: s1, paths: [/r2] }
      - { name: r3, service: s2, paths: [/r3] }
    consumers:
      - { id: c-alice, username: alice }
      - { id: c-bob, username: bob }
    plugins:
      - { name: auth, path: ./auth.ts }
      - { name: early, path: ./early.ts, config: { tag: "tenant" } }
      - { name: early, path: ./early.ts, consumer: c-alice, config: { tag: "consumer" } }
      - { name: late, path: ./late.ts, config: { tag: "tenant" } }
      - { name: late, path: ./late.ts, route: r1, config: { tag: "route" } }
      - { name: late, path: ./late.ts, route: r1, consumer: alice, config: { tag: "route+consumer" } }
      - { name: keep, path: ./keep.ts, config: { tag: "tenant" } }
      - { name: keep, path: ./keep.ts, consumer: alice, config: { tag: "consumer" } }
${instances()}
`, files);
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  const cases: [route: string, consumer: string | null, phase: string][] = [];
  for (const route of ['r1', 'r2', 'r3']) {
    for (const consumer of ['alice', 'bob', null]) cases.push([route, consumer, 'access']);
    cases.push([route, 'alice', 'rewrite']);
  }

  it.each(cases)('route %s, consumer %s (authenticated in %s): one instance per plugin, the most specific', async (route, consumer, phase) => {
    const headers: Record<string, string> = { 'x-auth-phase': phase };
    if (consumer !== null) headers['x-consumer'] = `c-${consumer}`;
    const r = await send(`${gw.url}/${route}`, { headers });
    expect(r.status).toBe(200);
    const upstream = r.json().headers;
    expect(upstream['x-auth-saw']).toBe(consumer === null ? 'none' : `c-${consumer}`);
    NAMES.forEach((name, k) => {
      const want = expected(k, route, consumer);
      expect({ name, access: upstream[`x-${name}`], headerFilter: r.headers[`x-${name}`] }).toEqual({ name, access: want, headerFilter: want });
    });
  });

  it('a plugin passed before authentication keeps its config for the whole request (one config per plugin)', async () => {
    // early (priority 2000) runs in access before auth (1000): its config was settled there, as in Kong
    const r = await send(`${gw.url}/r1`, { headers: { 'x-consumer': 'c-alice', 'x-auth-phase': 'access' } });
    expect([r.json().headers['x-early'], r.headers['x-early']]).toEqual(['tenant', 'tenant']);
    // authenticated in rewrite, before early ever ran: the consumer's config everywhere
    const rw = await send(`${gw.url}/r1`, { headers: { 'x-consumer': 'c-alice', 'x-auth-phase': 'rewrite' } });
    expect([rw.json().headers['x-early'], rw.headers['x-early']]).toEqual(['consumer', 'consumer']);
  });

  it('rewrite runs the tenant-wide instance only; access keeps the config that ran in rewrite, a scoped instance (whose rewrite never ran) takes the consumer\'s', async () => {
    for (const phase of ['access', 'rewrite']) {
      const r = await send(`${gw.url}/r1`, { headers: { 'x-consumer': 'c-alice', 'x-auth-phase': phase } });
      const up = r.json().headers;
      // late: the route's instance outranks the tenant's on r1, but rewrite runs before routing (Kong: global plugins only)
      expect({ phase, late: [up['x-late-rewrite'], up['x-late'], r.headers['x-late']] }).toEqual({ phase, late: ['tenant', 'route+consumer', 'route+consumer'] });
      // keep: its tenant-wide instance ran in rewrite; one config per plugin per request, so not the consumer's
      expect({ phase, keep: [up['x-keep-rewrite'], up['x-keep'], r.headers['x-keep']] }).toEqual({ phase, keep: ['tenant', 'tenant', 'tenant'] });
    }
    // without a consumer, r2 has no route instance of late: the tenant's everywhere
    const r2 = await send(`${gw.url}/r2`);
    expect([r2.json().headers['x-late-rewrite'], r2.json().headers['x-late']]).toEqual(['tenant', 'tenant']);
  });

  it('an unknown consumer id fails the request as the plugin\'s bad return', async () => {
    const r = await send(`${gw.url}/r1`, { headers: { 'x-consumer': 'c-nobody', 'x-auth-phase': 'access' } });
    expect(r.status).toBe(500);
    expect(r.headers['x-isogate-error-id']).toBeTruthy();
  });
});
