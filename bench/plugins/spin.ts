import type { Pdk } from '../../pdk-bridge/types.ts';

/** The noisy neighbour: spins until the watchdog stops it at its CPU limit, on every request. */
export const name = 'bench-spin';
export const version = '1.0.0';
export const priority = 1000;

export function access(_pdk: Pdk): void {
  while (true) {
    // burn
  }
}
