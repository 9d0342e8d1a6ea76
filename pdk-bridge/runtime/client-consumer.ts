// In-isolate runtime: the consumer half of pdk.client (client.ts spreads it into
// pdk.client): who the request is, once an authentication plugin has said so.
//
// Kong's kong.client.authenticate(consumer, credential) sets the request's consumer and
// credential; either may be nil, not both. Here the consumer is an object with `id` (what
// the host's consumer lookup hands out) or null (a credential from an outside identity
// provider, no consumer of the tenant); the credential an object with `id` (and `kind`)
// or null (Kong's anonymous consumer: a consumer with no credential). Only these fields are
// read, here in the isolate, each a capped string: the host gets the operation
// ['auth', consumerId, credentialId, username, customId, tags, kind] and checks every one
// that is not null against its consumer index (unknown id, or a field that differs from
// the record: the call is a bad_return). A later plugin of the same call sees what was
// passed (those fields); later calls see the host's record.
//
// After authenticate, the plugins after the current one in this phase, and the later
// phases, run the chain of the consumer's scoped plugins (dispatcher.ts switches).
// Arguments come from plugin code: typed `any`, each field checked here before use.
import { RUNTIME_PHASES as PHASES } from '../phases.ts';
import { $create, $freeze, $isArray, $keys, $stringify, ANY_PHASE, bare, checkPhase, emit, list, mine, realm, request } from './prelude.ts';
import { consumerChain } from './consumer-chains.ts';
import { asyncCall, shortStr } from './async.ts';

const AUTH_PHASES = PHASES.masks.BEFORE_UPSTREAM; // rewrite, access: authenticate and the credential checks
const LOOKUP_PHASES = PHASES.masks.LOOKUP_PHASES; // rewrite, access, response: the consumer lookups

export let authConsumer: Readonly<Record<string, unknown>> | null = null; // consumer set by authenticate in this call (a frozen view), or null
export let authCredential: Readonly<Record<string, unknown>> | null = null;
export let authSet = false;        // authenticate was called in this call (then the views above win over the snapshot)
export let authChain = -1;         // chain to switch to before the next plugin runs, or -1

function authField(v: any, what: string, optional: boolean): string | null {
  if (v === undefined || (optional && v === null)) return null;
  if (typeof v !== 'string') throw new realm.TypeError(`${what} must be a string, got ${v === null ? 'null' : typeof v}`);
  if (v.length === 0 || v.length > CAPS.maxAuthFieldChars) throw new realm.RangeError(`${what} must have 1 to ${CAPS.maxAuthFieldChars} characters`);
  return v;
}

function authTags(v: any): readonly string[] | null {
  if (v === undefined || v === null) return null;
  if (!$isArray(v)) throw new realm.TypeError('consumer.tags must be an array of strings');
  const n = v.length;
  if (typeof n !== 'number' || n > CAPS.maxAuthTags) throw new realm.RangeError(`consumer.tags: at most ${CAPS.maxAuthTags} tags`);
  const out = list<string>();
  for (let i = 0; i < n; i++) out[i] = authField(v[i], 'consumer.tags[' + i + ']', false)!;
  return $freeze(out);
}

function authObject(v: any, what: string): any {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'object') throw new realm.TypeError(`${what} must be an object or null, got ${typeof v}`);
  return v;
}

/**
 * A record of the request snapshot (runtime realm) as getConsumer/getCredential hand it
 * out: copied into the calling realm (its JSON.parse; tags an array of that realm), without
 * prototypes on its objects, frozen like the views authenticate makes.
 */
function frozenRecord(src: any): any {
  if (src === undefined || src === null) return null;
  const r = bare(realm.parse($stringify(src)));
  const keys = $keys(r);
  for (let i = 0; i < keys.length; i++) {
    const v = r[keys[i]];
    if (v !== null && typeof v === 'object') $freeze(bare(v));
  }
  return $freeze(r);
}

// Lookups (async: loadConsumer, findCredential, getConsumerGroups in rewrite, access and
// response; verifyPassword, verifyCredentialSignature in rewrite and access): the tenant's
// consumers and credentials are on the host (pdk-bridge/host/services/consumers.ts). What comes back is a consumer's
// public record, a credential's id and kind, or a boolean: a password is checked and a
// signature verified on the host, so no hash, secret or public key enters the isolate.
// The host's answer is checked by the service (pdk-bridge/host/services/consumers.ts); typed by the PdkClientConsumer interface.
function lookup(fn: string, method: string, values: readonly unknown[], phases = LOOKUP_PHASES): Promise<any> {
  const a = list();
  for (let i = 0; i < values.length; i++) a[i] = values[i];
  return asyncCall('client.' + fn, phases, 'consumers', method, a, false);
}

