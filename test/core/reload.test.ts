import { spawn, type ChildProcess } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger, freePort, pluginSource, send, startGateway, startUpstream, waitFor, writeConfig, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Upstreams that answer with their own name. */
let upA: Upstream;
let upB: Upstream;

beforeAll(async () => {
  upA = await startUpstream((_req, res) => res.end('A'));
  upB = await startUpstream((_req, res) => res.end('B'));
});
afterAll(async () => {
  await upA.close();
  await upB.close();
});

/** A config whose route /r goes to `up` and whose header-transformer stamps x-v: `tag`. */
function config(up: Upstream, tag: string, extraRoute = '', head = ''): string {
  return `${head}
tenants:
  - name: t1
    services: [{ name: s, url: "${up.url}" }]
    routes:
      - { name: r, service: s, paths: [/r] }${extraRoute}
    plugins:
      - name: header-transformer
        config: { response: { set: { x-v: "${tag}" } } }
`;
}

describe('reload', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway(config(upA, '1'));
  });
  afterAll(async () => {
    await gw.stop();
  });

  it('swaps the config under continuous traffic without failing a request', async () => {
    type Seen = { body: string; v: unknown; status: number; startedAfterReload: boolean };
    const seen: Seen[] = [];
    let reloadedAt = Infinity;
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const started = performance.now();
        try {
          const r = await send(`${gw.url}/r`);
          seen.push({ body: r.body, v: r.headers['x-v'], status: r.status, startedAfterReload: started > reloadedAt });
        } catch (err) {
          seen.push({ body: String(err), v: undefined, status: -1, startedAfterReload: started > reloadedAt });
        }
      }
    };
    const loops = Array.from({ length: 8 }, loop);
    await waitFor(() => seen.length >= 150, 10_000, 'traffic before the reload');
    writeFileSync(gw.configFile, config(upB, '2', '\n      - { name: extra, service: s, paths: [/extra] }'));
    const result = await gw.gw.reload();
    reloadedAt = performance.now();
    expect(result).toEqual({ ok: true, version: 2 });
    const before = seen.length;
    await waitFor(() => seen.length >= before + 150, 10_000, 'traffic after the reload');
    stop = true;
    await Promise.all(loops);

    const failed = seen.filter((s) => s.status !== 200);
    expect(failed).toEqual([]);
    expect(seen.length).toBeGreaterThanOrEqual(300);
    // Every response is wholly one config or the other, never a mix.
    const mixed = seen.filter((s) => `${s.body}${String(s.v)}` !== 'A1' && `${s.body}${String(s.v)}` !== 'B2');
    expect(mixed).toEqual([]);
    // Requests that started after reload() resolved saw only the new config.
    const after = seen.filter((s) => s.startedAfterReload);
    expect(after.length).toBeGreaterThan(100);
    expect(after.every((s) => s.body === 'B' && s.v === '2')).toBe(true);
    expect((await send(`${gw.url}/extra`)).body).toBe('B');
    expect(gw.gw.snapshot.version).toBe(2);
  });

  it('reports an invalid file and keeps serving the old config', async () => {
    const version = gw.gw.snapshot.version;
    writeFileSync(gw.configFile, config(upA, '3').replace('service: s,', 'service: missing,'));
    const result = await gw.gw.reload();
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toContain(gw.configFile);
    expect(result.error).toContain('tenants[0].routes[0].service: tenant "t1" has no service "missing"');
    expect(gw.gw.snapshot.version).toBe(version);
    const r = await send(`${gw.url}/r`);
    expect(r.body).toBe('B');
    expect(r.headers['x-v']).toBe('2');
    const status = (await send(`${gw.adminUrl}/status`)).json();
    expect(status.config.version).toBe(version);
    expect(status.config.lastReloadError).toContain('has no service "missing"');

    writeFileSync(gw.configFile, 'tenants: [');
    expect((await gw.gw.reload()).ok).toBe(false);
    expect((await send(`${gw.url}/r`)).body).toBe('B');

    // A good file afterwards is taken again, and clears the error.
    writeFileSync(gw.configFile, config(upA, '4'));
    expect(await gw.gw.reload()).toEqual({ ok: true, version: version + 1 });
    expect((await send(`${gw.url}/r`)).headers['x-v']).toBe('4');
    expect((await send(`${gw.adminUrl}/status`)).json().config.lastReloadError).toBeNull();
  });

  it('runs concurrent reloads one at a time, in order', async () => {
    const v = gw.gw.snapshot.version;
    writeFileSync(gw.configFile, config(upB, '5'));
    const results = await Promise.all([gw.gw.reload(), gw.gw.reload(), gw.gw.reload()]);
    expect(results).toEqual([
      { ok: true, version: v + 1 },
      { ok: true, version: v + 2 },
      { ok: true, version: v + 3 },
    ]);
    expect((await send(`${gw.url}/r`)).headers['x-v']).toBe('5');
  });
});

