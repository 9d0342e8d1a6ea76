/** The phase table lives in pdk-bridge/phases.ts (shared with the in-isolate runtime); re-exported for the host's existing imports. */
export { CONFIGURE, HANDLER_NAMES, HANDLER_PHASE, PHASE, PHASE_MASKS, PHASE_NAME, PHASE_ORDER, type PhaseBit } from '../phases.ts';
import { PHASE_MASKS } from '../phases.ts';

/**
 * Phases whose chains may wait on async PDK calls (Kong: cosockets in rewrite, access,
 * response and log, not in the header or body filter); the runtime reads the same mask (PHASES.masks.ASYNC_PHASES).
 */
export const ASYNC_PHASES = PHASE_MASKS.ASYNC_PHASES;
/** The consumer lookups' phases (PHASES.masks.LOOKUP_PHASES in the runtime). */
export const LOOKUP_PHASES = PHASE_MASKS.LOOKUP_PHASES;
