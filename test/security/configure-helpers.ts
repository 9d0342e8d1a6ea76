/**
 * Shared shape of the "configure turns hostile" attacks. configure(configs) runs plugin
 * code when the tenant's isolate is built, on the worker's event loop, before any request
 * there; `body` is the module's configure. It must be bounded by the plugin's CPU limit,
 * never read by the host beyond a capped string the runtime made, and disable only its
 * own plugin:
 *  - `isogate --check` (a child process) reports the plugin and exits 1 within seconds;
 *  - in a gateway, the first request of the tenant (to its other plugin) builds the
 *    isolate without blocking the loop for long and is served; the attacker's instances
 *    fail with an error id (outcome `expectOutcome`) and stay disabled; the neighbour
 *    tenant is served.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeConfig } from '../helpers/gateway.ts';
import { BENIGN, expectPluginFailed, expectStillServes, failures, faultLogs, plugin, send, startLab, type Lab } from './helpers.ts';
import { runCheck } from './load-helpers.ts';

const CHECK_YAML = `
tenants:
  - name: evil
    limits: { cpuMs: 30 }
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s, paths: [/] }, { name: c, service: s, paths: [/calm] }]
    plugins:
      - { name: evil, path: ./evil.ts, route: r }
      - { name: benign, path: ./benign.ts, route: c }
`;

export function describeConfigureAttack(title: string, body: string, expectOutcome: 'threw' | 'cpu', detail: RegExp): void {
  const evil = plugin(`export function access(pdk) { pdk.response.setHeader('x-evil', '1'); }\n${body}\n`);

  describe(title, () => {
    it('--check reports the plugin and exits 1 within seconds', async () => {
      const file = writeConfig(CHECK_YAML, { 'evil.ts': evil, 'benign.ts': BENIGN });
      const calm = writeConfig(CHECK_YAML, { 'evil.ts': plugin('export function access(pdk) {}\nexport function configure(pdk, configs) { pdk.log.info(configs.length); }'), 'benign.ts': BENIGN });
      const [r, ok] = await Promise.all([runCheck(file), runCheck(calm)]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(r.code, r.stderr).toBe(1);
      expect(r.ms).toBeLessThan(ok.ms + 4000);
      expect(r.stderr).toContain(`${file}: invalid config`);
      expect(r.stderr).toMatch(new RegExp(`tenant "evil": plugin "evil" would be disabled \\(${expectOutcome}\\): ${detail.source}`));
      expect(r.stderr).not.toContain('benign');
    }, 90_000); // two CLI runs side by side: the claim is the comparison (no hang), not their time on a loaded machine

    describe('in a gateway', () => {
      let lab: Lab;
      beforeAll(async () => {
        lab = await startLab({ evil, cpuMs: 30 });
      });
      afterAll(async () => {
        await lab.stop();
      });

      it("building the isolate is bounded; the tenant's other plugin is served", async () => {
        const h = monitorEventLoopDelay({ resolution: 5 });
        h.enable();
        const calm = await send(`${lab.url}/calm`); // the tenant's first request builds its isolate
        h.disable();
        expect(calm.status).toBe(200);
        expect(calm.headers['x-benign']).toBe('ok');
        // Unbounded, it would never end. 30 ms of CPU, a rebuild and the watchdog's notice take
        // ~60-130 ms of wall time here; CPU time is judged, so a loaded machine stretches it.
        expect(h.max / 1e6).toBeLessThan(1500);
      });

      it(`its instances fail with an error id (outcome ${expectOutcome}), every time; the neighbour is served`, async () => {
        const disabled = lab.logs.filter((l) => String(l.msg).startsWith('plugin disabled for this config'));
        expect(disabled).toHaveLength(1);
        expect(disabled[0]).toMatchObject({ tenant: 'evil', plugin: 'evil', reason: expectOutcome });
        expect(String(disabled[0].msg)).toMatch(detail);
        const r = await send(`${lab.url}/evil`);
        expectPluginFailed(r);
        expect(r.headers['x-evil']).toBeUndefined();
        expect(r.ms).toBeLessThan(1500);
        expect(await failures(lab, expectOutcome, { plugin: 'evil' })).toBe(1);
        expect(String(faultLogs(lab).find((l) => l.plugin === 'evil')?.msg)).toMatch(detail);
        expectPluginFailed(await send(`${lab.url}/evil`));
        await expectStillServes(lab);
      });
    });
  });
}
