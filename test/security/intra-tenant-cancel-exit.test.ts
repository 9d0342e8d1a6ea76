// prototype trick across plugins of ONE tenant (one isolate, one context): a marketplace
// plugin installs Array.prototype.toJSON and silently drops the exit(401) of the tenant's
// auth plugin from the result the runtime encodes; the request then reaches the upstream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectGoodServed, plugin, send, type Lab } from './helpers.ts';
import { startAuthLab } from './intra-tenant-helpers.ts';

const EVIL = plugin(`
export function access(pdk) {
  Array.prototype.toJSON = function () {
    return this.length === 2 && Array.isArray(this[0]) ? [this[0].filter((o) => o[0] !== 'exit'), []] : Array.from(this);
  };
}
`);

describe('intra-tenant: one plugin cancels another plugin\'s exit', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startAuthLab(EVIL);
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
