// A consumer-scoped plugin whose breaker is open: the dispatcher switches to the consumer's
// chain in the middle of a call, after the host's up-front breaker check. The host has the
// runtime skip every blocked instance of the chains the call could switch to, so none runs;
// the consumer's request fails fast (fail-closed) or goes on without it (fail-open); other
// consumers and anonymous requests are not failed for it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const AUTH = pluginSource('auth', `
export function access(pdk: any) {
  const id = pdk.request.getHeader('x-consumer');
  if (id !== undefined) pdk.client.authenticate({ id }, null);
}`, 1000);
const flaky = (name: string, priority: number) => pluginSource(name, `
export function access(pdk: any) {
  if (pdk.request.getHeader('x-fail') === '1') throw new Error('asked to fail');
  pdk.response.setHeader('x-${name}', 'ran');
}`, priority);

describe('security: a blocked consumer-scoped plugin is never run after the switch', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
sandbox: { breaker: { faults: 2, windowMs: 60000, cooldownMs: 60000 } }
tenants:
  - name: t
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s }]
    consumers: [{ id: c-alice, username: alice }, { id: c-bob, username: bob }, { id: c-carol, username: carol }]
    plugins:
      - { name: auth, path: ./auth.ts }
      - { name: strict, path: ./strict.ts, consumer: alice }
      - { name: soft, path: ./soft.ts, consumer: bob, failOpen: true }
`, { 'auth.ts': AUTH, 'strict.ts': flaky('strict', 500), 'soft.ts': flaky('soft', 400) });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  const as = (consumer: string | null, fail = false) =>
    send(`${gw.url}/`, { headers: { ...(consumer === null ? {} : { 'x-consumer': consumer }), ...(fail ? { 'x-fail': '1' } : {}) } });

  it('fail-closed: the consumer fails fast with 503 once its plugin\'s breaker is open; others are served', async () => {
    expect((await as('c-alice')).headers['x-strict']).toBe('ran');
    expect((await as('c-alice', true)).status).toBe(500);
    expect((await as('c-alice', true)).status).toBe(500); // the breaker opens
    const blocked = await as('c-alice');
    expect(blocked.status).toBe(503);
    expect(blocked.json().error.code).toBe('ISG_ERR_PLUGIN_UNAVAILABLE');
    const anon = await as(null);
    expect(anon.status).toBe(200);
    expect(anon.headers['x-strict']).toBeUndefined();
    expect((await as('c-carol')).status).toBe(200);
  });

  it('fail-open: the consumer goes on without its plugin, which does not run', async () => {
    expect((await as('c-bob')).headers['x-soft']).toBe('ran');
    expect((await as('c-bob', true)).status).toBe(200);
    expect((await as('c-bob', true)).status).toBe(200); // the breaker opens
    const r = await as('c-bob');
    expect(r.status).toBe(200);
    expect(r.headers['x-soft']).toBeUndefined();
  });
});
