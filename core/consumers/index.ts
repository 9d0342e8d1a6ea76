import { createHash } from 'node:crypto';
import type { ConsumerInput, CredentialsInput } from '../config/types.ts';
import { badPasswordHash, VerifiedCache } from './passwords.ts';

export { hashPassword, verifyPassword, badPasswordHash, SCRYPT_DEFAULTS } from './passwords.ts';

/** Credential kinds, by Kong's plugin names (an ACL group is stored as a credential, as Kong does). */
export const CREDENTIAL_KINDS = ['key-auth', 'basic-auth', 'jwt', 'acl'] as const;
export type CredentialKind = (typeof CREDENTIAL_KINDS)[number];

/** What plugins may see of a consumer: never a credential. */
export type Consumer = {
  readonly id: string;
  readonly username: string;
  readonly customId: string | null;
  readonly tags: readonly string[];
};

/** A credential as the host holds it; `secret` fields stay on the host. */
export type Credential = {
  readonly id: string;
  readonly kind: CredentialKind;
  readonly consumerId: string;
  /** The lookup key: key-auth `key`, basic-auth `username`, jwt `key` (the `iss`), acl `group`. */
  readonly key: string;
  /** Kong's fields of this kind as written in the config (password_hash, secret, rsa_public_key, algorithm...). */
  readonly fields: Readonly<Record<string, string>>;
};

export type Match = { readonly consumer: Consumer; readonly credential: Credential };

/** Field of each kind that is its lookup key. */
const KEY_FIELD: Readonly<Record<CredentialKind, string>> = { 'key-auth': 'key', 'basic-auth': 'username', jwt: 'key', acl: 'group' };
const JWT_HMAC = /^HS(256|384|512)$/;

