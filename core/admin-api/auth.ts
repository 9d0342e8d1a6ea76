import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AdminTokenInput } from '../config/types.ts';
import { ApiError } from './store.ts';

/** Who sent an admin request: an operator token, a tenant token, or nobody (no token configured: read-only). */
export type Principal =
  | { kind: 'operator'; name: string }
  | { kind: 'tenant'; name: string; tenant: string }
  | { kind: 'anonymous'; name: 'anonymous' };

type Hashed = { token: AdminTokenInput; digest: Buffer };
// Decoded once per version of the file (the store hands out the same tokens array until the file changes).
const decoded = new WeakMap<readonly AdminTokenInput[], Hashed[]>();

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/**
 * Checks the bearer token of `req` against the configured tokens (SHA-256, compared in
 * constant time). With no token configured, only loopback clients are answered, read-only.
 */
export function authenticate(req: IncomingMessage, tokens: readonly AdminTokenInput[]): Principal {
  if (tokens.length === 0) {
    if (!LOOPBACK.test(req.socket.remoteAddress ?? '')) {
      throw new ApiError('ISG_ERR_ADMIN_READ_ONLY', 'no admin token is configured: the admin API answers only loopback clients, read-only (add admin.tokens with the sha256 of a token to the config)');
    }
    return { kind: 'anonymous', name: 'anonymous' };
  }
  const header = req.headers.authorization;
  const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (m === null) throw new ApiError('ISG_ERR_ADMIN_UNAUTHORIZED', undefined, { wwwAuthenticate: 'Bearer realm="isogate"' });
  const digest = createHash('sha256').update(m[1]).digest();
  let list = decoded.get(tokens);
  if (list === undefined) decoded.set(tokens, (list = tokens.map((token) => ({ token, digest: Buffer.from(token.sha256, 'hex') }))));
  let found: AdminTokenInput | null = null;
  // Compare with every token, whatever matched first: the time taken says nothing about which one matched.
  for (const h of list) if (timingSafeEqual(h.digest, digest) && found === null) found = h.token;
  if (found === null) {
    throw new ApiError('ISG_ERR_ADMIN_UNAUTHORIZED', 'the bearer token is not valid', { wwwAuthenticate: 'Bearer realm="isogate", error="invalid_token"' });
  }
  return found.tenant === undefined ? { kind: 'operator', name: found.name } : { kind: 'tenant', name: found.name, tenant: found.tenant };
}

/** Throws unless `p` may write at all (anonymous: read-only). */
export function requireWriter(p: Principal): void {
  if (p.kind === 'anonymous') throw new ApiError('ISG_ERR_ADMIN_READ_ONLY');
}

/** Throws 403 unless `p` is an operator. */
export function requireOperator(p: Principal, what: string): void {
  requireWriter(p);
  if (p.kind !== 'operator') throw new ApiError('ISG_ERR_ADMIN_FORBIDDEN', `only an operator token may ${what}`);
}

/** Whether `p` sees tenant `name`: a tenant token sees only its own (others answer 404, as if they did not exist). */
export function sees(p: Principal, name: string): boolean {
  return p.kind !== 'tenant' || p.tenant === name;
}
