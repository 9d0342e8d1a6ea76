import type { FaultOutcome } from './outcome.ts';
import type { TenantProgram } from './program.ts';
import type { RunResult } from './run-result.ts';
import type { Suspended } from './suspended.ts';
import type { TenantSandbox } from './tenant-sandbox.ts';

export type { RunResult } from './run-result.ts';
export { Suspended } from './suspended.ts';

/** What the breaker says of an instance before a call. */
export type Verdict = 'run' | 'breaker_open' | 'quarantined';

/**
 * The sandbox as the PDK bridge sees it: "run this call for this tenant with these limits,
 * give me the output or the fault". Behind it the sandbox keeps the isolate pool's LRU
 * (touched about once a second), charges the tenant's CPU budget for each crossing, and
 * holds the instances' breakers; the bridge only asks verdicts and reports outcomes, the
 * fault policy being its own (pdk-bridge/host/phase-call.ts).
 */
export interface PhaseCaller {
  readonly program: TenantProgram;
  /** false (one field read) while every instance may run: verdict() need not be asked. */
  readonly blocking: boolean;
  /** How long an opened breaker stays open (for the log line). */
  readonly cooldownMs: number;
  /** Crossings into the isolate so far (call, resume, callBatch): what tests count to see that a phase did not cross. */
  readonly crossings: number;
  verdict(instance: number): Verdict;
  /** Counts a fault of the instance; true when that opened its breaker. */
  fault(instance: number, outcome: FaultOutcome): boolean;
  success(instance: number): void;
  /** Whether the tenant's CPU budget lets a request start now; when not, Retry-After. */
  allow(): boolean;
  retryAfterSeconds(): number;
  /** One phase of a chain (see TenantSandbox.run), charged to the tenant. */
  call(chainId: number, phase: number, reqJson: string, phaseJson: string, ctxJson: string, skip: readonly number[] | undefined, body: string | null, last: boolean): RunResult | Suspended;
  /** A suspended chain resumed with its answers, charged to the tenant. */
  resume(s: Suspended, answersJson: string): RunResult | Suspended;
  /** Log-phase items in one call, charged to the tenant. */
  callBatch(items: readonly (readonly [number, string, string, string])[]): (RunResult | Suspended)[];
}

/** A TenantSandbox behind the PhaseCaller face; made once per sandbox (snapshot-builder). */
export class SandboxCaller implements PhaseCaller {
  readonly program: TenantProgram;
  readonly #sb: TenantSandbox;
  readonly #touch: (sb: TenantSandbox) => void;
  crossings = 0;

  constructor(sb: TenantSandbox, touch: (sb: TenantSandbox) => void) {
    this.#sb = sb;
    this.program = sb.program;
    this.#touch = touch;
  }

  get blocking(): boolean {
    return this.#sb.gate.blocking;
  }

  get cooldownMs(): number {
    return this.#sb.gate.config.cooldownMs;
  }

  verdict(instance: number): Verdict {
    return this.#sb.gate.verdict(instance);
  }

  fault(instance: number, outcome: FaultOutcome): boolean {
    return this.#sb.gate.fault(instance, outcome);
  }

  success(instance: number): void {
    this.#sb.gate.success(instance);
  }

  allow(): boolean {
    return this.#sb.budget.allow();
  }

  retryAfterSeconds(): number {
    return this.#sb.budget.retryAfterSeconds();
  }

  call(chainId: number, phase: number, reqJson: string, phaseJson: string, ctxJson: string, skip: readonly number[] | undefined, body: string | null, last: boolean): RunResult | Suspended {
    const sb = this.#sb;
    const t0 = performance.now();
    // the pool needs a use about once a second, not per call (sb.touchedAt: see IsolateLifecycle)
    if (t0 - sb.touchedAt > 1000) {
      sb.touchedAt = t0;
      this.#touch(sb);
    }
    this.crossings++;
    const r = sb.run(chainId, phase, reqJson, phaseJson, ctxJson, skip, body, last);
    sb.budget.charge(sb.lastCallMs, performance.now());
    return r;
  }

  resume(s: Suspended, answersJson: string): RunResult | Suspended {
    const sb = this.#sb;
    this.crossings++;
    const r = sb.resume(s, answersJson);
    sb.budget.charge(sb.lastCallMs, performance.now());
    return r;
  }

  callBatch(items: readonly (readonly [number, string, string, string])[]): (RunResult | Suspended)[] {
    const sb = this.#sb;
    sb.touchedAt = performance.now();
    this.#touch(sb);
    this.crossings++;
    const results = sb.runBatch(items);
    sb.budget.charge(sb.lastCallMs);
    return results;
  }
}
