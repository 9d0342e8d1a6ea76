import { OUTCOME, type FaultOutcome } from './outcome.ts';

export type BreakerConfig = {
  /** Faults within `windowMs` that trip the breaker. */
  readonly faults: number;
  readonly windowMs: number;
  /** How long a tripped instance stays open before one trial request (half-open). */
  readonly cooldownMs: number;
};

export const DEFAULT_BREAKER: BreakerConfig = { faults: 5, windowMs: 10_000, cooldownMs: 30_000 };

export type GateState = 'closed' | 'open' | 'half_open' | 'quarantined';

type InstanceState = { state: GateState; faults: number[]; openedAt: number };

/**
 * Per plugin instance of one tenant: a circuit breaker (after N faults in a window the
 * instance is tripped for a cool-down, then lets one trial through) and quarantine (set by
 * the supervisor after the instance crashed a worker; permanent until the config changes).
 * The request path asks `blocking` first: false (one field read) while every instance is
 * healthy.
 */
export class InstanceGate {
  readonly config: BreakerConfig;
  #states: InstanceState[];
  /** Instances not closed (open, half-open or quarantined). */
  #unhealthy = 0;

  constructor(instances: number, config: BreakerConfig) {
    this.config = config;
    this.#states = Array.from({ length: instances }, () => ({ state: 'closed' as GateState, faults: [], openedAt: 0 }));
  }

  get blocking(): boolean {
    return this.#unhealthy > 0;
  }

  state(instance: number): GateState {
    return this.#states[instance]?.state ?? 'closed';
  }

  /** Whether `instance` may run now; moves an open breaker past its cool-down to half-open. */
  verdict(instance: number, now = Date.now()): 'run' | 'breaker_open' | 'quarantined' {
    const s = this.#states[instance];
    if (s === undefined || s.state === 'closed' || s.state === 'half_open') return 'run';
    if (s.state === 'quarantined') return 'quarantined';
    if (now - s.openedAt >= this.config.cooldownMs) {
      s.state = 'half_open';
      return 'run';
    }
    return 'breaker_open';
  }

  /** Records a fault; returns true when it tripped the breaker. */
  fault(instance: number, outcome: FaultOutcome, now = Date.now()): boolean {
    const s = this.#states[instance];
    if (s === undefined || !OUTCOME[outcome].breaker || s.state === 'quarantined') return false;
    if (s.state === 'half_open') {
      s.state = 'open';
      s.openedAt = now;
      return true;
    }
    if (s.state === 'open') return false;
    s.faults.push(now);
    while (s.faults.length > 0 && now - s.faults[0] > this.config.windowMs) s.faults.shift();
    if (s.faults.length >= this.config.faults) {
      s.state = 'open';
      s.openedAt = now;
      s.faults = [];
      this.#unhealthy++;
      return true;
    }
    return false;
  }

  /** A run of `instance` ended without a fault: a half-open breaker closes. */
  success(instance: number): void {
    const s = this.#states[instance];
    if (s !== undefined && s.state === 'half_open') {
      s.state = 'closed';
      this.#unhealthy--;
    }
  }

  quarantine(instance: number): void {
    const s = this.#states[instance];
    if (s === undefined || s.state === 'quarantined') return;
    if (s.state === 'closed') this.#unhealthy++;
    s.state = 'quarantined';
  }

  /** Instances whose state is not closed, for /status and metrics. */
  unhealthy(): { instance: number; state: GateState }[] {
    const out: { instance: number; state: GateState }[] = [];
    this.#states.forEach((s, instance) => {
      if (s.state !== 'closed') out.push({ instance, state: s.state });
    });
    return out;
  }
}
