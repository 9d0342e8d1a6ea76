import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InstanceGate } from '../../sandbox/breaker.ts';
import { echoHandler, send, startGateway, startUpstream, type TestGateway, type Upstream } from '../helpers/gateway.ts';

describe('InstanceGate', () => {
  it('trips after N faults in the window, half-opens after the cool-down, closes on success', () => {
    const g = new InstanceGate(2, { faults: 3, windowMs: 1000, cooldownMs: 500 });
    expect(g.blocking).toBe(false);
    expect(g.fault(0, 'threw', 0)).toBe(false);
    expect(g.fault(0, 'threw', 100)).toBe(false);
    expect(g.fault(0, 'threw', 200)).toBe(true);
    expect(g.blocking).toBe(true);
    expect(g.verdict(0, 300)).toBe('breaker_open');
    expect(g.verdict(1, 300)).toBe('run');
    expect(g.verdict(0, 800)).toBe('run'); // cool-down over: one trial
    expect(g.state(0)).toBe('half_open');
    g.success(0);
    expect(g.state(0)).toBe('closed');
    expect(g.blocking).toBe(false);
  });

  it('forgets faults older than the window', () => {
    const g = new InstanceGate(1, { faults: 2, windowMs: 100, cooldownMs: 500 });
    g.fault(0, 'cpu', 0);
    expect(g.fault(0, 'cpu', 500)).toBe(false);
    expect(g.state(0)).toBe('closed');
  });

  it('reopens when the half-open trial faults, and quarantine is permanent', () => {
    const g = new InstanceGate(1, { faults: 1, windowMs: 100, cooldownMs: 100 });
    g.fault(0, 'threw', 0);
    expect(g.verdict(0, 150)).toBe('run');
    expect(g.fault(0, 'threw', 160)).toBe(true);
    expect(g.verdict(0, 200)).toBe('breaker_open');
    g.quarantine(0);
    expect(g.verdict(0, 10_000)).toBe('quarantined');
    g.success(0);
    expect(g.state(0)).toBe('quarantined');
  });
});

const FLAKY = `
export const name = 'flaky';
export const version = '1.0.0';
export const priority = 10;
export function access(pdk) { if (pdk.request.getHeader('x-fail') === '1') throw new Error('asked to fail'); pdk.response.setHeader('x-flaky', 'ran'); }
`;

describe('circuit breaker through the gateway', () => {
  let up: Upstream;
  let gw: TestGateway;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await startGateway(`
sandbox: { breaker: { faults: 3, windowMs: 5000, cooldownMs: 300 } }
tenants:
  - name: t
    services: [{ name: s, url: "${up.url}" }]
    routes:
      - { name: closed, service: s, paths: [/closed] }
      - { name: open, service: s, paths: [/open] }
    plugins:
      - { name: flaky, path: ./flaky.ts, route: closed }
      - { name: flaky, path: ./flaky.ts, route: open, failOpen: true }
`, { 'flaky.ts': FLAKY });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('fails fast with 503 while open, then lets a trial through and closes', async () => {
    for (let i = 0; i < 3; i++) expect((await send(`${gw.url}/closed`, { headers: { 'x-fail': '1' } })).status).toBe(500);
    const fast = await send(`${gw.url}/closed`);
    expect(fast.status).toBe(503);
    expect(fast.json().error.code).toBe('ISG_ERR_PLUGIN_UNAVAILABLE');
    expect(fast.json().error.id).toMatch(/^[0-9a-f]{16}$/);
    const status = await (await fetch(`${gw.adminUrl}/status`)).json();
    expect(status.unhealthyInstances).toEqual([{ tenant: 't', instance: 't/flaky@route:closed', state: 'open' }]);
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/isogate_plugin_instance_unhealthy\{tenant="t",instance="t\/flaky@route:closed",state="open"\} 1/);
    expect(metrics).toMatch(/isogate_plugin_failures_total\{tenant="t",plugin="flaky",reason="breaker_open"\} 1/);
    await new Promise((r) => setTimeout(r, 350));
    const trial = await send(`${gw.url}/closed`);
    expect(trial.status).toBe(200);
    expect(trial.headers['x-flaky']).toBe('ran');
    const after = await (await fetch(`${gw.adminUrl}/status`)).json();
    expect(after.unhealthyInstances).toEqual([]);
  });

  it('skips a fail-open instance while its breaker is open', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await send(`${gw.url}/open`, { headers: { 'x-fail': '1' } });
      expect(r.status).toBe(200); // fail-open: the fault is skipped
      expect(r.headers['x-flaky']).toBeUndefined();
    }
    const r = await send(`${gw.url}/open`);
    expect(r.status).toBe(200);
    expect(r.headers['x-flaky']).toBeUndefined(); // not run at all while open
  });
});
