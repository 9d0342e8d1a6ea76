import type { Pdk } from '../../pdk-bridge/types.ts';

/**
 * The body-filter plugin: rewrites "upstream" in each chunk of the streamed response body
 * (a word split across two chunks stays as it is: the bench measures the per-chunk cost).
 */
export const name = 'bench-body-rewrite';
export const version = '1.0.0';
export const priority = 1000;

export function bodyFilter(pdk: Pdk): void {
  pdk.response.setChunk(pdk.response.getChunk().replaceAll('upstream', 'isogate!'));
}
