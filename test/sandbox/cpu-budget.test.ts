import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuArbiter, CpuBudget } from '../../sandbox/budget.ts';
import { captureLogger, echoHandler, send, startGateway, startUpstream, waitFor, type LogLine, type TestGateway, type Upstream } from '../helpers/gateway.ts';

// The hard cap (cpuMaxMs, and its deprecated alias cpuBudgetMs): a token bucket that
// throttles even an idle worker. The weighted share under contention is tested in
// cpu-fair-share.test.ts.
describe('CpuBudget cap', () => {
  it('allows until the tokens are spent, then refills over time', () => {
    // weight 100, cap 100 ms/s, an arbiter that never decides shares (no contention)
    const b = new CpuBudget(100, 100, new CpuArbiter({ auto: false }));
    const t = performance.now();
    expect(b.allow(t)).toBe(true);
    b.charge(150, t);
    expect(b.allow(t)).toBe(false);
    expect(b.retryAfterSeconds(t)).toBe(1);
    expect(b.allow(t + 600)).toBe(true); // 60 ms refilled, 50 owed: positive again
  });

  it('Retry-After covers the cap\'s debt even when the fair share is spent too', () => {
    const arbiter = new CpuArbiter({ auto: false });
    const b = new CpuBudget(100, 100, arbiter);
    const t = performance.now();
    b.allow(t); // joins the arbiter's interval
    b.setQuota(arbiter.epoch, 10); // a contended interval: 10 ms of share
    b.charge(450, t); // share spent, and the cap 350 ms in debt: 3.5 s of refill at 100 ms/s
    expect(b.allow(t)).toBe(false);
    expect(b.retryAfterSeconds(t)).toBe(4);
  });

  it('without a cap, an uncontended tenant is never throttled', () => {
    const b = new CpuBudget(100, null, new CpuArbiter({ auto: false }));
    const t = performance.now();
    b.charge(10_000, t);
    expect(b.allow(t)).toBe(true);
  });
});

// Each request of "busy" burns ~30 ms of sandbox time; its cap is 50 ms per second (the
// cap throttles whether or not the worker is busy: this gateway is otherwise idle).
const BURNER = `
export const name = 'burner';
export const version = '1.0.0';
export const priority = 1;
export function access() { const end = Date.now() + 30; while (Date.now() < end) {} }
export function log(pdk) { pdk.log.info('burner log phase'); }
`;

describe('per-tenant CPU cap', () => {
  let up: Upstream;
  let gw: TestGateway;
  let lines: LogLine[];
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    const captured = captureLogger('info');
    lines = captured.lines;
    gw = await startGateway(`
tenants:
  - name: busy
    limits: { cpuMaxMs: 50, cpuMs: 100 }
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/busy] }]
    plugins: [{ name: burner, path: ./burner.ts }]
  - name: calm
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/calm] }]
    plugins: [{ name: correlation-id }]
`, { 'burner.ts': BURNER }, { logger: captured.logger });
  });
  afterAll(async () => {
    await gw.stop();
    await up.close();
  });

  it('throttles the tenant over its share with 503 and Retry-After, and not the others', async () => {
    const statuses: number[] = [];
    let retryAfter: string | string[] | undefined;
    for (let i = 0; i < 6; i++) {
      const r = await send(`${gw.url}/busy`);
      statuses.push(r.status);
      if (r.status === 503) {
        expect(r.json().error.code).toBe('ISG_ERR_TENANT_THROTTLED');
        expect(r.headers['x-isogate-error-id']).toBe(r.json().error.id);
        retryAfter = r.headers['retry-after'];
      }
      expect((await send(`${gw.url}/calm`)).status).toBe(200);
    }
    expect(statuses[0]).toBe(200);
    expect(statuses).toContain(503);
    // A throttled request runs none of the tenant's plugins, its log phase included: the
    // log lines are those of the requests served (the log phase runs after the response).
    const served = statuses.filter((s) => s === 200).length;
    const logged = () => lines.filter((l) => l.phase === 'log' && String(l.msg).includes('burner log phase')).length;
    await waitFor(() => logged() >= served, 10_000, 'the log phase of the requests served');
    await new Promise((r) => setTimeout(r, 100));
    expect(logged()).toBe(served);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/isogate_tenant_throttled_total\{tenant="busy"\} [1-9]/);
    expect(metrics).not.toMatch(/isogate_tenant_throttled_total\{tenant="calm"\}/);
    // The budget refills: the tenant is served again. (Not judged after a fixed second: a call
    // is charged isolated-vm's cpuTime, which on a loaded machine runs with the wall clock,
    // and the first call also pays the module's loading; the debt can then take two seconds
    // or more to refill. A refused request costs nothing, so polling does not delay it.)
    await waitFor(async () => {
      const r = await send(`${gw.url}/busy`);
      if (r.status === 503) await new Promise((res) => setTimeout(res, 100));
      return r.status === 200;
    }, 10_000, 'the busy tenant to be served again');
  });
});
