import type { Pdk } from '../../pdk-bridge/types.ts';

/**
 * The bench header plugin: in access and in headerFilter it reads a request header and
 * sets a response header. The harness copies this file once per chain position with a
 * different `name` (a tenant runs one instance per plugin name).
 */
type Config = { n: number };

export const name = 'bench-header';
export const version = '1.0.0';
export const priority = 1000;
/** Its headerFilter reads only the request: it runs inside the access crossing (one crossing per request). */
export const readsResponse = false;

export function access(pdk: Pdk, config: Config): void {
  const v = pdk.request.getHeader('x-bench');
  pdk.response.setHeader(`x-bench-${config.n}-access`, typeof v === 'string' ? v : 'none');
}

export function headerFilter(pdk: Pdk, config: Config): void {
  const v = pdk.request.getHeader('x-bench');
  pdk.response.setHeader(`x-bench-${config.n}-filter`, typeof v === 'string' ? v : 'none');
}
