/**
 * A tenant's cold start split into its parts, outside any proxy, and the memory of idle
 * tenant isolates. Prints medians and p99 over `COLD` tenants (default 40) of the process's
 * CPU time (process.cpuUsage: sync isolate work runs on the calling thread; less noisy
 * than wall time on a shared machine), then RSS and V8 heap per isolate over `N` warmed tenant
 * sandboxes (default 200).
 *
 *   COLD=40 N=200 node --no-node-snapshot bench/micro/cold-start-parts.ts
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ivm from 'isolated-vm';
import { compileConfig } from '../../core/config/compile.ts';
import { loadConfigFile } from '../../core/config/load.ts';
import { beacon } from '../../sandbox/beacon.ts';
import { WarmIsolates, createBlank } from '../../sandbox/blank.ts';
import { loadRuntime } from '../../sandbox/runtime-cache.ts';
import { TenantSandbox } from '../../sandbox/tenant-sandbox.ts';
import { Watchdog } from '../../sandbox/watchdog.ts';
import { tenantsConfig } from '../lib/configs.ts';

const COLD = Number(process.env.COLD ?? 40);
const N = Number(process.env.N ?? 200);
const dir = mkdtempSync(join(tmpdir(), 'cold-start-parts-'));
const cfg = tenantsConfig(dir, 'parts', 1, 'http://127.0.0.1:9', 1 + 2 * COLD + N, 't');
const compiled = await compileConfig(await loadConfigFile(cfg.file), cfg.file);
const programs = [...compiled.programs.values()].filter((p) => p.chains.length > 0);
let next = 0;
const program = () => programs[next++];
const watchdog = new Watchdog();
await beacon.ready();
/** The process's CPU time, in ms (exact to the µs; process.threadCpuUsage() moves in steps of 1-2 ms here, see cold-start-gateway.ts). */
const now = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const pct = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor((a.length * p) / 100))];
const parts: Record<string, number[]> = { 'new Isolate': [], context: [], 'runtime (no cache)': [], exercise: [], createBlank: [], 'tenant, no pool': [], 'tenant, pool blank': [] };
{
  const sb = new TenantSandbox(program(), watchdog); // the process's own code paths and code caches
  sb.warm();
  sb.dispose();
}
const SOURCE = loadRuntime();
for (let i = 0; i < COLD; i++) {
  const t0 = now();
  const iso = new ivm.Isolate({ memoryLimit: 64 });
  const t1 = now();
  const ctx = iso.createContextSync();
  const t2 = now();
  const api = iso.compileScriptSync(SOURCE, { filename: 'runtime' }).runSync(ctx, { reference: true }) as ivm.Reference<Record<string, unknown>>;
  const t3 = now();
  (api.getSync('exercise', { reference: true }) as ivm.Reference<() => void>).applySync(undefined, [], { timeout: 1000 });
  parts['new Isolate'].push(t1 - t0);
  parts.context.push(t2 - t1);
  parts['runtime (no cache)'].push(t3 - t2);
  parts.exercise.push(now() - t3);
  iso.dispose();
  const t4 = now();
  createBlank(64).isolate.dispose();
  parts.createBlank.push(now() - t4);
}
for (let i = 0; i < COLD; i++) {
  const sb = new TenantSandbox(program(), watchdog);
  const t0 = now();
  sb.warm();
  parts['tenant, no pool'].push(now() - t0);
  sb.dispose();
}
const warm = new WarmIsolates(2);
warm.prime([64]);
for (let i = 0; i < COLD; i++) {
  await warm.ready(64);
  const sb = new TenantSandbox(program(), watchdog, { warm });
  const t0 = now();
  sb.warm();
  parts['tenant, pool blank'].push(now() - t0);
  sb.dispose();
}
warm.close();
for (const [k, v] of Object.entries(parts)) console.log(`${k.padEnd(20)} p50 ${pct(v, 50).toFixed(3)} ms, p99 ${pct(v, 99).toFixed(3)} ms`);

globalThis.gc?.();
await new Promise((r) => setTimeout(r, 100));
const rss0 = process.memoryUsage().rss;
const live: TenantSandbox[] = [];
for (let i = 0; i < N; i++) {
  const sb = new TenantSandbox(program(), watchdog);
  sb.warm();
  live.push(sb);
}
await new Promise((r) => setTimeout(r, 300));
const rss1 = process.memoryUsage().rss;
let used = 0, total = 0, external = 0;
for (const sb of live) {
  const h = sb.heap()!;
  used += h.used;
  total += h.total;
  external += h.external;
}
const MB = 1024 * 1024;
console.log(`${N} idle tenants: RSS ${((rss1 - rss0) / N / MB).toFixed(3)} MB each; V8 heap used ${(used / N / MB).toFixed(3)} MB, committed ${(total / N / MB).toFixed(3)} MB, external ${(external / N / 1024).toFixed(1)} KB`);
for (const sb of live) sb.dispose();
await watchdog.stop();
process.exit(0);
