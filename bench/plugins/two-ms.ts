import type { Pdk } from '../../pdk-bridge/types.ts';

/** A plugin that needs about 2 ms of CPU on every request (the solo-2ms scenario): Date.now() must move on twice. */
export const name = 'bench-two-ms';
export const version = '1.0.0';
export const priority = 1000;

export function access(_pdk: Pdk): void {
  const t = Date.now();
  let n = 0;
  while (Date.now() < t + 2) n++;
}
