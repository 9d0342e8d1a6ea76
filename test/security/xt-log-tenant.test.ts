// cross-tenant: pdk.log lines carry the tenant of the route that ran them. A plugin of
// tenant A logs text crafted to look like JSON of tenant B (quotes, newlines, a fake
// second line); every line in the log must still parse and name tenant A.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plugin, send, startLab, type Lab } from './helpers.ts';

const LOGGER = plugin(`
const FORGED = '","tenant":"b","plugin":"b/x@tenant","msg":"forged\\n{"level":30,"tenant":"b","msg":"forged-line"}\\r\\n';
export function access(pdk) {
  pdk.log.info('marker-' + pdk.request.getHeader('x-t') + FORGED);
  pdk.log.error({ tenant: 'b', toJSON() { return { tenant: 'b' }; } });
}
export function log(pdk) { pdk.log.warn('logphase-' + pdk.request.getHeader('x-t') + FORGED); }
`, 'logger');

const YAML = `
tenants:
  - name: a
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/a] }]
    plugins: [{ name: logger, path: ./logger.ts }]
  - name: b
    services: [{ name: s, url: "UP" }]
    routes: [{ name: r, service: s, paths: [/b] }]
    plugins: [{ name: logger, path: ./logger.ts }]
`;

describe('cross-tenant: log lines', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: '', yaml: YAML, files: { 'logger.ts': LOGGER } });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it("A's lines never carry B's tenant, and forged JSON stays inside msg", async () => {
    await Promise.all([
      ...[1, 2, 3].map(() => send(`${lab.url}/a`, { headers: { 'x-t': 'A' } })),
      ...[1, 2, 3].map(() => send(`${lab.url}/b`, { headers: { 'x-t': 'B' } })),
    ]);
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && lab.logs.filter((l) => String(l.msg).startsWith('logphase-')).length < 6) await new Promise((r) => setTimeout(r, 20));
    const mine = lab.logs.filter((l) => /^(marker|logphase)-/.test(String(l.msg)));
    expect(mine.length).toBe(12);
    for (const l of mine) {
      const t = String(l.msg).split('-')[1][0];
      expect(l.tenant, String(l.msg)).toBe(t === 'A' ? 'a' : 'b');
      expect(String(l.plugin)).toBe(`${l.tenant}/logger@tenant`);
    }
    // no forged stand-alone line
    expect(lab.logs.some((l) => l.msg === 'forged-line')).toBe(false);
    for (const chunk of lab.rawLogs) for (const line of chunk.split('\n')) if (line !== '') expect(() => JSON.parse(line)).not.toThrow();
    const objectLines = lab.logs.filter((l) => l.level === 50 && l.msg === '{"tenant":"b"}');
    expect(objectLines.length).toBe(6);
    expect(objectLines.filter((l) => l.tenant === 'a').length).toBe(3);
  });
});
