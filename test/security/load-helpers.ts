/**
 * Shared shape of the "module throws a hostile value at load" attacks. The module's
 * top-level code throws `thrown` (a JavaScript expression). Two places load modules:
 *  - config load (the throwaway isolate of sandbox/plugin-loader.ts `inspect`): `--check`
 *    in a child process must report the plugin and exit 1 within seconds, and a gateway
 *    started in-process with the config must refuse it with the same clear error;
 *  - the tenant's isolate (sandbox/tenant-sandbox.ts): the module passes inspection and
 *    turns hostile only later (a time switch), so the first request loads it for real.
 *    Its instances fail (500 with an error id, outcome `expectOutcome`), the tenant's other
 *    plugin and the neighbour tenant are served.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.ts';
import { Gateway } from '../../core/gateway.ts';
import { writeConfig } from '../helpers/gateway.ts';
import { expectPluginFailed, expectStillServes, failures, faultLogs, plugin, send, startLab, type Lab } from './helpers.ts';

const ROOT = join(import.meta.dirname, '..', '..');

const CHECK_YAML = `
tenants:
  - name: evil
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s, paths: [/] }]
    plugins:
      - { name: evil, path: ./evil.ts }
`;

/** Runs `isogate --check` on `file` in a child process (killed after 20 s). */
export function runCheck(file: string): Promise<{ code: number | null; stderr: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--no-node-snapshot', join(ROOT, 'core', 'cli.ts'), '--check', '--config', file],
      { env: { ...process.env, ISOGATE_LOG_LEVEL: 'silent' }, timeout: 60_000, killSignal: 'SIGKILL' }, // a loaded machine took over 20 s for a valid config
      (err, _stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stderr, ms: performance.now() - t0 }),
    );
  });
}

export function describeLoadThrowAttack(title: string, thrown: string, expectOutcome: 'threw' | 'cpu'): void {
  describe(title, () => {
    const always = plugin(`export function access(pdk) { pdk.response.setHeader('x-evil', '1'); }\nthrow ${thrown};\n`);

    it('--check reports the plugin and exits 1 within seconds', async () => {
      const file = writeConfig(CHECK_YAML, { 'evil.ts': always });
      const calm = writeConfig(CHECK_YAML, { 'evil.ts': plugin('export function access(pdk) {}') });
      // Side by side with a valid config, so that a loaded machine slows both alike: the
      // hostile load may cost its 1 s bound and a little more, never a hang.
      const [r, ok] = await Promise.all([runCheck(file), runCheck(calm)]);
      expect(ok.code).toBe(0);
      expect(r.code, r.stderr).toBe(1);
      expect(r.ms).toBeLessThan(ok.ms + 4000);
      expect(r.stderr).toContain(`${file}: invalid config`);
      expect(r.stderr).toContain('tenants[0].plugins[0]: plugin "evil" could not be loaded: its top-level code');
    }, 90_000); // two CLI runs side by side: the claim is the comparison (no hang), not their time on a loaded machine

    it('a gateway refuses the config with the same error, quickly', async () => {
      const file = writeConfig(CHECK_YAML, { 'evil.ts': always });
      const t0 = performance.now();
      const err = await Gateway.start({ configFile: file, listen: { host: '127.0.0.1', port: 0 }, admin: false, logger: pino({ level: 'silent' }) }).then(
        async (gw) => {
          await gw.stop(0);
          return null;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).details.join('\n')).toContain('plugin "evil" could not be loaded: its top-level code');
      expect(performance.now() - t0).toBeLessThan(5000);
    });

    describe('in the tenant isolate (the module turns hostile after inspection)', () => {
      let lab: Lab;
      let armAt = 0;
      beforeAll(async () => {
        armAt = Date.now() + 3000;
        const later = plugin(`export function access(pdk) { pdk.response.setHeader('x-evil', '1'); }\nif (Date.now() >= ${armAt}) throw ${thrown};\n`);
        lab = await startLab({ evil: later, cpuMs: 30 });
        await new Promise((r) => setTimeout(r, Math.max(0, armAt - Date.now() + 10)));
      });
      afterAll(async () => {
        await lab.stop();
      });

      it(`its instances fail with an error id (outcome ${expectOutcome}); the tenant's other plugin and the neighbour are served`, async () => {
        const [evil, good] = await Promise.all([send(`${lab.url}/evil`), send(`${lab.url}/good`)]);
        expect(good.status).toBe(200);
        expectPluginFailed(evil);
        expect(evil.ms).toBeLessThan(1500);
        expect(await failures(lab, expectOutcome, { plugin: 'evil' })).toBe(1);
        const f = faultLogs(lab).find((l) => l.plugin === 'evil');
        expect(String(f?.msg)).toMatch(/module/);
        await expectStillServes(lab);
        // disabled for the isolate's life: the next request fails the same way, without running it again
        expectPluginFailed(await send(`${lab.url}/evil`));
        await expectStillServes(lab);
      });
    });
  });
}
