/**
 * Micro-benchmarks of the sandbox boundary, outside any proxy: one PDK call crossing, the
 * request snapshot build, applying operations, creating an isolate. Same discipline as the
 * suite: several rounds, median with min and max of the per-round means.
 *
 *   npm run bench:micro [-- --rounds 5 --quick --out DIR]
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import pino from 'pino';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import ivm from 'isolated-vm';
import { compileConfig } from '../../core/config/compile.ts';
import { loadConfigFile } from '../../core/config/load.ts';
import { applyOps, type OpTarget } from '../../pdk-bridge/host/ops.ts';
import { HostServices } from '../../pdk-bridge/host/services/index.ts';
import { settleChain } from '../../pdk-bridge/host/wait.ts';
import { createCounterStores } from '../../core/state/index.ts';
import { PHASE } from '../../pdk-bridge/host/phases.ts';
import { EARLY_HEADER_FILTER } from '../../pdk-bridge/phases.ts';
import { loadPlugin } from '../../sandbox/plugin-loader.ts';
import type { TenantProgram } from '../../sandbox/program.ts';
import type { RunResult } from '../../sandbox/run-result.ts';
import { SandboxCaller, Suspended } from '../../sandbox/phase-caller.ts';
import { TenantSandbox } from '../../sandbox/tenant-sandbox.ts';
import { Watchdog } from '../../sandbox/watchdog.ts';
import { chainConfig, microOpsConfig } from '../lib/configs.ts';
import { ROOT, hostId, machineInfo } from '../lib/machine.ts';
import { allowedCpus, pinSelf } from '../lib/procs.ts';
import { fmt, fmtS, percentile, summarize, type Summary } from '../lib/stats.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  process.stdout.write('npm run bench:micro -- [--rounds N (5)] [--quick (3 rounds, fewer iterations)] [--out DIR]\n');
  process.exit(0);
}
const ROUNDS = Number(values.rounds ?? (values.quick ? 3 : 5));
const SCALE = values.quick ? 0.25 : 1;
const allowed = allowedCpus();
const cpu = allowed[allowed.length - 1];
pinSelf([cpu]);

const date = new Date().toISOString().slice(0, 10);
const outDir = resolve(values.out ?? join(ROOT, 'bench', 'results', `${date}-${hostId()}`));
const cfgDir = join(outDir, 'configs-micro');
mkdirSync(cfgDir, { recursive: true });

async function program(plugins: number): Promise<TenantProgram> {
  const { file } = chainConfig(cfgDir, `micro-${plugins}`, 0, 'http://127.0.0.1:9', plugins);
  const compiled = await compileConfig(await loadConfigFile(file), file);
  return compiled.programs.get('bench')!;
}

/** A tenant whose one plugin makes `reads` getHeader, `writes` setHeader and `waits` awaited cache.get calls in access. */
async function opsProgram(reads: number, writes: number, waits: number): Promise<TenantProgram> {
  const { file } = microOpsConfig(cfgDir, reads, writes, waits);
  const compiled = await compileConfig(await loadConfigFile(file), file);
  return compiled.programs.get('bench')!;
}

// A realistic request snapshot: what core/proxy.ts hands to plugins.
const REQ_HEADERS = {
  host: '127.0.0.1:8000',
  'user-agent': 'wrk',
  accept: '*/*',
  'x-bench': '1',
  'x-forwarded-for': '10.0.0.1',
  'accept-encoding': 'gzip, deflate, br',
  cookie: 'session=abcdef0123456789; theme=dark',
};
const reqSnapshot = () => JSON.stringify({ m: 'GET', p: '/api/items/42', q: 'limit=10', h: REQ_HEADERS, ip: '127.0.0.1', s: 'http' });
const RESP_HEADERS = { 'content-type': 'application/json', 'content-length': '100', date: new Date().toUTCString() };
const reqJson = reqSnapshot();
const respJson = JSON.stringify({ s: 200, h: RESP_HEADERS });

type Case = { name: string; unit: 'ns' | 'us' | 'ms'; iterations: number; op: () => void | Promise<void>; note: string };

const watchdog = new Watchdog();
const sandboxes: TenantSandbox[] = [];
process.on('exit', () => {
  for (const sb of sandboxes) sb.dispose();
});

