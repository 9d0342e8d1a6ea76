import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, pluginSource, send, startGateway, startUpstream, waitFor, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const LOGGER = pluginSource(
  'logger',
  `
export function access(pdk: any) {
  const tag = pdk.request.getHeader('x-tag');
  const mode = pdk.request.getHeader('x-mode');
  if (mode === 'levels') {
    pdk.log.debug(tag, 'debug line');
    pdk.log.info(tag, 'info line', { a: 1 }, [2], 3, true, null);
    pdk.log.warn(tag, 'warn line');
    pdk.log.error(tag, 'error line');
  } else if (mode === 'flood') {
    for (let i = 0; i < 200; i++) pdk.log.info(tag, i);
  } else if (mode === 'long') {
    pdk.log.info(tag, 'y'.repeat(10000));
  } else if (mode === 'odd') {
    const cyclic: any = {}; cyclic.self = cyclic;
    pdk.log.info(tag, cyclic, 10n, undefined);
  } else if (mode === 'then-throw') {
    pdk.log.warn(tag, 'before the throw');
    throw new Error('boom');
  }
}
export function headerFilter(pdk: any) {
  pdk.log.info(pdk.request.getHeader('x-tag'), 'in headerFilter', pdk.response.getStatus());
}
export function log(pdk: any) {
  pdk.log.info(pdk.request.getHeader('x-tag'), 'in log', pdk.response.getStatus());
}`,
);

describe('pdk.log', () => {
  let up: Upstream;
  let gw: TestGateway;
  let lines: LogLine[];
  let tagSeq = 0;

  beforeAll(async () => {
    up = await startUpstream((_req, res) => res.end('ok'));
    const captured = captureLogger('debug');
    lines = captured.lines;
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: acme
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/r] }]
    plugins:
      - { name: logger, path: ./logger.ts, route: r }
`,
      { 'logger.ts': LOGGER },
      { logger: captured.logger },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  /** Sends a request with a fresh tag; returns the tag and a reader of its plugin lines. */
  async function run(mode: string) {
    const tag = `t${++tagSeq}x`;
    const r = await send(`${gw.url}/r`, { headers: { 'x-tag': tag, 'x-mode': mode } });
    const mine = () => lines.filter((l) => l.msg.startsWith(`${tag} `) || l.msg === tag);
    return { r, tag, mine };
  }

  it('sends lines to the host logger at their level, with tenant, plugin and phase', async () => {
    const { r, tag, mine } = await run('levels');
    expect(r.status).toBe(200);
    await waitFor(() => mine().some((l) => l.phase === 'log'), 3000, 'log-phase line');
    const access = mine().filter((l) => l.phase === 'access');
    expect(access.map((l) => [l.level, l.msg])).toEqual([
      [20, `${tag} debug line`],
      [30, `${tag} info line {"a":1} [2] 3 true null`],
      [40, `${tag} warn line`],
      [50, `${tag} error line`],
    ]);
    for (const l of mine()) {
      expect(l.tenant).toBe('acme');
      expect(l.plugin).toBe('acme/logger@route:r');
    }
    expect(mine().find((l) => l.phase === 'headerFilter')?.msg).toBe(`${tag} in headerFilter 200`);
    expect(mine().find((l) => l.phase === 'log')?.msg).toBe(`${tag} in log 200`);
  });

  it('caps the lines of one call', async () => {
    const { mine } = await run('flood');
    await waitFor(() => mine().some((l) => l.phase === 'log'), 3000, 'log-phase line');
    const access = mine().filter((l) => l.phase === 'access');
    expect(access.length).toBe(64);
    expect(access[0].msg).toMatch(/ 0$/);
  });

  it('truncates a long line', async () => {
    const { mine } = await run('long');
    await waitFor(() => mine().some((l) => l.phase === 'log'), 3000, 'log-phase line');
    const line = mine().find((l) => l.phase === 'access')!;
    expect(line.msg.length).toBe(4096);
  });

  it('writes values JSON cannot encode without failing the request', async () => {
    const { r, tag, mine } = await run('odd');
    expect(r.status).toBe(200);
    await waitFor(() => mine().some((l) => l.phase === 'access'), 3000, 'access line');
    expect(mine().find((l) => l.phase === 'access')!.msg).toBe(`${tag} [object Object] 10 undefined`);
  });

  it('a plugin that throws is logged as a fault with its error id', async () => {
    const { r } = await run('then-throw');
    expect(r.status).toBe(500);
    const id = r.json().error.id as string;
    const fault = await waitFor(() => lines.find((l) => l.errorId === id), 3000, 'fault line');
    expect(fault).toMatchObject({ level: 40, tenant: 'acme', plugin: 'logger', instance: 'acme/logger@route:r', reason: 'threw', phase: 'access' });
    expect(fault.msg).toContain('Error: boom');
  });

  // Regression: a fail-closed fault used to drop the lines the chain logged before it.
  it('keeps the lines a plugin logged before it threw', async () => {
    const { tag, mine } = await run('then-throw');
    await waitFor(() => mine().some((l) => l.phase === 'access'), 3000, 'access line');
    expect(mine().find((l) => l.phase === 'access')!.msg).toBe(`${tag} before the throw`);
  });
});
