import { performance } from 'node:perf_hooks';

/**
 * Per-tenant CPU share of a worker, after Linux's CPU controller (cgroup v2): a weight
 * (`cpu.weight`, work conserving) and an optional cap (`cpu.max`).
 *
 * - Weight: while the worker has CPU to spare, every tenant may use as much as it wants.
 *   Only when the worker is saturated (its event loop busy, or late) is a tenant that uses
 *   more than its weighted fair share throttled down to it, for the next interval. The
 *   shares are decided once per interval (CpuArbiter), never per request.
 * - Cap (`cpuMaxMs`, optional, for operators who sell tiers): a token bucket of sandbox
 *   milliseconds refilled at `maxMs` per second, holding at most one second's worth;
 *   throttles whatever the rest of the worker does.
 *
 * A throttled request gets a fast 503 with Retry-After. Per request the gateway calls
 * allow() (a few field reads) and charge() (a few additions).
 */
export class CpuBudget {
  /** cgroup's `cpu.weight`: 1-10000, 100 by default. */
  readonly weight: number;
  /** Hard cap in sandbox ms per second, or null: none. */
  readonly maxMs: number | null;
  #arbiter: CpuArbiter;
  /** Cap bucket: Infinity when there is no cap. */
  #tokens: number;
  #last: number;
  /** Fair-share quota of sandbox ms left in this interval: Infinity unless throttled. */
  #fair = Infinity;
  /** The arbiter interval this budget takes part in, and the one its quota was set for. */
  #epoch = -1;
  #quotaEpoch = -1;
  // This interval's use.
  #refusedFair = 0;
  #usedMs = 0;

  constructor(weight = 100, maxMs: number | null = null, arbiter: CpuArbiter = ARBITER) {
    this.weight = weight;
    this.maxMs = maxMs;
    this.#arbiter = arbiter;
    this.#tokens = maxMs ?? Infinity;
    this.#last = performance.now();
  }

  #join(): void {
    const a = this.#arbiter;
    this.#epoch = a.epoch;
    // A quota is for the interval right after the one it was measured in; a tenant that sat
    // an interval out starts unthrottled.
    if (this.#quotaEpoch !== a.epoch) this.#fair = Infinity;
    a.join(this);
  }