const p1 = await program(1);
const p5 = await program(5);
const sb1 = new TenantSandbox(p1, watchdog);
const sb5 = new TenantSandbox(p5, watchdog);
sandboxes.push(sb1, sb5);
sb1.warm();
sb5.warm();
// Operation classes: the same one-plugin crossing with none, 100 reads, 100 writes, 1 async call.
const OPS_N = 100;
const sbOps = {
  none: new TenantSandbox(await opsProgram(0, 0, 0), watchdog),
  reads: new TenantSandbox(await opsProgram(OPS_N, 0, 0), watchdog),
  writes: new TenantSandbox(await opsProgram(0, OPS_N, 0), watchdog),
  wait: new TenantSandbox(await opsProgram(0, 0, 1), watchdog),
};
for (const sb of Object.values(sbOps)) {
  sandboxes.push(sb);
  sb.warm();
}
const services = new HostServices(await createCounterStores({ mode: 'local' }), pino({ level: 'silent' }));
const noMeter = () => {};
// The async call goes through the gateway's own path (PhaseCaller: charged to the tenant's budget), so its base does too.
const callers = { none: new SandboxCaller(sbOps.none, noMeter), wait: new SandboxCaller(sbOps.wait, noMeter) };
async function awaitedCall(caller: SandboxCaller): Promise<void> {
  const r = caller.call(0, PHASE.ACCESS, reqJson, '', '', undefined, '', false);
  const done = r instanceof Suspended ? await settleChain(caller, r, services, noMeter) : r;
  if (done.faults.length > 0) throw new Error(`micro: the async chain faulted: ${JSON.stringify(done.faults)}`);
  sink = done;
}
const bundle = await loadPlugin(join(ROOT, 'bench', 'plugins', 'header.ts'));

// Operations as a real 5-plugin access call returns them.
const sample = sb5.run(0, PHASE.ACCESS, reqJson, '', '') as RunResult; // the header plugin makes no async call
if (sample.faults.length > 0) throw new Error(`micro: the header chain faulted: ${JSON.stringify(sample.faults)}`);
const ops = sample.ops;
const early = sb5.run(0, PHASE.ACCESS | EARLY_HEADER_FILTER, reqJson, '', '') as RunResult;
if (early.early === undefined || early.early.faults.length > 0) throw new Error('micro: the header chain did not run its headerFilter early (bench/plugins/header.ts readsResponse = false?)');
const noLog = () => {};
const target = (): OpTarget => ({ upstreamHeaders: { ...REQ_HEADERS }, upstreamPath: '/', upstreamQuery: '', responseEdits: null, exit: null, body: null, status: null, buffering: false });

