import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './gateway.ts';

export type RedisServer = {
  port: number;
  url: string;
  /** Stops the server (SIGTERM; with persistence on, it saves first). */
  stop(): Promise<void>;
  /** Starts it again on the same port and folder (what it persisted is back). */
  start(): Promise<void>;
};

/**
 * A real redis-server on a free port of 127.0.0.1, in a temp folder. `persist`: an
 * append-only file fsynced on every write (a restart keeps everything); otherwise nothing
 * is saved. Call stop() in afterAll.
 */
export async function startRedis(options: { persist?: boolean } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'isogate-redis-'));
  let child: ChildProcess | null = null;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', '--loglevel', 'warning'];
  args.push(...(options.persist === true ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']));
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      const c = spawn(process.env.REDIS_SERVER ?? 'redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      c.on('error', (e: NodeJS.ErrnoException) => (err += e.code === 'ENOENT' ? 'redis-server not found: install it (Debian: apt-get install redis-server) or set REDIS_SERVER to its path' : e.message));
      child = c;
      const deadline = Date.now() + 10_000;
      while (!(await answersPing(port))) {
        if (c.exitCode !== null || err.startsWith('redis-server not found')) throw new Error(`redis-server exited with ${c.exitCode}: ${err}`);
        if (Date.now() > deadline) throw new Error(`redis-server did not come up on ${port}: ${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      const c = child;
      child = null;
      if (c !== null && c.exitCode === null && c.signalCode === null) {
        await new Promise<void>((resolve) => {
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 5_000).unref();
        });
      }
    },
  };
  await server.start();
  // The folder (the append-only file) outlives stop(): a restart reads it back. Removed at exit.
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return server;
}

/** Sends PING in RESP and waits for +PONG. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.setTimeout(500, () => s.destroy());
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      resolve(d.toString().startsWith('+PONG'));
      s.destroy();
    });
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(false));
  });
}