  #refill(now: number): void {
    const max = this.maxMs!;
    const t = this.#tokens + ((now - this.#last) * max) / 1000;
    this.#tokens = t > max ? max : t;
    this.#last = now;
  }

  /** Whether the tenant may start a request now. */
  allow(now?: number): boolean {
    if (this.#epoch !== this.#arbiter.epoch) this.#join();
    if (this.#fair <= 0) {
      this.#refusedFair++;
      return false;
    }
    if (this.#tokens <= 0) {
      this.#refill(now ?? performance.now());
      if (this.#tokens <= 0) return false;
    }
    return true;
  }

  /** Charges `ms` of sandbox time (a call, a log batch, an isolate rebuild). */
  charge(ms: number, now?: number): void {
    if (this.#epoch !== this.#arbiter.epoch) this.#join();
    this.#usedMs += ms;
    this.#fair -= ms;
    if (this.maxMs !== null) {
      this.#refill(now ?? performance.now());
      this.#tokens -= ms;
    }
  }

  /** Whole seconds until the tenant may come back (for Retry-After). */
  retryAfterSeconds(now?: number): number {
    // A spent share comes back within one arbiter interval; a spent cap when its debt has refilled.
    const share = this.#fair <= 0 ? 1 : 0;
    if (this.maxMs === null) return Math.max(share, 1);
    this.#refill(now ?? performance.now());
    return Math.max(share, this.#tokens > 0 ? 0 : Math.ceil(-this.#tokens / this.maxMs));
  }

  /** For the arbiter: this interval's use (refusals by share, sandbox ms), and the counters reset. */
  takeInterval(): { refused: number; usedMs: number } {
    const out = { refused: this.#refusedFair, usedMs: this.#usedMs };
    this.#refusedFair = 0;
    this.#usedMs = 0;
    return out;
  }

  /** For the arbiter: the quota (sandbox ms) for interval `epoch`; Infinity lifts it. */
  setQuota(epoch: number, quotaMs: number): void {
    this.#quotaEpoch = epoch;
    // A call that ran past the quota is owed from the next one.
    const debt = this.#fair < 0 && Number.isFinite(quotaMs) ? this.#fair : 0;
    this.#fair = quotaMs + debt;
  }
}

/** One interval of the event loop, as the arbiter measures it. */
export type LoopSample = {
  /** Share of the interval the loop was busy (performance.eventLoopUtilization). */
  utilization: number;
  /** CPU time the loop's thread got in the interval, in ms: what the tenants share (on a busy machine, less than the interval). */
  cpuMs: number;
  /** How late the arbiter's own timer fired (event-loop lag). */
  lagMs: number;
};

/** The worker counts as saturated when its loop was this busy over an interval... */
export const SATURATED_UTILIZATION = 0.9;
/** ...or the arbiter's timer fired this late. */
export const SATURATED_LAG_MS = 50;
const INTERVAL_MS = 100;
/** How much more than it used a tenant that was not refused is assumed to want. */
const HEADROOM = 2;
/** A share is applied to a tenant never refused only if it cuts its use below this fraction. */
const MIN_CUT = 0.95;

/**
 * Decides the tenants' fair shares of one worker, once per interval (100 ms): measures the
 * event loop (utilisation, lag), and when it was saturated (in this interval or the one
 * before, so that a share is not lifted the moment it works) gives every tenant that ran
 * its weighted max-min fair share of the CPU time the loop's thread got in the interval
 * (process.threadCpuUsage: on a machine busy with other work, less than the interval),
 * for its sandbox calls. Tenants below their share keep all they use (and room to grow);
 * what they leave goes to the others by weight; a tenant refused in the last interval
 * counts as wanting more than it got. The
 * worker's own work for a request (HTTP, proxying) is nobody's share: a tenant of cheap
 * plugins and many requests uses little of its share, however busy it keeps the loop.
 * The timer runs only while tenants are active.
 */
export class CpuArbiter {
  epoch = 0;
  /** The last interval's verdict (for tests). */
  saturated = false;
  readonly intervalMs: number;
  #active: CpuBudget[] = [];
  #timer: NodeJS.Timeout | null = null;
  #auto: boolean;
  #elu = performance.eventLoopUtilization();
  #cpu = process.threadCpuUsage();
  #expected = 0;
  #wasSaturated = false;

  /** `auto: false`: no timer; the owner calls tick() (tests). */
  constructor(options: { intervalMs?: number; auto?: boolean } = {}) {
    this.intervalMs = options.intervalMs ?? INTERVAL_MS;
    this.#auto = options.auto ?? true;
  }

  join(b: CpuBudget): void {
    this.#active.push(b);
    if (this.#auto && this.#timer === null) this.#schedule(true);
  }

  #schedule(first: boolean): void {
    if (first) {
      this.#elu = performance.eventLoopUtilization();
      this.#cpu = process.threadCpuUsage();
    }
    this.#expected = performance.now() + this.intervalMs;
    this.#timer = setTimeout(this.#onTimer, this.intervalMs);
    this.#timer.unref();
  }

  #onTimer = (): void => {
    this.#timer = null;
    const now = performance.now();
    const cur = performance.eventLoopUtilization();
    const d = performance.eventLoopUtilization(cur, this.#elu);
    this.#elu = cur;
    const cpu = process.threadCpuUsage();
    const cpuMs = (cpu.user - this.#cpu.user + cpu.system - this.#cpu.system) / 1000;
    this.#cpu = cpu;
    const ran = this.tick({ utilization: d.utilization, cpuMs, lagMs: now - this.#expected });
    if (ran) this.#schedule(false);
  };

  /** Ends an interval: sets every active tenant's quota for the next one. False when no tenant was active. */
  tick(sample: LoopSample): boolean {
    const list = this.#active;
    this.#active = [];
    const epoch = ++this.epoch;
    if (list.length === 0) {
      this.saturated = false;
      this.#wasSaturated = false;
      return false;
    }
    const now = sample.utilization >= SATURATED_UTILIZATION || sample.lagMs >= SATURATED_LAG_MS;
    const contended = now || this.#wasSaturated;
    this.saturated = now;
    this.#wasSaturated = now;
    const use = list.map((b) => b.takeInterval());
    if (!contended) {
      for (const b of list) b.setQuota(epoch, Infinity);
      return true;
    }
    // A tenant refused by its share wanted more than it got; any other may want more than
    // it managed to use in a saturated loop (its requests wait too), and HEADROOM of that
    // is kept for it (never more than its fair share: water-filling caps it).
    const demands = use.map((u) => (u.refused > 0 ? Infinity : u.usedMs * HEADROOM));
    // isolated-vm's cpuTime, which the calls are charged, can run ahead of the thread's CPU
    // clock on a machine busy with other work: share whichever is larger.
    let used = 0;
    for (const u of use) used += u.usedMs;
    const quotas = fairShares(Math.max(sample.cpuMs, used), demands, list.map((b) => b.weight));
    for (let i = 0; i < quotas.length; i++) {
      // Refusing a tenant that was never refused, for less than 5 % of what it used, is
      // measurement noise more than fairness: a fast 503 costs it more than the wait would.
      // (The others' quotas were computed with its share, so they keep their room.)
      if (use[i].refused === 0 && quotas[i] >= use[i].usedMs * MIN_CUT) quotas[i] = Infinity;
    }
    list.forEach((b, i) => b.setQuota(epoch, quotas[i]));
    return true;
  }
}

/**
 * Weighted max-min fair shares of `pool`: each gets at most its demand; what the modest
 * leave is shared by weight among the rest. Returns per entry its quota, or Infinity when
 * its demand fits, or it gets the whole pool anyway (it is not limited).
 *
 * @example fairShares(100, [10, Infinity, Infinity], [100, 100, 300]) // [Infinity, 22.5, 67.5]
 */
export function fairShares(pool: number, demands: readonly number[], weights: readonly number[]): number[] {
  const ratio = demands.map((d, i) => d / weights[i]);
  const order = demands.map((_, i) => i).sort((a, b) => (ratio[a] === ratio[b] ? 0 : ratio[a] < ratio[b] ? -1 : 1));
  const out = new Array<number>(demands.length);
  let left = pool;
  let wsum = 0;
  for (const w of weights) wsum += w;
  for (const i of order) {
    const share = (left * weights[i]) / wsum;
    if (demands[i] <= share || share >= pool) {
      out[i] = Infinity;
      left -= demands[i];
    } else {
      out[i] = share;
      left -= share;
    }
    wsum -= weights[i];
  }
  return out;
}

/** The worker's arbiter: every tenant budget of this process shares it. */
export const ARBITER = new CpuArbiter();
