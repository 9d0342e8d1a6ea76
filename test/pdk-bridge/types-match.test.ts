import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** pdk-bridge/types.ts names exactly what the runtime gives plugins: namespace by namespace, member by member. */
const TYPES = readFileSync(join(resolve(import.meta.dirname, '..', '..'), 'pdk-bridge', 'types.ts'), 'utf8');

function members(iface: string): string[] {
  const start = TYPES.indexOf(`export interface ${iface} {`);
  if (start < 0) throw new Error(`no interface ${iface} in types.ts`);
  const body = TYPES.slice(start, TYPES.indexOf('\n}', start));
  return [...body.matchAll(/^ {2}(?:readonly )?(\w+)[(:?]/gm)].map((m) => m[1]).sort();
}

const PLUGIN = pluginSource('keys', `
export function access(pdk: any) {
  const out: Record<string, string[]> = {};
  for (const ns of Object.keys(pdk)) out[ns] = Object.keys(pdk[ns]).sort();
  pdk.response.exit(200, out);
}`);

describe('pdk-bridge/types.ts and the runtime agree', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/] }]
    plugins: [{ name: keys, path: ./keys.ts }]
`, { 'keys.ts': PLUGIN });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('has the same namespaces and, in each, the same functions', async () => {
    const got = (await send(`${gw.url}/`)).json() as Record<string, string[]>;
    const pdkAt = TYPES.indexOf('export interface Pdk {');
    const namespaces = [...TYPES.slice(pdkAt, TYPES.indexOf('\n}', pdkAt)).matchAll(/^ {2}readonly (\w+): (\w+);/gm)];
    expect(namespaces.map((m) => m[1]).sort()).toEqual(Object.keys(got).sort());
    for (const [, ns, iface] of namespaces) {
      // The consumer functions of client come from another file of the runtime when it is there.
      const want = ns === 'client' ? members(iface).filter((m) => got.client.includes(m) || !/Consumer|Credential|authenticate/.test(m)) : members(iface);
      expect(got[ns], ns).toEqual(want);
    }
  });
});
