import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatMs } from '../../core/access-log.ts';
import { Gateway } from '../../core/gateway.ts';
import { createLogger } from '../../core/log.ts';
import { NO_BREAKER, echoHandler, freePort, pluginSource, send, startUpstream, waitFor, writeConfig, type Upstream } from '../helpers/gateway.ts';

/**
 * The access log: one JSON line per proxied request, read back from the file the config
 * names (`log.access: ./access.log`, relative to the config file), field by field.
 */
const ROOT = join(import.meta.dirname, '..', '..');

const SLOW_PLUGIN = pluginSource(
  'slowish',
  `export function access(pdk: any) {
    if (pdk.request.getHeader('x-fail')) throw new Error('boom');
    const t = Date.now(); while (Date.now() - t < 3) {}
    if (pdk.request.getHeader('x-exit')) pdk.response.exit(403, { message: 'no' });
  }`,
);

type Line = {
  level: string; time: string; msg: string; tenant: string; route: string; method: string; path: string; status: number; bytes: number;
  latencies: { request: number; proxy: number | null; plugins: number }; errorId?: string;
};

function readLines(file: string): Line[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line);
}

const config = (upstream: string, access: string) => `
${NO_BREAKER}
log: { access: ${access} }
tenants:
  - name: acme
    services: [{ name: s, url: "${upstream}" }]
    routes:
      - { name: plain, service: s, paths: [/plain] }
      - { name: plugged, service: s, paths: [/plugged] }
    plugins:
      - { name: slowish, path: ./slowish.ts, route: plugged }
`;

async function start(yaml: string): Promise<{ gw: Gateway; url: string; file: string }> {
  const configFile = writeConfig(yaml, { 'slowish.ts': SLOW_PLUGIN });
  const gw = await Gateway.start({ configFile, listen: { host: '127.0.0.1', port: 0 }, admin: false, logger: createLogger('silent') });
  return { gw, url: `http://127.0.0.1:${gw.proxyAddress.port}`, file: join(dirname(configFile), 'access.log') };
}

