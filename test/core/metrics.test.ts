import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoHandler, send, startUpstream, waitFor, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';

/**
 * What an operator reads of a real supervisor with two workers: /metrics (no doubled
 * prefix, no blank line, per-worker figures labelled, a reload counted once, every metric
 * in the README), /status agreeing with it, and the log lines (level names, one pid, the
 * hot spare named, a rejected reload logged once).
 */
const README = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

type Sample = { name: string; labels: Record<string, string>; value: number };

function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const kv of (m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[kv[1]] = kv[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** JSON lines of the process output (stderr text and the like left out). */
function jsonLines(output: string): { raw: string; obj: Record<string, unknown> }[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((raw) => ({ raw, obj: JSON.parse(raw) as Record<string, unknown> }));
}

/** Top-level keys of a JSON object line, in order, duplicates kept (JSON.parse drops them). */
function topLevelKeys(raw: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '"') {
      let j = i + 1;
      while (raw[j] !== '"') j += raw[j] === '\\' ? 2 : 1;
      if (depth === 1 && raw[j + 1] === ':') keys.push(raw.slice(i + 1, j));
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return keys;
}

const yaml = (upstream: string, extra = '') => `
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 2
tenants:
  - name: t1
    services: [{ name: s, url: "${upstream}" }]
    routes: [{ name: r, service: s }]
    plugins: [{ name: correlation-id }]
${extra}`;

describe('supervisor /metrics, /status and logs', () => {
  let up: Upstream;
  let gp: GatewayProcess;
  let configFile: string;
  const REQUESTS = 40;

  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gp = await spawnGateway(yaml(up.url), {}, [], 60_000); // three processes start at once: slow on a loaded machine
    configFile = (await gp.status()).config.file;
    for (let i = 0; i < REQUESTS; i++) expect((await send(`${gp.url}/x`, { headers: { connection: 'close' } })).status).toBe(200);
  }, 90_000);
  afterAll(async () => {
    await gp?.stop();
    await up?.close();
  });

  it('has no doubled prefix and no blank line', async () => {
    const text = await gp.metrics();
    expect(text).not.toMatch(/isogate_process_process_|isogate_process_nodejs_/);
    expect(text).toContain('isogate_process_cpu_seconds_total');
    expect(text).toContain('isogate_nodejs_eventloop_lag_p99_seconds');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.slice(0, -1).split('\n').filter((l) => l.trim() === '')).toEqual([]);
  });

  it('sums requests over the workers and labels per-process figures by worker', async () => {
    const all = samples(await gp.metrics());
    const requests = all.filter((s) => s.name === 'isogate_requests_total' && s.labels.route === 'r');
    expect(requests.reduce((a, s) => a + s.value, 0)).toBe(REQUESTS);
    expect(requests.every((s) => s.labels.worker === undefined)).toBe(true);
    for (const name of ['isogate_process_resident_memory_bytes', 'isogate_nodejs_eventloop_lag_p99_seconds', 'isogate_nodejs_heap_size_used_bytes', 'isogate_process_start_time_seconds', 'isogate_isolates']) {
      const series = all.filter((s) => s.name === name);
      expect(series.map((s) => s.labels.worker).sort(), name).toEqual(['0', '1']);
    }
    // Each worker's resident memory is one process's: a sum of two would be above 2x the smaller.
    const rss = all.filter((s) => s.name === 'isogate_process_resident_memory_bytes').map((s) => s.value);
    for (const v of rss) expect(v).toBeLessThan(2 * Math.min(...rss));
  });

  it('/status counts the live isolates as isogate_isolates does, per worker and in total', async () => {
    const [status, text] = await Promise.all([gp.status(), gp.metrics()]);
    const isolates = samples(text).filter((s) => s.name === 'isogate_isolates');
    const perWorker = Object.fromEntries(isolates.map((s) => [s.labels.worker, s.value]));
    const fromStatus = Object.fromEntries((status.workers.status as { worker: number; counts: { isolates: number } }[]).map((w) => [String(w.worker), w.counts.isolates]));
    expect(fromStatus).toEqual(perWorker);
    expect(status.counts.isolates).toBe(isolates.reduce((a, s) => a + s.value, 0));
    expect(status.counts.isolates).toBeGreaterThanOrEqual(1); // every request ran correlation-id in some worker
  });

  it('the README lists every metric the gateway exposes, and only those', async () => {
    const section = README.slice(README.indexOf('## Metrics'), README.indexOf('\n## ', README.indexOf('## Metrics') + 5));
    const exposed = [...(await gp.metrics()).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
    expect(exposed.length).toBeGreaterThan(30);
    for (const name of exposed) expect(section, `README Metrics lists ${name}`).toContain(`\`${name}\``);
    const listed = [...section.matchAll(/`(isogate_[a-z0-9_]+)`/g)].map((m) => m[1]);
    for (const name of listed) expect(exposed, `${name} in the README is exposed`).toContain(name);
  });

  it('counts and logs a reload once, and a rejected reload once with the workers that rejected it', async () => {
    gp.child.kill('SIGHUP');
    await waitFor(() => gp.output().includes('"msg":"config reloaded"'), 15_000, 'the reload');
    let reloads = samples(await gp.metrics()).filter((s) => s.name === 'isogate_config_reloads_total');
    expect(reloads).toEqual([{ name: 'isogate_config_reloads_total', labels: { result: 'ok' }, value: 1 }]);
    const ok = jsonLines(gp.output()).filter((l) => l.obj.msg === 'config reloaded');
    expect(ok).toHaveLength(1);
    expect((ok[0].obj.acceptedBy as string[]).sort()).toEqual(['0', '1', 'spare']);

    writeFileSync(configFile, `${readFileSync(configFile, 'utf8')}    bogus: 1\n`);
    gp.child.kill('SIGHUP');
    await waitFor(() => gp.output().includes('config reload rejected'), 15_000, 'the rejection');
    await new Promise((r) => setTimeout(r, 500)); // a second line, if any, would be here by now
    const rejected = jsonLines(gp.output()).filter((l) => String(l.obj.msg).includes('reload rejected'));
    expect(rejected).toHaveLength(1);
    expect(rejected[0].obj).toMatchObject({ level: 'error', acceptedBy: [] });
    // The hot spare loads a new config first; the serving workers are never asked to load one it rejected.
    expect(rejected[0].obj.rejectedBy).toEqual(['spare']);
    expect(String(rejected[0].obj.msg)).toContain('the hot spare could not load it; the workers keep the running config');
    expect(String(rejected[0].obj.msg)).toContain('bogus');
    reloads = samples(await gp.metrics()).filter((s) => s.name === 'isogate_config_reloads_total');
    expect(Object.fromEntries(reloads.map((s) => [s.labels.result, s.value]))).toEqual({ ok: 1, error: 1 });
    expect((await send(`${gp.url}/x`)).status).toBe(200);
  });

  it('writes level names, each key once, and never names the hot spare as a worker slot', () => {
    const lines = jsonLines(gp.output()).filter((l) => l.obj.msg !== 'access');
    expect(lines.length).toBeGreaterThan(5);
    for (const { raw, obj } of lines) {
      expect(['trace', 'debug', 'info', 'warn', 'error', 'fatal'], raw).toContain(obj.level);
      const keys = topLevelKeys(raw);
      expect(new Set(keys).size, raw).toBe(keys.length);
      if (obj.worker !== undefined) expect(obj.worker as number, raw).toBeLessThan(2);
    }
    const ready = lines.filter((l) => l.obj.msg === 'worker ready');
    expect(ready.map((l) => l.obj.worker).sort()).toEqual([0, 1]);
    for (const l of ready) expect(l.obj.workerPid).not.toBe(l.obj.pid);
  });
});
