// bad body: a JSON bomb handed to request.getBody(): 8 MB of nested or tiny arrays and
// objects, which JSON.parse would turn into hundreds of MB in one builtin call that no limit
// interrupts. Refused before the parse (CAPS.maxJsonContainers): a clear error of the
// plugin, fast, the worker not grown, the neighbours served.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTPUT_CAPS } from '../../sandbox/limits.ts';
import { attack, expectPluginFailed, expectStillServes, failures, faultLogs, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export const reads = ['body'];
export function access(pdk) { const b = pdk.request.getBody(); pdk.response.setHeader('x-type', typeof b); }
`);

const HALF = 4 * 2 ** 20 - 8;
const CASES: Record<string, string> = {
  nested: '['.repeat(HALF) + ']'.repeat(HALF),
  wide: '[' + '[],'.repeat(Math.floor((2 * HALF) / 3)) + '[]]',
  objects: '[' + '{},'.repeat(Math.floor((2 * HALF) / 3)) + '{}]',
};

describe('bad body: a JSON bomb for request.getBody', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 200, memoryMb: 64 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const [name, body] of Object.entries(CASES)) {
    it(`${name}: refused before the parse, quickly, without growing the worker`, async () => {
      expect(body.length).toBeLessThanOrEqual(OUTPUT_CAPS.maxRequestBodyBytes);
      const threw = await failures(lab, 'threw', { plugin: 'evil' });
      const rss0 = process.memoryUsage().rss;
      const r = await attack(lab, '/evil', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expectPluginFailed(r);
      expect(await failures(lab, 'threw', { plugin: 'evil' })).toBe(threw + 1);
      expect(String(faultLogs(lab).at(-1)?.msg)).toMatch(/JSON body with more than \d+ objects and arrays/);
      // the body (8 MB, twice as a string) and nothing built from it
      expect((process.memoryUsage().rss - rss0) / 2 ** 20).toBeLessThan(96);
      await expectStillServes(lab);
    });
  }

  it('a large JSON body under the cap still parses', async () => {
    const r = await attack(lab, '/evil', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ list: Array.from({ length: 50_000 }, (_, i) => ({ i })) }) });
    expect(r.status).toBe(200);
    expect(r.headers['x-type']).toBe('object');
  });
});
