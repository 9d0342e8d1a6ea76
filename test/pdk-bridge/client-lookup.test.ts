import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/**
 * pdk.client's async lookups: loadConsumer, findCredential, getConsumerGroups (what the
 * bundled auth plugins build on). x-do names the lookup, x-arg its JSON arguments.
 */
const LOOKUP = pluginSource('lookup', `
export async function access(pdk: any) {
  const what = pdk.request.getHeader('x-do');
  if (what === undefined) return;
  const args = JSON.parse(pdk.request.getHeader('x-arg') ?? '[]');
  if (what === 'authThenGroups') {
    pdk.client.authenticate({ id: args[0] }, null);
    pdk.response.exit(200, { groups: await pdk.client.getConsumerGroups() });
  }
  let out: unknown;
  try {
    out = { v: await pdk.client[what](...args) };
  } catch (e: any) {
    out = { error: e.constructor.name + ': ' + e.message };
  }
  pdk.response.exit(200, out);
}
export function headerFilter(pdk: any) {
  if (pdk.request.getHeader('x-late') === undefined) return;
  try { pdk.client.findCredential('key-auth', 'k'); pdk.response.setHeader('x-late', 'allowed'); }
  catch (e: any) { pdk.response.setHeader('x-late', e.message); }
}`);

const config = (upUrl: string, key: string) => `
tenants:
  - name: t1
    services: [{ name: s, url: "${upUrl}" }]
    routes: [{ name: r, service: s }]
    consumers:
      - id: c-alice
        username: alice
        tags: [gold]
        credentials:
          key-auth: [{ id: k-alice, key: ${key} }]
          jwt: [{ id: j-alice, key: alice-iss, algorithm: HS384, secret: s }]
          acl: [{ group: b }, { group: a }]
    plugins: [{ name: lookup, path: ./lookup.ts }]
`;

describe('pdk.client lookups', () => {
  let up: Upstream;
  let gw: TestGateway;
  const ask = async (what: string, ...args: unknown[]) => (await send(`${gw.url}/`, { headers: { 'x-do': what, 'x-arg': JSON.stringify(args) } })).json();

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(config(up.url, 'key-one'), { 'lookup.ts': LOOKUP });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('loadConsumer: by id; by username only when asked (Kong\'s load_consumer)', async () => {
    const alice = { id: 'c-alice', username: 'alice', customId: null, tags: ['gold'] };
    expect(await ask('loadConsumer', 'c-alice')).toEqual({ v: alice });
    expect(await ask('loadConsumer', 'alice')).toEqual({ v: null });
    expect(await ask('loadConsumer', 'alice', true)).toEqual({ v: alice });
  });

  it('findCredential: the consumer and the credential\'s public fields (a jwt one\'s algorithm)', async () => {
    expect((await ask('findCredential', 'key-auth', 'key-one')).v).toEqual({ consumer: { id: 'c-alice', username: 'alice', customId: null, tags: ['gold'] }, credential: { id: 'k-alice', kind: 'key-auth', consumer: { id: 'c-alice' } } });
    expect((await ask('findCredential', 'jwt', 'alice-iss')).v.credential).toEqual({ id: 'j-alice', kind: 'jwt', consumer: { id: 'c-alice' }, algorithm: 'HS384' });
    expect((await ask('findCredential', 'key-auth', 'alice-iss')).v).toBeNull();
  });

  it('getConsumerGroups: config order; the authenticated consumer by default; an error without one', async () => {
    expect(await ask('getConsumerGroups', 'c-alice')).toEqual({ v: ['b', 'a'] });
    expect(await ask('getConsumerGroups', 'nobody')).toEqual({ v: null });
    expect(await ask('authThenGroups', 'c-alice')).toEqual({ groups: ['b', 'a'] });
    expect((await ask('getConsumerGroups')).error).toBe('Error: client.getConsumerGroups: no consumer is authenticated');
  });

  it('lookups are refused outside rewrite and access, naming the phases', async () => {
    const r = await send(`${gw.url}/`, { headers: { 'x-late': '1' } });
    expect(r.headers['x-late']).toBe('client.findCredential is not allowed in phase headerFilter (allowed in: rewrite, access, response)');
  });

  it('a reload is seen by the next request, even when the tenant keeps its isolate', async () => {
    writeFileSync(gw.configFile, config(up.url, 'key-two'));
    const res = await gw.gw.reload();
    expect(res.ok).toBe(true);
    expect((await ask('findCredential', 'key-auth', 'key-one')).v).toBeNull();
    expect((await ask('findCredential', 'key-auth', 'key-two')).v.credential.id).toBe('k-alice');
  });
});
