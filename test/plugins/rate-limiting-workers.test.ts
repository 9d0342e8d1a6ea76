import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, pluginSource, startUpstream, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';
import { burst, inOneWindow } from './rate-limiting-helpers.ts';

/** Names the isolate that served (module state: one isolate per tenant per worker). */
const WHO = pluginSource('who', `
let me: string | null = null;
export async function access(pdk: any) {
  if (me === null) me = await pdk.crypto.randomBytes(8, 'hex');
  pdk.response.setHeader('x-isolate', me);
}`, 2000);


describe('rate-limiting, policy local, two worker processes of the real CLI', () => {
  let up: Upstream;
  let gw: GatewayProcess;

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 2
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/limited] }]
    plugins:
      - { name: who, path: ./who.ts }
      - { name: rate-limiting, config: { hour: 20, limit_by: service } }
`, { 'who.ts': WHO });
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('the workers share the node counters: exactly the limit passes', { timeout: 60_000 }, async () => {
    await inOneWindow(3600, 30_000);
    const replies = await burst((i) => `${gw.url}/limited/${i}`, 60, 12);
    expect(replies.filter((r) => r.status === 200).length).toBe(20);
    expect(replies.filter((r) => r.status === 429).length).toBe(40);
    // Both workers served (one isolate of the tenant each): the count was the node's, not a worker's.
    expect(new Set(replies.map((r) => r.headers['x-isolate']).filter((h) => h !== undefined)).size).toBe(2);
  });
});
