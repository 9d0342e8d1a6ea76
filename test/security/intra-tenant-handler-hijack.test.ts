// prototype trick at load time: the plugin's top-level code defines a setter/getter for
// "2" (the ACCESS phase bit) on Object.prototype. The runtime's setup writes
// `handlers[2] = fn` on a plain object, so the setter swallows every plugin's access
// handler and the getter hands out a no-op: the tenant's auth plugin never runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectGoodServed, plugin, send, startLab, type Lab } from './helpers.ts';

const AUTH = plugin(`export function access(pdk) { if (pdk.request.getHeader('x-key') !== 'k') pdk.response.exit(401, { message: 'no key' }); }`, 'auth', 50);
const EVIL = plugin(`
Object.defineProperty(Object.prototype, '2', { configurable: true, set(v) {}, get() { return function () {}; } });
export function access(pdk) {}
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

describe('intra-tenant: Object.prototype setter hijacks the handler table at setup', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, yaml: YAML, files: { 'auth.ts': AUTH } });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('the neighbour tenant is unaffected', async () => {
    await expectGoodServed(lab);
  });

  // Regression (was a vulnerability): runtime setup() builds `handlers` as a plain {} and assigns handlers[bit] after plugin top-level code ran; an inherited setter/getter on Object.prototype replaces every instance's handler (auth bypass on all routes of the tenant).
  it('the auth plugin still runs: 401 without the key', async () => {
    expect((await send(`${lab.url}/calm`)).status).toBe(401);
    expect((await send(`${lab.url}/evil`)).status).toBe(401);
    expect((await send(`${lab.url}/calm`, { headers: { 'x-key': 'k' } })).status).toBe(200);
  });
});
