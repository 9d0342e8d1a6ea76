// Phase checks of the body functions: each, called in a phase that does not allow it,
// throws an error of the plugin's realm naming the function, the phase and where it is allowed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_BREAKER, pluginSource, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** Calls `x-fn` in access (or headerFilter when x-in says so) and reports the error it threw. */
const PROBE = pluginSource(
  'probe',
  `
export const reads = ['body'];
function call(pdk: any, fn: string) {
  const [ns, name] = fn.split('.');
  try { pdk[ns][name]('x'); return 'no error'; } catch (e: any) { return (e instanceof Error ? '' : 'foreign: ') + e.message; }
}
export function access(pdk: any) {
  if (pdk.request.getHeader('x-in') === 'access') pdk.response.exit(200, call(pdk, pdk.request.getHeader('x-fn')));
}
export function headerFilter(pdk: any) {
  if (pdk.request.getHeader('x-in') === 'headerFilter') pdk.response.setHeader('x-error', call(pdk, pdk.request.getHeader('x-fn')));
}`,
);

const WRONG: [fn: string, phase: 'access' | 'headerFilter', allowed: string][] = [
  ['request.getRawBody', 'headerFilter', 'rewrite, access'],
  ['request.getBody', 'headerFilter', 'rewrite, access'],
  ['serviceRequest.setRawBody', 'headerFilter', 'rewrite, access'],
  ['serviceRequest.setBody', 'headerFilter', 'rewrite, access'],
  ['serviceRequest.enableBuffering', 'headerFilter', 'rewrite, access'],
  ['response.setStatus', 'access', 'response, headerFilter'],
  ['response.getRawBody', 'access', 'response'],
  ['response.setRawBody', 'headerFilter', 'response'],
  ['response.getChunk', 'access', 'bodyFilter'],
  ['response.setChunk', 'headerFilter', 'bodyFilter'],
  ['response.isLastChunk', 'access', 'bodyFilter'],
  ['serviceResponse.getStatus', 'access', 'response, headerFilter'],
  ['serviceResponse.getHeaders', 'access', 'response, headerFilter'],
  ['serviceResponse.getRawBody', 'access', 'response, headerFilter'],
  ['serviceResponse.getBody', 'access', 'response, headerFilter'],
];

describe('phase checks of the body functions', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream((_req, res) => res.end('ok'));
    gw = await startGateway(
      `
${NO_BREAKER}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/] }]
    plugins: [{ name: probe, path: ./probe.ts }]
`,
      { 'probe.ts': PROBE },
    );
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  for (const [fn, phase, allowed] of WRONG) {
    it(`${fn} in ${phase}`, async () => {
      const r = await send(`${gw.url}/`, { headers: { 'x-fn': fn, 'x-in': phase } });
      const message = phase === 'access' ? r.body : r.headers['x-error'];
      expect(message).toBe(`${fn} is not allowed in phase ${phase} (allowed in: ${allowed})`);
    });
  }
});
