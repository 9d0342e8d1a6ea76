import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { VERSION } from '../../core/version.ts';

/**
 * What pdk.node tells plugins about this gateway, fixed for the process. The id is Kong's
 * node id in spirit: a UUID that is the same for every worker of one node and across
 * restarts, derived from the hostname and the working directory (ISOGATE_NODE_ID sets it).
 */
export type NodeInfo = { readonly id: string; readonly hostname: string; readonly version: string };

function uuidOf(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  // version 4 layout and variant bits, so it parses as a UUID
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const NODE_INFO: NodeInfo = Object.freeze({
  id: process.env.ISOGATE_NODE_ID ?? uuidOf(`${hostname()}\0${process.cwd()}`),
  hostname: hostname(),
  version: VERSION,
});
