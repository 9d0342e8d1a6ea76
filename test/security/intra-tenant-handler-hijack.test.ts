// prototype trick at load time: the plugin's top-level code defines a setter/getter for
// "2" (the ACCESS phase bit) on Object.prototype. The runtime's setup writes
// `handlers[2] = fn` on a plain object, so the setter swallows every plugin's access
// handler and the getter hands out a no-op: the tenant's auth plugin never runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectGoodServed, plugin, send, type Lab } from './helpers.ts';
import { startAuthLab } from './intra-tenant-helpers.ts';

const EVIL = plugin(`
Object.defineProperty(Object.prototype, '2', { configurable: true, set(v) {}, get() { return function () {}; } });
export function access(pdk) {}
`);

describe('intra-tenant: Object.prototype setter hijacks the handler table at setup', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startAuthLab(EVIL);
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
