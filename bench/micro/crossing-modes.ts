/**
 * applySync vs async apply for one sandbox crossing, and the cost of isolated-vm's
 * per-call `timeout` (the reason we use a watchdog instead). Median of rounds, one process.
 *
 *   node --no-node-snapshot bench/micro/crossing-modes.ts [--calls N] [--rounds R]
 */
import { parseArgs } from 'node:util';
import ivm from 'isolated-vm';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '5' } } });
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);

const isolate = new ivm.Isolate({ memoryLimit: 32 });
const context = isolate.createContextSync();
context.evalSync(`globalThis.run = function (input) { const r = JSON.parse(input); return { s: JSON.stringify([[['rs.set', 'x-a', r.h['x-a']]], []]) }; }`);
const run = context.global.getSync('run', { reference: true });
const input = JSON.stringify({ m: 'GET', p: '/x', q: '', h: { host: 'a', 'x-a': '1', 'user-agent': 'bench' }, ip: '127.0.0.1' });
const COPY = { arguments: { copy: true }, result: { copy: true } } as const;

type Mode = { name: string; once(): unknown };
const modes: Mode[] = [
  { name: 'applySync', once: () => run.applySync(undefined, [input], COPY) },
  { name: 'applySync + timeout', once: () => run.applySync(undefined, [input], { ...COPY, timeout: 50 }) },
  { name: 'apply (async)', once: () => run.apply(undefined, [input], COPY) },
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const results = new Map<string, number[]>(modes.map((m) => [m.name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const m of modes) {
    const t0 = performance.now();
    if (m.name.startsWith('apply (')) {
      // Sequential awaits: what one request pays; the event loop stays free meanwhile.
      for (let i = 0; i < CALLS; i++) await m.once();
    } else {
      for (let i = 0; i < CALLS; i++) m.once();
    }
    results.get(m.name)!.push(((performance.now() - t0) * 1000) / CALLS);
  }
}
console.log(`calls per round: ${CALLS}, rounds: ${ROUNDS} (interleaved)`);
console.log('mode                    median us/call   min     max');
for (const [name, xs] of results) {
  console.log(`${name.padEnd(24)}${median(xs).toFixed(2).padStart(10)}   ${Math.min(...xs).toFixed(2).padStart(6)}  ${Math.max(...xs).toFixed(2).padStart(6)}`);
}
isolate.dispose();
