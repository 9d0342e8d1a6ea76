// The CPU share of a tenant is work conserving (cgroup's cpu.weight): nobody is throttled
// while the worker has CPU to spare; under saturation a tenant above its weighted fair
// share is. The hard cap (cpuMaxMs) is tested in cpu-budget.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import { compileConfig } from '../../core/config/compile.ts';
import { loadConfigFile } from '../../core/config/load.ts';
import { ConfigError } from '../../core/errors.ts';
import { CpuArbiter, CpuBudget, fairShares } from '../../sandbox/budget.ts';
import { echoHandler, startUpstream, writeConfig, type Upstream } from '../helpers/gateway.ts';
import { spawnGateway, type GatewayProcess } from '../helpers/process.ts';

const IDLE = { utilization: 0.3, cpuMs: 30, lagMs: 1 };
const BUSY = { utilization: 1, cpuMs: 100, lagMs: 5 };

/** Runs `n` requests of `ms` sandbox time each through `b`; returns how many were admitted. */
function load(b: CpuBudget, n: number, ms: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    if (!b.allow()) continue;
    ok++;
    b.charge(ms);
  }
  return ok;
}

describe('fairShares (weighted max-min)', () => {
  it('gives the modest what they use and splits the rest by weight', () => {
    expect(fairShares(100, [10, Infinity, Infinity], [100, 100, 300])).toEqual([Infinity, 22.5, 67.5]);
    expect(fairShares(100, [Infinity, Infinity], [100, 300])).toEqual([25, 75]);
    // demands that fit are not limited; one tenant alone is never limited
    expect(fairShares(100, [30, 40], [100, 100])).toEqual([Infinity, Infinity]);
    expect(fairShares(100, [Infinity], [100])).toEqual([Infinity]);
  });
});

describe('CpuArbiter', () => {
  it('throttles nobody while the worker is not saturated, however much a tenant uses', () => {
    const arb = new CpuArbiter({ auto: false });
    const a = new CpuBudget(100, null, arb);
    const b = new CpuBudget(100, null, arb);
    for (let round = 0; round < 5; round++) {
      expect(load(a, 100, 5)).toBe(100); // 500 ms of sandbox time in a 100 ms interval
      expect(load(b, 10, 1)).toBe(10);
      arb.tick(IDLE);
    }
    expect(arb.saturated).toBe(false);
  });

  it('never throttles a lone tenant, even on a saturated worker', () => {
    const arb = new CpuArbiter({ auto: false });
    const a = new CpuBudget(100, null, arb);
    for (let round = 0; round < 5; round++) {
      expect(load(a, 50, 2)).toBe(50);
      arb.tick(BUSY);
    }
    expect(arb.saturated).toBe(true);
  });

  it('under saturation, splits the worker by weight between tenants that both want more', () => {
    const arb = new CpuArbiter({ auto: false });
    const light = new CpuBudget(100, null, arb);
    const heavy = new CpuBudget(300, null, arb);
    const got = { light: 0, heavy: 0 };
    // A saturated loop with 120 ms of CPU per interval, taking 2 ms requests of the two
    // tenants in turn (both always have one waiting) until the interval is spent.
    const busy = { ...BUSY, cpuMs: 120 };
    for (let round = 0; round < 40; round++) {
      let l = 0;
      let h = 0;
      for (let spent = 0, turns = 0; spent < 120 && turns < 1000; turns++) {
        const b = turns % 2 === 0 ? light : heavy;
        if (!b.allow()) continue;
        b.charge(2);
        spent += 2;
        if (b === light) l++;
        else h++;
      }
      if (round >= 10) {
        got.light += l;
        got.heavy += h;
      }
      arb.tick(busy);
    }
    // 1:3 by weight, once the shares have settled (a tolerance for the quota rounding).
    const ratio = got.heavy / got.light;
    expect(ratio).toBeGreaterThan(2.5);
    expect(ratio).toBeLessThan(3.5);
    // The contention ends: the next interval lifts every share.
    arb.tick(IDLE);
    arb.tick(IDLE);
    expect(load(light, 60, 2)).toBe(60);
  });

  it('does not cut a tenant that stays within its share when a neighbour is modest', () => {
    const arb = new CpuArbiter({ auto: false });
    const victim = new CpuBudget(100, null, arb);
    const modest = new CpuBudget(100, null, arb);
    for (let round = 0; round < 20; round++) {
      // The victim fills most of the saturated loop with cheap requests; the neighbour uses little.
      expect(load(victim, 300, 0.05)).toBe(300);
      expect(load(modest, 10, 0.05)).toBe(10);
      arb.tick(BUSY);
    }
  });
});

