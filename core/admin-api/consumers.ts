import { randomBytes, randomUUID } from 'node:crypto';
import type { ConfigInput } from '../config/types.ts';
import { derivedId, hashPassword, type CredentialKind } from '../consumers/index.ts';
import { requireWriter } from './auth.ts';
import { commit, mergePatch, page, rawTenant, tenantIndex, visibleTenant, type Answer, type Call } from './resources.ts';
import { ApiError, type RawConfig } from './store.ts';

/**
 * /tenants/{tenant}/consumers and their credentials, as Kong's admin API has them:
 * /consumers/{username or id}/key-auth, /basic-auth, /jwt, /acls. Consumers are stored in
 * the config file (tenants[].consumers, credentials nested under each consumer); the
 * file's schema and compile checks validate every change, as for the other entities.
 */
type Raw = Record<string, unknown>;

/** Endpoint name -> credential kind (Kong's ACL endpoint is /acls). */
export const CREDENTIAL_ENDPOINTS: Readonly<Record<string, CredentialKind>> = { 'key-auth': 'key-auth', 'basic-auth': 'basic-auth', jwt: 'jwt', acls: 'acl' };
const KEY_FIELD: Readonly<Record<CredentialKind, string>> = { 'key-auth': 'key', 'basic-auth': 'username', jwt: 'key', acl: 'group' };
const OWN_FIELDS = ['id', 'username', 'customId', 'tags'] as const;

function consumerId(tenant: string, c: Raw): string {
  return typeof c.id === 'string' ? c.id : derivedId(tenant, 'consumer', String(c.username));
}

function consumerView(tenant: string, c: Raw): Raw {
  const out: Raw = { id: consumerId(tenant, c) };
  for (const k of OWN_FIELDS) if (k !== 'id' && c[k] !== undefined) out[k] = c[k];
  return out;
}

function credentialId(tenant: string, owner: string, kind: CredentialKind, c: Raw): string {
  return typeof c.id === 'string' ? c.id : derivedId(tenant, owner, kind, String(c[KEY_FIELD[kind]]));
}

/** A credential as the API shows it: never a password hash (Kong shows the rest, jwt secrets included). */
function credentialView(tenant: string, owner: string, kind: CredentialKind, c: Raw): Raw {
  const { password_hash: _h, ...rest } = c;
  return { ...rest, id: credentialId(tenant, owner, kind, c), consumer: { id: owner } };
}

/** By id, else by username (Kong's /consumers/{username or id}). */
function findConsumer(tenant: string, list: readonly Raw[], key: string): number {
  const byId = list.findIndex((c) => consumerId(tenant, c) === key);
  return byId >= 0 ? byId : list.findIndex((c) => c.username === key);
}

function noCredentials(body: Raw): void {
  if ('credentials' in body) throw new ApiError('ISG_ERR_ADMIN_BAD_BODY', 'credentials: change them through /tenants/{tenant}/consumers/{consumer}/key-auth, /basic-auth, /jwt or /acls');
}

function rawConsumers(t: Raw): Raw[] {
  return (t.consumers ??= []) as Raw[];
}

function notFound(call: Call): ApiError {
  return new ApiError('ISG_ERR_ADMIN_NOT_FOUND', `tenant "${call.params.tenant}" has no consumer "${call.params.id}"`);
}

function readConsumer(call: Call, input: ConfigInput): { tenant: string; consumer: Raw } {
  const { tenant } = visibleTenant(call, input);
  const list = (tenant.consumers ?? []) as unknown as Raw[];
  const i = findConsumer(tenant.name, list, call.params.id!);
  if (i < 0) throw notFound(call);
  return { tenant: tenant.name, consumer: list[i] };
}

/** The answer body after a change: the consumer at `index` of tenant `ti`, read from the new config. */
const consumerAt = (ti: number, index: number) => (input: ConfigInput) => {
  const t = input.tenants[ti];
  return consumerView(t.name, t.consumers[index] as unknown as Raw);
};