describe('access log', () => {
  let up: Upstream;
  let on: { gw: Gateway; url: string; file: string };

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    on = await start(config(up.url, './access.log'));
  });
  afterAll(async () => {
    await on?.gw.stop(500);
    await up?.close();
  });

  it('writes one line per request with every field', async () => {
    const t0 = Date.now();
    const r = await send(`${on.url}/plain/a%7Eb?secret=1`, { method: 'POST', body: 'hello' });
    expect(r.status).toBe(200);
    const line = await waitFor(() => readLines(on.file).find((l) => l.route === 'plain'), 3000, 'the line');
    expect(line).toMatchObject({ level: 'info', msg: 'access', tenant: 'acme', route: 'plain', method: 'POST', path: '/plain/a~b', status: 200 });
    expect(Date.parse(line.time)).toBeGreaterThanOrEqual(t0 - 1000);
    expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // What went to the client: the body and the status line and headers before it.
    expect(line.bytes).toBeGreaterThan(Buffer.byteLength(r.body) + 50);
    expect(line.bytes).toBeLessThan(Buffer.byteLength(r.body) + 1000);
    expect(line.latencies.request).toBeGreaterThan(0);
    expect(line.latencies.proxy).toBeGreaterThan(0);
    expect(line.latencies.proxy!).toBeLessThanOrEqual(line.latencies.request);
    expect(line.latencies.plugins).toBe(0);
    expect(line.errorId).toBeUndefined();
    expect(JSON.stringify(line)).not.toContain('secret'); // the query string is not logged
  });

  it('writes the line in its field order, and escapes the path as JSON.stringify does', async () => {
    // Raw bytes, as no client library sends them: a quote and a backslash in the path, which
    // llhttp lets through (it refuses controls and bytes above ASCII). Written, not ended: a
    // half-closed client is one that went away (499).
    const target = '/plain/q"b\\c';
    await new Promise<void>((resolve, reject) => {
      const s = connect(on.gw.proxyAddress.port, '127.0.0.1', () => s.write(Buffer.from(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, 'latin1')));
      s.on('data', () => {}).once('close', () => resolve()).once('error', reject);
    });
    const raw = await waitFor(() => (existsSync(on.file) ? readFileSync(on.file, 'utf8').split('\n').find((l) => l.includes('/plain/q')) : undefined), 3000, 'the line');
    expect(raw).toContain(`"path":${JSON.stringify(target)}`);
    expect(raw).toContain('"path":"/plain/q\\"b\\\\c"');
    expect(raw).toMatch(/^\{"level":"info","time":"[^"]+","msg":"access","tenant":"acme","route":"plain","method":"GET","path":"[^\n]+","status":200,"bytes":\d+,"latencies":\{"request":[\d.]+,"proxy":[\d.]+,"plugins":0\}\}$/);
    expect(JSON.parse(raw).path).toBe(target);
  });

  it('writes latencies as milliseconds rounded to 3 decimals, as Math.round(v * 1000) / 1000 prints them', () => {
    const values = [0, -0, 0.0004, 0.0005, 0.001, 0.01, 0.0995, 0.1, 0.12, 0.123, 1, 1.5, 1.05, 1.005, 2.0004, 10.9999, 999.9995, 123456.789, 2 ** 30 / 1000, 1e10, -1, -0.0004, Number.NaN];
    for (let i = 0; i < 20_000; i++) values.push(Math.random() * 10 ** ((i % 8) - 3));
    for (const v of values) expect(formatMs(v), String(v)).toBe(String(Math.round(v * 1000) / 1000));
  });

  it('counts the time spent in plugins, and a plugin exit has no upstream time', async () => {
    await send(`${on.url}/plugged/ok`);
    await send(`${on.url}/plugged/exit`, { headers: { 'x-exit': '1' } });
    const ok = await waitFor(() => readLines(on.file).find((l) => l.path === '/plugged/ok'), 3000, 'the plugged line');
    expect(ok.latencies.plugins).toBeGreaterThanOrEqual(3); // the plugin spins 3 ms
    expect(ok.latencies.plugins).toBeLessThanOrEqual(ok.latencies.request);
    const exit = await waitFor(() => readLines(on.file).find((l) => l.path === '/plugged/exit'), 3000, 'the exit line');
    expect(exit).toMatchObject({ status: 403, latencies: { proxy: null } });
  });

  it("carries the error id of a plugin's 5xx, the one the client got", async () => {
    const r = await send(`${on.url}/plugged/fail`, { headers: { 'x-fail': '1' } });
    expect(r.status).toBe(500);
    const id = r.headers['x-isogate-error-id'];
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    const line = await waitFor(() => readLines(on.file).find((l) => l.path === '/plugged/fail'), 3000, 'the failure line');
    expect(line).toMatchObject({ status: 500, errorId: id, latencies: { proxy: null } });
  });

  it('writes nothing when off', async () => {
    const off = await start(config(up.url, 'false'));
    try {
      for (let i = 0; i < 5; i++) expect((await send(`${off.url}/plain/x`)).status).toBe(200);
    } finally {
      await off.gw.stop(500);
    }
    expect(existsSync(off.file)).toBe(false);
  });

  it('loses no line on a clean SIGTERM, in-flight requests included, and writes to stdout by default', async () => {
    const port = await freePort();
    const slow = await startUpstream((req, res) => setTimeout(() => echoHandler(req, res), req.url!.startsWith('/slow') ? 400 : 0));
    const yaml = `
listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: 0 }
workers: 0
tenants:
  - name: acme
    services: [{ name: s, url: "${slow.url}" }]
    routes: [{ name: plain, service: s }]
`;
    const configFile = writeConfig(yaml);
    const child = spawn(process.execPath, ['--no-node-snapshot', join(ROOT, 'core', 'cli.ts'), '--config', configFile], {
      cwd: ROOT,
      env: { ...process.env, ISOGATE_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(async () => (await send(`http://127.0.0.1:${port}/warm`).catch(() => null))?.status === 200, 20_000, 'the gateway');
      const N = 200;
      const replies = await Promise.all(Array.from({ length: N }, (_, i) => send(`http://127.0.0.1:${port}/n/${i}`)));
      expect(replies.every((r) => r.status === 200)).toBe(true);
      // These are in flight when SIGTERM lands: they drain, and their lines are the last.
      const inflight = Array.from({ length: 20 }, (_, i) => send(`http://127.0.0.1:${port}/slow/${i}`));
      await new Promise((r) => setTimeout(r, 150));
      child.kill('SIGTERM');
      expect((await Promise.all(inflight)).map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(await exited).toBe(0);
      const lines = out.split('\n').filter((l) => l.includes('"msg":"access"')).map((l) => JSON.parse(l) as Line);
      const paths = new Set(lines.map((l) => l.path));
      for (let i = 0; i < N; i++) expect(paths.has(`/n/${i}`), `/n/${i}`).toBe(true);
      for (let i = 0; i < 20; i++) expect(paths.has(`/slow/${i}`), `/slow/${i}`).toBe(true);
      expect(lines).toHaveLength(N + 20 + 1); // and each once (the warm-up request is the +1)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await slow.close();
    }
  });
  /**
   * The real CLI in one process (access log to stdout, a pipe this test reads), once it
   * serves; then 600 requests of ~360-byte lines while nobody reads the pipe: 216 KB
   * against its 64 KB, so the gateway's writes meet EAGAIN (a blocking write would stall
   * every request here). The pipe is left paused.
   */
  async function fillThePipe(logYaml: string) {
    const port = await freePort();
    const yaml = `
listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: 0 }
${logYaml}
workers: 0
tenants:
  - name: acme
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: plain, service: s }]
`;
    const child = spawn(process.execPath, ['--no-node-snapshot', join(ROOT, 'core', 'cli.ts'), '--config', writeConfig(yaml)], {
      cwd: ROOT,
      env: { ...process.env, ISOGATE_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const io = { out: '', err: '' };
    child.stdout.on('data', (d: Buffer) => (io.out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (io.err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const paths = ['/warm'];
    try {
      await waitFor(async () => (await send(`http://127.0.0.1:${port}/warm`).catch(() => null))?.status === 200, 20_000, 'the gateway');
      child.stdout.pause();
      const long = 'x'.repeat(100);
      for (let i = 0; i < 600; i += 50) {
        const batch = Array.from({ length: 50 }, (_, k) => `/n/${long}/${i + k}`);
        paths.push(...batch);
        const replies = await Promise.all(batch.map((path) => send(`http://127.0.0.1:${port}${path}`)));
        expect(replies.every((r) => r.status === 200)).toBe(true);
      }
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    return { child, io, exited, paths };
  }

  it('drops and counts lines past log.accessBacklogMb while nobody reads the pipe, instead of growing without bound', async () => {
    // a 20 KB backlog behind the 64 KB pipe
    const { child, io, exited, paths } = await fillThePipe('log: { accessBacklogMb: 0.02 }');
    try {
      child.stdout.resume();
      await waitFor(() => io.err.includes('caught up'), 10_000, 'the catch-up note');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(io.err).toMatch(/access log's reader is behind by \d+ KB \(log\.accessBacklogMb\): lines are dropped/);
      const dropped = Number(/caught up; (\d+) lines were dropped/.exec(io.err)![1]);
      const lines = io.out.split('\n').filter((l) => l.includes('"msg":"access"'));
      expect(dropped).toBeGreaterThan(0);
      // Every line either written whole or counted as dropped.
      expect(lines.length + dropped).toBe(paths.length);
      for (const l of lines) JSON.parse(l);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
  for (const stopWhileFull of [false, true]) {
    it(stopWhileFull ? 'stopped while its stdout pipe is full, writes every line once the pipe is read again, then exits' : 'never blocks the gateway on a full stdout pipe, and loses no line once it is read again', async () => {
      const { child, io, exited, paths } = await fillThePipe('');
      try {
        if (stopWhileFull) {
          child.kill('SIGTERM');
          // what the pipe refused is still waiting for its reader: the gateway has not exited
          await new Promise((r) => setTimeout(r, 500));
          expect(child.exitCode).toBeNull();
          child.stdout.resume();
        } else {
          child.stdout.resume();
          child.kill('SIGTERM');
        }
        expect(await exited).toBe(0);
        const lines = io.out.split('\n').filter((l) => l.includes('"msg":"access"')).map((l) => JSON.parse(l) as Line);
        // Every line, once (requests sent together finish, and are logged, in any order).
        expect(lines.map((l) => l.path).sort()).toEqual([...paths].sort());
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });
  }
});
