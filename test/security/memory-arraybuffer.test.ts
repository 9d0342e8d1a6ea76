// memory: ArrayBuffer allocations (external memory) in 1 MB steps
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, plugin, startLab, type Lab } from './helpers.ts';

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
    expect(seen, 'failure metric').not.toBe('');
    await expectStillServes(lab);
    // again: the rebuilt isolate fails the same way, the process holds
    expectPluginFailed(await attack(lab));
    await expectStillServes(lab);
  });
});
