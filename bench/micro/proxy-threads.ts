/**
 * CPU per request of each thread of a proxy: the gateway (`--workers 0`, the bench's
 * proxy-0 config, access log to a pipe) against the lean node:http + undici proxy
 * (bench/peers/node-proxy.ts), or two gateway trees against each other. Each server runs
 * pinned to the first allowed CPU, the upstream (bench/upstream.ts), wrk and this script
 * to the last; the servers not measured are SIGSTOPped. Per round and server: a warm-up,
 * then utime+stime of every /proc/<pid>/task/* before and after a wrk run, divided by the
 * requests wrk completed. Rounds alternate the servers (rotated order); medians.
 *
 * CPU per request falls as the rate rises (more requests per event-loop turn), and other
 * processes on the pinned core lower the rate: on a shared machine `--delay` compares the
 * servers at about the same rate, below what any of them can serve.
 *
 *   node --no-node-snapshot bench/micro/proxy-threads.ts [--rounds 5] [--seconds 8]
 *     [--gateway name=ROOT ...] [--no-lean] [--nolog] [--prof DIR (--cpu-prof of each server)]
 *     [--delay MS (each connection waits MS between requests: about conns * 1000 / MS req/s)]
 *
 * `--gateway name=ROOT`: a gateway from another tree (ROOT/core/cli.ts), e.g. the code
 * before a change checked out elsewhere; default: this tree's, named "gateway".
 */
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { chainConfig } from '../lib/configs.ts';
import { ROOT } from '../lib/machine.ts';
import { CLK_TCK, allowedCpus, freePort, killAllSync, pause, pinSelf, resume, sleep, start, stop, waitPort, type Proc } from '../lib/procs.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '8' },
    warm: { type: 'string', default: '2' },
    'first-warm': { type: 'string', default: '5' },
    conns: { type: 'string', default: '32' },
    gateway: { type: 'string', multiple: true },
    'no-lean': { type: 'boolean', default: false },
    nolog: { type: 'boolean', default: false },
    prof: { type: 'string' },
    delay: { type: 'string' },
  },
});
const cpus = allowedCpus();
const serverCpu = [cpus[0]];
const loadCpu = [cpus[cpus.length - 1]];
pinSelf(loadCpu);
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(1)); // exit handlers kill the servers

const NODE = process.execPath;
const cfgDir = join(tmpdir(), `proxy-threads-${process.pid}`);
mkdirSync(cfgDir, { recursive: true });
/** bench/lib/wrk.lua, with a wait between a connection's requests when --delay is given. */
const script = (() => {
  const lua = join(ROOT, 'bench', 'lib', 'wrk.lua');
  if (values.delay === undefined) return lua;
  const file = join(cfgDir, 'paced.lua');
  writeFileSync(file, `${readFileSync(lua, 'utf8')}\nfunction delay() return ${Number(values.delay)} end\n`);
  return file;
})();

const upstreamPort = await freePort();
const upstream = start({ name: 'upstream', cmd: NODE, args: [join(ROOT, 'bench', 'upstream.ts'), '--port', String(upstreamPort)], cpus: loadCpu });
await waitPort(upstreamPort, upstream);
const UPSTREAM = `http://127.0.0.1:${upstreamPort}`;

type Server = { name: string; port: number; proc: Proc };

async function startServer(name: string, port: number, script: string, args: string[]): Promise<Server> {
  // every thread writes a profile into the folder: the main thread's is the largest
  const prof = values.prof === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', join(values.prof, name)];
  // stdout is a pipe this process drains, and nothing more (the access log goes there, as in
  // the bench): a slow reader fills it and the log's lines wait in its backlog (core/access-log.ts)
  const proc = start({ name, cmd: NODE, args: ['--no-node-snapshot', ...prof, script, ...args], cpus: serverCpu, env: { ISOGATE_LOG_LEVEL: 'silent' } });
  await waitPort(port, proc);
  return { name, port, proc };
}

const servers: Server[] = [];
for (const g of values.gateway ?? [`gateway=${ROOT}`]) {
  const [name, root] = g.split('=');
  const port = await freePort();
  const { file } = chainConfig(join(cfgDir, name), 'proxy-0', port, UPSTREAM, 0, !values.nolog);
  servers.push(await startServer(name, port, join(root, 'core', 'cli.ts'), ['--config', file, '--workers', '0']));
}
if (!values['no-lean']) {
  const port = await freePort();
  servers.push(await startServer('lean', port, join(ROOT, 'bench', 'peers', 'node-proxy.ts'), ['--port', String(port), '--upstream', UPSTREAM]));
}
// JIT warm-up before any round: a fresh gateway compiles for several seconds (V8 threads)
for (const s of servers) wrk(s.port, Number(values['first-warm']));
for (const s of servers) pause(s.proc);

