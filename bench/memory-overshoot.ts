/**
 * How far past its isolate's heap limit each allocation pattern takes a worker process,
 * and what the neighbour tenant pays meanwhile.
 *
 *   node --no-node-snapshot bench/memory-overshoot.ts [--only a,b] [--memory-mb 64] [--cpu-ms 1000] [--attacks 3] [--json FILE]
 *
 * Per pattern: a fresh gateway (the real CLI: supervisor, one worker, hot spare, default
 * supervisor settings) with tenant `evil` running the pattern as an access plugin in a
 * `--memory-mb` isolate, and tenant `good` (one bundled plugin) sent a steady stream of
 * keep-alive requests. The worker processes' VmHWM and VmRSS (/proc/<pid>/status) are
 * sampled every 5 ms; the table gives the worst peak, the overshoot (peak minus the worker's
 * resident size before the attack), what ended each attack, and the worst latency of the
 * good tenant while the attacks ran. `--cpu-ms` is the evil plugin's CPU limit: the default
 * is the operator ceiling, the attacker's best case (a lower limit stops some patterns
 * earlier, as `cpu`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as netServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';

const ROOT = join(import.meta.dirname, '..');

/** The patterns: name -> body of the plugin's access handler. */
export const PATTERNS: Record<string, { what: string; code: string }> = {
  'repeat-giant': {
    what: "one giant flat string: 'x'.repeat(2**29 - 24) (V8's longest string, 512 MB)",
    code: `const s = 'x'.repeat(2 ** 29 - 24); pdk.response.setHeader('x-n', String(s.indexOf('y')));`,
  },
  'concat-growth': {
    what: 'string concatenation growth: s += a fresh 1 KB piece, forever',
    code: `let s = ''; const piece = 'y'.repeat(1024); for (let n = 0; ; n++) s += piece + n;`,
  },
  'concat-flatten': {
    what: 'a doubling rope (s += s, 28 times: a few KB of heap) flattened in one step by indexOf',
    code: `let s = 'x'; for (let i = 0; i < 28; i++) s += s; pdk.response.setHeader('x-n', String(s.indexOf('y')));`,
  },
  'array-growth': {
    what: 'array growth: push arrays of 10,000 numbers, forever',
    code: `const keep = []; for (;;) keep.push(new Array(10000).fill(keep.length));`,
  },
  'array-giant': {
    what: 'one giant array: new Array(2**27 - 1024).fill(0.5) (a 1 GB backing store)',
    code: `const a = new Array(2 ** 27 - 1024).fill(0.5); pdk.response.setHeader('x-n', String(a.length));`,
  },
  'arraybuffer-steps': {
    what: 'ArrayBuffers (external memory) of 1 MB, filled and kept, forever',
    code: `const keep = []; for (;;) { const b = new ArrayBuffer(1 << 20); new Uint8Array(b).fill(1); keep.push(b); }`,
  },
  'arraybuffer-giant': {
    what: 'one 1 GB ArrayBuffer, filled',
    code: `const b = new Uint8Array(2 ** 30); b.fill(1); pdk.response.setHeader('x-n', String(b[5]));`,
  },
  'map-growth': {
    what: 'Map growth: set(n, { n, s: String(n) }), forever',
    code: `const m = new Map(); for (let n = 0; ; n++) m.set(n, { n, s: String(n) });`,
  },
  'json-parse': {
    what: "JSON.parse of a 48 MB string of numbers ('[' + '1,'.repeat(2**24*1.5) + '1]')",
    code: `const text = '[' + '1,'.repeat(3 * 2 ** 23) + '1]'; const a = JSON.parse(text); pdk.response.setHeader('x-n', String(a.length));`,
  },
  'json-parse-big': {
    what: "JSON.parse of a 256 MB string of numbers ('[' + '1,'.repeat(2**27) + '1]')",
    code: `const text = '[' + '1,'.repeat(2 ** 27) + '1]'; const a = JSON.parse(text); pdk.response.setHeader('x-n', String(a.length));`,
  },
  'deep-recursion': {
    what: 'unbounded recursion',
    code: `function down(n) { return down(n + 1) + 1; } down(0);`,
  },
  'repeat-split': {
    what: "'x'.repeat(2**28).split(''): 2^28 one-character strings in one array",
    code: `const s = 'x'.repeat(2 ** 28); s.split('');`,
  },
};

