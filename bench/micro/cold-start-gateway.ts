/**
 * The cold start through a real gateway, in one process: for each of COLD tenants, its
 * first request then its second (one plugin each, to a real upstream on 127.0.0.1), on a
 * gateway without and then with `sandbox.prewarm`. Prints, per request kind, the wall
 * time and the process's CPU time (client, gateway and upstream share the process,
 * identically for both requests, so first − second is the cold start's own cost, with
 * whatever isolated-vm's threads did meanwhile: pin the process to one CPU). The CPU
 * figures hold under a loaded machine better than the wall figures do.
 *
 *   COLD=60 taskset -c 1 node --no-node-snapshot bench/micro/cold-start-gateway.ts
 *   (PREWARM=0: the cold gateway only)
 */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Pool } from 'undici';
import { Gateway } from '../../core/gateway.ts';
import { tenantsConfig } from '../lib/configs.ts';

const COLD = Number(process.env.COLD ?? 60);
const PAUSE = Number(process.env.PAUSE ?? 10);
const upstream = createServer((_req, res) => res.end('ok'));
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
/**
 * The process's CPU time, in ms: every thread's (isolated-vm's included), exact to the µs.
 * Not process.threadCpuUsage(): on this kernel a thread's own figure is brought up to date
 * only at scheduler events, about every 1-2 ms of CPU, so sub-millisecond steps read 0 or a
 * whole step (its p50 over short calls means little; its mean holds).
 */
const cpu = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
const pct = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor((a.length * p) / 100))];

async function run(prewarm: boolean): Promise<void> {
  const built: number[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'cold-start-gateway-'));
  const cfg = tenantsConfig(dir, 'cold', 0, upstreamUrl, COLD + 1, 'c', prewarm ? { prewarm: COLD + 1, adminPort: 0 } : undefined);
  const gw = await Gateway.start({ configFile: cfg.file, listen: { host: '127.0.0.1', port: 0 }, admin: false, logger: pino({ level: 'debug' }, { write: (line: string) => { const l = JSON.parse(line); if (l.msg === 'isolate created') built.push(l.ms); } }), accessLog: false });
  const deadline = Date.now() + 60_000;
  while (prewarm && gw.liveIsolates() < COLD + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200)); // the pool's refills done
  const pool = new Pool(`http://127.0.0.1:${gw.proxyAddress.port}`, { connections: 1 });
  const get = async (path: string): Promise<[number, number]> => {
    const w = performance.now();
    const c = cpu();
    const r = await pool.request({ path, method: 'GET' });
    await r.body.dump();
    if (r.statusCode !== 200) throw new Error(`${path}: ${r.statusCode}`);
    return [performance.now() - w, cpu() - c];
  };
  for (let i = 0; i < 200; i++) await get('/c0/x'); // the gateway's own code paths, JIT
  const first: [number, number][] = [];
  const second: [number, number][] = [];
  for (let i = 1; i <= COLD; i++) {
    first.push(await get(`/c${i}/x`));
    second.push(await get(`/c${i}/x`));
    await new Promise((r) => setTimeout(r, PAUSE)); // a pause, as between real tenants' first requests: the pool refills
  }
  await pool.close();
  await gw.stop(0);
  const line = (name: string, v: [number, number][]) => `${name.padEnd(8)} wall p50 ${pct(v.map((x) => x[0]), 50).toFixed(2)} p99 ${pct(v.map((x) => x[0]), 99).toFixed(2)} ms; CPU p50 ${pct(v.map((x) => x[1]), 50).toFixed(2)} p99 ${pct(v.map((x) => x[1]), 99).toFixed(2)} ms`;
  const added = (k: 0 | 1, p: number) => (pct(first.map((x) => x[k]), p) - pct(second.map((x) => x[k]), p)).toFixed(2);
  const addedMean = (mean(first.map((x) => x[1])) - mean(second.map((x) => x[1]))).toFixed(2);
  const own = built.slice(-COLD);
  console.log(`${prewarm ? 'pre-warmed' : 'cold'} (${COLD} tenants; isolate build, wall: p50 ${pct(own, 50).toFixed(2)} p99 ${pct(own, 99).toFixed(2)} ms)\n  ${line('first', first)}\n  ${line('second', second)}\n  added: wall p50 ${added(0, 50)} p99 ${added(0, 99)} ms; CPU p50 ${added(1, 50)} p99 ${added(1, 99)} mean ${addedMean} ms`);
}

await run(false);
if (process.env.PREWARM !== '0') await run(true);
upstream.close();
process.exit(0);
