/**
 * The one phase table: bits, names, the handler each phase calls, and the phase masks of
 * the PDK's function groups. The host imports it, and so does the in-isolate runtime
 * (`RUNTIME_PHASES`, bundled in by sandbox/runtime-build.ts): the runtime's constants
 * (REWRITE, ..., PHASE_NAMES, ANY_PHASE, the masks) are read from it, so the two cannot
 * disagree (test/pdk-bridge/phase-table.test.ts checks the built runtime's view).
 *
 * Kong's order: rewrite, access, response (the whole upstream response, buffered),
 * headerFilter, bodyFilter (per chunk), log.
 */
export const PHASE = {
  REWRITE: 1,
  ACCESS: 2,
  HEADER_FILTER: 4,
  BODY_FILTER: 8,
  RESPONSE: 16,
  LOG: 32,
} as const;

export type PhaseBit = (typeof PHASE)[keyof typeof PHASE];

/**
 * Kong 3's `configure(configs)`: not a request phase (it is in neither PHASE nor
 * PHASE_ORDER, so nothing that walks the request phases meets it), run when a tenant's
 * isolate is built, once per plugin with all its instance configs. Its own bit so that the
 * runtime can tell it from every request phase: only pdk.log's lines and pdk.node work
 * there (PHASE_MASKS.WITHOUT_REQUEST).
 */
export const CONFIGURE = 64;

/**
 * Not a phase a plugin exports: the headerFilter chain run early, inside the access
 * crossing, for a chain whose every headerFilter plugin declares `readsResponse: false`.
 * On a compiled chain's phase set it marks such a chain ("early"); in the runtime it is
 * the phase a headerFilter handler runs in then, allowed what headerFilter is allowed
 * except reading the response (status, headers, source, serviceResponse.*), which is not
 * there yet. The host applies its operations at header time, as headerFilter's.
 */
export const EARLY_HEADER_FILTER = 128;

/** Phases in the order a request meets them. */
export const PHASE_ORDER: readonly PhaseBit[] = [PHASE.REWRITE, PHASE.ACCESS, PHASE.RESPONSE, PHASE.HEADER_FILTER, PHASE.BODY_FILTER, PHASE.LOG];

/** Phase bit -> its name: the handler a plugin module exports for it, and what errors and metrics say. */
export const PHASE_NAME: Readonly<Record<number, string>> = {
  [PHASE.REWRITE]: 'rewrite',
  [PHASE.ACCESS]: 'access',
  [PHASE.HEADER_FILTER]: 'headerFilter',
  [PHASE.BODY_FILTER]: 'bodyFilter',
  [PHASE.RESPONSE]: 'response',
  [PHASE.LOG]: 'log',
  [CONFIGURE]: 'configure',
};

/** Handler export name -> phase bit. */
export const HANDLER_PHASE: Readonly<Record<string, PhaseBit>> = Object.fromEntries(PHASE_ORDER.map((b) => [PHASE_NAME[b], b]));

/** Handler export names, in phase order. */
export const HANDLER_NAMES: readonly string[] = PHASE_ORDER.map((b) => PHASE_NAME[b]);

const P = PHASE;

/** Phase masks of the PDK's function groups (the runtime's checkPhase and the host's operation checks use the same ones). */
export const PHASE_MASKS = {
  /** Every phase (reads of the request snapshot, ctx, log). */
  ANY_PHASE: P.REWRITE | P.ACCESS | P.HEADER_FILTER | P.BODY_FILTER | P.RESPONSE | P.LOG | EARLY_HEADER_FILTER,
  /** Before the upstream is called: serviceRequest.*, response.exit, the request body. */
  BEFORE_UPSTREAM: P.REWRITE | P.ACCESS,
  /**
   * The route's service is known (service.*): access only, Kong's phase for set_target,
   * set_retries and set_timeouts. Rewrite runs before routing (core/rewrite-first.ts).
   */
  SERVICE_KNOWN: P.ACCESS,
  /** Response headers may still change. */
  HEADERS_WRITABLE: P.REWRITE | P.ACCESS | P.RESPONSE | P.HEADER_FILTER | EARLY_HEADER_FILTER,
  /** The status sent to the client may still change (response.setStatus). */
  STATUS_WRITABLE: P.RESPONSE | P.HEADER_FILTER | EARLY_HEADER_FILTER,
  /** A response (status, headers) exists to read (not in an early headerFilter: EARLY_HEADER_FILTER). */
  HAS_RESPONSE: P.RESPONSE | P.HEADER_FILTER | P.BODY_FILTER | P.LOG,
  /** The upstream's own response (serviceResponse status and headers). */
  HAS_SERVICE_RESPONSE: P.RESPONSE | P.HEADER_FILTER,
  /** The upstream's body may be there to read (serviceResponse.getRawBody): buffered for a response phase or by enableBuffering. */
  HAS_SERVICE_BODY: P.RESPONSE | P.HEADER_FILTER,
  /**
   * Phases whose chains may wait on async PDK calls (cache, counters, crypto, http): Kong's
   * cosockets in rewrite, access, response and log, not in the header or body filter
   * (those run per response or per chunk with the client's bytes in flight).
   */
  ASYNC_PHASES: P.REWRITE | P.ACCESS | P.RESPONSE | P.LOG,
  /**
   * The consumer lookups (client.loadConsumer, findCredential, getConsumerGroups): async,
   * in rewrite and access, and in `response` (Kong's load_consumer is allowed there too).
   * The credential checks (verifyPassword, verifyCredentialSignature) are BEFORE_UPSTREAM:
   * authentication happens before the upstream, and each phase that allows them is another
   * ASYNC_CAPS.maxPasswordChecks scrypt runs a request could buy.
   */
  LOOKUP_PHASES: P.REWRITE | P.ACCESS | P.RESPONSE,
  /** Phases a plugin with a `response` handler may not also have (Kong's rule). */
  EXCLUDED_BY_RESPONSE: P.HEADER_FILTER | P.BODY_FILTER,
  /** What needs no request: every phase and configure (pdk.node, pdk.log's lines). */
  WITHOUT_REQUEST: P.REWRITE | P.ACCESS | P.HEADER_FILTER | P.BODY_FILTER | P.RESPONSE | P.LOG | EARLY_HEADER_FILTER | CONFIGURE,
} as const;

/** What the runtime imports (as `PHASES`). */
export const RUNTIME_PHASES = {
  bits: PHASE,
  configure: CONFIGURE,
  early: EARLY_HEADER_FILTER,
  order: PHASE_ORDER,
  names: PHASE_NAME,
  masks: PHASE_MASKS,
} as const;
