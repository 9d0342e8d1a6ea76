// Kong 3's configure(configs): run when the tenant's isolate is built, once per plugin with
// all its instances' configs (defaults applied), before any request runs there; again on a
// reload that changes the tenant, and again whenever the isolate is rebuilt.
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, waitFor, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const CONF = pluginSource('conf', `
import type { ConfigurePdk, PluginModule } from 'isogate/pdk';
const made = new WeakMap<object, string>();
let calls = 0;
let seen: unknown[] = [];
let arrayFrozen = false;
let pdkKeys = '';
let self = '';
export function configure(this: unknown, pdk: ConfigurePdk, configs: readonly { greeting: string; n: number }[]) {
  calls++;
  self = this === undefined ? 'undefined' : this === globalThis ? 'global' : 'leaked: ' + Object.keys(this as object).join(',');
  arrayFrozen = Object.isFrozen(configs) && Array.isArray(configs);
  seen = configs.map((c) => ({ ...c }));
  for (const c of configs) made.set(c, c.greeting.toUpperCase() + ':' + c.n);
  pdkKeys = Object.keys(pdk).sort().join(',') + ' log:' + Object.keys(pdk.log).sort().join(',');
  pdk.log.info('configured ' + configs.length + ' on ' + pdk.node.getId());
}
export function access(pdk: any, config: object) {
  if (pdk.request.getHeader('x-spin') === '1') for (;;) {}
  pdk.response.exit(200, { calls, seen, mine: made.get(config) ?? null, arrayFrozen, pdkKeys, self });
}
export const _typed = { name: 'conf', version: '1.0.0', priority: 100, configure, access } satisfies PluginModule<{ greeting: string; n: number }>;
`);

const SCHEMA = JSON.stringify({
  type: 'object',
  properties: {
    greeting: { type: 'string', default: 'hello', description: 'Greeting.' },
    n: { type: 'integer', default: 1, description: 'A number.' },
  },
});

function yaml(upPort: number, a: string, b: string): string {
  return `
sandbox: { breaker: { faults: 100000 } }
tenants:
  - name: t1
    limits: { cpuMs: 50 }
    services: [{ name: s, url: "http://127.0.0.1:${upPort}" }]
    routes:
      - { name: a, service: s, paths: [/a] }
      - { name: b, service: s, paths: [/b] }
    plugins:
      - { name: conf, path: ./conf.ts, schema: ./conf.schema.json, route: a, config: ${a} }
      - { name: conf, path: ./conf.ts, schema: ./conf.schema.json, route: b, config: ${b} }
`;
}

describe('configure(configs)', () => {
  let up: Upstream;
  let gw: TestGateway;
  const { logger, lines } = captureLogger('info');
  const configured = () => lines.filter((l) => l.phase === 'configure' && String(l.msg).startsWith('configured '));
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(yaml(up.port, '{ greeting: hi }', '{ n: 7 }'), { 'conf.ts': CONF, 'conf.schema.json': SCHEMA }, { logger });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('gets every instance config of the plugin, defaults applied, once, before the first request', async () => {
    const a = (await send(`${gw.url}/a`)).json();
    const b = (await send(`${gw.url}/b`)).json();
    expect(a.seen).toEqual([{ greeting: 'hi', n: 1 }, { greeting: 'hello', n: 7 }]);
    expect(a.arrayFrozen).toBe(true);
    expect(a.calls).toBe(1);
    expect(b.calls).toBe(1);
    // the configs are the objects handlers get: what configure made of each is found by identity
    expect(a.mine).toBe('HI:1');
    expect(b.mine).toBe('HELLO:7');
    expect(a.pdkKeys).toBe('log,node log:debug,error,info,warn');
    expect(['undefined', 'global']).toContain(a.self); // no runtime record as \`this\`
  });

  it('its log lines reach the gateway log with phase configure and the plugin named', () => {
    const l = configured();
    expect(l).toHaveLength(1);
    expect(l[0]).toMatchObject({ tenant: 't1', plugin: 't1/conf@route:a', phase: 'configure', level: 30 });
    expect(String(l[0].msg)).toMatch(/^configured 2 on [0-9a-f-]{36}$/);
  });

  it('runs again in a rebuilt isolate (here after a CPU kill), before its first request there', async () => {
    const killed = await send(`${gw.url}/a`, { headers: { 'x-spin': '1' } });
    expect(killed.status).toBe(500);
    const a = (await send(`${gw.url}/a`)).json();
    expect(a.calls).toBe(1); // module state is the new isolate's
    expect(a.mine).toBe('HI:1');
    expect(configured()).toHaveLength(2);
  });

  it('a reload that changes the configs calls it again with the new ones', async () => {
    writeFileSync(gw.configFile, yaml(up.port, '{ greeting: bonjour, n: 2 }', '{ greeting: hola }'));
    expect((await gw.gw.reload()).ok).toBe(true);
    const a = await waitFor(async () => {
      const r = (await send(`${gw.url}/a`)).json();
      return r.mine === 'BONJOUR:2' ? r : null;
    }, 5000, 'the new config');
    expect(a.seen).toEqual([{ greeting: 'bonjour', n: 2 }, { greeting: 'hola', n: 1 }]);
    expect(a.calls).toBe(1);
    expect((await send(`${gw.url}/b`)).json().mine).toBe('HOLA:1');
  });

  it('a reload that leaves the tenant unchanged keeps its configured isolate', async () => {
    const before = configured().length;
    expect((await gw.gw.reload()).ok).toBe(true);
    expect((await send(`${gw.url}/a`)).json().mine).toBe('BONJOUR:2');
    expect(configured()).toHaveLength(before);
  });
});
