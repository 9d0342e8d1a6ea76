// escape: V8's built-in console. It exists in the isolate (SECURITY.md, "Builtins offered
// to plugins") and writes nothing: no handler of the host is behind it, and it reads none of
// its arguments, so a looping toString or getter passed to it cannot run on the host.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectStillServes, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const loop = { toString() { for (;;) {} }, get message() { for (;;) {} } };
export function access(pdk) {
  const names = Object.getOwnPropertyNames(console).filter((k) => typeof console[k] === 'function');
  for (const k of names) console[k]('ISOGATE-CONSOLE-PROBE', loop);
  pdk.response.setHeader('x-console', typeof console + ':' + names.length);
}
`);

describe('escape: console is a no-op', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 100 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('every console method returns at once and writes nothing the gateway sees', async () => {
    const r = await attack(lab);
    expect(r.status, r.body).toBe(200);
    expect(String(r.headers['x-console'])).toMatch(/^object:\d+$/);
    expect(r.ms).toBeLessThan(1000);
    expect(lab.rawLogs.join('')).not.toContain('ISOGATE-CONSOLE-PROBE');
    await expectStillServes(lab);
  });
});
