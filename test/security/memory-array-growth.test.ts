// memory: unbounded array growth until the heap limit
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, failuresByReason, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const keep = [];
export function access(pdk) { for (;;) keep.push(new Array(10000).fill(keep.length)); }
`);

describe(`memory: unbounded array growth until the heap limit`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 1000, memoryMb: 16 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it(`fails only this request (['memory']), the isolate is rebuilt, the neighbour is served`, async () => {
    const r = await attack(lab);
    expectPluginFailed(r);
    let seen = '';
    for (const reason of ['memory']) if ((await failures(lab, reason, { plugin: 'evil' })) === 1) seen = reason;
    expect(seen, `failure metric (by reason: ${JSON.stringify(await failuresByReason(lab))})`).not.toBe('');
    await expectStillServes(lab);
    // again: the rebuilt isolate fails the same way, the process holds
    expectPluginFailed(await attack(lab));
    await expectStillServes(lab);
  });
});
