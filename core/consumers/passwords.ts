import { createHmac, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

/**
 * basic-auth passwords, stored as `scrypt$N$r$p$salt$hash` (salt and hash base64url).
 *
 * Kong stores sha1(password .. consumer_id): one fast hash, salted only by an id that is
 * often public. A leaked config or database then falls to a GPU at billions of guesses a
 * second, and moving a credential to another consumer breaks it. scrypt is memory-hard and
 * salted per password, and the string says how it was made, so the cost can be raised
 * later without breaking old hashes.
 */
export const SCRYPT_DEFAULTS = { N: 16384, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** A hash from a config file names its own cost: bound it, or one config entry could make every check take seconds. */
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;
const FORMAT = /^scrypt\$(\d{1,8})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]{16,128})\$([A-Za-z0-9_-]{32,128})$/;

type Parsed = { N: number; r: number; p: number; salt: Buffer; hash: Buffer };

/** Why a stored hash cannot be used, or null when it can. */
export function badPasswordHash(stored: string): string | null {
  const m = FORMAT.exec(stored);
  if (m === null) return 'must be scrypt$N$r$p$salt$hash (salt and hash in base64url); write `password` through the admin API to have it hashed';
  const N = Number(m[1]), r = Number(m[2]), p = Number(m[3]);
  if (N < 2 || (N & (N - 1)) !== 0 || N > MAX_N) return `N must be a power of two from 2 to ${MAX_N}`;
  if (r < 1 || r > MAX_R || p < 1 || p > MAX_P) return `r must be 1 to ${MAX_R} and p 1 to ${MAX_P}`;
  return null;
}

function parse(stored: string): Parsed | null {
  if (badPasswordHash(stored) !== null) return null;
  const [, n, r, p, salt, hash] = FORMAT.exec(stored)!;
  return { N: Number(n), r: Number(r), p: Number(p), salt: Buffer.from(salt, 'base64url'), hash: Buffer.from(hash, 'base64url') };
}

function maxmem(x: Parsed): number {
  return 128 * x.N * x.r + 64 * 1024 * 1024;
}

/** Hashes a password for storage (the admin API's basic-auth writes). */
export function hashPassword(password: string, cost: { N: number; r: number; p: number } = SCRYPT_DEFAULTS): string {
  const salt = randomBytes(SALT_BYTES);
  const x = { ...cost, salt, hash: Buffer.alloc(0) };
  const hash = scryptSync(password, salt, KEY_BYTES, { N: cost.N, r: cost.r, p: cost.p, maxmem: maxmem(x) });
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/**
 * Checks a password against a stored hash, in constant time over the hash. scrypt runs on
 * libuv's thread pool: the event loop keeps serving while it works.
 */
export function verifyPassword(stored: string, password: string): Promise<boolean> {
  const x = parse(stored);
  if (x === null) return Promise.resolve(false);
  return new Promise((resolve) => {
    scrypt(password, x.salt, x.hash.length, { N: x.N, r: x.r, p: x.p, maxmem: maxmem(x) }, (err, key) => {
      resolve(err === null && key.length === x.hash.length && timingSafeEqual(key, x.hash));
    });
  });
}

/**
 * Remembers passwords that verified, so a client sending the same basic-auth header on
 * every request pays scrypt once (Kong caches its credential lookups too). Keys are an
 * HMAC under a key of this process, never the password; failures are not remembered
 * (a guesser pays full price every time). Bounded: the oldest entry goes first.
 */
export class VerifiedCache {
  readonly #key = randomBytes(32);
  readonly #seen = new Map<string, true>();
  readonly #max: number;

  constructor(max = 10000) {
    this.#max = max;
  }

  async verify(credentialId: string, stored: string, password: string): Promise<boolean> {
    const k = createHmac('sha256', this.#key).update(credentialId).update('\0').update(stored).update('\0').update(password).digest('base64url');
    if (this.#seen.has(k)) return true;
    const ok = await verifyPassword(stored, password);
    if (ok) {
      if (this.#seen.size >= this.#max) this.#seen.delete(this.#seen.keys().next().value!);
      this.#seen.set(k, true);
    }
    return ok;
  }
}
