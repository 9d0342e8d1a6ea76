/**
 * The closed list of ways a plugin call can end (workerd's outcome.capnp, applied here),
 * and the one table of what each means: the HTTP status and error code the client gets,
 * the level it is logged at, whether it counts towards the instance's breaker, whether the
 * isolate it ran in is dropped, and whether the in-isolate runtime may report it itself.
 * Nothing else maps outcomes by hand: adding an outcome is one row here.
 */
export type OutcomeRow = {
  /** HTTP status of the client's answer when the fault fails the request (0: not a fault). */
  readonly status: number;
  /** Code of core/errors.ts sent with it ('' for ok); test/sandbox/outcome.test.ts pins that the two agree. */
  readonly error: '' | 'ISG_ERR_PLUGIN_FAILED' | 'ISG_ERR_PLUGIN_TIMEOUT' | 'ISG_ERR_PLUGIN_UNAVAILABLE';
  /** Level of the gateway log line for the fault: a fast fail of a known-bad instance is not news. */
  readonly level: 'debug' | 'warn';
  /** Counts towards the instance's circuit breaker. */
  readonly breaker: boolean;
  /** The isolate cannot be trusted after it (stopped mid-run, heap exhausted, continuations left pending): dispose it. */
  readonly dropsIsolate: boolean;
  /** The runtime may report it in a result's fault list (anything else from there is a forgery: bad_return). */
  readonly fromRuntime: boolean;
};

export const OUTCOME = {
  ok: { status: 0, error: '', level: 'debug', breaker: false, dropsIsolate: false, fromRuntime: false },
  // the handler threw or rejected
  threw: { status: 500, error: 'ISG_ERR_PLUGIN_FAILED', level: 'warn', breaker: true, dropsIsolate: false, fromRuntime: true },
  // ran past its CPU limit and was stopped by the watchdog
  cpu: { status: 500, error: 'ISG_ERR_PLUGIN_FAILED', level: 'warn', breaker: true, dropsIsolate: true, fromRuntime: false },
  // a promise that never settled within the call
  wall: { status: 500, error: 'ISG_ERR_PLUGIN_FAILED', level: 'warn', breaker: true, dropsIsolate: true, fromRuntime: false },
  // waited on async PDK calls (cache, counters, crypto, http) past its wall time, wallMs
  // (Kong answers an upstream that takes too long with 504; so does a plugin's outbound wait)
  timeout: { status: 504, error: 'ISG_ERR_PLUGIN_TIMEOUT', level: 'warn', breaker: true, dropsIsolate: false, fromRuntime: true },
  // hit the isolate's heap limit; the isolate is recreated
  memory: { status: 500, error: 'ISG_ERR_PLUGIN_FAILED', level: 'warn', breaker: true, dropsIsolate: true, fromRuntime: false },
  // handed back something that is not the expected plain data
  bad_return: { status: 500, error: 'ISG_ERR_PLUGIN_FAILED', level: 'warn', breaker: true, dropsIsolate: false, fromRuntime: true },
  // handed back more bytes or operations than the caps allow
  too_large: { status: 500, error: 'ISG_ERR_PLUGIN_FAILED', level: 'warn', breaker: true, dropsIsolate: false, fromRuntime: true },
  // the instance's circuit breaker is open
  breaker_open: { status: 503, error: 'ISG_ERR_PLUGIN_UNAVAILABLE', level: 'debug', breaker: false, dropsIsolate: false, fromRuntime: false },
  // the instance crashed a worker and is quarantined
  quarantined: { status: 503, error: 'ISG_ERR_PLUGIN_UNAVAILABLE', level: 'debug', breaker: false, dropsIsolate: false, fromRuntime: false },
} as const satisfies Record<string, OutcomeRow>;

export type Outcome = keyof typeof OUTCOME;
export type FaultOutcome = Exclude<Outcome, 'ok'>;

/** Every outcome, in table order. */
export const OUTCOMES = Object.keys(OUTCOME) as readonly Outcome[];

/** A failed plugin run, as the host records it. */
export type Fault = {
  readonly outcome: FaultOutcome;
  /** Index of the plugin instance in its tenant's program, or -1 when none can be named. */
  readonly instance: number;
  /** Plain-text detail for the log (never sent to the client). */
  readonly detail: string;
};