export const pdkClientConsumer = {
  /** Kong's load_consumer: the consumer of that id (else, byUsername, of that username), or null. */
  loadConsumer(idOrUsername: unknown, byUsername?: unknown) {
    return lookup('loadConsumer', 'load', [shortStr(idOrUsername, 'client.loadConsumer: id or username', CAPS.maxAuthFieldChars), byUsername === true]);
  },
  /** { consumer, credential } of the key-auth key, basic-auth username or jwt key (iss), or null. */
  findCredential(kind: unknown, key: unknown) {
    return lookup('findCredential', 'find', [shortStr(kind, 'client.findCredential: kind', 16), shortStr(key, 'client.findCredential: key', CAPS.maxCredentialKeyChars)]);
  },
  /** The ACL groups of a consumer (default: the authenticated one), or null for an unknown consumer. */
  getConsumerGroups(consumerId?: unknown) {
    let id: unknown = consumerId;
    if (id === undefined) {
      const c = pdkClientConsumer.getConsumer() as { id?: unknown } | null;
      id = c === null ? undefined : c.id;
      if (id === undefined) throw new realm.Error('client.getConsumerGroups: no consumer is authenticated');
    }
    return lookup('getConsumerGroups', 'groups', [shortStr(id, 'client.getConsumerGroups: consumer id', CAPS.maxAuthFieldChars)]);
  },
  /** basic-auth: true when `password` is the credential's; checked on the host (scrypt). */
  verifyPassword(credentialId: unknown, password: unknown) {
    return lookup('verifyPassword', 'verifyPassword', [shortStr(credentialId, 'client.verifyPassword: credential id', CAPS.maxAuthFieldChars), shortStr(password, 'client.verifyPassword: password', CAPS.maxPasswordChars)], AUTH_PHASES);
  },
  /**
   * jwt: true when `signature` (base64url) signs `signingInput` under the credential's
   * secret or public key, with `alg` the credential's own algorithm; verified on the host.
   */
  verifyCredentialSignature(credentialId: unknown, alg: unknown, signingInput: unknown, signature: unknown, opts?: unknown) {
    const b64 = opts !== undefined && opts !== null && typeof opts === 'object' && (opts as { secretIsBase64?: unknown }).secretIsBase64 === true;
    return lookup('verifyCredentialSignature', 'verifySignature', [
      shortStr(credentialId, 'client.verifyCredentialSignature: credential id', CAPS.maxAuthFieldChars),
      shortStr(alg, 'client.verifyCredentialSignature: algorithm', 16),
      shortStr(signingInput, 'client.verifyCredentialSignature: signing input', CAPS.maxSigningInputChars),
      shortStr(signature, 'client.verifyCredentialSignature: signature', CAPS.maxSignatureChars),
      b64,
    ], AUTH_PHASES);
  },
  /** The authenticated consumer ({ id, username, customId, tags }), or null. Never a credential. */
  getConsumer() {
    checkPhase('client.getConsumer', ANY_PHASE);
    if (authSet) return authConsumer;
    const rm = mine();
    if (rm.consumer === undefined) rm.consumer = frozenRecord(request().c);
    return rm.consumer;
  },
  /** The credential the consumer authenticated with ({ id, kind, consumer: { id } }), or null. Never its key, password or secret. */
  getCredential() {
    checkPhase('client.getCredential', ANY_PHASE);
    if (authSet) return authCredential;
    const rm = mine();
    if (rm.credential === undefined) rm.credential = frozenRecord(request().cr);
    return rm.credential;
  },
  authenticate(consumer: any, credential: any) {
    checkPhase('client.authenticate', AUTH_PHASES);
    const co = authObject(consumer, 'consumer');
    const cr = authObject(credential, 'credential');
    if (co === null && cr === null) throw new realm.Error('either credential or consumer must be provided');
    // Each field is read once, into a local: a getter cannot answer one thing now and another later.
    const id = co === null ? null : authField(co.id, 'consumer.id', false);
    const username = co === null ? null : authField(co.username, 'consumer.username', false);
    const rawCustomId = co === null ? undefined : co.customId;
    const customId = authField(rawCustomId, 'consumer.customId', true);
    const tags = co === null ? null : authTags(co.tags);
    const credId = cr === null ? null : authField(cr.id, 'credential.id', false);
    const kind = cr === null ? null : authField(cr.kind, 'credential.kind', true);
    let chars = 16;
    const fields = [id, username, customId, credId, kind];
    for (let i = 0; i < fields.length; i++) if (fields[i] !== null) chars += fields[i]!.length;
    if (tags !== null) for (let i = 0; i < tags.length; i++) chars += tags[i].length;
    emit(['auth', id, credId, username, customId, tags, kind], chars);
    let view: Record<string, unknown> | null = null;
    if (id !== null) {
      view = $create(null) as Record<string, unknown>;
      view.id = id;
      if (username !== null) view.username = username;
      if (rawCustomId !== undefined) view.customId = customId;
      if (tags !== null) view.tags = tags;
      $freeze(view);
    }
    let cred: Record<string, unknown> | null = null;
    if (credId !== null) {
      cred = $create(null) as Record<string, unknown>;
      cred.id = credId;
      cred.kind = kind;
      if (id === null) cred.consumer = null;
      else { const owner = $create(null); owner.id = id; cred.consumer = $freeze(owner); }
      $freeze(cred);
    }
    authConsumer = view;
    authCredential = cred;
    authSet = true;
    authChain = consumerChain(id);
  },
};

/** A new call: nobody authenticated in it yet. */
export function beginAuth(): void {
  authChain = -1;
  authSet = false;
  authConsumer = null;
  authCredential = null;
}

/** The chain authenticate asked to switch to, taken (the dispatcher switches before the next plugin). */
export function takeAuthChain(): number {
  const c = authChain;
  authChain = -1;
  return c;
}

export function saveAuth(f: Record<string, any>): void {
  f.authChain = authChain; f.authSet = authSet; f.authConsumer = authConsumer; f.authCredential = authCredential;
}

export function restoreAuth(f: Record<string, any>): void {
  authChain = f.authChain; authSet = f.authSet; authConsumer = f.authConsumer; authCredential = f.authCredential;
}