/** A stable id for an entity the file gives none: the same on every reload and every worker. */
export function derivedId(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\0')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * A tenant's consumers and credentials, indexed once per config version: every lookup a
 * request needs (by id, username, custom id, credential key) is one Map get. Built by
 * ConsumerIndex.build, which checks what the schema cannot (uniqueness, per-kind rules)
 * and reports each problem with its path.
 */
export class ConsumerIndex {
  readonly tenant: string;
  readonly #byId = new Map<string, Consumer>();
  readonly #byUsername = new Map<string, Consumer>();
  readonly #byCustomId = new Map<string, Consumer>();
  /** `${kind}\0${key}` -> match. ACL groups are not unique, so they are not in here. */
  readonly #byKey = new Map<string, Match>();
  readonly #credentials = new Map<string, Credential>();
  readonly #groups = new Map<string, readonly string[]>();
  /** Consumer id -> its public record as JSON, encoded once (what crosses into the isolate). */
  readonly #json = new Map<string, string>();
  readonly #verified = new VerifiedCache();

  private constructor(tenant: string) {
    this.tenant = tenant;
  }

  /** Indexes `input` (validated by the config schema); problems are appended to `errors`, each naming `at`'s path. */
  static build(tenant: string, input: readonly ConsumerInput[], at: string, errors: string[]): ConsumerIndex {
    const ix = new ConsumerIndex(tenant);
    // id -> who took it, as a function making its path: paths are only spelled out for errors
    const where = new Map<string, () => string>();
    const claim = (id: string, path: () => string): void => {
      const prev = where.get(id);
      if (prev !== undefined) errors.push(`${path()}.id: id "${id}" is already used at ${prev()}`);
      else where.set(id, path);
    };
    for (let i = 0; i < input.length; i++) {
      const c = input[i];
      const path = () => `${at}.consumers[${i}]`;
      const id = c.id ?? derivedId(tenant, 'consumer', c.username);
      claim(id, path);
      const consumer: Consumer = Object.freeze({ id, username: c.username, customId: c.customId ?? null, tags: Object.freeze(c.tags === undefined ? [] : [...c.tags]) });
      const prevUser = ix.#byUsername.get(c.username);
      if (prevUser !== undefined) errors.push(`${path()}.username: username "${c.username}" is already taken by consumer ${prevUser.id}`);
      else ix.#byUsername.set(c.username, consumer);
      if (c.customId !== undefined) {
        const prev = ix.#byCustomId.get(c.customId);
        if (prev !== undefined) errors.push(`${path()}.customId: custom id "${c.customId}" is already taken by consumer ${prev.id}`);
        else ix.#byCustomId.set(c.customId, consumer);
      }
      if (!ix.#byId.has(id)) ix.#byId.set(id, consumer);
      ix.#json.set(id, JSON.stringify(consumer));
      if (c.credentials !== undefined) ix.#addCredentials(consumer, c.credentials, path, claim, errors);
    }
    return ix;
  }

  #addCredentials(consumer: Consumer, creds: CredentialsInput, at: () => string, claim: (id: string, path: () => string) => void, errors: string[]): void {
    const groups: string[] = [];
    for (const kind of CREDENTIAL_KINDS) {
      const list = creds[kind] as readonly Record<string, string | undefined>[] | undefined;
      if (list === undefined) continue;
      for (let k = 0; k < list.length; k++) {
        const raw = list[k];
        const path = () => `${at()}.credentials.${kind}[${k}]`;
        const key = raw[KEY_FIELD[kind]]!;
        const id = raw.id ?? derivedId(this.tenant, consumer.id, kind, key);
        claim(id, path);
        const bad = kindProblem(kind, raw);
        if (bad !== null) errors.push(`${path()}.${bad}`);
        const { id: _id, ...fields } = raw as Record<string, string>;
        const credential: Credential = Object.freeze({ id, kind, consumerId: consumer.id, key, fields: Object.freeze(fields) });
        this.#credentials.set(id, credential);
        if (kind === 'acl') {
          if (groups.includes(key)) errors.push(`${path()}.group: consumer "${consumer.username}" is already in group "${key}"`);
          groups.push(key);
          continue;
        }
        const slot = `${kind}\0${key}`;
        const prev = this.#byKey.get(slot);
        if (prev !== undefined) errors.push(`${path()}.${KEY_FIELD[kind]}: ${kind} ${KEY_FIELD[kind]} is already used by consumer "${prev.consumer.username}"`);
        else this.#byKey.set(slot, Object.freeze({ consumer, credential }));
      }
    }
    if (groups.length > 0) this.#groups.set(consumer.id, Object.freeze(groups));
  }

  get size(): number {
    return this.#byId.size;
  }

  byId(id: string): Consumer | undefined {
    return this.#byId.get(id);
  }

  byUsername(username: string): Consumer | undefined {
    return this.#byUsername.get(username);
  }

  byCustomId(customId: string): Consumer | undefined {
    return this.#byCustomId.get(customId);
  }

  /** By id, else by username: how plugin config (`consumer:`, Kong's `anonymous`) names a consumer. */
  find(idOrUsername: string): Consumer | undefined {
    return this.#byId.get(idOrUsername) ?? this.#byUsername.get(idOrUsername);
  }

  /** The credential of `kind` whose lookup key is `key` (key-auth key, basic-auth username, jwt key), with its consumer. */
  credential(kind: Exclude<CredentialKind, 'acl'>, key: string): Match | undefined {
    return this.#byKey.get(`${kind}\0${key}`);
  }

  credentialById(id: string): Credential | undefined {
    return this.#credentials.get(id);
  }

  basicAuth(username: string): Match | undefined {
    return this.credential('basic-auth', username);
  }

  /** A JWT credential by its `key`, the value of the token's `iss` claim (Kong's key_claim_name default). */
  jwt(key: string): Match | undefined {
    return this.credential('jwt', key);
  }

  /** The ACL groups of a consumer, in config order. */
  groups(consumerId: string): readonly string[] {
    return this.#groups.get(consumerId) ?? NO_GROUPS;
  }

  /** The public record of a consumer as JSON, encoded at build time. */
  consumerJson(id: string): string | undefined {
    return this.#json.get(id);
  }

  /** Checks a basic-auth password (constant time over the hash; a verified one is remembered for this config version). */
  verifyPassword(credential: Credential, password: string): Promise<boolean> {
    if (credential.kind !== 'basic-auth') return Promise.resolve(false);
    return this.#verified.verify(credential.id, credential.fields.password_hash, password);
  }
}

const NO_GROUPS: readonly string[] = Object.freeze([]);

/** What is wrong with one credential beyond its schema, as `field: message`, or null. */
function kindProblem(kind: CredentialKind, c: Record<string, string | undefined>): string | null {
  if (kind === 'basic-auth') {
    const bad = badPasswordHash(c.password_hash ?? '');
    return bad === null ? null : `password_hash: ${bad}`;
  }
  if (kind === 'jwt') {
    const hmac = JWT_HMAC.test(c.algorithm ?? 'HS256');
    if (hmac && c.secret === undefined) return `secret: algorithm ${c.algorithm} needs a secret`;
    if (!hmac && c.rsa_public_key === undefined) return `rsa_public_key: algorithm ${c.algorithm} needs a public key (PEM)`;
  }
  return null;
}
