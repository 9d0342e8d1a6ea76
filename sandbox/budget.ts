/**
 * Per-tenant CPU budget: a token bucket of milliseconds of sandbox time, refilled at
 * `msPerSecond` and holding at most one second's worth. Every call into the tenant's
 * isolate is charged its measured time (including an isolate rebuild). A tenant in debt is
 * throttled (fast 503 with Retry-After) until the bucket refills, so one tenant's runaway
 * plugins cannot take the event loop from the others.
 */
export class CpuBudget {
  readonly msPerSecond: number;
  #tokens: number;
  #last: number;

  constructor(msPerSecond: number) {
    this.msPerSecond = msPerSecond;
    this.#tokens = msPerSecond;
    this.#last = performance.now();
  }

  #refill(now: number): void {
    const t = this.#tokens + ((now - this.#last) * this.msPerSecond) / 1000;
    this.#tokens = t > this.msPerSecond ? this.msPerSecond : t;
    this.#last = now;
  }

  /** Whether the tenant may start a request now. */
  allow(now = performance.now()): boolean {
    if (this.#tokens > 0) return true;
    this.#refill(now);
    return this.#tokens > 0;
  }

  charge(ms: number, now = performance.now()): void {
    this.#refill(now);
    this.#tokens -= ms;
  }

  /** Whole seconds until the bucket is positive again (for Retry-After). */
  retryAfterSeconds(now = performance.now()): number {
    this.#refill(now);
    return this.#tokens > 0 ? 0 : Math.max(1, Math.ceil(-this.#tokens / this.msPerSecond));
  }
}