describe('config: cpuWeight, cpuMaxMs, and cpuBudgetMs as the deprecated alias of cpuMaxMs', () => {
  const yaml = (limits: string, operator = '') => `${operator}
tenants:
  - name: t1
    limits: ${limits}
    services: [{ name: s, url: "http://127.0.0.1:9" }]
    routes: [{ name: r, service: s, paths: [/r] }]
`;
  async function program(y: string) {
    const file = writeConfig(y);
    return (await compileConfig(await loadConfigFile(file), file)).programs.get('t1')!;
  }

  it('defaults to weight 100 and no cap', async () => {
    const p = await program(yaml('{}'));
    expect([p.cpuWeight, p.cpuMaxMs]).toEqual([100, null]);
  });

  it('reads cpuWeight and cpuMaxMs, and cpuBudgetMs as the cap', async () => {
    expect(await program(yaml('{ cpuWeight: 400, cpuMaxMs: 250 }'))).toMatchObject({ cpuWeight: 400, cpuMaxMs: 250 });
    expect(await program(yaml('{ cpuBudgetMs: 300 }'))).toMatchObject({ cpuWeight: 100, cpuMaxMs: 300 });
  });

  it('caps tenants without a cap at the ceiling, and rejects values above the ceilings', async () => {
    expect(await program(yaml('{}', 'limits: { ceilings: { cpuMaxMs: 500 } }'))).toMatchObject({ cpuMaxMs: 500 });
    const file = writeConfig(yaml('{ cpuMaxMs: 600, cpuWeight: 900, cpuBudgetMs: 100 }', 'limits: { ceilings: { cpuMaxMs: 500, cpuWeight: 800 } }'));
    const err = await compileConfig(await loadConfigFile(file), file).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).details).toEqual(expect.arrayContaining([
      'tenants[0].limits.cpuWeight: 900 is above the ceiling 800',
      'tenants[0].limits.cpuBudgetMs: deprecated alias of cpuMaxMs; give only cpuMaxMs',
      'tenants[0].limits.cpuMaxMs: 600 is above the ceiling 500',
    ]));
  });
});

// A plugin that needs about 2 ms of CPU per request: Date.now() has to move on twice.
const TWO_MS = `
export const name = 'two-ms';
export const version = '1.0.0';
export const priority = 1;
export function access() { const t = Date.now(); let n = 0; while (Date.now() < t + 2) n++; }
`;

/**
 * Closed-loop load on `path` over `connections` for `ms`; counts answers by status. A
 * connection that is throttled waits `backoffMs` before its next request, as a client told
 * Retry-After does (0: retries at once).
 */
async function hammer(url: string, path: string, connections: number, ms: number, backoffMs = 0): Promise<Map<number | string, number>> {
  const pool = new Pool(url, { connections });
  const counts = new Map<number | string, number>();
  const end = Date.now() + ms;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (Date.now() < end) {
      let key: number | string;
      try {
        const r = await pool.request({ path, method: 'GET' });
        const body = await r.body.text();
        key = r.statusCode === 200 ? 200 : `${r.statusCode} ${/"code":"(\w+)"/.exec(body)?.[1] ?? ''}`;
      } catch (err) {
        key = (err as Error).name;
      }
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (backoffMs > 0 && key !== 200) await new Promise((r) => setTimeout(r, backoffMs));
    }
  }));
  await pool.close();
  return counts;
}

// The same plugin behind a tenant capped at 100 ms/s (half the old 200 ms/s default),
// loaded the same way right after: it must be throttled, which proves the load asked for
// more CPU than a hard budget gives, whatever the speed of the machine running the test.
describe('a single tenant with a 2 ms plugin on an otherwise idle worker', () => {
  let up: Upstream;
  let gw: GatewayProcess;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 0
log: { level: warn }
sandbox: { breaker: { faults: 100000 } }
tenants:
  - name: solo
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/solo] }]
    plugins: [{ name: two-ms, path: ./two-ms.ts, limits: { cpuMs: 1000 } }]
  - name: capped
    limits: { cpuMaxMs: 100 }
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/capped] }]
    plugins: [{ name: two-ms, path: ./two-ms.ts, limits: { cpuMs: 1000 } }]
