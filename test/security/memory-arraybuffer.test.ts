// memory: ArrayBuffer allocations (external memory) in 1 MB steps
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, failuresByReason, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const keep = [];
export function access(pdk) { for (;;) { const b = new ArrayBuffer(1 << 20); new Uint8Array(b).fill(1); keep.push(b); } }
`);

describe(`memory: ArrayBuffer allocations (external memory) in 1 MB steps`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 1000, memoryMb: 16 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it(`fails only this request (['memory', 'threw']), the isolate is rebuilt, the neighbour is served`, async () => {
    const r = await attack(lab);
    expectPluginFailed(r);
    let seen = '';
    for (const reason of ['memory', 'threw']) if ((await failures(lab, reason, { plugin: 'evil' })) === 1) seen = reason;
    expect(seen, `failure metric (by reason: ${JSON.stringify(await failuresByReason(lab))})`).not.toBe('');
    await expectStillServes(lab);
    // again: the rebuilt isolate fails the same way, the process holds
    expectPluginFailed(await attack(lab));
    await expectStillServes(lab);
  });
});

// isolated-vm's ArrayBuffer allocator counts external memory against memoryLimit: one
// 1 GB typed array in a 16 MB isolate is refused at once (RangeError), nothing is allocated.
const GIANT = plugin(`
export function access(pdk) { const b = new Uint8Array(2 ** 30); b.fill(1); }
`);

describe(`memory: one 1 GB typed array (external memory) at once`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: GIANT, cpuMs: 1000, memoryMb: 16 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it(`is refused by the allocator: the call fails as threw, this process does not grow`, async () => {
    const before = process.memoryUsage().rss;
    expectPluginFailed(await attack(lab));
    expect(await failures(lab, 'threw', { plugin: 'evil' })).toBe(1);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024);
    await expectStillServes(lab);
  });
});
