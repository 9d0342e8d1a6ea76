import type { Pdk } from '../../pdk-bridge/types.ts';

/** The body-filter plugin: rewrites every "upstream" in the (buffered) response body. */
export const name = 'bench-body-rewrite';
export const version = '1.0.0';
export const priority = 1000;

export function bodyFilter(pdk: Pdk): void {
  pdk.response.setBody(pdk.response.getBody().replaceAll('upstream', 'isogate!'));
}
