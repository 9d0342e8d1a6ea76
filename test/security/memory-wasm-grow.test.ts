// memory: WebAssembly.Memory lives outside the V8 heap limit; a plugin growing it to 64 MB
// in a 16 MB isolate would take host memory the limit does not count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) {
  let result;
  try {
    const W = globalThis['Web' + 'Assembly'];
    const m = new W.Memory({ initial: 1, maximum: 65536 });
    m.grow(1024);
    new Uint8Array(m.buffer).fill(1);
    result = 'grown:' + m.buffer.byteLength;
  } catch (e) { result = 'E:' + e.name; }
  pdk.response.setHeader('x-probe', result);
}
`);

describe('memory: WebAssembly.Memory grow past the heap limit', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, memoryMb: 16 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('cannot grow wasm memory (WebAssembly is not offered)', async () => {
    const r = await attack(lab);
    expect(r.status).toBe(200);
    expect(String(r.headers['x-probe'])).toMatch(/^E:/);
    await expectStillServes(lab);
  });
});
