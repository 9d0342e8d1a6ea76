/**
 * What one crossing costs on the calling thread (process.threadCpuUsage, so other
 * processes' load counts less than in wall time), per case: the early header chain of 1,
 * 5 and 10 bench header plugins (access + headerFilter in one call, the operations then
 * validated and applied as the gateway does), a separate headerFilter call, and the
 * operation classes of bench:micro (no PDK call, 100 setHeader, 100 getHeader). Median
 * of the blocks. Run it in two checkouts alternately to compare them.
 *
 *   node --no-node-snapshot bench/micro/crossing-cost.ts [blocks (9)] [calls per block (3000)]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileConfig } from '../../core/config/compile.ts';
import { loadConfigFile } from '../../core/config/load.ts';
import { applyOps, type OpTarget } from '../../pdk-bridge/host/ops.ts';
import { EARLY_HEADER_FILTER, PHASE } from '../../pdk-bridge/phases.ts';
import { beacon } from '../../sandbox/beacon.ts';
import type { RunResult } from '../../sandbox/run-result.ts';
import { TenantSandbox } from '../../sandbox/tenant-sandbox.ts';
import { Watchdog } from '../../sandbox/watchdog.ts';
import { chainConfig, microOpsConfig, type GatewayConfig } from '../lib/configs.ts';

const BLOCKS = Number(process.argv[2] ?? 9);
const CALLS = Number(process.argv[3] ?? 3000);
const dir = mkdtempSync(join(tmpdir(), 'crossing-cost-'));
const watchdog = new Watchdog();
await beacon.ready();

async function sandbox(cfg: GatewayConfig): Promise<TenantSandbox> {
  const compiled = await compileConfig(await loadConfigFile(cfg.file), cfg.file);
  const sb = new TenantSandbox(compiled.programs.get('bench')!, watchdog);
  sb.warm();
  return sb;
}

// What the gateway hands in (pdk-bridge/host/snapshots.ts), with wrk's headers.
const H = { host: '127.0.0.1:8000', 'user-agent': 'wrk', accept: '*/*', 'x-bench': '1' };
const req = JSON.stringify({ m: 'GET', p: '/', q: '', h: H, ip: '127.0.0.1', cp: 40000, s: 'http', o: 8000, v: 1, t: 1733350000000, d: 0 }) + '\n{"route":{"name":"all"},"service":{"name":"up"}}';
const resp = JSON.stringify({ s: 200, h: { 'content-type': 'text/plain', 'content-length': '2', date: 'Fri, 04 Dec 2026 21:00:00 GMT' } });
const noLog = () => {};
const target = (): OpTarget => ({ upstreamHeaders: { ...H }, upstreamPath: '/', upstreamQuery: '', responseEdits: null, exit: null, body: null, status: null, buffering: false });

function conclude(r: RunResult, phase: number): void {
  if (r.faults.length > 0 || r.aborted) throw new Error(`crossing-cost: faulted: ${JSON.stringify(r.faults)}`);
  if (applyOps(r.ops, phase, target(), noLog) !== null) throw new Error('crossing-cost: ops refused');
}

const sbs = {
  h1: await sandbox(chainConfig(dir, 'c1', 0, 'http://127.0.0.1:9', 1)),
  h5: await sandbox(chainConfig(dir, 'c5', 0, 'http://127.0.0.1:9', 5)),
  h10: await sandbox(chainConfig(dir, 'c10', 0, 'http://127.0.0.1:9', 10)),
  none: await sandbox(microOpsConfig(dir, 0, 0, 0)),
  writes: await sandbox(microOpsConfig(dir, 0, 100, 0)),
  reads: await sandbox(microOpsConfig(dir, 100, 0, 0)),
};
function early(sb: TenantSandbox): () => void {
  return () => {
    const r = sb.run(0, PHASE.ACCESS | EARLY_HEADER_FILTER, req, '', '', undefined, '', false) as RunResult;
    conclude(r, PHASE.ACCESS);
    conclude(r.early!, PHASE.HEADER_FILTER);
  };
}
const cases: [string, () => void][] = [
  ['early access+headerFilter, 1 plugin', early(sbs.h1)],
  ['early access+headerFilter, 5 plugins', early(sbs.h5)],
  ['early access+headerFilter, 10 plugins', early(sbs.h10)],
  ['headerFilter call, 1 plugin', () => conclude(sbs.h1.run(0, PHASE.HEADER_FILTER, req, resp, '', undefined, '', false) as RunResult, PHASE.HEADER_FILTER)],
  ['access, 1 plugin, no PDK call', () => conclude(sbs.none.run(0, PHASE.ACCESS, req, '', '', undefined, '', false) as RunResult, PHASE.ACCESS)],
  ['access, 100 response.setHeader (applied)', () => conclude(sbs.writes.run(0, PHASE.ACCESS, req, '', '', undefined, '', false) as RunResult, PHASE.ACCESS)],
  ['access, 100 request.getHeader', () => conclude(sbs.reads.run(0, PHASE.ACCESS, req, '', '', undefined, '', false) as RunResult, PHASE.ACCESS)],
];

const samples = new Map<string, number[]>(cases.map(([n]) => [n, []]));
for (const [, op] of cases) for (let i = 0; i < 500; i++) op();
for (let b = 0; b < BLOCKS; b++) {
  for (const [name, op] of cases) {
    const t0 = process.threadCpuUsage();
    for (let i = 0; i < CALLS; i++) op();
    const t = process.threadCpuUsage(t0);
    samples.get(name)!.push((t.user + t.system) / CALLS);
  }
}
for (const [name, xs] of samples) {
  const s = [...xs].sort((a, b) => a - b);
  process.stdout.write(`${name.padEnd(44)} ${s[s.length >> 1].toFixed(2).padStart(7)} µs  (min ${s[0].toFixed(2)})\n`);
}
for (const sb of Object.values(sbs)) sb.dispose();
await watchdog.stop();
process.exit(0);
