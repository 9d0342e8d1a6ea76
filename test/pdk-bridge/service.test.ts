import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyOps, type OpTarget } from '../../pdk-bridge/host/ops.ts';
import { PHASE } from '../../pdk-bridge/host/phases.ts';
import { NO_BREAKER, captureLogger, freePort, pluginSource, send, startGateway, startUpstream, waitFor, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** pdk.service: setTarget (only within the service), setRetries, setTimeouts (within the ceilings). */
function plugin(alt: number, dead: number): string {
  return pluginSource('svc', `
export function access(pdk: any) {
  const q = pdk.request.getQueryArg('do');
  const caught = (f: () => void) => { try { f(); } catch (e: any) { pdk.response.exit(200, { err: e.message }); } };
  if (q === 'alt') pdk.service.setTarget('127.0.0.1', ${alt});
  if (q === 'alt-by-name') pdk.service.setTarget('LOCALHOST', ${alt});
  if (q === 'outside') pdk.service.setTarget('127.0.0.1', ${alt + 1 === dead ? alt + 2 : alt + 1});
  if (q === 'admin') pdk.service.setTarget('127.0.0.1', Number(pdk.request.getQueryArg('port')));
  if (q === 'dead') { pdk.service.setTarget('127.0.0.1', ${dead}); pdk.service.setRetries(Number(pdk.request.getQueryArg('n') ?? 0)); }
  if (q === 'retries-high') caught(() => pdk.service.setRetries(11));
  if (q === 'slow') pdk.service.setTimeouts(1000, 1000, 150);
  if (q === 'timeouts-high') caught(() => pdk.service.setTimeouts(60001, 1000, 1000));
  if (q === 'read-high') caught(() => pdk.service.setTimeouts(1000, 1000, 600001));
  if (q === 'port-bad') caught(() => pdk.service.setTarget('127.0.0.1', 70000));
}
export function headerFilter(pdk: any) {
  try { pdk.service.setTarget('127.0.0.1', 1); } catch (e: any) { pdk.response.setHeader('x-err', e.message); }
}
export function log(pdk: any) {
  const s = pdk.log.serialize();
  pdk.log.info('tries ' + s.tries.length + ' ' + (s.tries[0] ? s.tries[0].ip + ':' + s.tries[0].port : '-'));
}`);
}

describe('pdk.service', () => {
  let main: Upstream;
  let alt: Upstream;
  let slow: Server;
  let gw: TestGateway;
  let dead: number;
  const { logger, lines } = captureLogger('info');
  beforeAll(async () => {
    main = await startUpstream((req, res) => res.end('main ' + req.url));
    alt = await startUpstream((req, res) => res.end('alt ' + req.headers.host));
    slow = createServer((_req, res) => setTimeout(() => res.end('late'), 1500));
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    dead = await freePort();
    const slowPort = (slow.address() as AddressInfo).port;
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services:
      - { name: s, url: "${main.url}", preserveHost: false, targets: ["127.0.0.1:${alt.port}", "localhost:${alt.port}", "127.0.0.1:${dead}"] }
      - { name: slow, url: "http://127.0.0.1:${slowPort}" }
    routes: [{ name: r, service: s, paths: [/] }, { name: slow, service: slow, paths: [/slow] }]
    plugins: [{ name: svc, path: ./svc.ts }]
`, { 'svc.ts': plugin(alt.port, dead) }, { logger });
  });
  afterAll(async () => {
    await gw.stop();
    await main.close();
    await alt.close();
    slow.closeAllConnections();
    await new Promise<void>((r) => slow.close(() => r()));
  });

  it("sends the request to another of the service's targets, with that target as Host (preserveHost false)", async () => {
    expect((await send(`${gw.url}/x`)).body).toBe('main /x');
    expect((await send(`${gw.url}/x?do=alt`)).body).toBe(`alt 127.0.0.1:${alt.port}`);
    expect((await send(`${gw.url}/x?do=alt-by-name`)).body).toBe(`alt localhost:${alt.port}`);
  });

  it('hostile: refuses a target the service does not list (another port, the admin listener): the request fails, the log says why', async () => {
    for (const path of ['/?do=outside', `/?do=admin&port=${new URL(gw.adminUrl).port}`]) {
      const r = await send(gw.url + path);
      expect(r.status).toBe(500);
      expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    }
    const line = await waitFor(() => lines.find((l) => String(l.msg).includes('is not a target of this service')));
    expect(line.reason).toBe('bad_return');
  });

  it('retries a failed connection as many times as setRetries says, and log.serialize lists the tries', async () => {
    expect((await send(`${gw.url}/?do=dead&n=2`)).status).toBe(502);
    await waitFor(() => lines.some((l) => l.msg === `tries 3 127.0.0.1:${dead}`), 3000, 'three tries');
    expect((await send(`${gw.url}/?do=dead`)).status).toBe(502);
    await waitFor(() => lines.some((l) => l.msg === `tries 1 127.0.0.1:${dead}`), 3000, 'one try');
  });

  it('applies a read timeout (504 from a slow upstream) and refuses values above the ceilings', async () => {
    const t0 = Date.now();
    const r = await send(`${gw.url}/slow?do=slow`);
    expect(r.status).toBe(504);
    expect(Date.now() - t0).toBeLessThan(1400);
    expect((await send(`${gw.url}/?do=timeouts-high`)).json().err).toBe('service.setTimeouts connect timeout must be an integer from 1 to 60000');
    expect((await send(`${gw.url}/?do=read-high`)).json().err).toBe('service.setTimeouts read timeout must be an integer from 1 to 600000');
    expect((await send(`${gw.url}/?do=retries-high`)).json().err).toBe('service.setRetries retries must be an integer from 0 to 10');
    expect((await send(`${gw.url}/?do=port-bad`)).json().err).toBe('service.setTarget port must be an integer from 1 to 65535');
  });

  it('phase check: setTarget in headerFilter throws an error naming both phases', async () => {
    expect((await send(`${gw.url}/`)).headers['x-err']).toBe('service.setTarget is not allowed in phase headerFilter (allowed in: access)');
  });

  it('hostile: the host re-checks forged operations (timeouts above the ceiling, a target outside, a method undici cannot send)', () => {
    const t = (): OpTarget => ({ upstreamHeaders: {}, upstreamPath: '/', upstreamQuery: '', responseEdits: null, exit: null, body: null, targets: new Set(['127.0.0.1:80']) });
    const log = () => undefined;
    expect(applyOps([['@', 0], ['sv.timeouts', 1, 1, 600_001]], PHASE.ACCESS, t(), log)?.detail).toMatch(/^sv.timeouts/);
    expect(applyOps([['sv.target', '127.0.0.2', 80]], PHASE.ACCESS, t(), log)?.detail).toMatch(/not a target/);
    expect(applyOps([['sv.retries', 99]], PHASE.ACCESS, t(), log)?.detail).toMatch(/^sv.retries/);
    expect(applyOps([['sq.method', 'CONNECT']], PHASE.ACCESS, t(), log)?.detail).toMatch(/^sq.method/);
    expect(applyOps([['rs.status', 101]], PHASE.HEADER_FILTER, t(), log)?.detail).toMatch(/^rs.status/);
    expect(applyOps([['sv.target', '127.0.0.1', 80]], PHASE.HEADER_FILTER, t(), log)?.detail).toMatch(/not allowed in this phase/);
    const ok = t();
    expect(applyOps([['sv.target', '127.0.0.1', 80], ['sv.timeouts', 10, 20, 30]], PHASE.ACCESS, ok, log)).toBeNull();
    expect(ok.upstream).toBe('127.0.0.1:80');
    expect(ok.timeouts).toEqual([10, 20, 30]);
  });
});
