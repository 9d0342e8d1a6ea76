/**
 * The closed list of ways a plugin call can end (workerd's outcome.capnp, applied here).
 * One value drives the HTTP status, the log line, the metric label and the breaker.
 */
export const OUTCOMES = [
  'ok',
  'threw',        // the handler threw or rejected
  'cpu',          // ran past its CPU limit and was stopped by the watchdog
  'wall',         // a promise that never settled within the call
  'timeout',      // waited on async PDK calls (cache, http...) past its wall time, wallMs
  'memory',       // hit the isolate's heap limit; the isolate is recreated
  'bad_return',   // handed back something that is not the expected plain data
  'too_large',    // handed back more bytes or operations than the caps allow
  'breaker_open', // the instance's circuit breaker is open
  'quarantined',  // the instance crashed a worker and is quarantined
] as const;

export type Outcome = (typeof OUTCOMES)[number];
export type FaultOutcome = Exclude<Outcome, 'ok'>;

/** A failed plugin run, as the host records it. */
export type Fault = {
  readonly outcome: FaultOutcome;
  /** Index of the plugin instance in its tenant's program, or -1 when none can be named. */
  readonly instance: number;
  /** Plain-text detail for the log (never sent to the client). */
  readonly detail: string;
};
