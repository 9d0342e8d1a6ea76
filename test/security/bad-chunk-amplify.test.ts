// bad return: a bodyFilter that amplifies every chunk (1 MB out per chunk in). The bytes a
// bodyFilter chain sends in one response are capped (proxy.bodies.maxFilteredBodyBytes):
// past it the response is cut, the plugin faults as too_large, and the gateway's memory
// stays one chunk per request (backpressure holds while the client reads slowly).
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStillServes, failures, faultLogs, NEIGHBOURS, plugin, startLab, type Lab } from './helpers.ts';

const CAP = 16 * 2 ** 20;

const EVIL = plugin(`
const MB = 'x'.repeat(1024 * 1024);
export function bodyFilter(pdk) { pdk.response.setChunk(MB); }
`);

describe('bad return: a chunk-amplifying bodyFilter', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({
      evil: EVIL,
      cpuMs: 200,
      memoryMb: 64,
      yaml: `
proxy: { bodies: { maxFilteredBodyBytes: ${CAP} } }
tenants:
  - name: evil
    limits: { cpuMs: 200, memoryMb: 64 }
    breaker: { faults: 1000, windowMs: 1000, cooldownMs: 1 }
    services: [{ name: s, url: "UP" }]
    routes:
      - { name: evil, service: s, paths: [/evil] }
      - { name: calm, service: s, paths: [/calm] }
    plugins:
      - { name: evil, path: ./evil.ts, route: evil, limits: { cpuMs: 200, memoryMb: 64 } }
      - { name: benign, path: ./benign.ts, route: calm }${NEIGHBOURS}`,
      // an upstream body of many small chunks: each becomes 1 MB
      upstream: (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let i = 0;
        const tick = (): void => {
          if (i++ >= 200 || res.destroyed) return void res.end();
          res.write('chunk ' + i + '\n', () => setImmediate(tick));
        };
        tick();
      },
    });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('the response is cut at the cap, the plugin faults as too_large, the gateway is unharmed', async () => {
    const before = await failures(lab, 'too_large', { plugin: 'evil' });
    const rss0 = process.memoryUsage().rss;
    let n = 0;
    let cut = false;
    try {
      const r = await request(`${lab.url}/evil`);
      for await (const c of r.body as AsyncIterable<Buffer>) n += c.length;
    } catch {
      cut = true;
    }
    expect(cut || n < 200 * 2 ** 20).toBe(true);
    expect(n).toBeLessThanOrEqual(CAP);
    expect(await failures(lab, 'too_large', { plugin: 'evil' })).toBe(before + 1);
    expect(String(faultLogs(lab).at(-1)?.msg)).toMatch(/bodyFilter sent more than \d+ bytes in one response/);
    // at most a few chunks in flight, not the 200 MB the filter would have made
    expect((process.memoryUsage().rss - rss0) / 2 ** 20).toBeLessThan(100);
    await expectStillServes(lab);
  });
});
