import type { Pdk } from '../../pdk-bridge/types.ts';
import { kongError } from '../kong-error.ts';
import { BlockSet, parseAddress, type Words } from './cidr.ts';

/**
 * Kong's ip-restriction: refuses clients by address. `deny` is checked first, then `allow`
 * (a client outside a non-empty allow list is refused). IPv4 and IPv6 addresses and CIDR
 * blocks; an IPv4 client reported as IPv4-mapped IPv6 (::ffff:10.0.0.1) matches IPv4 rules.
 */
type Config = { allow?: readonly string[] | null; deny?: readonly string[] | null; status?: number | null; message?: string | null };
type Compiled = { allow: BlockSet | null; deny: BlockSet | null; status: number; message: string };

export const name = 'ip-restriction';
export const version = '1.0.0';
export const priority = 990; // Kong's

const DEFAULT_MESSAGE = 'Your IP address is not allowed';

// The PDK has no configure hook: each config object (frozen, one per instance and isolate)
// is compiled on its first request and kept here, so requests after the first parse nothing.
const compiled = new WeakMap<object, Compiled>();

function compile(config: Config): Compiled {
  let c = compiled.get(config);
  if (c === undefined) {
    c = {
      allow: config.allow != null && config.allow.length > 0 ? new BlockSet(config.allow, 'allow') : null,
      deny: config.deny != null && config.deny.length > 0 ? new BlockSet(config.deny, 'deny') : null,
      status: config.status ?? 403,
      message: config.message ?? DEFAULT_MESSAGE,
    };
    compiled.set(config, c);
  }
  return c;
}

const client: Words = [0, 0, 0, 0];

export function access(pdk: Pdk, config: Config): void {
  const c = compile(config);
  // Kong matches nginx's remote address after realip: the forwarded one from a trusted proxy
  if (!parseAddress(pdk.client.getForwardedIp(), client).ok) {
    kongError(pdk, 403, 'Cannot identify the client IP address, unix domain sockets are not supported.');
  }
  if (c.deny !== null && c.deny.has(client)) kongError(pdk, c.status, c.message);
  if (c.allow !== null && !c.allow.has(client)) kongError(pdk, c.status, c.message);
}
