/**
 * What switching isolates costs per call: the access + headerFilter crossings of one header
 * plugin, called round robin over N warmed tenant sandboxes against the same calls into one.
 *
 *   node --no-node-snapshot bench/micro/isolate-switch.ts [N] [calls]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileConfig } from '../../core/config/compile.ts';
import { loadConfigFile } from '../../core/config/load.ts';
import { PHASE } from '../../pdk-bridge/phases.ts';
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
function round(pick: (i: number) => TenantSandbox, calls: number): number {
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) {
    const sb = pick(i);
    sb.run(0, PHASE.ACCESS, req, '', '', undefined, '', false);
    sb.run(0, PHASE.HEADER_FILTER, req, resp, '', undefined, '', false);
  }
  return ((performance.now() - t0) * 1000) / calls;
}
const one = (): TenantSandbox => sbs[0];
const all = (i: number): TenantSandbox => sbs[i % sbs.length];
round(one, 2000);
round(all, sbs.length * 2);
const rows: string[] = [];
for (let r = 0; r < 3; r++) rows.push(`round ${r + 1}: 1 tenant ${round(one, CALLS).toFixed(1)} µs/request, ${N} tenants ${round(all, CALLS).toFixed(1)} µs/request`);
console.log(rows.join('\n'));
for (const sb of sbs) sb.dispose();
await watchdog.stop();
process.exit(0);
