// cpu: a plugin whose CPU use lands right at its deadline, request after request, so that
// the watchdog disposes the isolate just as the call returns. Regression: the CPU
// accounting then read `cpuTime` of the disposed isolate and threw out of the sandbox
// call (about 9 % of requests got ISG_ERR_INTERNAL without an error id), and the next
// request ran into the disposed isolate and failed as `memory`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTCOMES } from '../../sandbox/outcome.ts';
import { expectStillServes, failures, faultLogs, plugin, send, startLab, type Lab } from './helpers.ts';

const CPU_MS = 20;
// The runtime arms the plugin's deadline at Date.now() + cpuMs just before the handler
// (the watchdog kills once the clock is past it); the handler spins until the clock reads
// a time from 3 ms before the deadline to 9 ms after it, then a few random microseconds
// more, so many calls return within one watchdog poll of the deadline: on both sides of
// it, and sometimes while the watchdog is disposing the isolate. The limit counts the
// thread's CPU time, which a loaded machine makes smaller than the wall time the plugin
// spins for: hence the later end of the range.
const EVIL = plugin(`
export function access(pdk) {
  const until = Date.now() + ${CPU_MS} + Math.floor(Math.random() * 12) - 3;
  while (Date.now() < until) {}
  let n = Math.random() * 20000;
  while (n > 0) n--;
  pdk.response.setHeader('x-evil', '1');
}
`);

describe('cpu: calls that end right at the CPU deadline', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: CPU_MS });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('every answer is a success or a plugin failure with an error id; only documented outcomes, never memory', async () => {
    const statuses = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const r = await send(`${lab.url}/evil`);
      const kind = r.status === 200 ? '200' : `${r.status} ${r.json().error?.code}`;
      statuses.set(kind, (statuses.get(kind) ?? 0) + 1);
      if (r.status === 200) {
        expect(r.headers['x-evil']).toBe('1');
        continue;
      }
      expect(r.status, r.body).toBe(500);
      const j = r.json() as { error: { code: string; id?: string } };
      expect(j.error.code, r.body).toBe('ISG_ERR_PLUGIN_FAILED');
      expect(j.error.id).toMatch(/^[0-9a-f]{16}$/);
      expect(r.headers['x-isogate-error-id']).toBe(j.error.id);
    }
    // both sides of the deadline were hit, or the test proves nothing
    expect(statuses.get('200') ?? 0, JSON.stringify([...statuses])).toBeGreaterThan(0);
    expect(statuses.get('500 ISG_ERR_PLUGIN_FAILED') ?? 0, JSON.stringify([...statuses])).toBeGreaterThan(0);
    for (const f of faultLogs(lab)) {
      expect(OUTCOMES).toContain(f.reason);
      expect(f.reason, String(f.msg)).toBe('cpu');
      expect(f.plugin).toBe('evil');
      expect(String(f.errorId)).toMatch(/^[0-9a-f]{16}$/);
    }
    expect(await failures(lab, 'memory', { plugin: 'evil' })).toBe(0);
    expect(await failures(lab, 'memory', { plugin: 'unknown' })).toBe(0);
    expect(lab.logs.some((l) => l.msg === 'internal error while proxying')).toBe(false);
    await expectStillServes(lab);
  }, 60_000);
});
