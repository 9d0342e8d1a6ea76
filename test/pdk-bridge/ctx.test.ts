import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, waitFor, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** Puts the request's x-id in ctx in access; reads it back in headerFilter and log. */
const CARRIER = pluginSource(
  'carrier',
  `
export function access(pdk: any) {
  const before = pdk.ctx.get('id');
  if (before !== undefined) pdk.serviceRequest.setHeader('x-leaked', String(before));
  const id = pdk.request.getHeader('x-id');
  pdk.ctx.set('id', id);
  pdk.ctx.shared.data = { list: [1, 2, 3], nested: { s: 'x' }, n: null };
  const bad = pdk.request.getHeader('x-bad');
  if (bad === 'bigint') pdk.ctx.set('big', 10n);
  if (bad === 'cycle') { const o: any = {}; o.self = o; pdk.ctx.set('cycle', o); }
  if (bad === 'huge') pdk.ctx.set('huge', 'x'.repeat(100 * 1024));
}
export function headerFilter(pdk: any) {
  pdk.response.setHeader('x-ctx-id', String(pdk.ctx.get('id')));
  pdk.response.setHeader('x-ctx-data', JSON.stringify(pdk.ctx.shared.data));
  pdk.response.setHeader('x-ctx-peer', String(pdk.ctx.get('peer')));
  pdk.ctx.set('status', pdk.response.getStatus());
}
export function log(pdk: any) {
  pdk.log.info('ctx at log', pdk.ctx.shared);
}`,
  200,
);

/** A second plugin of the same tenant and chain: sees what the first one put in ctx. */
const PEER = pluginSource(
  'peer',
  `
export function access(pdk: any) {
  pdk.serviceRequest.setHeader('x-peer-saw', String(pdk.ctx.get('id')));
  pdk.ctx.set('peer', 'peer-was-here');
}`,
  100,
);

describe('pdk.ctx', () => {
  let up: Upstream;
  let gw: TestGateway;
  let lines: LogLine[];

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    const captured = captureLogger('debug');
    lines = captured.lines;
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/r] }]
    plugins:
      - { name: carrier, path: ./carrier.ts }
      - { name: peer, path: ./peer.ts }
`,
      { 'carrier.ts': CARRIER, 'peer.ts': PEER },
      { logger: captured.logger },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('carries values from access to headerFilter to log', async () => {
    const r = await send(`${gw.url}/r`, { headers: { 'x-id': 'req-1' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-ctx-id']).toBe('req-1');
    expect(JSON.parse(r.headers['x-ctx-data'] as string)).toEqual({ list: [1, 2, 3], nested: { s: 'x' }, n: null });
    const line = await waitFor(() => lines.find((l) => l.msg.startsWith('ctx at log') && l.msg.includes('req-1')), 3000, 'log line');
    expect(JSON.parse(line.msg.slice('ctx at log '.length))).toEqual({
      id: 'req-1',
      data: { list: [1, 2, 3], nested: { s: 'x' }, n: null },
      peer: 'peer-was-here',
      status: 200,
    });
  });

  it('is shared by the plugins of the chain, in priority order', async () => {
    const r = await send(`${gw.url}/r`, { headers: { 'x-id': 'req-2' } });
    expect(r.json().headers['x-peer-saw']).toBe('req-2');
    expect(r.headers['x-ctx-peer']).toBe('peer-was-here');
  });

  it('starts empty for every request, also many concurrent ones', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `c-${i}`);
    const replies = await Promise.all(ids.map((id) => send(`${gw.url}/r`, { headers: { 'x-id': id } })));
    for (let i = 0; i < ids.length; i++) {
      expect(replies[i].status).toBe(200);
      expect(replies[i].headers['x-ctx-id']).toBe(ids[i]);
      expect(replies[i].json().headers).not.toHaveProperty('x-leaked');
    }
  });

  it('fails the request when ctx holds something that is not JSON, or too much', async () => {
    for (const bad of ['bigint', 'cycle', 'huge']) {
      const r = await send(`${gw.url}/r`, { headers: { 'x-id': 'bad', 'x-bad': bad } });
      expect(r.status, bad).toBe(500);
      expect(r.json().error.code).toBe('ISG_ERR_PLUGIN_FAILED');
    }
    // ...and the next request is fine.
    expect((await send(`${gw.url}/r`, { headers: { 'x-id': 'after' } })).headers['x-ctx-id']).toBe('after');
  });
});
