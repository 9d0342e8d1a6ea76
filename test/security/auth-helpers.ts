/**
 * Setup of the client.authenticate attacks: tenant `evil` (consumers alice and bob, the
 * attack plugin on /evil and a consumer-scoped marker that shows which chain ran), tenant
 * `good` (a neighbour in its own isolate that must keep working).
 */
import { NO_BREAKER, captureLogger, echoHandler, pluginSource, startGateway, startUpstream, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

/** A marker after the attack plugin: tags the response with its instance's config. */
const MARKER = pluginSource('marker', `
export function access(pdk: any, conf: any) { pdk.response.setHeader('x-marker', conf.tag); }
export function headerFilter(pdk: any, conf: any) { pdk.response.setHeader('x-marker-hf', conf.tag); }`, 10);

const BENIGN = pluginSource('benign', `export function access(pdk: any) { pdk.response.setHeader('x-benign', 'ok'); }`, 10);

export type AuthLab = { gw: TestGateway; up: Upstream; lines: LogLine[]; stop(): Promise<void> };

export async function startAuthLab(evil: string, cpuMs = 200): Promise<AuthLab> {
  const up = await startUpstream(echoHandler);
  const captured = captureLogger('debug');
  const gw = await startGateway(`
${NO_BREAKER}
tenants:
  - name: evil
    limits: { cpuMs: ${cpuMs} }
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: evil, service: s, paths: [/evil] }]
    consumers:
      - { id: c-alice, username: alice, credentials: { key-auth: [{ id: k-alice, key: alice-secret-key }] } }
      - { id: c-bob, username: bob }
    plugins:
      - { name: evil, path: ./evil.ts, limits: { cpuMs: ${cpuMs} } }
      - { name: marker, path: ./marker.ts, config: { tag: anyone } }
      - { name: marker, path: ./marker.ts, consumer: alice, config: { tag: alice } }
  - name: good
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: good, service: s, paths: [/good] }]
    plugins: [{ name: benign, path: ./benign.ts }]
`, { 'evil.ts': evil, 'marker.ts': MARKER, 'benign.ts': BENIGN }, { logger: captured.logger });
  return {
    gw,
    up,
    lines: captured.lines,
    async stop() {
      await gw.stop();
      await up.close();
    },
  };
}
