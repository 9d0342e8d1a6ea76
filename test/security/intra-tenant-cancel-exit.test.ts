// prototype trick across plugins of ONE tenant (one isolate, one context): a marketplace
// plugin installs Array.prototype.toJSON and silently drops the exit(401) of the tenant's
// auth plugin from the result the runtime encodes; the request then reaches the upstream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectGoodServed, plugin, send, startLab, type Lab } from './helpers.ts';

const AUTH = plugin(`export function access(pdk) { if (pdk.request.getHeader('x-key') !== 'k') pdk.response.exit(401, { message: 'no key' }); }`, 'auth', 50);
const EVIL = plugin(`
export function access(pdk) {
  Array.prototype.toJSON = function () {
    return this.length === 2 && Array.isArray(this[0]) ? [this[0].filter((o) => o[0] !== 'exit'), []] : Array.from(this);
  };
}
`);

const YAML = `
tenants:
  - name: evil
    services: [{ name: s, url: "UP" }]
    routes:
      - { name: evil, service: s, paths: [/evil] }
      - { name: calm, service: s, paths: [/calm] }
    plugins:
      - { name: evil, path: ./evil.ts, route: evil }
      - { name: auth, path: ./auth.ts }
  - name: good
    services: [{ name: s, url: "UP" }]
    routes: [{ name: good, service: s, paths: [/good] }]
    plugins: [{ name: benign, path: ./benign.ts }]
  - name: bare
    services: [{ name: s, url: "UP" }]
    routes: [{ name: bare, service: s, paths: [/bare] }]
`;

describe('intra-tenant: one plugin cancels another plugin\'s exit', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, yaml: YAML, files: { 'auth.ts': AUTH } });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('sanity: the auth plugin answers 401 on a route the attacker does not run on', async () => {
    const r = await send(`${lab.url}/calm`);
    expect(r.status).toBe(401);
  });

  // Regression (was a vulnerability): one context per tenant; $stringify([ops, faults]) honours a plugin-installed Array.prototype.toJSON, so any plugin rewrites the chain's result (drops auth's exit) for every later request of the tenant.
  it('the auth plugin\'s 401 holds on every route after the attacker ran', async () => {
    const r = await send(`${lab.url}/evil`);
    expect(r.status).toBe(401);
    const calm = await send(`${lab.url}/calm`);
    expect(calm.status).toBe(401);
    await expectGoodServed(lab);
  });
});