let sink: unknown = null;
const cases: Case[] = [
  { name: 'crossing: access, 1 header plugin', unit: 'us', iterations: 20000, op: () => void (sink = sb1.run(0, PHASE.ACCESS, reqJson, '', '')), note: 'TenantSandbox.run: snapshot in, ops out, one applySync, no per-call timer' },
  { name: 'crossing: headerFilter, 1 header plugin', unit: 'us', iterations: 20000, op: () => void (sink = sb1.run(0, PHASE.HEADER_FILTER, reqJson, respJson, '')), note: 'with the response snapshot' },
  // The bench header plugin declares readsResponse = false: its chain's headerFilter may ride in the access call.
  { name: 'header plugin, access then headerFilter (two calls), 1 plugin', unit: 'us', iterations: 10000, op: () => void (sink = [sb1.run(0, PHASE.ACCESS, reqJson, '', ''), sb1.run(0, PHASE.HEADER_FILTER, reqJson, respJson, '')]), note: 'what a request cost without readsResponse: false' },
  { name: 'header plugin, access with headerFilter early (one call), 1 plugin', unit: 'us', iterations: 10000, op: () => void (sink = sb1.run(0, PHASE.ACCESS | EARLY_HEADER_FILTER, reqJson, '', '')), note: 'readsResponse: false: one crossing per request' },
  { name: 'header plugins, access then headerFilter (two calls), 5 plugins', unit: 'us', iterations: 5000, op: () => void (sink = [sb5.run(0, PHASE.ACCESS, reqJson, '', ''), sb5.run(0, PHASE.HEADER_FILTER, reqJson, respJson, '')]), note: '' },
  { name: 'header plugins, access with headerFilter early (one call), 5 plugins', unit: 'us', iterations: 5000, op: () => void (sink = sb5.run(0, PHASE.ACCESS | EARLY_HEADER_FILTER, reqJson, '', '')), note: '' },
  { name: 'crossing: access, 5 header plugins (one call)', unit: 'us', iterations: 10000, op: () => void (sink = sb5.run(0, PHASE.ACCESS, reqJson, '', '')), note: 'the whole chain in one crossing' },
  { name: 'crossing: access, 1 plugin, no PDK call', unit: 'us', iterations: 20000, op: () => void (sink = sbOps.none.run(0, PHASE.ACCESS, reqJson, '', '')), note: 'the base of the operation classes below' },
  { name: `crossing: access, 1 plugin, ${OPS_N} request.getHeader`, unit: 'us', iterations: 10000, op: () => void (sink = sbOps.reads.run(0, PHASE.ACCESS, reqJson, '', '')), note: 'snapshot reads' },
  { name: `crossing: access, 1 plugin, ${OPS_N} response.setHeader`, unit: 'us', iterations: 10000, op: () => void (sink = sbOps.writes.run(0, PHASE.ACCESS, reqJson, '', '')), note: 'operation writes (encoded, copied out; not applied)' },
  { name: 'crossing: access, 1 plugin, no PDK call, charged', unit: 'us', iterations: 10000, op: () => awaitedCall(callers.none), note: "through the gateway's PhaseCaller (budget charged): the async call's base" },
  { name: 'crossing: access, 1 plugin, 1 awaited cache.get', unit: 'us', iterations: 10000, op: () => awaitedCall(callers.wait), note: 'suspend, host cache lookup, resume: one async call (charged)' },
  { name: 'snapshot build (request JSON)', unit: 'ns', iterations: 200000, op: () => void (sink = reqSnapshot()), note: `JSON.stringify of the request (${reqJson.length} bytes)` },
  { name: 'snapshot build (response JSON)', unit: 'ns', iterations: 200000, op: () => void (sink = JSON.stringify({ s: 200, h: RESP_HEADERS })), note: 'headerFilter phase input' },
  {
    name: `operation apply (${ops.length} ops of 5 plugins)`, unit: 'ns', iterations: 200000,
    op: () => {
      const bad = applyOps(ops, PHASE.ACCESS, target(), noLog);
      if (bad !== null) throw new Error(`applyOps refused: ${JSON.stringify(bad)}`);
    },
    note: 'pdk-bridge/host/ops.ts applyOps: validate + apply (target object included)',
  },
  {
    name: 'isolate create (TenantSandbox, 1 plugin)', unit: 'ms', iterations: 60,
    op: () => {
      const sb = new TenantSandbox(p1, watchdog);
      sb.warm();
      sb.dispose();
    },
    note: 'isolate + context + runtime + plugin load + setup, then dispose',
  },
  {
    name: 'isolate create (bare ivm.Isolate + context)', unit: 'ms', iterations: 100,
    op: () => {
      const iso = new ivm.Isolate({ memoryLimit: 64 });
      iso.createContextSync();
      iso.dispose();
    },
    note: 'isolated-vm alone',
  },
];

const DIV = { ns: 1e-6, us: 1e-3, ms: 1 } as const;
type Result = { name: string; unit: string; note: string; mean: Summary | null; p50: Summary | null; p99: Summary | null; rounds: { mean: number; p50: number; p99: number }[] };
const results: Result[] = cases.map((c) => ({ name: c.name, unit: c.unit, note: c.note, mean: null, p50: null, p99: null, rounds: [] }));

