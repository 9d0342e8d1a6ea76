import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoHandler, startUpstream, waitFor, type Upstream } from '../helpers/gateway.ts';
import { msUntil, spawnGateway, type GatewayProcess } from '../helpers/process.ts';

// One huge allocation overshoots any heap limit in one step and V8 aborts the whole
// process: no in-process check can stop it. The supervisor must contain it: the worker
// dies, a hot spare takes over within a second, the plugin is quarantined everywhere, and
// the other tenant never notices beyond the requests in flight on the dead worker.
const CRASHER = `
export const name = 'crasher';
export const version = '1.0.0';
export const priority = 1;
export function access() { const s = 'x'.repeat(2 ** 28); s.split(''); }
`;

describe('a plugin that aborts its worker process', () => {
  let up: Upstream;
  let gw: GatewayProcess;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 2
supervisor: { healthTimeoutMs: 15000 }
tenants:
  - name: evil
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/evil] }]
    plugins: [{ name: crasher, path: ./crasher.ts }]
  - name: good
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/good] }]
    plugins: [{ name: correlation-id }]
`, { 'crasher.ts': CRASHER });
  }, 90_000); // spawnGateway alone may take 60 s on a loaded machine
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('loses only the crashing request, replaces the worker within 1 s and quarantines the plugin', async () => {
    const sparePid = (await gw.status()).workers.spare.pid as number;
    let goodOk = 0;
    let goodFailed = 0;
    let running = true;
    // Tenant "good" keeps sending over fresh connections the whole time.
    const loop = (async () => {
      while (running) {
        try {
          const r = await request(`${gw.url}/good`, { reset: true });
          await r.body.text();
          if (r.statusCode === 200) goodOk++;
          else goodFailed++;
        } catch {
          goodFailed++;
        }
      }
    })();

    const evil = await request(`${gw.url}/evil`).then(
      (r) => r.statusCode,
      () => 'connection lost' as const,
    );
    expect(evil).toBe('connection lost');
    const crashedAt = Date.now();
    const replacedIn = await msUntil(async () => (await gw.status()).workers.ready === 2, 5_000, 'the worker to be replaced');
    // The slot went to the hot spare, loaded ahead (a worker forked now would load the whole
    // config first: seconds on a loaded machine), and the spare served within a second of
    // taking it, as the supervisor measured it. The end-to-end figure also holds this test's
    // own polling of /status over fresh connections, which a loaded machine stretches.
    const serving = (await gw.status()).workers.status as { pid: number }[];
    expect(serving.map((w) => w.pid)).toContain(sparePid);
    const ready = gw.output().split('\n').filter((l) => l.includes('"worker ready"') && l.includes(`"workerPid":${sparePid}`));
    expect(ready, 'the promoted spare\'s "worker ready" line').toHaveLength(1);
    expect(JSON.parse(ready[0]).ms).toBeLessThan(1_000);
    expect(replacedIn).toBeLessThan(5_000);

    // Quarantined in every worker: the next requests fail fast, with an id and nothing of the host.
    for (let i = 0; i < 4; i++) {
      const t0 = Date.now();
      const r = await request(`${gw.url}/evil`, { reset: true });
      const body = await r.body.text();
      expect(r.statusCode).toBe(503);
      expect(Date.now() - t0).toBeLessThan(500);
      const json = JSON.parse(body);
      expect(json.error.code).toBe('ISG_ERR_PLUGIN_UNAVAILABLE');
      expect(json.error.id).toMatch(/^[0-9a-f]{16}$/);
      expect(body).not.toMatch(/node_modules|\.ts:|at /);
      expect(body).not.toContain(process.cwd());
    }
    // The neighbour is served on: as many answers as an idle machine gives in about a second
    // (a loaded one may need longer, and the loop keeps counting failures meanwhile).
    await waitFor(() => goodOk > 20, 8_000, 'the good tenant to be served on');
    running = false;
    await loop;

    expect(goodOk).toBeGreaterThan(20);
    // At most the requests in flight on the dead worker: one connection of ours at a time.
    expect(goodFailed).toBeLessThanOrEqual(1);

    // Whichever comes first ends the worker: V8 aborting the process (crash), or the
    // worker's sentinel killing it because the split ran on past the CPU limit after the
    // watchdog's dispose (wedged). Exactly one of them, once.
    const status = await gw.status();
    expect(status.quarantined).toEqual([expect.objectContaining({ tenant: 'evil', instance: 'evil/crasher@tenant', reason: expect.stringMatching(/^(crash|wedged)$/) })]);
    const reason = status.quarantined[0].reason;
    const metrics = await gw.metrics();
    expect(metrics).toMatch(/isogate_plugin_quarantined\{tenant="evil",instance="evil\/crasher@tenant"\} 1/);
    expect(metrics).toMatch(new RegExp(`isogate_worker_restarts_total\\{reason="${reason}"\\} 1\n`));
    expect(metrics).not.toMatch(new RegExp(`isogate_worker_restarts_total\\{reason="${reason === 'crash' ? 'wedged' : 'crash'}"\\}`));
    expect(Date.now() - crashedAt).toBeLessThan(10_000);
  }, 30_000);
});
