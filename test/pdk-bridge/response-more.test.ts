import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, captureLogger, echoHandler, pluginSource, send, startGateway, startUpstream, waitFor, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** pdk.response: getSource, error, setStatus, setHeaders. */
const PLUGIN = pluginSource('resp', `
export function access(pdk: any) {
  const q = pdk.request.getQueryArg('do');
  if (q === 'error') pdk.response.error(Number(pdk.request.getQueryArg('status')));
  if (q === 'error-msg') pdk.response.error(403, 'go away', { 'X-Why': 'test', 'Content-Type': 'application/problem+json' });
  if (q === 'error-obj') pdk.response.error(422, { message: 'bad', fields: ['a'] });
  if (q === 'error-200') {
    try { pdk.response.error(200); } catch (e: any) { pdk.response.exit(200, { err: e.message }); }
  }
  if (q === 'exit') pdk.response.exit(201, 'made');
  if (q === 'status-in-access') {
    try { pdk.response.setStatus(201); } catch (e: any) { pdk.response.exit(200, { err: e.message }); }
  }
  if (q === 'source-in-access') {
    try { pdk.response.getSource(); } catch (e: any) { pdk.response.exit(200, { err: e.message }); }
  }
  if (q === 'set-headers') pdk.response.setHeaders({ 'x-one': '1', 'x-many': ['a', 'b'] });
}
export function headerFilter(pdk: any) {
  pdk.response.setHeader('x-source', pdk.response.getSource());
  const s = pdk.request.getQueryArg('set');
  if (s !== undefined) pdk.response.setStatus(Number(s));
}
export function log(pdk: any) {
  pdk.log.info('source ' + pdk.response.getSource() + ' ' + pdk.response.getStatus());
}`);

describe('pdk.response: source, error, status, headers', () => {
  let up: Upstream;
  let gw: TestGateway;
  const { logger, lines } = captureLogger('info');
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }, { name: down, url: "http://127.0.0.1:1" }]
    routes: [{ name: r, service: s, paths: [/] }, { name: d, service: down, paths: [/down] }]
    plugins: [{ name: resp, path: ./resp.ts }]
`, { 'resp.ts': PLUGIN }, { logger });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  const sources = (): string[] => lines.filter((l: LogLine) => l.msg.startsWith('source ')).map((l) => l.msg);

  it("answers error(status) with Kong's JSON body and default message", async () => {
    for (const [status, message] of [[401, 'Unauthorized'], [404, 'Not found'], [429, 'Too many requests'], [503, 'The upstream server is currently unavailable'], [499, 'The upstream server responded with 499']] as const) {
      const r = await send(`${gw.url}/?do=error&status=${status}`);
      expect(r.status).toBe(status);
      expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(r.json()).toEqual({ message });
    }
  });

  it('sends its message, headers (its own content type kept) and an object body as it is', async () => {
    const r = await send(`${gw.url}/?do=error-msg`);
    expect(r.status).toBe(403);
    expect(r.headers['x-why']).toBe('test');
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(r.json()).toEqual({ message: 'go away' });
    const o = await send(`${gw.url}/?do=error-obj`);
    expect(o.status).toBe(422);
    expect(o.json()).toEqual({ message: 'bad', fields: ['a'] });
  });

  it('refuses a status below 400', async () => {
    expect((await send(`${gw.url}/?do=error-200`)).json().err).toMatch(/400 to 599/);
  });

  it('sets the status sent to the client in headerFilter, and says the response came from the service', async () => {
    const r = await send(`${gw.url}/x?set=418`);
    expect(r.status).toBe(418);
    expect(r.headers['x-source']).toBe('service');
    expect(r.json().url).toBe('/x?set=418');
  });

  it('sets a bodyless status without the upstream body framing, and the connection stays usable', async () => {
    const r = await send(`${gw.url}/x?set=204`);
    expect(r.status).toBe(204);
    expect(r.headers['content-length']).toBeUndefined();
    expect(r.body).toBe('');
    expect((await send(`${gw.url}/x?set=201`)).status).toBe(201);
  });

  it('sets several response headers at once, an array as repeated headers', async () => {
    const r = await send(`${gw.url}/?do=set-headers`);
    expect(r.headers['x-one']).toBe('1');
    expect(r.headers['x-many']).toEqual(['a', 'b']);
  });

  it('logs the source: exit, service and error', async () => {
    await send(`${gw.url}/?do=exit`);
    await send(`${gw.url}/plain`);
    expect((await send(`${gw.url}/down`)).status).toBe(502);
    await waitFor(() => sources().length >= 3, 3000, 'three log lines');
    expect(sources()).toEqual(expect.arrayContaining(['source exit 201', 'source service 200', 'source error 502']));
  });

  it('phase check: setStatus and getSource in access throw an error naming both phases', async () => {
    expect((await send(`${gw.url}/?do=status-in-access`)).json().err).toBe('response.setStatus is not allowed in phase access (allowed in: response, headerFilter)');
    expect((await send(`${gw.url}/?do=source-in-access`)).json().err).toBe('response.getSource is not allowed in phase access (allowed in: response, headerFilter, bodyFilter, log)');
  });
});
