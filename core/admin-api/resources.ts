import { randomUUID } from 'node:crypto';
import type { ConfigInput, PluginInput, TenantInput } from '../config/types.ts';
import { scopeName } from '../config/chains.ts';
import { requireOperator, requireWriter, sees, type Principal } from './auth.ts';
import { ApiError, type AdminStore, type RawConfig } from './store.ts';

/** What a route handler gets: the caller, the path parameters, the query, the body. */
export type Call = {
  principal: Principal;
  store: AdminStore;
  params: { tenant?: string; id?: string; credential?: string };
  query: URLSearchParams;
  /** The request path without query (for `next` links). */
  path: string;
  ifMatch: string | undefined;
  body(): Promise<Record<string, unknown>>;
};

export type Answer = { status: number; body?: unknown; etag: string };

type Raw = Record<string, unknown>;
type Kind = 'services' | 'routes' | 'plugins';
const CHILDREN = ['services', 'routes', 'plugins', 'consumers'] as const;

// Kong's paging: `size` (default 100, at most 1000) and an opaque `offset` from the previous page.
const PAGE_DEFAULT = 100;
const PAGE_MAX = 1000;

export function page<T>(call: Call, items: readonly T[], etag: string): Answer {
  const sizeParam = call.query.get('size');
  const size = sizeParam === null ? PAGE_DEFAULT : Number(sizeParam);
  if (!Number.isInteger(size) || size < 1 || size > PAGE_MAX) throw new ApiError('ISG_ERR_ADMIN_BAD_BODY', `size: must be an integer from 1 to ${PAGE_MAX}`);
  const offsetParam = call.query.get('offset');
  let start = 0;
  if (offsetParam !== null) {
    start = Number(Buffer.from(offsetParam, 'base64url').toString());
    if (!Number.isInteger(start) || start < 0) throw new ApiError('ISG_ERR_ADMIN_BAD_BODY', 'offset: not an offset this API gave out');
  }
  const data = items.slice(start, start + size);
  const end = start + data.length;
  if (end >= items.length) return { status: 200, body: { data, next: null }, etag };
  const offset = Buffer.from(String(end)).toString('base64url');
  return { status: 200, body: { data, next: `${call.path}?size=${size}&offset=${offset}`, offset }, etag };
}

/** A tenant as the API shows it: its own fields; its services, routes and plugins have their own resources. */
function tenantView(t: TenantInput): Raw {
  const { services: _s, routes: _r, plugins: _p, consumers: _c, ...own } = t;
  return own;
}

/** Plugin instances are addressed by `id`; one without is `<name>@<scope>`, the suffix of the id the gateway logs. */
export function pluginId(p: Pick<PluginInput, 'id' | 'name' | 'route' | 'service' | 'consumer'>): string {
  return p.id ?? `${p.name}@${scopeName(p)}`;
}

function idOf(kind: Kind, e: Raw): string {
  return kind === 'plugins' ? pluginId(e as unknown as PluginInput) : String(e.name);
}

export function visibleTenant(call: Call, input: ConfigInput): { index: number; tenant: TenantInput } {
  const name = call.params.tenant!;
  const index = sees(call.principal, name) ? input.tenants.findIndex((t) => t.name === name) : -1;
  if (index < 0) throw new ApiError('ISG_ERR_ADMIN_NOT_FOUND', `no tenant "${name}"`);
  return { index, tenant: input.tenants[index] };
}

function rawTenants(raw: RawConfig): Raw[] {
  return (raw.tenants ??= []) as Raw[];
}

export function rawTenant(call: Call, raw: RawConfig): Raw {
  const name = call.params.tenant!;
  const t = sees(call.principal, name) ? rawTenants(raw).find((x) => x.name === name) : undefined;
  if (t === undefined) throw new ApiError('ISG_ERR_ADMIN_NOT_FOUND', `no tenant "${name}"`);
  return t;
}

/** RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Raw = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Raw) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** A tenant's fields only an operator may set: `http` (the hosts its plugins may call out to). */
const OPERATOR_FIELDS = ['http'] as const;

function checkOperatorFields(call: Call, before: Raw | undefined, after: Raw): void {
  if (call.principal.kind !== 'tenant') return;
  for (const k of OPERATOR_FIELDS) {
    if (JSON.stringify(after[k]) !== JSON.stringify(before?.[k])) throw new ApiError('ISG_ERR_ADMIN_FORBIDDEN', `${k}: only an operator token may set a tenant's outbound allowlist`);
  }
}

