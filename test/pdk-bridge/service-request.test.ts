import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NO_BREAKER,
  captureLogger,
  echoHandler,
  pluginSource,
  send,
  startGateway,
  startUpstream,
  waitFor,
  type LogLine,
  type TestGateway,
  type Upstream,
} from '../helpers/gateway.ts';

/** Runs the calls listed in the request header x-do (JSON [[method, ...args], ...]) on pdk.serviceRequest. */
const SCRIPTED = pluginSource(
  'scripted',
  `
export function access(pdk: any) {
  const calls = JSON.parse(pdk.request.getHeader('x-do') ?? '[]');
  for (const [method, ...args] of calls) pdk.serviceRequest[method](...args);
}`,
);

/** Calls serviceRequest after the upstream answered: refused by the runtime. */
const WRONG_PHASE = pluginSource(
  'wrong-phase',
  `
export function headerFilter(pdk: any) { pdk.serviceRequest.setHeader('x-late', '1'); }
`,
);

const IN_LOG = pluginSource(
  'in-log',
  `
export function log(pdk: any) { pdk.serviceRequest.setPath('/too-late'); }
`,
);

describe('pdk.serviceRequest', () => {
  let up: Upstream;
  let gw: TestGateway;
  let lines: LogLine[];
  let upstreamHits = 0;

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      upstreamHits++;
      echoHandler(req, res);
    });
    const captured = captureLogger('debug');
    lines = captured.lines;
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    services:
      - { name: s, url: "${up.url}" }
      - { name: based, url: "${up.url}/base" }
    routes:
      - { name: r, service: s, paths: [/r] }
      - { name: based, service: based, paths: [/b], stripPath: true }
      - { name: hf, service: s, paths: [/hf] }
      - { name: lg, service: s, paths: [/lg] }
    plugins:
      - { name: scripted, path: ./scripted.ts, route: r }
      - { name: scripted, path: ./scripted.ts, route: based }
      - { name: wrong-phase, path: ./wrong-phase.ts, route: hf }
      - { name: in-log, path: ./in-log.ts, route: lg }
`,
      { 'scripted.ts': SCRIPTED, 'wrong-phase.ts': WRONG_PHASE, 'in-log.ts': IN_LOG },
      { logger: captured.logger },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  async function upstreamSaw(path: string, calls: unknown[][], headers: Record<string, string> = {}) {
    const r = await send(`${gw.url}${path}`, { headers: { ...headers, 'x-do': JSON.stringify(calls) } });
    expect(r.status, r.body).toBe(200);
    return r.json() as { url: string; headers: Record<string, string> };
  }

  async function failsWith500(path: string, calls: unknown[][]) {
    const before = upstreamHits;
    const r = await send(`${gw.url}${path}`, { headers: { 'x-do': JSON.stringify(calls) } });
    expect(r.status).toBe(500);
    expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    expect(r.headers['x-isogate-error-id']).toBe(r.json().error.id);
    expect(upstreamHits).toBe(before); // the upstream was never called
    return r.json().error.id as string;
  }

  it('setHeader sets (replacing) a header sent upstream; numbers are allowed', async () => {
    const got = await upstreamSaw('/r', [['setHeader', 'X-Added', 'v1'], ['setHeader', 'x-client', 'replaced'], ['setHeader', 'X-Num', 42]], { 'x-client': 'orig' });
    expect(got.headers['x-added']).toBe('v1');
    expect(got.headers['x-client']).toBe('replaced');
    expect(got.headers['x-num']).toBe('42');
  });

  it('addHeader keeps existing values', async () => {
    const got = await upstreamSaw('/r', [['addHeader', 'x-client', 'second'], ['addHeader', 'x-new', 'a'], ['addHeader', 'x-new', 'b']], { 'x-client': 'first' });
    expect(got.headers['x-client']).toBe('first, second');
    expect(got.headers['x-new']).toBe('a, b');
  });

  it('clearHeader removes a client header', async () => {
    const got = await upstreamSaw('/r', [['clearHeader', 'Authorization']], { authorization: 'Bearer secret', 'x-keep': '1' });
    expect(got.headers).not.toHaveProperty('authorization');
    expect(got.headers['x-keep']).toBe('1');
  });

  it('setPath and setRawQuery change what is sent upstream', async () => {
    expect((await upstreamSaw('/r/orig?x=1', [['setPath', '/elsewhere/deep']])).url).toBe('/elsewhere/deep?x=1');
    expect((await upstreamSaw('/r/orig?x=1', [['setRawQuery', 'y=2&z=%20']])).url).toBe('/r/orig?y=2&z=%20');
    expect((await upstreamSaw('/r/orig?x=1', [['setRawQuery', '']])).url).toBe('/r/orig');
    expect((await upstreamSaw('/r', [['setPath', '/p'], ['setRawQuery', 'q=1']])).url).toBe('/p?q=1');
  });

  it("setPath is relative to the service's base path", async () => {
    expect((await upstreamSaw('/b/orig', [])).url).toBe('/base/orig');
    expect((await upstreamSaw('/b/orig', [['setPath', '/new']])).url).toBe('/base/new');
  });

  it('rejects header names and values that would break the request', async () => {
    await failsWith500('/r', [['setHeader', 'bad name', 'v']]);
    await failsWith500('/r', [['setHeader', 'x-inject', 'v\r\nx-evil: 1']]);
    await failsWith500('/r', [['setHeader', 'Content-Length', '0']]);
    await failsWith500('/r', [['clearHeader', 'transfer-encoding']]);
    await failsWith500('/r', [['setHeader', 'x-obj', {}]]);
  });

  it('rejects paths and queries that would break the request line', async () => {
    await failsWith500('/r', [['setPath', 'relative']]);
    await failsWith500('/r', [['setPath', '/a b']]);
    await failsWith500('/r', [['setPath', '/a?b']]);
    await failsWith500('/r', [['setRawQuery', 'a b']]);
  });

  it('is refused in headerFilter: the request fails with 500 and an error id, logged with the phase', async () => {
    const r = await send(`${gw.url}/hf`);
    expect(r.status).toBe(500);
    const id = r.json().error.id as string;
    expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(r.headers['x-isogate-error-id']).toBe(id);
    const line = lines.find((l) => l.errorId === id)!;
    expect(line).toMatchObject({ level: 40, tenant: 't1', plugin: 'wrong-phase', phase: 'headerFilter', reason: 'threw' });
    expect(line.msg).toContain('serviceRequest.setHeader is not allowed in phase headerFilter');
  });

  it('is refused in log: the response is already sent, the fault is logged and counted', async () => {
    const r = await send(`${gw.url}/lg`);
    expect(r.status).toBe(200);
    const line = await waitFor(() => lines.find((l) => l.plugin === 'in-log' && l.phase === 'log'), 3000, 'log-phase fault');
    expect(line.msg).toContain('serviceRequest.setPath is not allowed in phase log');
    const metrics = (await send(`${gw.adminUrl}/metrics`)).body;
    expect(metrics).toMatch(/isogate_plugin_failures_total\{tenant="t1",plugin="in-log",reason="threw"\} [1-9]/);
  });
});
