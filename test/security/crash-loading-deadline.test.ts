import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { echoHandler, startUpstream, waitFor, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';

// Regression: a plugin module whose top-level code V8 cannot interrupt (a sparse
// lastIndexOf over 2e9 holes: ~40 s in one builtin, past isolated-vm's own load timeout)
// hung every worker that loaded the config; workers stuck while loading were never
// replaced, and on reload every worker hung at once. Now every worker state has a
// deadline, the sentinel kills a worker stuck in a module's code and the beacon names the
// module, which is quarantined; a reload is tried in the hot spare first, so the running
// config keeps serving.
const STALL = `
const a = []; a.length = 2e9; a.lastIndexOf(1);
export const name = 'stall';
export const version = '1.0.0';
export const priority = 1;
export function access() {}
`;

const config = (upUrl: string, withStall: boolean) => `
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 2
supervisor: { startTimeoutMs: 20000 }
tenants:
  - name: good
    services: [{ name: s, url: "${upUrl}" }]
    routes: [{ name: r, service: s, paths: [/good] }]
    plugins: [{ name: correlation-id }]
${withStall ? `  - name: evil
    services: [{ name: s, url: "${upUrl}" }]
    routes: [{ name: r, service: s, paths: [/evil] }]
    plugins: [{ name: stall, path: ./stall.ts }]` : ''}
`;

describe('a plugin module that cannot finish loading', () => {
  let up: Upstream;
  let gw: GatewayProcess;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(config(up.url, false), { 'stall.ts': STALL });
  }, 90_000);
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('on reload: costs the hot spare only, the module is quarantined, the running config keeps serving', async () => {
    let ok = 0;
    let failed = 0;
    let running = true;
    const victim = (async () => {
      while (running) {
        try {
          const r = await request(`${gw.url}/good`, { reset: ok % 2 === 0 });
          await r.body.text();
          if (r.statusCode === 200) ok++;
          else failed++;
        } catch {
          failed++;
        }
      }
    })();
    const args = gw.child.spawnargs;
    const file = args[args.indexOf('--config') + 1];
    const ports = /port: (\d+) \}\nadmin: \{ host: 127.0.0.1, port: (\d+)/.exec(readFileSync(file, 'utf8'))!;
    writeFileSync(file, config(up.url, true).replace('${PORT}', ports[1]).replace('${ADMIN_PORT}', ports[2]));
    gw.child.kill('SIGHUP');
    await waitFor(async () => (await gw.status()).quarantined.length > 0, 30_000, 'the module to be quarantined');
    const status = await gw.status();
    expect(status.quarantined).toEqual([expect.objectContaining({ instance: 'module stall.ts', reason: 'wedged' })]);
    // The serving workers never took the new config: both still serve version 1.
    expect(status.workers.ready).toBe(2);
    for (const w of status.workers.status) expect(w.config.version).toBe(1);
    await new Promise((r) => setTimeout(r, 500));
    running = false;
    await victim;
    expect(ok).toBeGreaterThan(20);
    expect(failed).toBe(0);
    expect(gw.output()).toMatch(/config reload rejected, the hot spare could not load it; the workers keep the running config: worker spare died \(wedged\) while loading the new config/);
  }, 90_000);

  it('at start: the stuck worker is killed, the module named, and the gateway exits with a clear error instead of hanging', async () => {
    const t0 = Date.now();
    const started = await spawnGateway(config(up.url, true), { 'stall.ts': STALL }).then(
      (g) => g,
      (err: Error) => err,
    );
    if (!(started instanceof Error)) await started.stop();
    expect(started).toBeInstanceOf(Error);
    const message = (started as Error).message;
    expect(message).toMatch(/exited with 1/);
    expect(message).toMatch(/plugin module quarantined: its worker died loading it/);
    expect(message).toMatch(/quarantined: loading this module wedged a worker/);
    expect(Date.now() - t0).toBeLessThan(60_000);
  }, 90_000);
});
