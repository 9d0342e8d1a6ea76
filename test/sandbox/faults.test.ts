import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, type LogLine, type Reply, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** Misbehaves only when asked to (header), so the same isolate can show it recovered. */
const LOOPER = pluginSource(
  'looper',
  `
export function access(pdk: any) {
  if (pdk.request.getHeader('x-fault') === 'loop') { while (true) {} }
  pdk.response.setHeader('x-alive', 'looper');
}`,
  200,
);

const HOG = pluginSource(
  'hog',
  `
const keep: unknown[] = [];
export function access(pdk: any) {
  if (pdk.request.getHeader('x-fault') === 'oom') { for (;;) keep.push(new Array(100000).fill(Math.random())); }
  pdk.response.setHeader('x-alive', 'hog');
}`,
  200,
);

const THROWER = pluginSource(
  'thrower',
  `
export async function access(pdk: any) {
  const mode = pdk.request.getHeader('x-fault');
  if (mode === 'throw') throw new Error('kaboom');
  if (mode === 'reject') await Promise.reject(new TypeError('async kaboom'));
  if (mode === 'hang') await new Promise(() => {});
  pdk.response.setHeader('x-alive', 'thrower');
}`,
  200,
);

/** Runs after the faulty plugin in a fail-open chain. */
const STAMP = pluginSource('stamp', `export function access(pdk: any) { pdk.response.setHeader('x-stamp', 'ran'); }`, 10);

describe('plugin faults', () => {
  let up: Upstream;
  let gw: TestGateway;
  let lines: LogLine[];
  let hits = 0;

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      hits++;
      echoHandler(req, res);
    });
    const captured = captureLogger('info');
    lines = captured.lines;
    const svc = `services: [{ name: s, url: "${up.url}" }]`;
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: loop
    limits: { cpuBudgetMs: 1000 }
    ${svc}
    routes: [{ name: r, service: s, paths: [/loop] }]
    plugins: [{ name: looper, path: ./looper.ts, limits: { cpuMs: 50 } }]
  - name: oom
    limits: { memoryMb: 16, cpuBudgetMs: 1000 }
    ${svc}
    routes: [{ name: r, service: s, paths: [/oom] }]
    plugins: [{ name: hog, path: ./hog.ts, limits: { cpuMs: 1000 } }]
  - name: throw
    ${svc}
    routes: [{ name: r, service: s, paths: [/throw] }]
    plugins: [{ name: thrower, path: ./thrower.ts }]
  - name: good
    ${svc}
    routes: [{ name: r, service: s, paths: [/good] }]
    plugins:
      - name: header-transformer
        config: { response: { set: { x-good: "yes" } } }
  - name: open
    limits: { cpuBudgetMs: 1000 }
    ${svc}
    routes:
      - { name: loop, service: s, paths: [/open/loop] }
      - { name: throw, service: s, paths: [/open/throw] }
    plugins:
      - { name: looper, path: ./looper.ts, route: loop, failOpen: true, limits: { cpuMs: 50 } }
      - { name: thrower, path: ./thrower.ts, route: throw, failOpen: true }
      - { name: stamp, path: ./stamp.ts }