export const consumerHandlers = {
  async list(call: Call): Promise<Answer> {
    const cur = await call.store.read();
    const { tenant } = visibleTenant(call, cur.input);
    return page(call, (tenant.consumers ?? []).map((c) => consumerView(tenant.name, c as unknown as Raw)), cur.etag);
  },

  async get(call: Call): Promise<Answer> {
    const cur = await call.store.read();
    const { tenant, consumer } = readConsumer(call, cur.input);
    return { status: 200, body: consumerView(tenant, consumer), etag: cur.etag };
  },

  async create(call: Call): Promise<Answer> {
    requireWriter(call.principal);
    const body = await call.body();
    noCredentials(body);
    return commit(call, 201, (raw) => {
      const t = rawTenant(call, raw);
      const list = rawConsumers(t);
      const next: Raw = { id: randomUUID(), ...body };
      if (list.some((c) => consumerId(String(t.name), c) === next.id)) throw new ApiError('ISG_ERR_ADMIN_CONFLICT', `tenant "${t.name}" already has a consumer with id "${next.id}"`);
      if (list.some((c) => c.username === next.username)) throw new ApiError('ISG_ERR_ADMIN_CONFLICT', `tenant "${t.name}" already has a consumer "${next.username}"`);
      return consumerAt(tenantIndex(raw, t), list.push(next) - 1);
    });
  },

  /** PUT: replaces the consumer's own fields (its credentials stay), or creates it: the path is its id, or its username when the body has none. */
  async put(call: Call): Promise<Answer> {
    requireWriter(call.principal);
    const body = await call.body();
    noCredentials(body);
    return commit(call, 200, (raw) => {
      const t = rawTenant(call, raw);
      const list = rawConsumers(t);
      const key = call.params.id!;
      let index = findConsumer(String(t.name), list, key);
      if (index < 0) {
        const next: Raw = body.username === undefined ? { id: randomUUID(), username: key, ...body } : { id: key, ...body };
        index = list.push(next) - 1;
      } else {
        const old = list[index];
        list[index] = { id: consumerId(String(t.name), old), ...body, ...(old.credentials === undefined ? {} : { credentials: old.credentials }) };
      }
      return consumerAt(tenantIndex(raw, t), index);
    });
  },

  async patch(call: Call): Promise<Answer> {
    requireWriter(call.principal);
    const body = await call.body();
    noCredentials(body);
    return commit(call, 200, (raw) => {
      const t = rawTenant(call, raw);
      const list = rawConsumers(t);
      const index = findConsumer(String(t.name), list, call.params.id!);
      if (index < 0) throw notFound(call);
      // The id is pinned first: a derived id must not change when the username does.
      list[index] = mergePatch({ ...list[index], id: consumerId(String(t.name), list[index]) }, body) as Raw;
      return consumerAt(tenantIndex(raw, t), index);
    });
  },

  async remove(call: Call): Promise<Answer> {
    requireWriter(call.principal);
    return commit(call, 204, (raw) => {
      const t = rawTenant(call, raw);
      const list = rawConsumers(t);
      const index = findConsumer(String(t.name), list, call.params.id!);
      if (index < 0) throw notFound(call);
      list.splice(index, 1);
      return () => undefined;
    });
  },
};

/** The body of a credential write, made storable: a generated key-auth key, a basic-auth password hashed. */
function storable(kind: CredentialKind, body: Raw, creating: boolean): Raw {
  const out = { ...body };
  delete out.consumer;
  if ('password_hash' in out) throw new ApiError('ISG_ERR_ADMIN_BAD_BODY', 'password_hash: give `password`; the API stores only its hash');
  if (kind === 'basic-auth' && 'password' in out) {
    if (typeof out.password !== 'string' || out.password.length === 0 || out.password.length > 1024) throw new ApiError('ISG_ERR_ADMIN_BAD_BODY', 'password: must be a string of 1 to 1024 characters');
    out.password_hash = hashPassword(out.password);
    delete out.password;
  } else if (kind === 'basic-auth' && creating) {
    throw new ApiError('ISG_ERR_ADMIN_BAD_BODY', 'password: required');
  }
  if (kind === 'key-auth' && creating && out.key === undefined) out.key = randomBytes(24).toString('base64url');
  return out;
}

