/**
 * IPv4 and IPv6 addresses and CIDR blocks as four 32-bit words, IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), so that one set of rules matches a client whether the listener reports
 * it as 10.0.0.1 or ::ffff:10.0.0.1. Pure functions, no regex on the request path.
 */
export type Words = [number, number, number, number];

function parseV4(s: string, out: Words): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  let v = 0;
  for (const p of parts) {
    if (p.length === 0 || p.length > 3 || !/^\d+$/.test(p) || (p.length > 1 && p[0] === '0')) return false;
    const n = +p;
    if (n > 255) return false;
    v = v * 256 + n;
  }
  out[0] = 0;
  out[1] = 0;
  out[2] = 0xffff;
  out[3] = v >>> 0;
  return true;
}

function parseV6(s: string, out: Words): boolean {
  const groups: number[] = [];
  const tail: number[] = [];
  const dbl = s.indexOf('::');
  if (dbl !== s.lastIndexOf('::')) return false;
  const head = dbl < 0 ? s : s.slice(0, dbl);
  const rest = dbl < 0 ? '' : s.slice(dbl + 2);
  const read = (part: string, into: number[], last: boolean): boolean => {
    if (part === '') return true;
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      if (last && i === items.length - 1 && it.includes('.')) {
        const w: Words = [0, 0, 0, 0];
        if (!parseV4(it, w)) return false;
        into.push(w[3] >>> 16, w[3] & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return false;
        into.push(parseInt(it, 16));
      }
    }
    return true;
  };
  if (!read(head, groups, dbl < 0) || !read(rest, tail, true)) return false;
  const missing = 8 - groups.length - tail.length;
  if (dbl < 0 ? missing !== 0 : missing < 1) return false;
  const all = dbl < 0 ? groups : [...groups, ...new Array<number>(missing).fill(0), ...tail];
  for (let i = 0; i < 4; i++) out[i] = ((all[2 * i] << 16) | all[2 * i + 1]) >>> 0;
  return true;
}

/** The address `s` (IPv4, IPv6, with an optional %zone) in `out`; false if it is not one. */
export function parseAddress(s: string, out: Words): { ok: boolean; v4: boolean } {
  const zone = s.indexOf('%');
  const a = zone < 0 ? s : s.slice(0, zone);
  if (a.includes(':')) return { ok: parseV6(a, out), v4: false };
  return { ok: parseV4(a, out), v4: true };
}

/** A block: its address masked to `bits` (0-128, counted in the mapped space for IPv4). */
export type Block = { bits: number; key: string };

const MASKS: number[] = [];
for (let b = 0; b <= 32; b++) MASKS.push(b === 0 ? 0 : (0xffffffff << (32 - b)) >>> 0);

/** Key of `w` masked to its first `bits` bits: what a block and an address are compared by. */
export function maskedKey(w: Words, bits: number): string {
  let key = '';
  for (let i = 0; i < 4; i++) {
    const b = bits - 32 * i;
    const m = b >= 32 ? 0xffffffff : b <= 0 ? 0 : MASKS[b];
    key += ((w[i] & m) >>> 0).toString(16) + ':';
  }
  return key;
}

/** Parses "10.0.0.0/8", "2001:db8::/32", "192.0.2.1" (a /32) or "::1" (a /128). */
export function parseBlock(entry: string): Block | null {
  const slash = entry.indexOf('/');
  const addr = slash < 0 ? entry : entry.slice(0, slash);
  const w: Words = [0, 0, 0, 0];
  const { ok, v4 } = parseAddress(addr, w);
  if (!ok || addr.includes('%')) return null;
  const max = v4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const p = entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || +p > max) return null;
    bits = +p;
  }
  if (v4) bits += 96;
  return { bits, key: maskedKey(w, bits) };
}

/**
 * A list of blocks compiled for lookups: per distinct prefix length, a Set of masked keys.
 * A request costs one mask and one Set lookup per distinct prefix length in the list (at
 * most 129), however long the list is.
 */
export class BlockSet {
  readonly #byBits: { bits: number; keys: Set<string> }[] = [];

  constructor(entries: readonly string[], field: string) {
    const map = new Map<number, Set<string>>();
    for (const e of entries) {
      const b = parseBlock(e);
      if (b === null) throw new TypeError(`ip-restriction: ${field} entry ${JSON.stringify(e.slice(0, 64))} is not an IP address or CIDR block`);
      let keys = map.get(b.bits);
      if (keys === undefined) map.set(b.bits, (keys = new Set()));
      keys.add(b.key);
    }
    for (const [bits, keys] of map) this.#byBits.push({ bits, keys });
  }

  get size(): number {
    return this.#byBits.length;
  }

  has(w: Words): boolean {
    for (const { bits, keys } of this.#byBits) if (keys.has(maskedKey(w, bits))) return true;
    return false;
  }
}