type Row = {
  pattern: string;
  what: string;
  memoryMb: number;
  baselineMb: number;
  peakMb: number;
  overshootMb: number;
  attacks: string[];
  failures: string;
  restarts: string;
  victimWorstMs: number;
  victimP99Ms: number;
  victimOk: number;
  victimFailed: number;
};

function procStatus(pid: number): { hwm: number; rss: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(text)?.[1] ?? 0) / 1024;
    const rss = Number(/VmRSS:\s+(\d+)/.exec(text)?.[1] ?? 0) / 1024;
    return { hwm, rss };
  } catch {
    return null;
  }
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function freePort(): Promise<number> {
  const s = netServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startUpstream(): Promise<{ server: Server; url: string }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '11' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function runPattern(name: string, upstream: string, o: { memoryMb: number; cpuMs: number; attacks: number }): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'isogate-mem-'));
  const port = await freePort();
  const adminPort = await freePort();
  const p = PATTERNS[name];
  writeFileSync(join(dir, 'evil.ts'), `export const name = 'evil';\nexport const version = '1.0.0';\nexport const priority = 1;\nexport function access(pdk) { ${p.code} }\n`);
  writeFileSync(join(dir, 'gateway.yaml'), `
listen: { host: 127.0.0.1, port: ${port} }
admin: { host: 127.0.0.1, port: ${adminPort} }
workers: 1
log: { level: warn }
limits: { ceilings: { cpuMs: ${Math.max(1000, o.cpuMs)} } }
sandbox: { breaker: { faults: 1000 } }
tenants:
  - name: evil
    limits: { memoryMb: ${o.memoryMb}, cpuMs: ${o.cpuMs} }
    services: [{ name: s, url: "${upstream}" }]
    routes: [{ name: r, service: s, paths: [/evil] }]
    plugins: [{ name: evil, path: ./evil.ts }]
  - name: good
    services: [{ name: s, url: "${upstream}" }]
    routes: [{ name: r, service: s, paths: [/good] }]
    plugins: [{ name: correlation-id }]
`);
  const child: ChildProcess = spawn(process.execPath, ['--no-node-snapshot', join(ROOT, 'core', 'cli.ts'), '--config', join(dir, 'gateway.yaml')], {
    cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], detached: false,
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const admin = `http://127.0.0.1:${adminPort}`;
  const url = `http://127.0.0.1:${port}`;
  try {
    const deadline = Date.now() + 30_000;
    let status: any;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`gateway exited: ${stderr}`);
      try {
        status = await (await fetch(`${admin}/status`)).json();
        if (status.workers.ready === 1 && status.workers.spareReady === true) break;
      } catch { /* not up yet */ }
      if (Date.now() > deadline) throw new Error(`gateway did not come up: ${stderr}`);
      await sleep(100);
    }
    // Warm both tenants (the evil tenant's isolate is created by its first, failing, request otherwise).
    const agent = new Agent({ connections: 2, keepAliveTimeout: 30_000 });
    for (let i = 0; i < 20; i++) await (await request(`${url}/good`, { dispatcher: agent })).body.dump();
    await sleep(200);
    // Sample every worker (the active one, the spare, and any replacement) every 5 ms.
    const hwm = new Map<number, number>();
    let sampling = true;
    const sample = () => {
      for (const pid of children(child.pid!)) {
        const s = procStatus(pid);
        if (s !== null) hwm.set(pid, s.hwm);
      }
    };
    const sampler = (async () => {
      while (sampling) {
        sample();
        await sleep(5);
      }
    })();
    // The victim: sequential keep-alive requests, each timed.
    const lat: number[] = [];
    let victimFailed = 0;
    let running = true;
    const victim = (async () => {
      while (running) {
        const t0 = performance.now();
        try {
          const r = await request(`${url}/good`, { dispatcher: agent, headersTimeout: 10_000, bodyTimeout: 10_000 });
          await r.body.dump();
          if (r.statusCode === 200) lat.push(performance.now() - t0);
          else victimFailed++;
        } catch {
          victimFailed++;
          lat.push(performance.now() - t0);
        }
        await sleep(2);
      }
    })();
    await sleep(300);
    const attacks: string[] = [];
    let baselineMb = 0;
    let peakMb = 0;
    let overshootMb = 0;
    for (let i = 0; i < o.attacks; i++) {
      // Each worker's resident size before this attack, and its high-water mark then.
      const before = new Map<number, { rss: number; hwm: number }>();
      for (const pid of children(child.pid!)) {
        const s = procStatus(pid);
        if (s !== null) before.set(pid, s);
      }
      const t0 = performance.now();
      let what: string;
      try {
        const r = await request(`${url}/evil`, { reset: true, headersTimeout: 30_000, bodyTimeout: 30_000 });
        await r.body.dump();
        what = String(r.statusCode);
      } catch (err) {
        what = (err as Error).name === 'SocketError' ? 'connection lost' : (err as Error).name;
      }
      attacks.push(`${what} in ${Math.round(performance.now() - t0)} ms`);
      await sleep(1000); // let a replacement worker take over before the next attack
      sample();
      for (const [pid, b] of before) {
        const h = hwm.get(pid) ?? b.hwm;
        if (h <= b.hwm) continue; // this worker did not grow
        if (h - b.rss > overshootMb) {
          overshootMb = h - b.rss;
          peakMb = h;
          baselineMb = b.rss;
        }
      }
    }
    running = false;
    await victim;
    sampling = false;
    await sampler;
    const metrics = await (await fetch(`${admin}/metrics`)).text().catch(() => '');
    const failures = [...metrics.matchAll(/isogate_plugin_failures_total\{tenant="evil",plugin="evil",reason="(\w+)"\} (\d+)/g)].map((m) => `${m[1]} ${m[2]}`).join(', ') || 'none';
    const restarts = [...metrics.matchAll(/isogate_worker_restarts_total\{reason="(\w+)"\} (\d+)/g)].map((m) => `${m[1]} ${m[2]}`).join(', ') || 'none';
    await agent.close();
    const sorted = [...lat].sort((a, b) => a - b);
    return {
      pattern: name,
      what: p.what,
      memoryMb: o.memoryMb,
      baselineMb: Math.round(baselineMb),
      peakMb: Math.round(peakMb),
      overshootMb: Math.round(overshootMb),
      attacks,
      failures,
      restarts,
      victimWorstMs: Math.round(sorted.at(-1) ?? 0),
      victimP99Ms: Math.round((sorted[Math.floor(sorted.length * 0.99)] ?? 0) * 10) / 10,
      victimOk: lat.length - victimFailed,
      victimFailed,
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

export function table(rows: readonly Row[]): string {
  const L = [
    '| pattern | isolate limit | worker RSS before | worker peak (VmHWM) | overshoot (peak - before) | what ended each attack | evil failures | worker restarts | victim worst / p99 ms | victim failed |',
    '|---|---:|---:|---:|---:|---|---|---|---:|---:|',
  ];
  for (const r of rows) {
    L.push(`| ${r.pattern} | ${r.memoryMb} MB | ${r.baselineMb} MB | ${r.peakMb} MB | ${r.overshootMb} MB | ${r.attacks.join('; ')} | ${r.failures} | ${r.restarts} | ${r.victimWorstMs} / ${r.victimP99Ms} | ${r.victimFailed} of ${r.victimOk + r.victimFailed} |`);
  }
  return L.join('\n');
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      'memory-mb': { type: 'string', default: '64' },
      'cpu-ms': { type: 'string', default: '1000' },
      attacks: { type: 'string', default: '3' },
      json: { type: 'string' },
    },
  });
  const names = values.only === undefined ? Object.keys(PATTERNS) : values.only.split(',');
  for (const n of names) if (PATTERNS[n] === undefined) throw new Error(`unknown pattern ${n}; known: ${Object.keys(PATTERNS).join(', ')}`);
  const o = { memoryMb: Number(values['memory-mb']), cpuMs: Number(values['cpu-ms']), attacks: Number(values.attacks) };
  const up = await startUpstream();
  const rows: Row[] = [];
  try {
    for (const n of names) {
      process.stderr.write(`${n} ...\n`);
      rows.push(await runPattern(n, up.url, o));
      process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
    }
  } finally {
    up.server.close();
  }
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(`memory overshoot, isolate limit ${o.memoryMb} MB, plugin cpuMs ${o.cpuMs}, ${o.attacks} attacks per pattern; load average at the end: ${load}\n`);
  console.log(table(rows));
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify({ options: o, rows }, null, 2));
}