process.stderr.write(`isogate micro-benchmarks: ${cases.length} cases x ${ROUNDS} rounds (interleaved), pinned to CPU ${cpu}; plugin bundle ${bundle.code.length} bytes\n`);
const t0 = Date.now();
for (let r = 0; r < ROUNDS; r++) {
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const n = Math.max(10, Math.round(c.iterations * SCALE));
    for (let w = 0; w < Math.min(n, 200); w++) await c.op(); // warm-up
    const times = new Float64Array(n);
    const start = performance.now();
    for (let k = 0; k < n; k++) {
      const a = performance.now();
      const p = c.op();
      if (p !== undefined) await p;
      times[k] = performance.now() - a;
    }
    const total = performance.now() - start;
    const arr = Array.from(times);
    const mean = total / n / DIV[c.unit];
    results[i].rounds.push({ mean, p50: percentile(arr, 50) / DIV[c.unit], p99: percentile(arr, 99) / DIV[c.unit] });
    process.stderr.write(`  round ${r + 1}/${ROUNDS}  ${c.name}: ${fmt(mean, c.unit === 'ms' ? 2 : c.unit === 'us' ? 2 : 0)} ${c.unit}\n`);
  }
}
void sink;
for (const r of results) {
  r.mean = summarize(r.rounds.map((x) => x.mean));
  r.p50 = summarize(r.rounds.map((x) => x.p50));
  r.p99 = summarize(r.rounds.map((x) => x.p99));
}
for (const sb of sandboxes) sb.dispose();
await watchdog.stop();

/** Cost of one operation of a class: its crossing's round means minus the base's, per round, median. */
function perOp(name: string, base: string, count: number, unit: 'ns' | 'us'): { name: string; cost: Summary | null } {
  const a = results.find((r) => r.name === name)!.rounds;
  const b = results.find((r) => r.name === base)!.rounds;
  const scale = unit === 'ns' ? 1000 : 1;
  return { name, cost: summarize(a.map((x, i) => ((x.mean - b[i].mean) * scale) / count)) };
}
const baseName = 'crossing: access, 1 plugin, no PDK call';
const classes = [
  { what: 'snapshot read (`request.getHeader`)', unit: 'ns' as const, ...perOp(`crossing: access, 1 plugin, ${OPS_N} request.getHeader`, baseName, OPS_N, 'ns') },
  { what: 'operation write (`response.setHeader`)', unit: 'ns' as const, ...perOp(`crossing: access, 1 plugin, ${OPS_N} response.setHeader`, baseName, OPS_N, 'ns') },
  { what: 'async call (`await cache.get`)', unit: 'us' as const, ...perOp('crossing: access, 1 plugin, 1 awaited cache.get', 'crossing: access, 1 plugin, no PDK call, charged', 1, 'us') },
];

const m = machineInfo(allowed);
const L = [
  '# Isogate micro-benchmarks (sandbox boundary)',
  '',
  `${new Date(t0).toISOString().slice(0, 16).replace('T', ' ')} UTC; ${m.cpuModel}, Node ${m.node}, isolated-vm ${m.versions['isolated-vm']}, commit ${m.git.commit?.slice(0, 10) ?? 'unknown'}; pinned to CPU ${cpu}; ${ROUNDS} interleaved rounds, median (min–max) of the per-round means. p50/p99 are per operation and include ~30-50 ns of performance.now().`,
  '',
  '| operation | mean | p50 | p99 | unit | what |',
  '|---|---:|---:|---:|---|---|',
  ...results.map((r) => {
    const d = r.unit === 'ns' ? 0 : 2;
    return `| ${r.name} | ${fmtS(r.mean, d)} | ${fmt(r.p50?.median, d)} | ${fmt(r.p99?.median, d)} | ${r.unit} | ${r.note} |`;
  }),
  '',
  '## Cost per operation class',
  '',
  `One operation's cost inside a crossing: the crossing with ${OPS_N} of them (1 for the async call) minus the crossing with no PDK call, per round, median (min–max).`,
  '',
  '| operation class | cost | unit |',
  '|---|---:|---|',
  ...classes.map((c) => `| ${c.what} | ${fmtS(c.cost, c.unit === 'ns' ? 0 : 2)} | ${c.unit} |`),
  '',
];
const md = L.join('\n');
writeFileSync(join(outDir, 'micro.md'), md);
writeFileSync(join(outDir, 'micro.json'), JSON.stringify({ startedAt: new Date(t0).toISOString(), rounds: ROUNDS, cpu, machine: m, results, classes }, null, 2) + '\n');
if (values.out === undefined) {
  const latest = join(ROOT, 'bench', 'results', 'latest');
  mkdirSync(latest, { recursive: true });
  copyFileSync(join(outDir, 'micro.md'), join(latest, 'micro.md'));
  copyFileSync(join(outDir, 'micro.json'), join(latest, 'micro.json'));
}
process.stdout.write(`\n${md}\nwritten: ${join(outDir, 'micro.md')}\n`);
