import { execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// The README's quick start, run as a new user runs it: the command between the quickstart
// markers of README.md, verbatim, in a shell in this checkout (`npm install` on the tree CI
// installed is a no-op of about a second). It uses the demo's fixed ports, 8000, 8001 and
// 9000 (the one test that does): a busy port fails the test at once, naming the port.

const ROOT = resolve(import.meta.dirname, '..', '..');
const DEMO_PORTS = [
  { port: 8000, host: '0.0.0.0', what: 'proxy' },
  { port: 8001, host: '127.0.0.1', what: 'admin' },
  { port: 9000, host: '127.0.0.1', what: 'echo upstream' },
];

/** The shell command(s) of the README's quick start block. */
function quickStartCommand(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /<!-- quickstart:start[^>]*-->\s*```sh\n([\s\S]*?)```\s*<!-- quickstart:end -->/.exec(readme);
  if (block === null) throw new Error('README.md has no ```sh block between <!-- quickstart:start --> and <!-- quickstart:end -->');
  return block[1].trim();
}

function portFree(port: number, host: string): Promise<string | null> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    probe.listen(port, host, () => probe.close(() => done(null)));
  });
}

type Reply = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

function get(port: number, path: string): Promise<Reply> {
  return new Promise((done, fail) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => done({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', fail);
    req.end();
  });
}

/** Pids of live processes in process group `pgid` (Linux /proc), with their command lines. */
function groupMembers(pgid: number): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command (which is in parentheses and may hold spaces): state ppid pgrp ...
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid || fields[0] === 'Z') continue;
      out.push({ pid: Number(name), cmd: readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ').trim() });
    } catch {
      /* the process ended while we looked */
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Node version gate', () => {
  it('bin/isogate.js stops on a Node older than 24 with one line, before any TypeScript loads', async () => {
    // This Node pretends to be 20: the gate reads process.versions.node, nothing else.
    const script = `Object.defineProperty(process.versions, 'node', { value: '20.19.1' }); await import(${JSON.stringify(join(ROOT, 'bin', 'isogate.js'))});`;
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      const child = execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, timeout: 10_000 }, (_err, stdout, stderr) =>
        done({ code: child.exitCode, stdout, stderr }),
      );
    });
    expect(r).toEqual({ code: 1, stdout: '', stderr: 'Isogate needs Node.js 24 or newer; found 20.19.1\n' });
  });

  it('npm refuses to install on an older Node: engine-strict in .npmrc, engines in package.json', () => {
    expect(readFileSync(join(ROOT, '.npmrc'), 'utf8')).toMatch(/^engine-strict=true$/m);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.engines.node).toBe('>=24');
    expect(pkg.bin.isogate).toBe('./bin/isogate.js');
    expect(pkg.scripts.start).toBe('node --no-node-snapshot bin/isogate.js');
  });
});

describe('README quick start', () => {
  it('runs the README command as written: demo answers with the plugin headers, admin serves, SIGTERM stops it cleanly', async () => {
    const command = quickStartCommand();
    expect(command).toBe('npm install && npm start');
    for (const { port, host, what } of DEMO_PORTS) {
      const busy = await portFree(port, host);
      if (busy !== null) throw new Error(`port ${port} (the demo's ${what}) is busy on ${host} (${busy}): stop what listens there and run again`);
    }

    // Own process group (detached), so every process the command starts can be found and none
    // left behind. npm's audit and funding reports are off: network chatter that changes
    // neither what is installed nor what starts.
    const child = spawn('sh', ['-c', command], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' } });
    const pgid = child.pid!;
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));

    try {
      let echo: Reply | null = null;
      // About 5 s on an idle 2-core machine; workers took 17 s to be ready while other suites loaded it.
      const deadline = Date.now() + 25_000;
      while (echo === null) {
        if (child.exitCode !== null) throw new Error(`the quick start exited with ${child.exitCode} before serving:\n${output}`);
        if (Date.now() > deadline) throw new Error(`nothing answered on port 8000 within 25 s:\n${output}`);
        echo = await get(8000, '/echo').catch(() => null);
        if (echo === null) await sleep(100);
      }
      expect(echo.status, output).toBe(200);
      expect(echo.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{16,}$/);
      expect(echo.headers['x-powered-by']).toBe('isogate');

      const metrics = await get(8001, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.body).toContain('isogate_requests_total');
      const status = await get(8001, '/status');
      expect(status.status).toBe(200);
      expect(JSON.parse(status.body)).toMatchObject({ name: 'isogate', counts: { tenants: 1, routes: 1 } });

      // Stop the gateway as a service manager does: SIGTERM to its process (the supervisor).
      const gateway = groupMembers(pgid).filter((p) => p.cmd.includes('bin/isogate.js') && p.cmd.startsWith('node'));
      expect(gateway.map((p) => p.cmd), JSON.stringify(groupMembers(pgid))).toHaveLength(1);
      process.kill(gateway[0].pid, 'SIGTERM');
      const result = await Promise.race([exited, sleep(10_000).then(() => null)]);
      expect(result, `did not exit within 10 s of SIGTERM:\n${output}`).toEqual({ code: 0, signal: null });
      // npm, the supervisor, its workers and the echo upstream are all gone.
      let left = groupMembers(pgid);
      for (let i = 0; i < 20 && left.length > 0; i++) {
        await sleep(100);
        left = groupMembers(pgid);
      }
      expect(left, 'processes left behind').toEqual([]);
      for (const { port, host } of DEMO_PORTS) expect(await portFree(port, host), `port ${port} still bound`).toBeNull();
    } finally {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        /* already gone, as it should be */
      }
    }
  }, 45_000);
});