/** Handlers of /tenants/{tenant}/consumers/{id}/<endpoint>[/{credential}]. */
export function credentialHandlers(endpoint: string) {
  const kind = CREDENTIAL_ENDPOINTS[endpoint];
  const what = `${kind} credential`;
  const listOf = (c: Raw): Raw[] => {
    const creds = ((c.credentials ??= {}) as Raw);
    return (creds[kind] ??= []) as Raw[];
  };
  /** By id, or by its key field (Kong: /key-auth/{key or id}). */
  const find = (tenant: string, owner: string, list: readonly Raw[], key: string) => {
    const i = list.findIndex((c) => credentialId(tenant, owner, kind, c) === key);
    return i >= 0 ? i : list.findIndex((c) => c[KEY_FIELD[kind]] === key);
  };
  /** Runs a change on the consumer of the path in the raw config; `edit` returns where the answer's credential is. */
  const change = (call: Call, status: number, edit: (tenant: string, owner: string, list: Raw[]) => number | null) =>
    commit(call, status, (raw: RawConfig) => {
      const t = rawTenant(call, raw);
      const consumers = rawConsumers(t);
      const ci = findConsumer(String(t.name), consumers, call.params.id!);
      if (ci < 0) throw notFound(call);
      const owner = consumerId(String(t.name), consumers[ci]);
      consumers[ci].id = owner; // pinned: a derived id must not move under its credentials
      const at = edit(String(t.name), owner, listOf(consumers[ci]));
      const ti = tenantIndex(raw, t);
      return (input: ConfigInput) => {
        if (at === null) return undefined;
        const tt = input.tenants[ti];
        const c = tt.consumers[ci];
        return credentialView(tt.name, owner, kind, (c.credentials as Raw)[kind] !== undefined ? ((c.credentials as Raw)[kind] as Raw[])[at] : {});
      };
    });
  const missing = (call: Call) => new ApiError('ISG_ERR_ADMIN_NOT_FOUND', `consumer "${call.params.id}" has no ${what} "${call.params.credential}"`);

  return {
    async list(call: Call): Promise<Answer> {
      const cur = await call.store.read();
      const { tenant, consumer } = readConsumer(call, cur.input);
      const owner = consumerId(tenant, consumer);
      const creds = ((consumer.credentials as Raw | undefined)?.[kind] ?? []) as Raw[];
      return page(call, creds.map((c) => credentialView(tenant, owner, kind, c)), cur.etag);
    },
    async get(call: Call): Promise<Answer> {
      const cur = await call.store.read();
      const { tenant, consumer } = readConsumer(call, cur.input);
      const owner = consumerId(tenant, consumer);
      const creds = ((consumer.credentials as Raw | undefined)?.[kind] ?? []) as Raw[];
      const i = find(tenant, owner, creds, call.params.credential!);
      if (i < 0) throw missing(call);
      return { status: 200, body: credentialView(tenant, owner, kind, creds[i]), etag: cur.etag };
    },
    async create(call: Call): Promise<Answer> {
      requireWriter(call.principal);
      const body = await call.body();
      return change(call, 201, (_t, _o, list) => list.push({ id: randomUUID(), ...storable(kind, body, true) }) - 1);
    },
    /** PUT: creates or replaces the credential with the id of the path. */
    async put(call: Call): Promise<Answer> {
      requireWriter(call.principal);
      const body = await call.body();
      return change(call, 200, (tenant, owner, list) => {
        const i = find(tenant, owner, list, call.params.credential!);
        const next = { ...storable(kind, body, true), id: i < 0 ? call.params.credential! : credentialId(tenant, owner, kind, list[i]) };
        if (i < 0) return list.push(next) - 1;
        list[i] = next;
        return i;
      });
    },
    async patch(call: Call): Promise<Answer> {
      requireWriter(call.principal);
      const body = await call.body();
      return change(call, 200, (tenant, owner, list) => {
        const i = find(tenant, owner, list, call.params.credential!);
        if (i < 0) throw missing(call);
        list[i] = mergePatch({ ...list[i], id: credentialId(tenant, owner, kind, list[i]) }, storable(kind, body, false)) as Raw;
        return i;
      });
    },
    async remove(call: Call): Promise<Answer> {
      requireWriter(call.principal);
      return change(call, 204, (tenant, owner, list) => {
        const i = find(tenant, owner, list, call.params.credential!);
        if (i < 0) throw missing(call);
        list.splice(i, 1);
        return null;
      });
    },
  };
}
