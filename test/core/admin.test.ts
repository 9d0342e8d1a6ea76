import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../core/version.ts';
import { NO_BREAKER, echoHandler, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const LOOPER = pluginSource('looper', `export function access(pdk: any) { if (pdk.request.getHeader('x-loop')) { while (true) {} } }`);

/** The value of one sample line of a Prometheus text body, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const kv of (m[3] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) got[kv[1]] = kv[2];
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

describe('admin listener', () => {
  let up: Upstream;
  let gw: TestGateway;

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes:
      - { name: plain, service: s, paths: [/plain] }
      - { name: plugged, service: s, paths: [/plugged] }
    plugins:
      - name: correlation-id
        route: plugged
      - { name: looper, path: ./looper.ts, route: plugged, limits: { cpuMs: 50 } }
  - name: t2
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, hosts: [t2.test] }]
`,
      { 'looper.ts': LOOPER },
    );
    for (let i = 0; i < 3; i++) await send(`${gw.url}/plain`);
    for (let i = 0; i < 2; i++) await send(`${gw.url}/plugged`);
    await send(`${gw.url}/plugged`, { headers: { 'x-loop': '1' } });
    await send(`${gw.url}/plugged`); // recreates the isolate
    await send(`${gw.url}/nowhere`);
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('serves Prometheus metrics for requests, upstream and plugin time', async () => {
    const r = await send(`${gw.adminUrl}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toContain('text/plain');
    const m = r.body;
    expect(sample(m, 'isogate_requests_total', { tenant: 't1', route: 'plain', status: '200' })).toBe(3);
    expect(sample(m, 'isogate_requests_total', { tenant: 't1', route: 'plugged', status: '200' })).toBe(3);
    expect(sample(m, 'isogate_requests_total', { tenant: 't1', route: 'plugged', status: '500' })).toBe(1);
    expect(sample(m, 'isogate_requests_total', { tenant: '', route: '', status: '404' })).toBe(1);
    expect(sample(m, 'isogate_request_duration_seconds_count', { tenant: 't1', route: 'plain' })).toBe(3);
    expect(sample(m, 'isogate_request_duration_seconds_bucket', { tenant: 't1', route: 'plain', le: '+Inf' })).toBe(3);
    expect(sample(m, 'isogate_request_duration_seconds_sum', { tenant: 't1', route: 'plain' })).toBeGreaterThan(0);
    expect(sample(m, 'isogate_upstream_duration_seconds_count', { tenant: 't1', route: 'plain' })).toBe(3);
    expect(sample(m, 'isogate_upstream_duration_seconds_count', { tenant: 't1', route: 'plugged' })).toBe(3);
    // One chain call per request in access (correlation-id + looper run in one call); neither has a headerFilter, so no call there.
    expect(sample(m, 'isogate_plugin_call_duration_seconds_count', { tenant: 't1', plugins: 'correlation-id+looper', phase: 'access' })).toBe(4);
    expect(sample(m, 'isogate_plugin_call_duration_seconds_count', { tenant: 't1', phase: 'headerFilter' })).toBeUndefined();
    expect(sample(m, 'isogate_plugin_failures_total', { tenant: 't1', plugin: 'looper', reason: 'cpu' })).toBe(1);
    expect(sample(m, 'isogate_isolates_created_total', { tenant: 't1' })).toBe(2);
  });

  it('reports live isolates and their heap', async () => {
    const m = (await send(`${gw.adminUrl}/metrics`)).body;
    expect(sample(m, 'isogate_isolates')).toBe(1);
    expect(sample(m, 'isogate_isolate_heap_bytes')).toBeGreaterThan(100_000);
    expect(m).toContain('# TYPE isogate_isolates gauge');
    expect(m).toContain('# TYPE isogate_request_duration_seconds histogram');
    expect(m).toContain('# TYPE isogate_plugin_failures_total counter');
  });

  it('serves /status as JSON', async () => {
    const r = await send(`${gw.adminUrl}/status`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    const s = r.json();
    expect(s.name).toBe('isogate');
    expect(s.version).toBe(VERSION);
    expect(s.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(s.pid).toBe(process.pid);
    expect(typeof s.uptimeSeconds).toBe('number');
    expect(s.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(s.config).toMatchObject({ version: 1, file: gw.configFile, lastReloadError: null });
    expect(new Date(s.config.loadedAt).getTime()).toBeLessThanOrEqual(Date.now());
    expect(s.counts).toMatchObject({ tenants: 2, routes: 3, pluginInstances: 2, isolates: 1, inflight: 0 });
  });

  it('shows the new config version after a reload', async () => {
    expect((await gw.gw.reload()).ok).toBe(true);
    const s = (await send(`${gw.adminUrl}/status`)).json();
    expect(s.config.version).toBe(2);
    const m = (await send(`${gw.adminUrl}/metrics`)).body;
    expect(sample(m, 'isogate_config_reloads_total', { result: 'ok' })).toBe(1);
  });

  it('answers 404 for other paths and 405 for other methods', async () => {
    const nf = await send(`${gw.adminUrl}/nope`);
    expect(nf.status).toBe(404);
    expect(nf.json().error.code).toBe('ISG_ERR_NO_ROUTE');
    const post = await send(`${gw.adminUrl}/status`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
  });

  it('is not the proxy listener', async () => {
    expect((await send(`${gw.url}/metrics`)).status).toBe(404);
    expect(gw.gw.adminAddress!.port).not.toBe(gw.gw.proxyAddress.port);
  });
});
