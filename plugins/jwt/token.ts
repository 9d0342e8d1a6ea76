import { decodeBase64 } from '../base64.ts';

/** Algorithms Kong's jwt plugin takes (jwt_parser's alg_verify): anything else, `none` included, is "invalid alg". */
export const ALGORITHMS: ReadonlySet<string> = new Set(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA']);

export type Token = {
  readonly header: Readonly<Record<string, unknown>>;
  readonly claims: Readonly<Record<string, unknown>>;
  /** "header.payload", what the signature signs. */
  readonly signingInput: string;
  /** base64url, as sent. */
  readonly signature: string;
  readonly alg: string;
};

function object(text: string | null): Record<string, unknown> | null {
  if (text === null) return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/** A compact JWS split and decoded, or Kong's reason ("invalid JWT", "invalid JSON", "invalid typ", "invalid alg"). */
export function decodeToken(token: string): Token | string {
  const a = token.indexOf('.');
  const b = a < 0 ? -1 : token.indexOf('.', a + 1);
  if (a <= 0 || b < 0 || token.indexOf('.', b + 1) >= 0 || b === token.length - 1) return 'invalid JWT';
  const header = object(decodeBase64(token.slice(0, a)));
  const claims = object(decodeBase64(token.slice(a + 1, b)));
  if (header === null || claims === null) return 'invalid JSON';
  if (header.typ !== undefined && (typeof header.typ !== 'string' || header.typ.toUpperCase() !== 'JWT')) return 'invalid typ';
  const alg = header.alg;
  if (typeof alg !== 'string' || !ALGORITHMS.has(alg)) return 'invalid alg';
  return { header, claims, signingInput: token.slice(0, b), signature: token.slice(b + 1), alg };
}

/**
 * Kong's verify_registered_claims: per claim to verify, its error, or null when all hold.
 * `leeway` (seconds) is the clock skew allowed both ways.
 */
export function claimErrors(claims: Readonly<Record<string, unknown>>, verify: readonly string[], nowSeconds: number, leeway: number): Record<string, string> | null {
  let errors: Record<string, string> | null = null;
  for (const name of verify) {
    const v = claims[name];
    let e: string | null = null;
    if (typeof v !== 'number' || !Number.isFinite(v)) e = 'must be a number';
    else if (name === 'exp' && v + leeway <= nowSeconds) e = 'token expired';
    else if (name === 'nbf' && v - leeway > nowSeconds) e = 'token not valid yet';
    if (e !== null) (errors ??= {})[name] = e;
  }
  return errors;
}
