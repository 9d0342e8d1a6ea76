// bad return: bodies over their caps handed to serviceRequest.setRawBody / setBody (8 MB)
// and response.setChunk (1 MB per chunk). Each cap is checked at the PDK call, inside the
// isolate, before anything is encoded or copied out: too_large, and catching the error does
// not save the call (nothing of it reaches the upstream or the client).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTPUT_CAPS } from '../../sandbox/limits.ts';
import { attack, expectPluginFailed, expectStillServes, failures, faultLogs, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
const big = (n) => 'x'.repeat(n);
const UP = ${OUTPUT_CAPS.maxRequestBodyBytes} + 1;
const CHUNK = ${OUTPUT_CAPS.maxChunkBytes} + 1;
export function access(pdk) {
  const c = pdk.request.getQueryArg('case');
  if (c === 'setRawBody') pdk.serviceRequest.setRawBody(big(UP));
  if (c === 'setRawBodyCaught') { try { pdk.serviceRequest.setRawBody(big(UP)); } catch (e) { pdk.serviceRequest.setRawBody('pwned'); } }
  if (c === 'setBodyObject') pdk.serviceRequest.setBody({ data: big(UP) });
  if (c === 'setBodyForm') pdk.serviceRequest.setBody({ data: big(UP) }, 'application/x-www-form-urlencoded');
  if (c === 'setBodyParts') { const o = {}; for (let i = 0; i < 5000; i++) o['k' + i] = 'v'; pdk.serviceRequest.setBody(o, 'multipart/form-data; boundary=b'); }
}
export function bodyFilter(pdk) {
  const c = pdk.request.getQueryArg('case');
  if (c === 'setChunk') pdk.response.setChunk(big(CHUNK));
  if (c === 'setChunkCaught') { try { pdk.response.setChunk(big(CHUNK)); } catch (e) { pdk.response.setChunk('pwned'); } }
}
`);

describe('bad return: request bodies and chunks over their caps', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 300, memoryMb: 128 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  for (const c of ['setRawBody', 'setRawBodyCaught', 'setBodyObject', 'setBodyForm', 'setBodyParts', 'setChunk', 'setChunkCaught']) {
    it(`${c}: too_large at the call; nothing of it goes out`, async () => {
      const before = await failures(lab, 'too_large', { plugin: 'evil' });
      const r = await attack(lab, `/evil?case=${c}`, { method: 'POST', body: 'client body' });
      expectPluginFailed(r);
      expect(r.body).not.toContain('pwned');
      expect(await failures(lab, 'too_large', { plugin: 'evil' })).toBe(before + 1);
      expect(String(faultLogs(lab).at(-1)?.msg)).toMatch(/exceeds|more than/);
      await expectStillServes(lab);
    });
  }
});
