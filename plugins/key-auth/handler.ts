import type { Pdk } from '../../pdk-bridge/types.ts';
import { alreadyAuthenticated, authenticateAnonymous, setConsumer } from '../kong-auth.ts';
import { kongError } from '../kong-error.ts';

/**
 * Kong's key-auth (3.x): an API key from a header or the query (`key_names`, in order),
 * looked up among the tenant's key-auth credentials on the host (client.findCredential:
 * the key goes out, the consumer's public record comes back). Answers 401 with Kong's
 * messages and `WWW-Authenticate: Key` (`Key realm="..."` with `realm`), or falls back to
 * the `anonymous` consumer. `key_in_body`: the key may also be a field of a form, JSON or
 * multipart body (after the header and the query, per name, as Kong's). plugin.json's
 * `readsWhen: { body: "key_in_body" }` has only the routes of instances with it true buffer
 * their client body; the others stream it, as before.
 */
type Config = {
  key_names?: readonly string[];
  key_in_header?: boolean;
  key_in_query?: boolean;
  key_in_body?: boolean;
  hide_credentials?: boolean;
  anonymous?: string | null;
  run_on_preflight?: boolean;
  realm?: string | null;
};

export const name = 'key-auth';
export const version = '1.0.0';
export const priority = 1250; // Kong's
export const reads = ['body'];

const MAX_KEY = 16384;

type Compiled = { names: readonly string[]; header: boolean; query: boolean; body: boolean; hide: boolean; anonymous: string | null; preflight: boolean; challenge: Readonly<Record<string, string>> };
const compiled = new WeakMap<object, Compiled>();

function compile(config: Config): Compiled {
  let c = compiled.get(config);
  if (c === undefined) {
    c = {
      names: config.key_names ?? ['apikey'],
      header: config.key_in_header ?? true,
      query: config.key_in_query ?? true,
      body: config.key_in_body ?? false,
      hide: config.hide_credentials ?? false,
      anonymous: config.anonymous ?? null,
      preflight: config.run_on_preflight ?? true,
      challenge: { 'WWW-Authenticate': config.realm == null ? 'Key' : `Key realm="${config.realm}"` },
    };
    compiled.set(config, c);
  }
  return c;
}

/** The body's fields (form, JSON object, multipart), or null: none, over the buffer cap, or not parseable. */
function bodyFields(pdk: Pdk): Record<string, unknown> | null {
  try {
    const b = pdk.request.getBody();
    return b !== null && typeof b === 'object' && !Array.isArray(b) ? (b as Record<string, unknown>) : null;
  } catch {
    return null; // no Content-Type, another type, or a malformed body: no key there
  }
}

/** The body sent upstream without field `n` (hide_credentials). */
function hideInBody(pdk: Pdk, fields: Record<string, unknown>, n: string): void {
  const m = new Map(Object.entries(fields));
  m.delete(n);
  pdk.serviceRequest.setBody(Object.fromEntries(m)); // own properties: a __proto__ field stays one
}

/** The key the request carries, or an error message (Kong's). */
function findKey(pdk: Pdk, c: Compiled): string | { message: string } {
  let fields: Record<string, unknown> | null | undefined; // read once, on the first name that needs it
  for (const n of c.names) {
    let v: unknown;
    if (c.header) v = pdk.request.getHeader(n);
    if (v === undefined && c.query) v = pdk.request.getQueryArg(n);
    if (v === undefined && c.body) {
      if (fields === undefined) fields = bodyFields(pdk);
      if (fields !== null && Object.hasOwn(fields, n)) {
        v = fields[n];
        if (typeof v === 'string' && c.hide) hideInBody(pdk, fields, n);
        if (typeof v === 'number') v = String(v); // a JSON number key
        if (typeof v === 'string' && v !== '') return v;
        if (typeof v === 'string' || v === null) break;
      }
    }
    if (typeof v === 'string') {
      if (c.hide) {
        pdk.serviceRequest.clearHeader(n);
        pdk.serviceRequest.clearQueryArg(n);
      }
      if (v !== '') return v;
      break;
    }
    if (Array.isArray(v)) return { message: 'Duplicate API key found' };
  }
  return { message: 'No API key found in request' };
}

async function authenticate(pdk: Pdk, c: Compiled): Promise<string | null> {
  const key = findKey(pdk, c);
  if (typeof key !== 'string') return key.message;
  // No credential has a longer key (the config caps it); the lookup would refuse it.
  if (key.length > MAX_KEY) return 'Unauthorized';
  const found = await pdk.client.findCredential('key-auth', key);
  if (found === null) return 'Unauthorized';
  setConsumer(pdk, found.consumer, found.credential, found.credential.id);
  return null;
}

export async function access(pdk: Pdk, config: Config): Promise<void> {
  const c = compile(config);
  if (!c.preflight && pdk.request.getMethod() === 'OPTIONS') return;
  if (alreadyAuthenticated(pdk, c.anonymous)) return;
  const failed = await authenticate(pdk, c);
  if (failed === null) return;
  if (c.anonymous !== null) return authenticateAnonymous(pdk, c.anonymous);
  kongError(pdk, 401, failed, c.challenge);
}
