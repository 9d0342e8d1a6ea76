// Memory of idle isolates by stage (isolate, context, runtime, exercise; CTXS more contexts):
// RSS delta and V8 heap per isolate over N isolates. V8FLAGS: flags set before the first.
//   STAGE=exercise N=100 node --no-node-snapshot --expose-gc bench/micro/idle-memory.ts
import { setFlagsFromString } from 'node:v8';
import ivm from 'isolated-vm';
import { loadRuntime } from '../../sandbox/runtime-cache.ts';
const N = Number(process.env.N ?? 100);
if (process.env.V8FLAGS) setFlagsFromString(process.env.V8FLAGS);
const SRC = loadRuntime();
const stage = process.env.STAGE ?? 'exercise';
const ctxs = Number(process.env.CTXS ?? 0);
const MB = 1048576;
const hold: ivm.Isolate[] = [];
globalThis.gc?.();
const rss0 = process.memoryUsage().rss;
let cache: ivm.ExternalCopy<ArrayBuffer> | undefined;
for (let i = 0; i < N; i++) {
  const iso = new ivm.Isolate({ memoryLimit: Number(process.env.MEM ?? 64) });
  hold.push(iso);
  if (stage === 'isolate') continue;
  const ctx = iso.createContextSync();
  if (stage === 'context') continue;
  const s = iso.compileScriptSync(SRC, cache ? { cachedData: cache } : { produceCachedData: true }) as any;
  cache ??= s.cachedData;
  const api = s.runSync(ctx, { reference: true }) as any;
  if (stage === 'exercise') api.getSync('exercise', { reference: true }).applySync(undefined, [], { timeout: 1000 });
  for (let k = 0; k < ctxs; k++) { const c = iso.createContextSync(); c.evalSync('1'); }
}
await new Promise((r) => setTimeout(r, 300));
const rss1 = process.memoryUsage().rss;
let used = 0, total = 0, phys = 0;
for (const iso of hold) { const h = iso.getHeapStatisticsSync(); used += h.used_heap_size; total += h.total_heap_size; phys += (h as any).total_physical_size ?? 0; }
console.log(`${stage} ctxs=${ctxs} flags=${process.env.V8FLAGS ?? ''}: rss/iso ${((rss1 - rss0) / N / MB).toFixed(3)} MB, heap used ${(used / N / MB).toFixed(3)}, total ${(total / N / MB).toFixed(3)}, physical ${(phys / N / MB).toFixed(3)} MB`);
