// bad return: pdk.log given a 64 MiB string, an object holding one, and more lines than the
// cap. A log cap never fails the request: the line is cut at OUTPUT_CAPS.maxLogChars and
// lines past OUTPUT_CAPS.maxLogLines are dropped. Regression: the runtime JSON-encoded a
// whole object argument before cutting the line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTPUT_CAPS } from '../../sandbox/limits.ts';
import { attack, expectStillServes, failures, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const big = () => 'x'.repeat(64 * 1024 * 1024);
const CASES = {
  string: (pdk) => pdk.log.warn('big', big()),
  object: (pdk) => pdk.log.warn('big', { data: big() }),
  lines: (pdk) => { for (let i = 0; i < 500; i++) pdk.log.warn('line', i); },
};
export function access(pdk) { CASES[pdk.request.getQueryArg('case')](pdk); pdk.response.setHeader('x-done', '1'); }
`);

describe('pdk.log with huge arguments and too many lines', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 1000, memoryMb: 256 }); // building 64 MiB strings on a loaded machine takes a while: the CPU use is asserted below
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const c of ['string', 'object', 'lines']) {
    it(`${c}: the request is served, the lines are capped, nothing huge is encoded`, async () => {
      const seen = lab.logs.length;
      const cpu0 = process.cpuUsage();
      const r = await attack(lab, `/evil?case=${c}`);
      const cpu = process.cpuUsage(cpu0);
      expect(r.status, r.body).toBe(200);
      expect(r.headers['x-done']).toBe('1');
      expect((cpu.user + cpu.system) / 1000).toBeLessThan(600);
      const lines = lab.logs.slice(seen).filter((l) => l.plugin === 'tenant-evil' || (l.tenant === 'evil' && typeof l.msg === 'string' && /^(big|line)/.test(l.msg)));
      expect(lines.length).toBe(c === 'lines' ? OUTPUT_CAPS.maxLogLines : 1);
      for (const l of lines) expect(String(l.msg).length).toBeLessThanOrEqual(OUTPUT_CAPS.maxLogChars);
      if (c === 'object') expect(lines[0].msg).toBe('big [value too large to log]');
      expect(await failures(lab, 'cpu', { plugin: 'evil' })).toBe(0);
      await expectStillServes(lab);
    });
  }
});
