// bad body: crafted multipart/form-data handed to request.getBody(): thousands of parts, a
// huge boundary, an unterminated part, part headers that never end. Each must end as a clear
// error of the plugin (parsed inside its isolate, under its CPU limit), quickly, with the
// gateway and the neighbours unharmed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attack, expectPluginFailed, expectStillServes, failures, faultLogs, plugin, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export const reads = ['body'];
export function access(pdk) { pdk.response.setHeader('x-fields', String(Object.keys(pdk.request.getBody()).length)); }
`);

const part = (b: string, i: number) => `--${b}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nv\r\n`;

const CASES: Record<string, { ct: string; body: string; error: RegExp }> = {
  thousandsOfParts: { ct: 'multipart/form-data; boundary=b', body: Array.from({ length: 50_000 }, (_, i) => part('b', i)).join('') + '--b--\r\n', error: /more than 1000 multipart parts/ },
  hugeBoundary: { ct: `multipart/form-data; boundary=${'x'.repeat(10_000)}`, body: `--${'x'.repeat(10_000)}--\r\n`, error: /multipart boundary of 10000 characters/ },
  unterminated: { ct: 'multipart/form-data; boundary=b', body: part('b', 0) + '--b\r\nContent-Disposition: form-data; name="open"\r\n\r\n' + 'y'.repeat(4 * 2 ** 20), error: /not terminated by the boundary/ },
  endlessHeaders: { ct: 'multipart/form-data; boundary=b', body: '--b\r\nX: ' + 'h'.repeat(2 ** 20), error: /no end of headers/ },
  noBoundary: { ct: 'multipart/form-data', body: 'whatever', error: /without a boundary parameter/ },
  noName: { ct: 'multipart/form-data; boundary=b', body: '--b\r\nContent-Type: text/plain\r\n\r\nv\r\n--b--', error: /has no Content-Disposition name/ },
};

describe('bad body: crafted multipart for request.getBody', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 200, memoryMb: 64 });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('a well-formed body parses', async () => {
    const r = await attack(lab, '/evil', { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=b' }, body: part('b', 1) + part('b', 2) + '--b--\r\n' });
    expect(r.status).toBe(200);
    expect(r.headers['x-fields']).toBe('2');
  });

  for (const [name, c] of Object.entries(CASES)) {
    it(`${name}: a clear error of the plugin, within its CPU limit; nothing else harmed`, async () => {
      const threw = await failures(lab, 'threw', { plugin: 'evil' });
      const cpu = await failures(lab, 'cpu', { plugin: 'evil' });
      const r = await attack(lab, '/evil', { method: 'POST', headers: { 'content-type': c.ct }, body: c.body });
      expectPluginFailed(r);
      expect(await failures(lab, 'threw', { plugin: 'evil' })).toBe(threw + 1);
      expect(await failures(lab, 'cpu', { plugin: 'evil' })).toBe(cpu);
      expect(String(faultLogs(lab).at(-1)?.msg)).toMatch(c.error);
      expect(String(faultLogs(lab).at(-1)?.msg)).toMatch(/request\.getBody/);
      await expectStillServes(lab);
    });
  }
});
