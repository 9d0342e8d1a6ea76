import { constants, createHash, createHmac, createPublicKey, KeyObject, randomBytes, timingSafeEqual, verify } from 'node:crypto';
import { OUTPUT_CAPS } from '../../../sandbox/limits.ts';
import { ASYNC_PHASES } from '../phases.ts';
import { argNumber, argString, ServiceError, type Service } from './types.ts';

const DIGESTS: Readonly<Record<string, string>> = { sha1: 'sha1', sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };
const ENCODINGS = new Set(['hex', 'base64', 'base64url']);
const MAX = OUTPUT_CAPS.maxAsyncArgBytes;

function digestName(v: unknown): string {
  const d = typeof v === 'string' ? DIGESTS[v.toLowerCase()] : undefined;
  if (d === undefined) throw new ServiceError('algorithm must be one of sha1, sha256, sha384, sha512');
  return d;
}

function encoding(v: unknown): 'hex' | 'base64' | 'base64url' {
  if (typeof v !== 'string' || !ENCODINGS.has(v)) throw new ServiceError('encoding must be hex, base64 or base64url');
  return v as 'hex' | 'base64' | 'base64url';
}

/** JWS algorithms (RFC 7518, RFC 8037): the digest, and the key type and options node:crypto needs. */
type Jws = { hash: string | null; kind: 'hmac' | 'rsa' | 'rsa-pss' | 'ec' | 'okp'; curve?: string };
const JWS: Readonly<Record<string, Jws>> = {
  HS256: { hash: 'sha256', kind: 'hmac' }, HS384: { hash: 'sha384', kind: 'hmac' }, HS512: { hash: 'sha512', kind: 'hmac' },
  RS256: { hash: 'sha256', kind: 'rsa' }, RS384: { hash: 'sha384', kind: 'rsa' }, RS512: { hash: 'sha512', kind: 'rsa' },
  PS256: { hash: 'sha256', kind: 'rsa-pss' }, PS384: { hash: 'sha384', kind: 'rsa-pss' }, PS512: { hash: 'sha512', kind: 'rsa-pss' },
  ES256: { hash: 'sha256', kind: 'ec', curve: 'prime256v1' }, ES384: { hash: 'sha384', kind: 'ec', curve: 'secp384r1' }, ES512: { hash: 'sha512', kind: 'ec', curve: 'secp521r1' },
  EdDSA: { hash: null, kind: 'okp' },
};

function publicKey(key: unknown): KeyObject {
  // A key the host parsed once (a credential's, services/consumers.ts); never one from an isolate, which sends only JSON.
  if (key instanceof KeyObject && key.type === 'public') return key;
  try {
    if (typeof key === 'string') return createPublicKey(key);
    if (key !== null && typeof key === 'object' && !Array.isArray(key)) return createPublicKey({ key: key as import('node:crypto').JsonWebKey, format: 'jwk' });
  } catch (err) {
    throw new ServiceError(`verify: the key cannot be read (${String((err as Error).message).slice(0, 120)})`);
  }
  throw new ServiceError('verify: the key must be a PEM string or a JWK object');
}

function hmacSecret(key: unknown): Buffer {
  if (typeof key === 'string') return Buffer.from(key, 'utf8');
  const k = key as { kty?: unknown; k?: unknown } | null;
  if (k !== null && typeof k === 'object' && k.kty === 'oct' && typeof k.k === 'string') return Buffer.from(k.k, 'base64url');
  throw new ServiceError('verify: an HS key must be a string or an oct JWK');
}

/** Verifies a JWS signature; false for a bad signature, ServiceError for a bad algorithm or key. */
export function verifyJws(alg: string, key: unknown, data: string, signature: string): boolean {
  const a = Object.hasOwn(JWS, alg) ? JWS[alg] : undefined;
  if (a === undefined) throw new ServiceError(`verify: unknown algorithm ${JSON.stringify(alg.slice(0, 20))} (HS, RS, PS, ES 256/384/512 or EdDSA)`);
  const sig = Buffer.from(signature, 'base64url');
  if (a.kind === 'hmac') {
    const mac = createHmac(a.hash!, hmacSecret(key)).update(data, 'utf8').digest();
    return mac.length === sig.length && timingSafeEqual(mac, sig);
  }
  const k = publicKey(key);
  const type = k.asymmetricKeyType;
  const fits = a.kind === 'rsa' || a.kind === 'rsa-pss' ? type === 'rsa' || type === 'rsa-pss'
    : a.kind === 'ec' ? type === 'ec' && k.asymmetricKeyDetails?.namedCurve === a.curve
    : type === 'ed25519' || type === 'ed448';
  if (!fits) throw new ServiceError(`verify: a ${type ?? 'secret'} key does not fit ${alg}`);
  const d = Buffer.from(data, 'utf8');
  try {
    if (a.kind === 'rsa-pss') return verify(a.hash, d, { key: k, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig);
    if (a.kind === 'ec') return verify(a.hash, d, { key: k, dsaEncoding: 'ieee-p1363' }, sig);
    return verify(a.hash, d, k, sig);
  } catch {
    return false; // a signature of the wrong length or form
  }
}

/** pdk.crypto: node:crypto on the host, results copied in as strings or booleans (pdk-bridge/runtime/crypto.ts). */
export const cryptoService: Service = {
  name: 'crypto',
  methods: {
    digest: {
      phases: ASYNC_PHASES,
      run: (args) => JSON.stringify(createHash(digestName(args[0])).update(argString(args[1], 'data', MAX), 'utf8').digest(encoding(args[2]))),
    },
    hmac: {
      phases: ASYNC_PHASES,
      run: (args) => JSON.stringify(createHmac(digestName(args[0]), argString(args[1], 'key', MAX)).update(argString(args[2], 'data', MAX), 'utf8').digest(encoding(args[3]))),
    },
    randomBytes: {
      phases: ASYNC_PHASES,
      run: (args) => JSON.stringify(randomBytes(Math.floor(argNumber(args[0], 'size', 1, OUTPUT_CAPS.maxRandomBytes))).toString(encoding(args[1]))),
    },
    timingSafeEqual: {
      phases: ASYNC_PHASES,
      run(args) {
        // Both hashed first: equal lengths for timingSafeEqual, and no timing that tells the length.
        const a = createHash('sha256').update(argString(args[0], 'a', MAX)).digest();
        const b = createHash('sha256').update(argString(args[1], 'b', MAX)).digest();
        return timingSafeEqual(a, b) && args[0] === args[1] ? 'true' : 'false';
      },
    },
    verify: {
      phases: ASYNC_PHASES,
      run: (args) => (verifyJws(argString(args[0], 'algorithm', 16), args[1], argString(args[2], 'data', MAX), argString(args[3], 'signature', 4096)) ? 'true' : 'false'),
    },
    base64Encode: {
      phases: ASYNC_PHASES,
      run: (args) => JSON.stringify(Buffer.from(argString(args[0], 'data', MAX), 'utf8').toString(args[1] === true ? 'base64url' : 'base64')),
    },
    base64Decode: {
      phases: ASYNC_PHASES,
      // Buffer reads both alphabets, padded or not.
      run: (args) => JSON.stringify(Buffer.from(argString(args[0], 'data', MAX), 'base64').toString('utf8')),
    },
  },
};