/** Ticks per thread: tid -> { kind, ticks }. */
function threads(pid: number): Map<number, { kind: string; ticks: number }> {
  const out = new Map<number, { kind: string; ticks: number }>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const tid = Number(t);
      // by thread name: V8Worker (V8's background compiles and GC), WorkerThread (the
      // sentinel, a worker_threads thread), libuv-worker (the thread pool)
      const kind = tid === pid ? 'main' : comm;
      out.set(tid, { kind, ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** Busy ticks of one CPU (/proc/stat): what else ran there. */
function cpuBusy(cpu: number): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `))!;
  const f = line.split(/\s+/).slice(1).map(Number);
  return f[0] + f[1] + f[2] + f[5] + f[6] + f[7]; // user nice system irq softirq steal
}

function wrk(port: number, seconds: number): number {
  const r = spawnSync('taskset', ['-c', loadCpu.join(','), 'wrk', '-t1', `-c${values.conns}`, `-d${seconds}s`, '-s', script, `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  const m = /WRKJSON (\{.*\})/.exec(r.stdout);
  if (m === null) throw new Error(`wrk: ${r.stdout} ${r.stderr}`);
  const j = JSON.parse(m[1]) as { requests: number; status: number; read: number };
  if (j.status > 0 || j.read > 0) throw new Error(`wrk errors: ${m[1]}`);
  return j.requests;
}

type Row = { name: string; round: number; rps: number; other: number; perKind: Record<string, number>; process: number };
const rows: Row[] = [];
const ROUNDS = Number(values.rounds);
const us = (ticks: number, n: number) => (ticks / CLK_TCK / n) * 1e6;

for (let round = 0; round < ROUNDS; round++) {
  const order = servers.map((_, i) => servers[(i + round) % servers.length]);
  for (const s of order) {
    resume(s.proc);
    await sleep(200);
    wrk(s.port, Number(values.warm));
    const before = threads(s.proc.pid);
    const busy0 = cpuBusy(serverCpu[0]);
    const t0 = Date.now();
    const n = wrk(s.port, Number(values.seconds));
    const secs = (Date.now() - t0) / 1000;
    const busy1 = cpuBusy(serverCpu[0]);
    const after = threads(s.proc.pid);
    pause(s.proc);
    const perKind: Record<string, number> = {};
    let total = 0;
    for (const [tid, a] of after) {
      const d = a.ticks - (before.get(tid)?.ticks ?? 0);
      perKind[a.kind] = (perKind[a.kind] ?? 0) + d;
      total += d;
    }
    // threads that ended during the run are lost; none should in steady state
    const other = (busy1 - busy0 - total) / CLK_TCK / secs;
    const row: Row = { name: s.name, round, rps: n / secs, other, process: us(total, n), perKind: Object.fromEntries(Object.entries(perKind).map(([k, v]) => [k, us(v, n)])) };
    rows.push(row);
    const shown = Object.entries(row.perKind).filter(([, v]) => v >= 0.05);
    process.stdout.write(`round ${round} ${s.name.padEnd(10)} ${Math.round(row.rps)} req/s  other on core ${other.toFixed(2)}  process ${row.process.toFixed(1)} µs  ${shown.map(([k, v]) => `${k} ${v.toFixed(1)}`).join('  ')}\n`);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
// Other processes on the pinned core preempt the server and change its rate, hence its CPU
// per request (fewer requests per event-loop turn): the quiet rounds are summed up apart.
const QUIET = 0.2;
const cell = (xs: number[]) => (xs.length === 0 ? '-' : `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})`);
for (const [title, keep] of [['all rounds', () => true], [`rounds with other on core < ${QUIET}`, (r: Row) => r.other < QUIET]] as const) {
  process.stdout.write(`\nmedians, ${title} (µs CPU per request; range in brackets)\n`);
  for (const s of servers) {
    const mine = rows.filter((r) => r.name === s.name && keep(r));
    if (mine.length === 0) continue;
    // threads that took under 0.05 µs a request in every round are left out
    const kinds = [...new Set(mine.flatMap((r) => Object.keys(r.perKind)))].filter((k) => mine.some((r) => (r.perKind[k] ?? 0) >= 0.05));
    process.stdout.write(`${s.name.padEnd(10)} n ${mine.length}  req/s ${Math.round(median(mine.map((r) => r.rps)))}  process ${cell(mine.map((r) => r.process))}  ${kinds.map((k) => `${k} ${cell(mine.map((r) => r.perKind[k] ?? 0))}`).join('  ')}  other ${median(mine.map((r) => r.other)).toFixed(2)}\n`);
  }
}
// a profiled server writes its profiles as it exits: give it time
await Promise.all([...servers.map((s) => stop(s.proc, 30_000)), stop(upstream)]);
rmSync(cfgDir, { recursive: true, force: true });
