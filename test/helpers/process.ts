import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { request } from 'undici';
import { freePort, waitFor, writeConfig } from './gateway.ts';

const ROOT = join(import.meta.dirname, '..', '..');

export type GatewayProcess = {
  child: ChildProcess;
  url: string;
  adminUrl: string;
  /** Everything the process wrote (JSON log lines and stderr). */
  output(): string;
  status(): Promise<any>;
  metrics(): Promise<string>;
  stop(): Promise<void>;
};

/**
 * Starts the real CLI (supervisor and workers) as a child process on free ports. The YAML
 * may use ${PORT} and ${ADMIN_PORT}; they are filled in. Resolves once every worker serves
 * and the hot spare is loaded.
 */
export async function spawnGateway(yaml: string, files: Record<string, string> = {}, extraArgs: string[] = [], startTimeoutMs = 60_000 /* a loaded machine (shared CI) can take this long */): Promise<GatewayProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    let adminPort = await freePort();
    while (adminPort === port) adminPort = await freePort();
    try {
      return await spawnOn(port, adminPort, yaml, files, extraArgs, startTimeoutMs);
    } catch (err) {
      // A port free a moment ago can be taken by a parallel test file before the gateway
      // binds it (seen with a node that first waits 2 s for Redis): try new ports. A port
      // the test chose itself stays the test's error.
      const taken = /EADDRINUSE: address already in use [\d.]+:(\d+)/.exec((err as Error).message);
      if (attempt === 3 || taken === null || ![port, adminPort].includes(Number(taken[1]))) throw err;
    }
  }
}

async function spawnOn(port: number, adminPort: number, yaml: string, files: Record<string, string>, extraArgs: string[], startTimeoutMs: number): Promise<GatewayProcess> {
  const configFile = writeConfig(yaml.replaceAll('${PORT}', String(port)).replaceAll('${ADMIN_PORT}', String(adminPort)), files);
  const child = spawn(process.execPath, ['--no-node-snapshot', join(ROOT, 'core', 'cli.ts'), '--config', configFile, ...extraArgs], {
    cwd: ROOT,
    env: { ...process.env, ISOGATE_LOG_LEVEL: process.env.ISOGATE_TEST_LOG ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  // A gateway that ends on its own once up (not stopped, not killed by the test's signal)
  // fails whatever test runs next with connection errors that say nothing of why: say it here.
  let up = false;
  let stopping = false;
  // A test whose hook timed out while this started never gets `gp` to stop it: the gateway
  // would outlive the test process (seen: a supervisor and its workers left under init).
  const orphaned = () => child.kill('SIGKILL');
  process.once('exit', orphaned);
  child.once('exit', (code, signal) => {
    process.off('exit', orphaned);
    if (up && !stopping && !(child.killed && signal !== null)) console.error(`gateway pid ${child.pid} exited by itself (code ${code}, signal ${signal}); its last output:\n${out.split('\n').slice(-30).join('\n')}`);
  });
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const gp: GatewayProcess = {
    child,
    url: `http://127.0.0.1:${port}`,
    adminUrl,
    output: () => out,
    status: async () => JSON.parse(await adminGet(`${adminUrl}/status`)),
    metrics: () => adminGet(`${adminUrl}/metrics`),
    stop: () =>
      new Promise<void>((resolve) => {
        stopping = true;
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}:\n${out}`);
    try {
      const s = await gp.status();
      if (s.workers === undefined || (s.workers.ready === s.workers.size && s.workers.spareReady === true)) {
        up = true;
        return gp;
      }
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await gp.stop();
      throw new Error(`gateway did not come up:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * One GET on a connection of its own: tests poll the admin port every few ms while workers
 * come and go, and a poll should never depend on a kept-alive connection's state. (The CI
 * failure first blamed on keep-alive, "read ECONNRESET" twice in a row, was the supervisor
 * itself going down on an unheard EPIPE: test/core/supervisor-send-to-exiting.test.ts.)
 */
async function adminGet(url: string): Promise<string> {
  const r = await request(url, { reset: true });
  return r.body.text();
}

/** Waits until `check` returns true (test/helpers/gateway.ts waitFor); resolves with the time it took, in ms. */
export async function msUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<number> {
  const t0 = Date.now();
  await waitFor(check, timeoutMs, what);
  return Date.now() - t0;
}