describe('reload on file change (--watch)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway(config(upA, 'w1'), {}, { watch: true });
  });
  afterAll(async () => {
    await gw.stop();
  });

  it('reloads when the file is written in place', async () => {
    expect((await send(`${gw.url}/r`)).headers['x-v']).toBe('w1');
    writeFileSync(gw.configFile, config(upB, 'w2'));
    await waitFor(async () => (await send(`${gw.url}/r`)).headers['x-v'] === 'w2', 3000, 'watch reload');
    expect((await send(`${gw.url}/r`)).body).toBe('B');
  });

  it('reloads when the file is replaced by a rename (as editors do)', async () => {
    const tmp = join(gw.configFile, '..', '.gateway.yaml.tmp');
    writeFileSync(tmp, config(upA, 'w3'));
    renameSync(tmp, gw.configFile);
    await waitFor(async () => (await send(`${gw.url}/r`)).headers['x-v'] === 'w3', 3000, 'watch reload after rename');
  });

  it('ignores other files in the folder and keeps the old config on an invalid write', async () => {
    const v = gw.gw.snapshot.version;
    writeFileSync(join(gw.configFile, '..', 'unrelated.txt'), 'x');
    writeFileSync(gw.configFile, 'tenants: [');
    const lastError = () => (gw.gw.status().config as { lastReloadError: string | null }).lastReloadError;
    await waitFor(() => lastError() !== null, 3000, 'rejected reload');
    expect(lastError()).toContain('YAML');
    expect(gw.gw.snapshot.version).toBe(v);
    expect((await send(`${gw.url}/r`)).headers['x-v']).toBe('w3');
  });
});

describe('isogate CLI (--workers 0): SIGHUP reloads', () => {
  let child: ChildProcess;
  let port: number;
  let file: string;
  let head: string;
  let stderr = '';

  beforeAll(async () => {
    port = await freePort();
    const adminPort = await freePort();
    head = `listen: { host: 127.0.0.1, port: ${port} }\nadmin: { host: 127.0.0.1, port: ${adminPort} }`;
    file = writeConfig(config(upA, 'h1', '', head));
    // --workers 0: the gateway in the CLI's own process (the supervisor's reload fan-out is
    // tested with the supervisor; here the CLI's signal handling).
    child = spawn(process.execPath, ['--no-node-snapshot', join(ROOT, 'core', 'cli.ts'), '--config', file, '--workers', '0'], {
      env: { ...process.env, ISOGATE_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    await waitFor(async () => (await send(`http://127.0.0.1:${port}/r`).catch(() => null))?.status === 200, 15_000, `gateway child up (stderr: ${stderr})`);
  });
  afterAll(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('keeps its config until SIGHUP, then loads the new file', async () => {
    const url = `http://127.0.0.1:${port}/r`;
    expect((await send(url)).headers['x-v']).toBe('h1');
    writeFileSync(file, config(upB, 'h2', '', head));
    // Without --watch nothing happens on a write.
    await new Promise((r) => setTimeout(r, 300));
    expect((await send(url)).headers['x-v']).toBe('h1');
    child.kill('SIGHUP');
    await waitFor(async () => (await send(url)).headers['x-v'] === 'h2', 5000, 'reload after SIGHUP');
    expect((await send(url)).body).toBe('B');
    expect(child.exitCode).toBeNull();
  });

  it('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
  });
});

describe('reload while requests are in flight', () => {
  const LOGGER = pluginSource('logger', `export function log(pdk: any, config: any) { pdk.log.info('logged', config.tag, pdk.request.getPath()); }`);
  let slow: Upstream;
  let gw: TestGateway;
  let lines: LogLine[];
  const yaml = (tag: string) => `
tenants:
  - name: t1
    services: [{ name: s, url: "${slow.url}" }]
    routes: [{ name: r, service: s, paths: [/r] }]
    plugins: [{ name: logger, path: ./logger.ts, config: { tag: ${tag} } }]
`;
  beforeAll(async () => {
    slow = await startUpstream((_req, res) => {
      setTimeout(() => res.end('slow'), 150);
    });
    const captured = captureLogger('info');
    lines = captured.lines;
    gw = await startGateway(yaml('v1'), { 'logger.ts': LOGGER }, { logger: captured.logger });
  });
  afterAll(async () => {
    await gw.stop();
    await slow.close();
  });

  it('finishes them on the old config, log phase included', async () => {
    const inflight = Array.from({ length: 5 }, (_, i) => send(`${gw.url}/r/${i}`));
    await waitFor(() => gw.gw.snapshot.inflight === 5, 2000, 'requests in flight');
    // A new plugin config: a new program, so the old sandbox is freed once its requests end.
    writeFileSync(gw.configFile, yaml('v2'));
    expect((await gw.gw.reload()).ok).toBe(true);
    const replies = await Promise.all(inflight);
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    await send(`${gw.url}/r/new`);
    await waitFor(() => lines.some((l) => l.msg === 'logged v2 /r/new'), 3000, 'log line of the new config: ' + JSON.stringify(lines.map((l) => l.msg)));
    await new Promise((r) => setTimeout(r, 50));
    expect(lines.filter((l) => l.msg.startsWith('plugin fault'))).toEqual([]);
    expect(lines.filter((l) => l.msg.startsWith('logged v1')).map((l) => l.msg).sort()).toEqual([0, 1, 2, 3, 4].map((i) => `logged v1 /r/${i}`));
  });
});
