import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, waitFor, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** pdk.ctx.plugin: per request, per instance; survives the phases, unseen by other instances. */
const FIRST = pluginSource('first', `
export function access(pdk: any) {
  pdk.ctx.plugin.mine = 'first';
  pdk.ctx.plugin.count = 1;
  pdk.ctx.shared.both = 'shared';
  if (pdk.request.getQueryArg('stray') !== undefined) {
    // A callback left behind, running while the next plugin's handler runs.
    (async () => {
      for (let i = 0; i < 5; i++) await null;
      try { pdk.log.warn('stolen ' + JSON.stringify(pdk.ctx.plugin)); } catch (e: any) { pdk.log.warn('refused: ' + e.message); }
    })();
  }
}
export function headerFilter(pdk: any) {
  pdk.ctx.plugin.count++;
  pdk.response.setHeader('x-first', JSON.stringify(pdk.ctx.plugin));
}
export function log(pdk: any) {
  pdk.log.info('first log ' + JSON.stringify(pdk.ctx.plugin) + ' ' + pdk.ctx.shared.both);
}`, 200);

const SECOND = pluginSource('second', `
export async function access(pdk: any) {
  pdk.ctx.plugin.seenAtStart = Object.keys(pdk.ctx.plugin).length;
  for (let i = 0; i < 20; i++) await null;
  pdk.ctx.plugin.mine = 'second';
}
export function headerFilter(pdk: any) {
  pdk.response.setHeader('x-second', JSON.stringify(pdk.ctx.plugin) + ' ' + pdk.ctx.shared.both);
}`, 100);

const GREEDY = pluginSource('greedy', `
export function access(pdk: any) { pdk.ctx.plugin.big = 'x'.repeat(70000); }`);
const CYCLIC = pluginSource('cyclic', `
export function access(pdk: any) { const o: any = {}; o.self = o; pdk.ctx.plugin.o = o; }`);

describe('pdk.ctx.plugin', () => {
  let up: Upstream;
  let gw: TestGateway;
  const { logger, lines } = captureLogger('info');
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/] }, { name: g, service: s, paths: [/greedy] }, { name: c, service: s, paths: [/cyclic] }]
    plugins:
      - { name: first, path: ./first.ts, route: r }
      - { name: second, path: ./second.ts, route: r }
      - { name: greedy, path: ./greedy.ts, route: g }
      - { name: cyclic, path: ./cyclic.ts, route: c }
`, { 'first.ts': FIRST, 'second.ts': SECOND, 'greedy.ts': GREEDY, 'cyclic.ts': CYCLIC }, { logger });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('keeps each instance its own data across access, headerFilter and log, next to ctx.shared', async () => {
    const r = await send(`${gw.url}/a`);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.headers['x-first'] as string)).toEqual({ mine: 'first', count: 2 });
    expect(r.headers['x-second']).toBe('{"seenAtStart":0,"mine":"second"} shared');
    await waitFor(() => lines.some((l) => l.msg === 'first log {"mine":"first","count":2} shared'), 3000, 'the log phase line');
  });

  it('starts empty on the next request', async () => {
    const r = await send(`${gw.url}/b`);
    expect(JSON.parse(r.headers['x-first'] as string)).toEqual({ mine: 'first', count: 2 });
    expect(r.headers['x-second']).toMatch(/^\{"seenAtStart":0,/);
  });

  it("hostile: a callback left behind by one plugin cannot read the running plugin's ctx.plugin", async () => {
    const r = await send(`${gw.url}/c?stray=1`);
    expect(r.status).toBe(200);
    const line = await waitFor(() => lines.find((l) => String(l.msg).startsWith('refused: ') || String(l.msg).startsWith('stolen ')));
    expect(line.msg).toBe("refused: ctx.plugin is only readable from the running plugin's own handler");
    expect(r.headers['x-second']).toBe('{"seenAtStart":0,"mine":"second"} shared');
  });

  it('hostile: more than the ctx cap fails the request as too_large; a cycle as bad_return', async () => {
    const g = await send(`${gw.url}/greedy`);
    expect(g.status).toBe(500);
    expect(await waitFor(() => lines.find((l) => l.reason === 'too_large' && String(l.msg).includes('pdk.ctx.plugin')))).toBeTruthy();
    const c = await send(`${gw.url}/cyclic`);
    expect(c.status).toBe(500);
    expect(await waitFor(() => lines.find((l) => l.reason === 'bad_return' && String(l.msg).includes('pdk.ctx.plugin is not JSON')))).toBeTruthy();
  });
});
