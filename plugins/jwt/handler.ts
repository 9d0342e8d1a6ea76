import type { JwsAlgorithm, Pdk } from '../../pdk-bridge/types.ts';
import { alreadyAuthenticated, authenticateAnonymous, setConsumer } from '../kong-auth.ts';
import { claimErrors, decodeToken } from './token.ts';

/**
 * Kong's jwt (3.x): a token from the query (`uri_param_names`), a cookie (`cookie_names`)
 * or a `Bearer` header (`header_names`), in that order. The credential is the jwt one
 * whose key is the `key_claim_name` claim (or header field); its secret or public key
 * never enters the isolate: the signature is verified on the host
 * (client.verifyCredentialSignature), and only under the credential's own algorithm, so a
 * token's `alg: none` or an HS256 token keyed with an RS credential's public key fails.
 * Then `claims_to_verify` (exp, nbf, with `leeway` seconds of clock skew: Isogate's own
 * field, Kong's schema has none) and `maximum_expiration`. Every failure is 401 with Kong's message (claims: Kong's
 * `{"exp": "token expired"}` body), or the `anonymous` consumer.
 */
type Config = {
  uri_param_names?: readonly string[];
  cookie_names?: readonly string[];
  header_names?: readonly string[];
  key_claim_name?: string;
  secret_is_base64?: boolean;
  claims_to_verify?: readonly ('exp' | 'nbf')[] | null;
  anonymous?: string | null;
  run_on_preflight?: boolean;
  maximum_expiration?: number;
  leeway?: number;
  realm?: string | null;
};

export const name = 'jwt';
export const version = '1.0.0';
export const priority = 1450; // Kong's

/** The longest token looked at (a header's size); the host refuses a longer signing input. */
const MAX_TOKEN = 16384;

type Compiled = {
  params: readonly string[];
  cookies: readonly string[];
  headers: readonly string[];
  keyClaim: string;
  base64: boolean;
  verify: readonly string[];
  anonymous: string | null;
  preflight: boolean;
  maxExp: number;
  leeway: number;
  missing: Readonly<Record<string, string>>;
  invalid: Readonly<Record<string, string>>;
};
const compiled = new WeakMap<object, Compiled>();

function compile(config: Config): Compiled {
  let c = compiled.get(config);
  if (c === undefined) {
    const base = config.realm == null ? 'Bearer' : `Bearer realm="${config.realm}"`;
    c = {
      params: config.uri_param_names ?? ['jwt'],
      cookies: config.cookie_names ?? [],
      headers: config.header_names ?? ['authorization'],
      keyClaim: config.key_claim_name ?? 'iss',
      base64: config.secret_is_base64 ?? false,
      verify: config.claims_to_verify ?? [],
      anonymous: config.anonymous ?? null,
      preflight: config.run_on_preflight ?? true,
      maxExp: config.maximum_expiration ?? 0,
      leeway: config.leeway ?? 0,
      missing: { 'WWW-Authenticate': base },
      invalid: { 'WWW-Authenticate': `${base}${config.realm == null ? ' ' : ', '}error="invalid_token"` },
    };
    compiled.set(config, c);
  }
  return c;
}

const BEARER = /^\s*[Bb]earer\s+(\S+)/;

function cookie(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of (Array.isArray(header) ? header.join('; ') : header).split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      if (v !== '') return v;
    }
  }
  return undefined;
}

/** The token, or an error message (Kong's retrieve_token). */
function retrieve(pdk: Pdk, c: Compiled): string | { message: string } | null {
  for (const p of c.params) {
    const v = pdk.request.getQueryArg(p);
    if (Array.isArray(v)) return { message: 'Multiple tokens provided' };
    if (typeof v === 'string' && v !== '') return v;
  }
  if (c.cookies.length > 0) {
    const jar = pdk.request.getHeader('cookie');
    for (const n of c.cookies) {
      const v = cookie(jar, n);
      if (v !== undefined) return v;
    }
  }
  for (const h of c.headers) {
    const v = pdk.request.getHeader(h);
    const m = typeof v === 'string' ? BEARER.exec(v) : null;
    if (m !== null) return m[1];
  }
  return null;
}

type Failure = { status: number; body: string | Record<string, string>; headers: Readonly<Record<string, string>> };

async function authenticate(pdk: Pdk, c: Compiled): Promise<Failure | null> {
  const token = retrieve(pdk, c);
  if (token === null) return { status: 401, body: 'Unauthorized', headers: c.missing };
  const bad = (message: string | Record<string, string>): Failure => ({ status: 401, body: message, headers: c.invalid });
  if (typeof token !== 'string') return bad(token.message);
  if (token.length > MAX_TOKEN) return bad('Bad token; invalid JWT');
  const jwt = decodeToken(token);
  if (typeof jwt === 'string') return bad(`Bad token; ${jwt}`);
  const key = jwt.claims[c.keyClaim] ?? jwt.header[c.keyClaim];
  if (key === undefined || key === null) return bad(`No mandatory '${c.keyClaim}' in claims`);
  const found = typeof key === 'string' && key.length <= 512 ? await pdk.client.findCredential('jwt', key) : null;
  if (found === null) return bad(`No credentials found for given '${c.keyClaim}'`);
  if (jwt.alg !== (found.credential.algorithm ?? 'HS256')) return bad('Invalid algorithm');
  const ok = await pdk.client.verifyCredentialSignature(found.credential.id, jwt.alg as JwsAlgorithm, jwt.signingInput, jwt.signature, { secretIsBase64: c.base64 });
  if (!ok) return bad('Invalid signature');
  // Kong's ngx.time(): the time the request came, in seconds
  const now = Math.floor(pdk.request.getStartTime() / 1000);
  const errors = claimErrors(jwt.claims, c.verify, now, c.leeway);
  if (errors !== null) return bad(errors);
  if (c.maxExp > 0) {
    const exp = jwt.claims.exp;
    if (typeof exp !== 'number' || exp - now > c.maxExp) return bad({ exp: 'exceeds maximum allowed expiration' });
  }
  setConsumer(pdk, found.consumer, found.credential, key as string);
  pdk.ctx.set('authenticated_jwt_token', token);
  return null;
}

export async function access(pdk: Pdk, config: Config): Promise<void> {
  const c = compile(config);
  if (!c.preflight && pdk.request.getMethod() === 'OPTIONS') return;
  if (alreadyAuthenticated(pdk, c.anonymous)) return;
  const failed = await authenticate(pdk, c);
  if (failed === null) return;
  if (c.anonymous !== null) return authenticateAnonymous(pdk, c.anonymous);
  // Kong's jwt answers with kong.response.exit and a table: JSON whatever the Accept
  const body = typeof failed.body === 'string' ? { message: failed.body } : failed.body;
  pdk.response.exit(failed.status, body, { ...failed.headers, 'Content-Type': 'application/json; charset=utf-8' });
}
