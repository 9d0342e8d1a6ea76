// sandbox.prewarm: tenants' isolates built at config load, in the background, before their
// first request (sandbox/prewarm.ts). Bounded by the count and by maxIsolates; a plugin
// whose configure fails or spins is disabled and logged as at a request, under its limit.
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, waitFor, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const STAMP = pluginSource('stamp', `export function access(pdk: any, config: any) { pdk.response.setHeader('x-stamp', config.tag); }`);
const BAD_CONFIGURE = pluginSource('bad', `export function access(pdk: any) { pdk.response.setHeader('x-bad', 'ran'); }
export function configure(pdk: any, configs: any) { throw new Error('refused ' + configs.length + ' configs'); }`);
const SPIN_CONFIGURE = pluginSource('spin', `export function access(pdk: any) { pdk.response.setHeader('x-spin', 'ran'); }
export function configure(pdk: any, configs: any) { while (true) {} }`);

// The first plugin of a pre-warmed tenant gets the context its pool blank made ahead
// (Blank.realm); the second must still have a realm of its own.
const PATCHER = pluginSource('patcher', `(globalThis as any).leak = 'patcher';
Array.prototype.push = function () { return -1; };
export function access(pdk: any) { pdk.response.setHeader('x-patcher', String([].push(1 as never))); }`);
const READER = pluginSource('reader', `export function access(pdk: any) {
  pdk.response.setHeader('x-leak', typeof (globalThis as any).leak);
  pdk.response.setHeader('x-push', String([].push(1 as never)));
}`);

function tenant(name: string, up: string, plugins: string): string {
  return `  - name: ${name}
    services: [{ name: s, url: "${up}" }]
    routes: [{ name: r, service: s, paths: [/${name}] }]
    plugins: ${plugins}`;
}

const created = (lines: LogLine[], tenant: string): number => lines.filter((l) => l.msg === 'isolate created' && l.tenant === tenant).length;