`, { 'two-ms.ts': TWO_MS });
  }, 90_000); // spawnGateway alone may take 60 s on a loaded machine
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('is never throttled by default, at a load that a hard budget throttles', async () => {
    const solo = await hammer(gw.url, '/solo', 8, 3000);
    const capped = await hammer(gw.url, '/capped', 8, 3000);
    console.info(`[cpu-fair-share] solo: ${JSON.stringify([...solo])}; capped at 100 ms/s: ${JSON.stringify([...capped])}`);
    expect([...solo.keys()]).toEqual([200]);
    expect(capped.get('503 ISG_ERR_TENANT_THROTTLED') ?? 0).toBeGreaterThan(0);
    expect(await gw.metrics()).not.toMatch(/isogate_tenant_throttled_total\{tenant="solo"\}/);
  }, 30_000);
});

describe('two tenants on a saturated worker', () => {
  let up: Upstream;
  let gw: GatewayProcess;
  beforeAll(async () => {
    up = await startUpstream(echoHandler);
    gw = await spawnGateway(`
listen: { host: 127.0.0.1, port: \${PORT} }
admin: { host: 127.0.0.1, port: \${ADMIN_PORT} }
workers: 0
log: { level: warn }
sandbox: { breaker: { faults: 100000 } }
tenants:
  - name: basic
    limits: { cpuWeight: 100 }
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/basic] }]
    plugins: [{ name: two-ms, path: ./two-ms.ts, limits: { cpuMs: 1000 } }]
  - name: premium
    limits: { cpuWeight: 400 }
    services: [{ name: s, url: "${up.url}" }]
    routes: [{ name: r, service: s, paths: [/premium] }]
    plugins: [{ name: two-ms, path: ./two-ms.ts, limits: { cpuMs: 1000 } }]
`, { 'two-ms.ts': TWO_MS });
  }, 90_000); // spawnGateway alone may take 60 s on a loaded machine
  afterAll(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('share it by weight: the heavier weight gets several times the answers, the lighter is throttled with 503', async () => {
    // Same load, same plugin: without weights each would get about half (measured 0.9-1.2x
    // before the weights took effect). In theory 4x. The clients back off 50 ms after a 503
    // (a twentieth of Retry-After). Measured 2.5-3.6x on a loaded machine, 1.5-1.8x at load
    // 20-25 on two cores (the client loops here starve too), 0.9x with the weights ignored.
    // Who is refused says it more steadily: basic 52-90 refusals to premium's 6-8 at load
    // 20-25, 39 to 39 with the weights ignored. Clients that retry at once turn the lighter tenant's
    // refusals into a flood of requests whose loop time no share accounts for (measured
    // 1.2-1.8x on a loaded machine that way).
    const [basic, premium] = await Promise.all([hammer(gw.url, '/basic', 8, 6000, 50), hammer(gw.url, '/premium', 8, 6000, 50)]);
    const b = basic.get(200) ?? 0;
    const p = premium.get(200) ?? 0;
    console.info(`[cpu-fair-share] basic (weight 100): ${JSON.stringify([...basic])}; premium (weight 400): ${JSON.stringify([...premium])}`);
    expect(p / b).toBeGreaterThan(1.25);
    const refused = basic.get('503 ISG_ERR_TENANT_THROTTLED') ?? 0;
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(3 * (premium.get('503 ISG_ERR_TENANT_THROTTLED') ?? 0));
    expect([...basic.keys(), ...premium.keys()].every((k) => k === 200 || k === '503 ISG_ERR_TENANT_THROTTLED')).toBe(true);
  }, 30_000);

  it('keep the weights when the clients retry at once: the throttled answers are paced', async () => {
    // Ignoring Retry-After used to turn the lighter tenant's refusals into a flood of fast
    // 503s whose loop time no share accounts for (measured 1.2-1.8x). A shed answer on a
    // saturated worker is now held up to the arbiter's interval, 100 ms (core/shed.ts): one
    // per connection per 100 ms. Measured 2.9x with 319 refusals on a machine at load 15.
    const CONNS = 8;
    const [basic, premium] = await Promise.all([hammer(gw.url, '/basic', CONNS, 6000), hammer(gw.url, '/premium', CONNS, 6000)]);
    const b = basic.get(200) ?? 0;
    const p = premium.get(200) ?? 0;
    const refused = basic.get('503 ISG_ERR_TENANT_THROTTLED') ?? 0;
    console.info(`[cpu-fair-share] retrying at once: basic (weight 100): ${JSON.stringify([...basic])}; premium (weight 400): ${JSON.stringify([...premium])}`);
    expect(p / b).toBeGreaterThan(1.25); // see the test above
    expect(refused).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(3 * (premium.get('503 ISG_ERR_TENANT_THROTTLED') ?? 0));
    expect(refused).toBeLessThanOrEqual(CONNS * (6 * 12 + 2));
  }, 30_000);
});