function noChildren(body: Raw): void {
  for (const k of CHILDREN) {
    if (k in body) throw new ApiError('ISG_ERR_ADMIN_BAD_BODY', `${k}: change a tenant's ${k} through /tenants/{tenant}/${k}`);
  }
}

// ---- /tenants ----------------------------------------------------------------

export async function listTenants(call: Call): Promise<Answer> {
  const cur = await call.store.read();
  return page(call, cur.input.tenants.filter((t) => sees(call.principal, t.name)).map(tenantView), cur.etag);
}

export async function getTenant(call: Call): Promise<Answer> {
  const cur = await call.store.read();
  return { status: 200, body: tenantView(visibleTenant(call, cur.input).tenant), etag: cur.etag };
}

export async function createTenant(call: Call): Promise<Answer> {
  requireOperator(call.principal, 'create tenants');
  const body = await call.body();
  return commit(call, 201, (raw) => {
    const list = rawTenants(raw);
    if (typeof body.name === 'string' && list.some((t) => t.name === body.name)) throw new ApiError('ISG_ERR_ADMIN_CONFLICT', `tenant "${body.name}" already exists`);
    list.push(body);
    return (input) => tenantView(input.tenants[list.length - 1]);
  });
}

/** PUT: creates the tenant or replaces its own fields (its services, routes and plugins stay). */
export async function putTenant(call: Call): Promise<Answer> {
  requireWriter(call.principal);
  const body = await call.body();
  noChildren(body);
  const name = call.params.tenant!;
  if (body.name !== undefined && body.name !== name && call.principal.kind === 'tenant') throw new ApiError('ISG_ERR_ADMIN_FORBIDDEN', 'a tenant token may not rename its tenant');
  if (!sees(call.principal, name)) throw new ApiError('ISG_ERR_ADMIN_NOT_FOUND', `no tenant "${name}"`);
  return commit(call, 200, (raw) => {
    const list = rawTenants(raw);
    let index = list.findIndex((t) => t.name === name);
    const next: Raw = { name, ...body };
    if (index < 0) {
      requireOperator(call.principal, 'create tenants');
      index = list.push(next) - 1;
    } else {
      const old = list[index];
      for (const k of CHILDREN) if (old[k] !== undefined) next[k] = old[k];
      // A tenant's PUT leaves what it may not set as it was.
      if (call.principal.kind === 'tenant') for (const k of OPERATOR_FIELDS) if (body[k] === undefined && old[k] !== undefined) next[k] = old[k];
      checkOperatorFields(call, old, next);
      list[index] = next;
    }
    return (input) => tenantView(input.tenants[index]);
  });
}

export async function patchTenant(call: Call): Promise<Answer> {
  requireWriter(call.principal);
  const body = await call.body();
  noChildren(body);
  if (body.name !== undefined && body.name !== call.params.tenant && call.principal.kind === 'tenant') throw new ApiError('ISG_ERR_ADMIN_FORBIDDEN', 'a tenant token may not rename its tenant');
  return commit(call, 200, (raw) => {
    const t = rawTenant(call, raw);
    const list = rawTenants(raw);
    const index = list.indexOf(t);
    const next = mergePatch(t, body) as Raw;
    checkOperatorFields(call, t, next);
    list[index] = next;
    return (input) => tenantView(input.tenants[index]);
  });
}

export async function deleteTenant(call: Call): Promise<Answer> {
  requireOperator(call.principal, 'delete tenants');
  return commit(call, 204, (raw) => {
    const list = rawTenants(raw);
    list.splice(list.indexOf(rawTenant(call, raw)), 1);
    return () => undefined;
  });
}

// ---- /tenants/{tenant}/services|routes|plugins -------------------------------------

/** A tenant token may not point a plugin at files of the host: plugins of one's own (path, schema) are the operator's. */
function checkPluginFiles(call: Call, kind: Kind, before: Raw | undefined, after: Raw): void {
  if (kind !== 'plugins' || call.principal.kind !== 'tenant') return;
  for (const k of ['path', 'schema']) {
    if (after[k] !== before?.[k]) throw new ApiError('ISG_ERR_ADMIN_FORBIDDEN', `${k}: only an operator token may set the files of a plugin (a tenant token may use bundled plugins)`);
  }
}

