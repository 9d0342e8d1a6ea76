/**
 * Shared shape of the same-tenant isolation attacks: plugin `evil` (priority 100) patches
 * builtins at its module's top level and again in each of its handlers, and also applies
 * the patch to every realm it can reach through the PDK (the realms behind PDK functions,
 * the errors PDK calls throw, the values they return, the callbacks a then() receives).
 * Plugin `victim` (priority 50) of the same tenant runs after it in the same isolate and
 * uses those builtins; it must behave exactly as when it runs alone (route /calm).
 * startAuthLab: the shape of the attacks on another plugin's verdict (an auth plugin's exit).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectGoodServed, NEIGHBOURS, plugin, send, startLab, type Lab } from './helpers.ts';

/** The victim: its answer depends on push, JSON.stringify, toLowerCase, the Object/Array prototypes and its config. */
const VICTIM = plugin(`
export function access(pdk, config) {
  const out = [];
  out.push('a');
  out.push('b');
  const h = pdk.request.getHeaders();
  const seen = [JSON.stringify({ k: out, host: typeof h.host }), 'ABC'.toLowerCase(), String(({}).polluted),
    String(config.list.includes('y')), String(pdk.request.getHeader('X-Test')), Object.keys({ a: 1 }).join(),
    String([1, 2, 3].map((n) => n * 2)), String(Array.isArray(out))];
  try { pdk.request.getHeader(42); } catch (e) { seen.push(e instanceof TypeError ? 'TypeError' : 'foreign error'); }
  pdk.response.setHeader('x-victim', seen.join('|'));
  pdk.serviceRequest.setHeader('x-victim-up', 'ok');
}
export async function headerFilter(pdk) {
  await Promise.resolve();
  pdk.response.setHeader('x-victim-hf', ['X', 'Y'].map((s) => s.toLowerCase()).join(',') + ':' + pdk.response.getStatus());
}
`, 'victim', 50);

const EXPECTED = '{"k":["a","b"],"host":"string"}|abc|undefined|true|t1|a|2,4,6|true|TypeError';

/** `patch` is the body of a function of `g` (a global object) that poisons g's builtins. */
function evilPlugin(patch: string): string {
  return plugin(`
function patch(g) { ${patch} }
function globalOf(v, into) { try { const g = v.constructor.constructor('return this')(); if (g) into.add(g); } catch {} }
function poisonAll(pdk, more) {
  const globals = new Set([globalThis]);
  for (const v of more) globalOf(v, globals);
  globalOf(pdk, globals); globalOf(pdk.request, globals); globalOf(pdk.request.getHeader, globals);
  globalOf(pdk.request.getHeaders(), globals); globalOf(pdk.request.getQuery(), globals);
  try { pdk.request.getHeader(42); } catch (e) { globalOf(e, globals); }
  for (const g of globals) { try { patch(g); } catch {} }
}
patch(globalThis);
export function access(pdk) {
  poisonAll(pdk, []);
  try { pdk.serviceRequest.setPath(5); } catch (e) { poisonAll(pdk, [e]); }
  // a thenable: the callbacks the runtime hands its then() could lead to another realm too
  return { then(resolve, reject) { poisonAll(pdk, [resolve, reject]); resolve(); } };
}
export function headerFilter(pdk) { poisonAll(pdk, []); }
`);
}

/** Tenant `evil`: /evil runs the attack plugin, `other` (a plugin entry) runs on every route, /calm included; then the NEIGHBOURS. */
function sameTenantYaml(other: string): string {
  return `
tenants:
  - name: evil
    services: [{ name: s, url: "UP" }]
    routes:
      - { name: evil, service: s, paths: [/evil] }
      - { name: calm, service: s, paths: [/calm] }
    plugins:
      - { name: evil, path: ./evil.ts, route: evil }
      - ${other}${NEIGHBOURS}`;
}

export function describeIntraTenantPatch(title: string, patch: string): void {
  describe(title, () => {
    let lab: Lab;
    beforeAll(async () => {
      lab = await startLab({
        evil: evilPlugin(patch),
        files: { 'victim.ts': VICTIM },
        yaml: sameTenantYaml('{ name: victim, path: ./victim.ts, config: { list: [x, y] } }'),
      });
    });
    afterAll(async () => {
      await lab.stop();
    });

    it('the victim plugin of the same tenant behaves as alone, right after the attacker and on later requests', async () => {
      for (let i = 0; i < 3; i++) {
        for (const path of ['/evil', '/calm']) {
          const r = await send(`${lab.url}${path}`, { headers: { 'x-test': 't1' } });
          expect(r.status, `${path}: ${r.body.slice(0, 300)}`).toBe(200);
          expect(r.headers['x-victim'], path).toBe(EXPECTED);
          expect(r.headers['x-victim-hf'], path).toBe('x,y:200');
          expect(r.json().headers['x-victim-up'], path).toBe('ok');
        }
      }
      await expectGoodServed(lab);
    });
  });
}

/** The tenant's auth plugin: 401 without x-key: k, on every route of the tenant. */
const AUTH = plugin(`export function access(pdk) { if (pdk.request.getHeader('x-key') !== 'k') pdk.response.exit(401, { message: 'no key' }); }`, 'auth', 50);

/**
 * A lab where tenant `evil` runs the attack plugin (priority 100) on /evil and its auth
 * plugin (priority 50, AUTH) on every route, /calm included: the attack must not get past it.
 */
export function startAuthLab(evil: string): Promise<Lab> {
  return startLab({
    evil,
    files: { 'auth.ts': AUTH },
    yaml: sameTenantYaml('{ name: auth, path: ./auth.ts }'),
  });
}
