// bad return: a 64 MiB body handed to response.exit (as a string, or inside an object) or
// to response.setRawBody in the response phase (setChunk and serviceRequest.setRawBody:
// bad-body-set-over-cap.test.ts). Regression: the runtime JSON-encoded the whole body before any cap
// (the call ended as `cpu` after 4-7x its CPU limit and the worker grew to ~300 MB); each
// cap is now checked at the PDK call, inside the isolate, before anything is encoded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, faultLogs, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const big = () => 'x'.repeat(64 * 1024 * 1024);
const CASES = {
  exitString: (pdk) => pdk.response.exit(200, big()),
  exitObject: (pdk) => pdk.response.exit(200, { data: big() }),
  exitManyKeys: (pdk) => { const o = {}; const v = 'y'.repeat(1024); for (let i = 0; i < 8192; i++) o['k' + i] = v; pdk.response.exit(200, o); },
  exitCaught: (pdk) => { try { pdk.response.exit(200, big()); } catch (e) { pdk.response.exit(200, 'pwned'); } },
};
export function access(pdk) { const c = CASES[pdk.request.getQueryArg('case')]; if (c !== undefined) c(pdk); }
export function response(pdk) {
  const c = pdk.request.getQueryArg('case');
  if (c === 'setBody') pdk.response.setRawBody(big());
  if (c === 'setBodyCaught') { try { pdk.response.setRawBody(big()); } catch (e) { pdk.response.setRawBody('pwned'); } }
}
`);

describe('bad return: 64 MiB bodies for response.exit and response.setRawBody', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 300, memoryMb: 256 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const c of ['exitString', 'exitObject', 'exitManyKeys', 'exitCaught', 'setBody', 'setBodyCaught']) {
    it(`${c}: too_large at the call, quickly, without encoding the body; the client sees none of it`, async () => {
      const before = await failures(lab, 'too_large', { plugin: 'evil' });
      const cpuBefore = await failures(lab, 'cpu', { plugin: 'evil' });
      const rss0 = process.memoryUsage().rss;
      const cpu0 = process.cpuUsage();
      const r = await attack(lab, `/evil?case=${c}`);
      const cpu = process.cpuUsage(cpu0);
      const grown = process.memoryUsage().rss - rss0;
      expectPluginFailed(r);
      expect(r.body).not.toContain('pwned');
      expect(await failures(lab, 'too_large', { plugin: 'evil' })).toBe(before + 1);
      expect(await failures(lab, 'cpu', { plugin: 'evil' })).toBe(cpuBefore);
      // building the 64 MiB string costs tens of ms; encoding and copying it cost far more
      expect((cpu.user + cpu.system) / 1000).toBeLessThan(600);
      // the string itself (64 MiB in the isolate's heap), not copies of it
      expect(grown / 2 ** 20).toBeLessThan(160);
      expect(String(faultLogs(lab).at(-1)?.msg)).toMatch(/exceeds|more than/);
      await expectStillServes(lab);
    });
  }
});
