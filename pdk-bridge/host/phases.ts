/** The phase table lives in pdk-bridge/phases.ts (shared with the in-isolate runtime); re-exported for the host's existing imports. */
export { HANDLER_NAMES, HANDLER_PHASE, PHASE, PHASE_MASKS, PHASE_NAME, PHASE_ORDER, type PhaseBit } from '../phases.ts';
