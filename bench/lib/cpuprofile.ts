import { existsSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './machine.ts';

/**
 * Self time per function and per file of a V8 .cpuprofile (node --cpu-prof). Time spent
 * inside isolated-vm isolates shows as native time under the applySync call (the profiler
 * sees the main isolate only).
 *   node bench/lib/cpuprofile.ts FILE.cpuprofile [N]
 */
type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] };
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };

/**
 * `dir/<target>/` holds one profile per thread of that gateway (node's default names,
 * CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; thread 0 is the main thread, the
 * one that serves requests and runs the isolates). Keeps the main thread's as
 * `dir/<target>.cpuprofile` and removes the folder.
 */
export function keepMainThreadProfiles(dir: string): void {
  if (!existsSync(dir)) return;
  for (const target of readdirSync(dir)) {
    const sub = join(dir, target);
    if (!statSync(sub).isDirectory()) continue;
    const main = readdirSync(sub).find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f));
    if (main !== undefined) renameSync(join(sub, main), join(dir, `${target}.cpuprofile`));
    rmSync(sub, { recursive: true, force: true });
  }
}

export type Hot = { name: string; selfMs: number; pct: number };

function where(url: string): string {
  if (url === '') return '';
  const p = url.startsWith('file://') ? url.slice(7) : url;
  return p.startsWith('/') ? relative(ROOT, p) : p;
}

export function hotspots(file: string, n = 15): { total: number; byFunction: Hot[]; byFile: Hot[] } {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(prof.nodes.map((x) => [x.id, x]));
  const self = new Map<number, number>();
  // A sample interval far beyond the profiler's (1 ms) is time the process was not running
  // (frozen by the harness between measurements, or preempted): dropped, not charged to
  // whichever function happened to run next.
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    if (dt > 20_000) continue;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
  }
  const fn = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const cf = node.callFrame;
    if (cf.functionName === '(idle)') continue;
    total += us;
    const w = where(cf.url);
    const key = `${cf.functionName || '(anonymous)'}${w === '' ? '' : ` ${w}:${cf.lineNumber + 1}`}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const fk = w === '' ? cf.functionName : w.replace(/^node:internal\/.*/, (s) => s).replace(/(node_modules\/(@[^/]+\/)?[^/]+).*/, '$1');
    files.set(fk, (files.get(fk) ?? 0) + us);
  }
  const top = (m: Map<string, number>) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => ({ name, selfMs: us / 1000, pct: total > 0 ? (100 * us) / total : 0 }));
  return { total: total / 1000, byFunction: top(fn), byFile: top(files) };
}

if (import.meta.main) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: node bench/lib/cpuprofile.ts FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  const h = hotspots(file, Number(process.argv[3] ?? 25));
  process.stdout.write(`busy ${h.total.toFixed(0)} ms (idle excluded)\n\nby function (self):\n`);
  for (const x of h.byFunction) process.stdout.write(`  ${x.pct.toFixed(1).padStart(5)}%  ${x.selfMs.toFixed(0).padStart(7)} ms  ${x.name}\n`);
  process.stdout.write('\nby file (self):\n');
  for (const x of h.byFile) process.stdout.write(`  ${x.pct.toFixed(1).padStart(5)}%  ${x.selfMs.toFixed(0).padStart(7)} ms  ${x.name}\n`);
  process.stdout.on('error', () => undefined);
}