export function childHandlers(kind: Kind) {
  const one = kind.slice(0, -1);
  const find = (list: Raw[], id: string) => list.findIndex((e) => idOf(kind, e) === id);
  const rawList = (t: Raw) => ((t[kind] ??= []) as Raw[]);
  const notFound = (call: Call) => new ApiError('ISG_ERR_ADMIN_NOT_FOUND', `tenant "${call.params.tenant}" has no ${one} "${call.params.id}"`);
  const view = (e: Raw) => (kind === 'plugins' ? { ...e, id: idOf(kind, e) } : e);
  const viewAt = (ti: number, index: number) => (input: ConfigInput) => view(input.tenants[ti][kind][index] as unknown as Raw);

  return {
    async list(call: Call): Promise<Answer> {
      const cur = await call.store.read();
      const { tenant } = visibleTenant(call, cur.input);
      return page(call, (tenant[kind] as unknown as Raw[]).map(view), cur.etag);
    },

    async get(call: Call): Promise<Answer> {
      const cur = await call.store.read();
      const { tenant } = visibleTenant(call, cur.input);
      const list = tenant[kind] as unknown as Raw[];
      const i = find(list, call.params.id!);
      if (i < 0) throw notFound(call);
      return { status: 200, body: view(list[i]), etag: cur.etag };
    },

    async create(call: Call): Promise<Answer> {
      requireWriter(call.principal);
      const body = await call.body();
      return commit(call, 201, (raw) => {
        const t = rawTenant(call, raw);
        const list = rawList(t);
        if (kind === 'plugins' && body.id === undefined) body.id = randomUUID();
        const id = idOf(kind, body);
        if (find(list, id) >= 0) throw new ApiError('ISG_ERR_ADMIN_CONFLICT', `tenant "${t.name}" already has a ${one} "${id}"`);
        checkPluginFiles(call, kind, undefined, body);
        const index = list.push(body) - 1;
        return viewAt(tenantIndex(raw, t), index);
      });
    },

    /** PUT: creates or replaces the entity named in the path. */
    async put(call: Call): Promise<Answer> {
      requireWriter(call.principal);
      const body = await call.body();
      return commit(call, 200, (raw) => {
        const t = rawTenant(call, raw);
        const list = rawList(t);
        const id = call.params.id!;
        const next: Raw = kind === 'plugins' ? { id, ...body } : { name: id, ...body };
        let index = find(list, id);
        checkPluginFiles(call, kind, index < 0 ? undefined : list[index], next);
        if (index < 0) index = list.push(next) - 1;
        else list[index] = next;
        return viewAt(tenantIndex(raw, t), index);
      });
    },

    async patch(call: Call): Promise<Answer> {
      requireWriter(call.principal);
      const body = await call.body();
      return commit(call, 200, (raw) => {
        const t = rawTenant(call, raw);
        const list = rawList(t);
        const index = find(list, call.params.id!);
        if (index < 0) throw notFound(call);
        const next = mergePatch(list[index], body) as Raw;
        checkPluginFiles(call, kind, list[index], next);
        list[index] = next;
        return viewAt(tenantIndex(raw, t), index);
      });
    },

    /**
     * Rebuilds the config as it is: plugin files that changed (by size and mtime) are bundled
     * again, the others are reused, and only tenants whose code changed get a new isolate.
     */
    async reload(call: Call): Promise<Answer> {
      requireWriter(call.principal);
      return commit(call, 200, (raw) => {
        const t = rawTenant(call, raw);
        const index = find(rawList(t), call.params.id!);
        if (index < 0) throw notFound(call);
        return viewAt(tenantIndex(raw, t), index);
      });
    },

    async remove(call: Call): Promise<Answer> {
      requireWriter(call.principal);
      return commit(call, 204, (raw) => {
        const list = rawList(rawTenant(call, raw));
        const index = find(list, call.params.id!);
        if (index < 0) throw notFound(call);
        list.splice(index, 1);
        return () => undefined;
      });
    },
  };
}

export function tenantIndex(raw: RawConfig, t: Raw): number {
  return rawTenants(raw).indexOf(t);
}

/** Makes the change; `edit` returns how to read the answer's body from the new config. */
export async function commit(call: Call, status: number, edit: (raw: RawConfig) => (input: ConfigInput) => unknown): Promise<Answer> {
  const { result, etag, input } = await call.store.change(call.ifMatch, edit);
  const body = result(input);
  return { status, body: status === 204 ? undefined : body, etag };
}
