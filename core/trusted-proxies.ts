import { BlockList, isIP } from 'node:net';

/**
 * The proxies in front of the gateway whose X-Forwarded-* headers are believed (Kong's
 * trusted_ips), compiled once per config into a node:net BlockList. null: trust no one
 * (the default), and the request path pays nothing.
 */
export type TrustedProxies = BlockList | null;

/** Compiles `proxy.trustedProxies`; every bad entry is reported in `errors` with its path. */
export function compileTrustedProxies(list: readonly string[], at: string, errors: string[]): TrustedProxies {
  if (list.length === 0) return null;
  const bl = new BlockList();
  list.forEach((entry, i) => {
    const slash = entry.indexOf('/');
    const addr = slash < 0 ? entry : entry.slice(0, slash);
    const family = isIP(addr);
    const bits = slash < 0 ? (family === 6 ? 128 : 32) : Number(entry.slice(slash + 1));
    const max = family === 6 ? 128 : 32;
    if (family === 0 || !/^\d{1,3}$/.test(slash < 0 ? String(bits) : entry.slice(slash + 1)) || bits > max) {
      errors.push(`${at}[${i}]: "${entry}" is not an IPv4/IPv6 address or CIDR block (e.g. 10.0.0.0/8, ::1)`);
      return;
    }
    bl.addSubnet(addr, bits, family === 6 ? 'ipv6' : 'ipv4');
  });
  return bl;
}

/** Whether the peer `ip` (as node:net gives it; IPv4-mapped IPv6 counts as its IPv4) is trusted. */
export function isTrusted(trusted: TrustedProxies, ip: string): boolean {
  if (trusted === null || ip === '') return false;
  if (ip.includes(':')) {
    if (ip.startsWith('::ffff:') && ip.includes('.')) return trusted.check(ip.slice(7), 'ipv4');
    return trusted.check(ip, 'ipv6');
  }
  return trusted.check(ip, 'ipv4');
}
