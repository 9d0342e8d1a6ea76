import type { Pdk } from '../../pdk-bridge/types.ts';

/**
 * Adds, replaces and removes headers of the request sent upstream and of the response
 * sent to the client, from static config (Kong's request/response-transformer, headers part).
 */
type Edits = { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] };
type Config = { request?: Edits; response?: Edits };

export const name = 'header-transformer';
export const version = '1.0.0';
export const priority = 790; // below response-transformer (Kong's 800): bundled priorities are unique
/** Its headerFilter edits from config alone: it runs in the access crossing (and so also on a later plugin's exit(), as Kong's header_filter does). */
export const readsResponse = false;

export function access(pdk: Pdk, config: Config): void {
  const e = config.request;
  if (e === undefined) return;
  if (e.remove !== undefined) for (const h of e.remove) pdk.serviceRequest.clearHeader(h);
  if (e.set !== undefined) for (const h in e.set) pdk.serviceRequest.setHeader(h, e.set[h]);
  if (e.add !== undefined) for (const h in e.add) pdk.serviceRequest.addHeader(h, e.add[h]);
}

export function headerFilter(pdk: Pdk, config: Config): void {
  const e = config.response;
  if (e === undefined) return;
  if (e.remove !== undefined) for (const h of e.remove) pdk.response.clearHeader(h);
  if (e.set !== undefined) for (const h in e.set) pdk.response.setHeader(h, e.set[h]);
  if (e.add !== undefined) for (const h in e.add) pdk.response.addHeader(h, e.add[h]);
}
