import type { Pdk } from '../../pdk-bridge/types.ts';
import { decodeBase64 } from '../base64.ts';
import { alreadyAuthenticated, authenticateAnonymous, setConsumer } from '../kong-auth.ts';
import { kongError } from '../kong-error.ts';

/**
 * Kong's basic-auth (3.x): `Authorization: Basic base64(username:password)` (or
 * Proxy-Authorization, tried first), the username looked up among the tenant's basic-auth
 * credentials and the password checked on the host (client.verifyPassword: scrypt; the
 * hash never enters the isolate). Every failure is 401 `Unauthorized` with
 * `WWW-Authenticate: Basic realm="service"`, or the `anonymous` consumer.
 */
type Config = { hide_credentials?: boolean; anonymous?: string | null; realm?: string };

export const name = 'basic-auth';
export const version = '1.0.0';
export const priority = 1100; // Kong's

const BASIC = /^\s*[Bb]asic\s*(\S+)/;
const MAX_USERNAME = 256;
const MAX_PASSWORD = 1024;
/** No credential has this id (ids start with a letter or digit). */
const NO_CREDENTIAL = '-';

type Compiled = { hide: boolean; anonymous: string | null; challenge: Readonly<Record<string, string>> };
const compiled = new WeakMap<object, Compiled>();

function compile(config: Config): Compiled {
  let c = compiled.get(config);
  if (c === undefined) {
    c = { hide: config.hide_credentials ?? false, anonymous: config.anonymous ?? null, challenge: { 'WWW-Authenticate': `Basic realm="${config.realm ?? 'service'}"` } };
    compiled.set(config, c);
  }
  return c;
}

/** [username, password] of a Basic header, or null (Kong: `([^:]+):(.*)` of the decoded text). */
function credentials(pdk: Pdk, header: string, hide: boolean): [string, string] | null {
  const v = pdk.request.getHeader(header);
  if (hide && v !== undefined) pdk.serviceRequest.clearHeader(header);
  if (typeof v !== 'string') return null;
  const m = BASIC.exec(v);
  const text = m === null ? null : decodeBase64(m[1]);
  if (text === null) return null;
  const colon = text.indexOf(':');
  if (colon <= 0) return null;
  return [text.slice(0, colon), text.slice(colon + 1)];
}

/**
 * true when authenticated. An unknown username still pays a password check (the host
 * hashes against a stand-in for an unknown id): the answer's time does not tell which
 * usernames exist.
 */
async function authenticate(pdk: Pdk, c: Compiled): Promise<boolean> {
  let guess: string | null = null;
  for (const header of ['proxy-authorization', 'authorization']) {
    const pair = credentials(pdk, header, c.hide);
    if (pair === null || pair[0].length > MAX_USERNAME || pair[1].length > MAX_PASSWORD) continue;
    const found = await pdk.client.findCredential('basic-auth', pair[0]);
    if (found === null) {
      guess = pair[1];
      continue;
    }
    if (!(await pdk.client.verifyPassword(found.credential.id, pair[1]))) return false;
    setConsumer(pdk, found.consumer, found.credential, pair[0]);
    return true;
  }
  if (guess !== null) await pdk.client.verifyPassword(NO_CREDENTIAL, guess);
  return false;
}

export async function access(pdk: Pdk, config: Config): Promise<void> {
  const c = compile(config);
  if (alreadyAuthenticated(pdk, c.anonymous)) return;
  const present = pdk.request.getHeader('authorization') !== undefined || pdk.request.getHeader('proxy-authorization') !== undefined;
  if (present && (await authenticate(pdk, c))) return;
  if (c.anonymous !== null) return authenticateAnonymous(pdk, c.anonymous);
  kongError(pdk, 401, 'Unauthorized', c.challenge);
}
