// cpu: an infinite loop in the log phase, which runs after the response in one batched
// call per tenant. The client's response is already sent; the kill must not take other
// tenants' log batches with it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectStillServes, failures, plugin, send, startLab, type Lab } from './helpers.ts';

const EVIL = plugin(`
export function access(pdk) { pdk.response.setHeader('x-evil', '1'); }
export function log(pdk) { for (;;) {} }
`);
const LOGGER = plugin(`
export function access(pdk) { pdk.response.setHeader('x-benign', 'ok'); }
export function log(pdk) { pdk.log.info('good-log-line ' + pdk.response.getStatus()); }
`, 'benign', 10);

describe('cpu: a loop in the log phase', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ evil: EVIL, cpuMs: 30, files: { 'benign.ts': LOGGER } });
  });
  afterAll(async () => {
    await lab.stop();
  });

  it('the response is unaffected, the kill is counted as cpu, the neighbour\'s log lines still arrive', async () => {
    const [e, g] = await Promise.all([send(`${lab.url}/evil`), send(`${lab.url}/good`)]);
    expect(e.status).toBe(200);
    expect(e.headers['x-evil']).toBe('1');
    expect(g.status).toBe(200);
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && ((await failures(lab, 'cpu', { plugin: 'evil' })) < 1 || !lab.logs.some((l) => l.tenant === 'good' && l.msg === 'good-log-line 200'))) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await failures(lab, 'cpu', { plugin: 'evil' })).toBe(1);
    const good = lab.logs.filter((l) => l.msg === 'good-log-line 200');
    expect(good.length).toBeGreaterThanOrEqual(1);
    for (const l of good) expect(l.tenant).toBe('good');
    await expectStillServes(lab);
  });
});
