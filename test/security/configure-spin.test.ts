// cpu: a plugin's configure spins forever. It runs when the tenant's isolate is built, on
// the worker's event loop: it must be stopped at the plugin's CPU limit, disable only that
// plugin (the isolate is rebuilt without it) and be reported by --check. Two such plugins
// in one tenant: one rebuild each, within the first request.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeConfigureAttack } from './configure-helpers.ts';
import { expectPluginFailed, expectStillServes, NEIGHBOURS, plugin, send, startLab, type Lab } from './helpers.ts';

describeConfigureAttack('configure spins', 'export function configure() { for (;;) {} }', 'cpu', /stopped by the watchdog while its configure ran/);

const SPIN = (name: string) => plugin(`export function access(pdk) { pdk.response.setHeader('x-${name}', '1'); }\nexport function configure() { for (;;) {} }\n`, name);

describe('configure spins in two plugins of one tenant', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({
      evil: SPIN('evil'),
      files: { 'evil2.ts': SPIN('evil2') },
      yaml: `
tenants:
  - name: evil
    limits: { cpuMs: 30 }
    breaker: { faults: 1000, windowMs: 1000, cooldownMs: 1 }
    services: [{ name: s, url: "UP" }]
    routes:
      - { name: evil, service: s, paths: [/evil] }
      - { name: evil2, service: s, paths: [/evil2] }
      - { name: calm, service: s, paths: [/calm] }
    plugins:
      - { name: evil, path: ./evil.ts, route: evil }
      - { name: evil2, path: ./evil2.ts, route: evil2 }
      - { name: benign, path: ./benign.ts, route: calm }${NEIGHBOURS}`,
    });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it("the first request leaves both out, one rebuild each, and is served", async () => {
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const calm = await send(`${lab.url}/calm`);
    h.disable();
    expect(calm.status).toBe(200);
    expect(calm.headers['x-benign']).toBe('ok');
    expect(h.max / 1e6).toBeLessThan(2000); // two stops at 30 ms of CPU each (judged on CPU time: a loaded machine stretches the wall time)
    expect(lab.logs.filter((l) => String(l.msg).startsWith('plugin disabled for this config')).map((l) => l.plugin).sort()).toEqual(['evil', 'evil2']);
    expectPluginFailed(await send(`${lab.url}/evil`));
    expectPluginFailed(await send(`${lab.url}/evil2`));
    await expectStillServes(lab);
  });
});