describe('sandbox.prewarm', () => {
  let up: Upstream | undefined;
  let gw: TestGateway | undefined;
  afterEach(async () => {
    await gw?.stop();
    await up?.close();
    gw = undefined;
    up = undefined;
  });

  it('builds the first N tenants before any request; their first request creates no isolate, the others still do', async () => {
    up = await startUpstream(echoHandler);
    const { logger, lines } = captureLogger('debug');
    const t = (n: string) => tenant(n, up!.url, `[{ name: stamp, path: ./stamp.ts, config: { tag: ${n} } }]`);
    gw = await startGateway(`sandbox: { prewarm: 2 }\ntenants:\n${['a', 'b', 'c'].map(t).join('\n')}\n`, { 'stamp.ts': STAMP }, { logger });
    await waitFor(() => lines.some((l) => l.msg === 'isolates pre-warmed'), 5000, 'the pre-warm pass');
    expect(gw.gw.liveIsolates()).toBe(2);
    expect(created(lines, 'a') + created(lines, 'b') + created(lines, 'c')).toBe(2);
    expect(lines.find((l) => l.msg === 'isolates pre-warmed')).toMatchObject({ built: 2, stoppedBy: null });

    for (const name of ['a', 'b', 'c']) {
      const r = await send(`${gw.url}/${name}`);
      expect(r.status).toBe(200);
      expect(r.headers['x-stamp']).toBe(name);
    }
    expect([created(lines, 'a'), created(lines, 'b'), created(lines, 'c')]).toEqual([1, 1, 1]);
    expect(gw.gw.liveIsolates()).toBe(3);
  });

  it('never builds more than maxIsolates', async () => {
    up = await startUpstream(echoHandler);
    const { logger, lines } = captureLogger('debug');
    const t = (n: string) => tenant(n, up!.url, `[{ name: stamp, path: ./stamp.ts, config: { tag: ${n} } }]`);
    gw = await startGateway(`sandbox: { prewarm: 10, maxIsolates: 1 }\ntenants:\n${['a', 'b', 'c'].map(t).join('\n')}\n`, { 'stamp.ts': STAMP }, { logger });
    await waitFor(() => lines.some((l) => l.msg === 'isolates pre-warmed'), 5000, 'the pre-warm pass');
    expect(gw.gw.liveIsolates()).toBe(1);
    expect(created(lines, 'a')).toBe(1);
    expect((await send(`${gw.url}/a`)).headers['x-stamp']).toBe('a');
    expect(created(lines, 'a')).toBe(1);
  });

  it('stops before the live heaps would pass maxTotalHeapMb', async () => {
    up = await startUpstream(echoHandler);
    const { logger, lines } = captureLogger('debug');
    const names = Array.from({ length: 30 }, (_, i) => `t${i}`);
    const t = (n: string) => tenant(n, up!.url, `[{ name: stamp, path: ./stamp.ts, config: { tag: ${n} } }]`);
    gw = await startGateway(`sandbox: { prewarm: 30, maxTotalHeapMb: 8 }\ntenants:\n${names.map(t).join('\n')}\n`, { 'stamp.ts': STAMP }, { logger });
    const done = await waitFor(() => lines.find((l) => l.msg === 'isolates pre-warmed'), 10000, 'the pre-warm pass');
    expect(done).toMatchObject({ stoppedBy: 'heap' });
    const built = done.built as number;
    expect(built).toBeGreaterThan(0);
    expect(built).toBeLessThan(30);
    expect(gw.gw.liveIsolates()).toBe(built);
    let heap = 0;
    for (const sb of gw.gw.snapshot.sandboxes.values()) heap += (sb.heap()?.used ?? 0) + (sb.heap()?.external ?? 0);
    expect(heap).toBeLessThanOrEqual(8 * 1024 * 1024);
  });

  it('a failing configure is disabled and logged at pre-warm, before any request; the tenant is served', async () => {
    up = await startUpstream(echoHandler);
    const { logger, lines } = captureLogger('debug');
    const plugins = `[{ name: bad, path: ./bad.ts }, { name: stamp, path: ./stamp.ts, config: { tag: a } }]`;
    gw = await startGateway(`sandbox: { prewarm: 1 }\ntenants:\n${tenant('a', up.url, plugins)}\n`, { 'stamp.ts': STAMP, 'bad.ts': BAD_CONFIGURE }, { logger });
    await waitFor(() => lines.some((l) => l.msg === 'isolates pre-warmed'), 5000, 'the pre-warm pass');
    const disabled = lines.filter((l) => l.msg.startsWith('plugin disabled for this config'));
    expect(disabled).toHaveLength(1);
    expect(disabled[0]).toMatchObject({ tenant: 'a', plugin: 'bad', reason: 'threw' });
    expect(disabled[0].msg).toContain('refused 1 configs');
    const r = await send(`${gw.url}/a`);
    expect(r.status).toBe(500); // the disabled instance is not fail-open: its chain fails, as without pre-warming
    expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    expect(created(lines, 'a')).toBe(1);
    expect(lines.filter((l) => l.msg.startsWith('plugin disabled for this config'))).toHaveLength(1);
  });

  // Hostile: pre-warming runs plugin code (configure) with no request in flight; it must
  // stay under the plugin's CPU limit and the watchdog, and never hold the loop.
  it('a spinning configure is stopped at its cpuMs during pre-warm; the loop is not held, the neighbour is served', async () => {
    up = await startUpstream(echoHandler);
    const { logger, lines } = captureLogger('debug');
    const spin = `[{ name: spin, path: ./spin.ts, failOpen: true, limits: { cpuMs: 30 } }, { name: stamp, path: ./stamp.ts, config: { tag: e } }]`;
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    gw = await startGateway(`sandbox: { prewarm: 2 }\ntenants:\n${tenant('e', up.url, spin)}\n${tenant('n', up.url, '[{ name: stamp, path: ./stamp.ts, config: { tag: n } }]')}\n`, { 'stamp.ts': STAMP, 'spin.ts': SPIN_CONFIGURE }, { logger });
    await waitFor(() => lines.some((l) => l.msg === 'isolates pre-warmed'), 8000, 'the pre-warm pass');
    h.disable();
    expect(h.max / 1e6).toBeLessThan(600);
    const disabled = lines.filter((l) => l.msg.startsWith('plugin disabled for this config'));
    expect(disabled.map((l) => [l.tenant, l.plugin, l.reason])).toEqual([['e', 'spin', 'cpu']]);
    const r = await send(`${gw.url}/e`);
    expect(r.status).toBe(200); // fail-open: skipped, its neighbour in the chain runs
    expect(r.headers['x-stamp']).toBe('e');
    expect(r.headers['x-spin']).toBeUndefined();
    expect((await send(`${gw.url}/n`)).headers['x-stamp']).toBe('n');
    expect(created(lines, 'e')).toBe(1);
    expect(created(lines, 'n')).toBe(1);
  });

  it("the plugin given the blank's ready-made realm shares it with no other plugin", async () => {
    up = await startUpstream(echoHandler);
    const { logger, lines } = captureLogger('debug');
    const plugins = `[{ name: patcher, path: ./patcher.ts }, { name: reader, path: ./reader.ts }]`;
    gw = await startGateway(`sandbox: { prewarm: 1 }\ntenants:\n${tenant('a', up.url, plugins)}\n`, { 'patcher.ts': PATCHER, 'reader.ts': READER }, { logger });
    await waitFor(() => lines.some((l) => l.msg === 'isolates pre-warmed'), 5000, 'the pre-warm pass');
    const r = await send(`${gw.url}/a`);
    expect(r.status).toBe(200);
    expect(r.headers['x-patcher']).toBe('-1'); // its own realm is patched
    expect(r.headers['x-leak']).toBe('undefined');
    expect(r.headers['x-push']).toBe('1');
    expect(created(lines, 'a')).toBe(1);
  });

  it('a reload pre-warms the tenants whose plugins changed', async () => {
    up = await startUpstream(echoHandler);
    const { logger, lines } = captureLogger('debug');
    const yaml = (tag: string) => `sandbox: { prewarm: 5 }\ntenants:\n${tenant('a', up!.url, `[{ name: stamp, path: ./stamp.ts, config: { tag: ${tag} } }]`)}\n${tenant('b', up!.url, '[{ name: stamp, path: ./stamp.ts, config: { tag: b } }]')}\n`;
    gw = await startGateway(yaml('a1'), { 'stamp.ts': STAMP }, { logger });
    await waitFor(() => lines.filter((l) => l.msg === 'isolates pre-warmed').length === 1, 5000, 'the first pass');
    writeFileSync(gw.configFile, yaml('a2'));
    expect((await gw.gw.reload()).ok).toBe(true);
    await waitFor(() => lines.filter((l) => l.msg === 'isolates pre-warmed').length === 2, 5000, 'the pass after the reload');
    expect(lines.filter((l) => l.msg === 'isolates pre-warmed')[1]).toMatchObject({ built: 1 });
    expect([created(lines, 'a'), created(lines, 'b')]).toEqual([2, 1]);
    expect((await send(`${gw.url}/a`)).headers['x-stamp']).toBe('a2');
    expect([created(lines, 'a'), created(lines, 'b')]).toEqual([2, 1]);
  });
});
