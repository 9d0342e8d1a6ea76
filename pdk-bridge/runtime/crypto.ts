// In-isolate runtime: pdk.crypto, done by node:crypto on the host; what comes back is a
// string (hex, base64 or base64url) or a boolean. Async: each call crosses (async.ts).
import type { PdkCrypto } from '../types.ts';
import { $freeze, list, realm, str } from './prelude.ts';
import { ASYNC_PHASES, asyncCall, num } from './async.ts';

function cryptoCall(fn: string, method: string, a: unknown[]): Promise<any> {
  return asyncCall('crypto.' + fn, ASYNC_PHASES, 'crypto', method, a, false);
}

function args(n: number, values: unknown[]): unknown[] {
  const a = list();
  for (let i = 0; i < n; i++) a[i] = values[i];
  return a;
}

export const pdkCrypto = $freeze({
  /** Digest of the UTF-8 text `data`: alg sha1, sha256, sha384 or sha512; encoding hex (default), base64 or base64url. */
  digest(alg: unknown, data: unknown, encoding?: unknown) { return cryptoCall('digest', 'digest', args(3, [str(alg, 'algorithm'), str(data, 'data'), encoding === undefined ? 'hex' : str(encoding, 'encoding')])); },
  hmac(alg: unknown, key: unknown, data: unknown, encoding?: unknown) { return cryptoCall('hmac', 'hmac', args(4, [str(alg, 'algorithm'), str(key, 'key'), str(data, 'data'), encoding === undefined ? 'hex' : str(encoding, 'encoding')])); },
  randomBytes(n: unknown, encoding?: unknown) {
    const size = num(n, 'size', 0);
    if ((size | 0) !== size || size < 1 || size > CAPS.maxRandomBytes) throw new realm.RangeError(`crypto.randomBytes: size must be an integer from 1 to ${CAPS.maxRandomBytes}`);
    return cryptoCall('randomBytes', 'randomBytes', args(2, [size, encoding === undefined ? 'hex' : str(encoding, 'encoding')]));
  },
  timingSafeEqual(a: unknown, b: unknown) { return cryptoCall('timingSafeEqual', 'timingSafeEqual', args(2, [str(a, 'a'), str(b, 'b')])); },
  /**
   * Verifies a signature (base64url, as in a JWT) of the UTF-8 text `data`: alg HS256-512,
   * RS256-512, PS256-512, ES256-512 or EdDSA; key a secret (HS), a PEM string or a JWK object.
   */
  verify(alg: unknown, key: unknown, data: unknown, signature: unknown) {
    const k = typeof key === 'string' ? key : key !== null && typeof key === 'object' ? key : str(key, 'key');
    return cryptoCall('verify', 'verify', args(4, [str(alg, 'algorithm'), k, str(data, 'data'), str(signature, 'signature')]));
  },
  /** Base64 of the UTF-8 text (url: base64url without padding). */
  base64Encode(data: unknown, url?: unknown) { return cryptoCall('base64Encode', 'base64Encode', args(2, [str(data, 'data'), url === true])); },
  /** The UTF-8 text of base64 or base64url `data`. */
  base64Decode(data: unknown) { return cryptoCall('base64Decode', 'base64Decode', args(1, [str(data, 'data')])); },
} satisfies PdkCrypto);