`,
      { 'looper.ts': LOOPER, 'hog.ts': HOG, 'thrower.ts': THROWER, 'stamp.ts': STAMP },
      { logger: captured.logger },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  const fault = (path: string, mode: string) => send(`${gw.url}${path}`, { headers: { 'x-fault': mode } });

  function expectPluginFailed(r: Reply): string {
    expect(r.status).toBe(500);
    expect(r.headers['content-type']).toBe('application/json');
    const body = r.json();
    expect(body.error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    expect(body.error.id).toMatch(/^[0-9a-f]{16}$/);
    expect(r.headers['x-isogate-error-id']).toBe(body.error.id);
    return body.error.id as string;
  }

  function faultLine(id: string): LogLine {
    const line = lines.find((l) => l.errorId === id);
    expect(line, `log line for error ${id}`).toBeDefined();
    return line!;
  }

  /** Sends `bad` while 30 requests go to the good tenant; all of those must succeed. */
  async function withNeighbours(bad: () => Promise<Reply>): Promise<{ reply: Reply; ms: number }> {
    const t0 = performance.now();
    const badReply = bad().then((reply) => ({ reply, ms: performance.now() - t0 }));
    const good = await Promise.all(Array.from({ length: 30 }, () => send(`${gw.url}/good`)));
    for (const g of good) {
      expect(g.status).toBe(200);
      expect(g.headers['x-good']).toBe('yes');
    }
    return badReply;
  }

  it('stops `while (true) {}` at its CPU limit, fails only that request, and recreates the isolate', async () => {
    expect((await send(`${gw.url}/loop`)).headers['x-alive']).toBe('looper');
    const before = hits;
    const { reply, ms } = await withNeighbours(() => fault('/loop', 'loop'));
    const id = expectPluginFailed(reply);
    expect(ms).toBeLessThan(2000);
    expect(faultLine(id)).toMatchObject({ tenant: 'loop', plugin: 'looper', reason: 'cpu', phase: 'access' });
    expect(hits - before).toBe(30); // the good tenant's requests only
    const after = await send(`${gw.url}/loop`);
    expect(after.status).toBe(200);
    expect(after.headers['x-alive']).toBe('looper');
    const metrics = (await send(`${gw.adminUrl}/metrics`)).body;
    expect(metrics).toMatch(/isogate_isolates_created_total\{tenant="loop"\} 2\b/);
  });

  it('stops a plugin at its heap limit (memoryMb 16) and recreates the isolate', async () => {
    expect((await send(`${gw.url}/oom`)).headers['x-alive']).toBe('hog');
    const { reply, ms } = await withNeighbours(() => fault('/oom', 'oom'));
    const id = expectPluginFailed(reply);
    expect(ms).toBeLessThan(5000);
    expect(faultLine(id)).toMatchObject({ tenant: 'oom', plugin: 'hog', reason: 'memory' });
    const after = await send(`${gw.url}/oom`);
    expect(after.status).toBe(200);
    expect(after.headers['x-alive']).toBe('hog');
  });

  it('fails the request of a plugin that throws, and keeps its isolate', async () => {
    const { reply } = await withNeighbours(() => fault('/throw', 'throw'));
    const id = expectPluginFailed(reply);
    const line = faultLine(id);
    expect(line).toMatchObject({ tenant: 'throw', plugin: 'thrower', reason: 'threw', instance: 'throw/thrower@tenant' });
    expect(line.msg).toContain('Error: kaboom');
    expect(reply.body).not.toContain('kaboom'); // details stay in the log
    expect((await send(`${gw.url}/throw`)).headers['x-alive']).toBe('thrower');
    const metrics = (await send(`${gw.adminUrl}/metrics`)).body;
    expect(metrics).toMatch(/isogate_isolates_created_total\{tenant="throw"\} 1\b/);
  });

  it('fails the request of a plugin whose promise rejects or never settles', async () => {
    const rejected = await fault('/throw', 'reject');
    expect(faultLine(expectPluginFailed(rejected)).msg).toContain('TypeError: async kaboom');
    const t0 = performance.now();
    const hung = await fault('/throw', 'hang');
    expect(faultLine(expectPluginFailed(hung)).reason).toBe('wall');
    expect(performance.now() - t0).toBeLessThan(2000);
    expect((await send(`${gw.url}/throw`)).status).toBe(200);
  });

  it('skips a fail-open plugin that hits its CPU limit and runs the rest of the chain', async () => {
    const before = hits;
    const t0 = performance.now();
    const r = await fault('/open/loop', 'loop');
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(r.status).toBe(200);
    expect(r.headers['x-stamp']).toBe('ran');
    expect(r.headers).not.toHaveProperty('x-alive');
    expect(hits).toBe(before + 1);
    expect(lines.some((l) => l.tenant === 'open' && l.plugin === 'looper' && l.reason === 'cpu' && l.failOpen === true)).toBe(true);
  });

  it('skips a fail-open plugin that throws', async () => {
    const r = await fault('/open/throw', 'throw');
    expect(r.status).toBe(200);
    expect(r.headers['x-stamp']).toBe('ran');
    expect(r.headers).not.toHaveProperty('x-alive');
  });

  it('counts every fault by tenant, plugin and reason', async () => {
    const metrics = (await send(`${gw.adminUrl}/metrics`)).body;
    expect(metrics).toMatch(/isogate_plugin_failures_total\{tenant="loop",plugin="looper",reason="cpu"\} 1\b/);
    expect(metrics).toMatch(/isogate_plugin_failures_total\{tenant="oom",plugin="hog",reason="memory"\} 1\b/);
    expect(metrics).toMatch(/isogate_plugin_failures_total\{tenant="throw",plugin="thrower",reason="threw"\} 2\b/);
    expect(metrics).toMatch(/isogate_plugin_failures_total\{tenant="throw",plugin="thrower",reason="wall"\} 1\b/);
    expect(metrics).toMatch(/isogate_plugin_failures_total\{tenant="open",plugin="looper",reason="cpu"\} 1\b/);
  });

  it('still serves every tenant afterwards', async () => {
    const paths = ['/loop', '/oom', '/throw', '/good', '/open/loop', '/open/throw'];
    const replies = await Promise.all(paths.map((p) => send(`${gw.url}${p}`)));
    expect(replies.map((r) => r.status)).toEqual(paths.map(() => 200));
  });
});
