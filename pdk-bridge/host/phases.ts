/** Phases as bit flags, mirrored by pdk-bridge/runtime/00-prelude.js. */
export const PHASE = {
  REWRITE: 1,
  ACCESS: 2,
  HEADER_FILTER: 4,
  BODY_FILTER: 8,
  LOG: 32,
} as const;

export type PhaseBit = (typeof PHASE)[keyof typeof PHASE];

export const PHASE_NAME: Readonly<Record<number, string>> = {
  1: 'rewrite',
  2: 'access',
  4: 'headerFilter',
  8: 'bodyFilter',
  32: 'log',
};

/** Handler export name -> phase bit. */
export const HANDLER_PHASE: Readonly<Record<string, PhaseBit>> = {
  rewrite: PHASE.REWRITE,
  access: PHASE.ACCESS,
  headerFilter: PHASE.HEADER_FILTER,
  bodyFilter: PHASE.BODY_FILTER,
  log: PHASE.LOG,
};

/**
 * Phases whose chains may wait on async PDK calls (Kong: cosockets in rewrite, access and
 * log, not in the header or body filter); mirrored by runtime/07-async.js ASYNC_PHASES.
 */
export const ASYNC_PHASES = PHASE.REWRITE | PHASE.ACCESS | PHASE.LOG;
