/**
 * What switching isolates costs per call: the access + headerFilter crossings of one header
 * plugin, called round robin over N warmed tenant sandboxes against the same calls into one.
 * Per request: the two calls (access, then headerFilter), and the one early call the
 * gateway makes for this plugin (readsResponse: false). Wall time and the thread's CPU
 * time (process.threadCpuUsage: less moved by other processes on a shared machine).
 *
 *   node --no-node-snapshot bench/micro/isolate-switch.ts [N] [calls]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileConfig } from '../../core/config/compile.ts';
import { loadConfigFile } from '../../core/config/load.ts';
import { EARLY_HEADER_FILTER, PHASE } from '../../pdk-bridge/phases.ts';
import { beacon } from '../../sandbox/beacon.ts';
import { TenantSandbox } from '../../sandbox/tenant-sandbox.ts';
import { Watchdog } from '../../sandbox/watchdog.ts';
import { tenantsConfig } from '../lib/configs.ts';

const N = Number(process.argv[2] ?? 1000);
const CALLS = Number(process.argv[3] ?? 20000);
const dir = mkdtempSync(join(tmpdir(), 'isolate-switch-'));
const cfg = tenantsConfig(dir, 'switch', 1, 'http://127.0.0.1:9', N, 't');
const compiled = await compileConfig(await loadConfigFile(cfg.file), cfg.file);
const watchdog = new Watchdog();
await beacon.ready();
const sbs = [...compiled.programs.values()].filter((p) => p.chains.length > 0).map((p) => new TenantSandbox(p, watchdog));
for (const sb of sbs) sb.warm();
const req = '{"m":"GET","p":"/x","q":"","h":{"host":"b","x-bench":"1"},"ip":"127.0.0.1","s":"http"}';
const resp = '{"s":200,"h":{"content-type":"text/plain"}}';
type Per = { wall: number; cpu: number };
function round(pick: (i: number) => TenantSandbox, calls: number, early: boolean): Per {
  const t0 = performance.now();
  const c0 = process.threadCpuUsage();
  for (let i = 0; i < calls; i++) {
    const sb = pick(i);
    if (early) {
      sb.run(0, PHASE.ACCESS | EARLY_HEADER_FILTER, req, '', '', undefined, '', false);
    } else {
      sb.run(0, PHASE.ACCESS, req, '', '', undefined, '', false);
      sb.run(0, PHASE.HEADER_FILTER, req, resp, '', undefined, '', false);
    }
  }
  const c = process.threadCpuUsage(c0);
  return { wall: ((performance.now() - t0) * 1000) / calls, cpu: (c.user + c.system) / calls };
}
const one = (): TenantSandbox => sbs[0];
const all = (i: number): TenantSandbox => sbs[i % sbs.length];
const f = (p: Per) => `${p.wall.toFixed(1)} µs/request (CPU ${p.cpu.toFixed(1)})`;
for (const early of [false, true]) {
  round(one, 2000, early);
  round(all, sbs.length * 2, early);
}
const rows: string[] = [];
for (let r = 0; r < 3; r++) {
  for (const early of [false, true]) {
    rows.push(`round ${r + 1}, ${early ? 'one early call' : 'access then headerFilter'}: 1 tenant ${f(round(one, CALLS, early))}, ${N} tenants ${f(round(all, CALLS, early))}`);
  }
}
console.log(rows.join('\n'));
for (const sb of sbs) sb.dispose();
await watchdog.stop();
process.exit(0);
