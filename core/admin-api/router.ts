import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.ts';
import { ERRORS } from '../errors.ts';
import type { AdminTokenInput } from '../config/types.ts';
import { authenticate } from './auth.ts';
import { openApiDocument } from './openapi.ts';
import { childHandlers, createTenant, deleteTenant, getTenant, listTenants, patchTenant, putTenant, type Answer, type Call } from './resources.ts';
import { ApiError, type AdminStore } from './store.ts';
import { CREDENTIAL_ENDPOINTS, consumerHandlers as consumers, credentialHandlers } from './consumers.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type ApiRoute = { method: Method; path: string; summary: string; handler: (call: Call) => Promise<Answer> };

const services = childHandlers('services');
const routes = childHandlers('routes');
const plugins = childHandlers('plugins');

/** Every route of the admin API; the OpenAPI document is written from this list, and a test holds them to each other. */
export const ROUTES: readonly ApiRoute[] = [
  { method: 'GET', path: '/tenants', summary: 'List tenants (a tenant token sees its own)', handler: listTenants },
  { method: 'POST', path: '/tenants', summary: 'Create a tenant (operator), optionally with its services, routes and plugins', handler: createTenant },
  { method: 'GET', path: '/tenants/{tenant}', summary: 'Show a tenant', handler: getTenant },
  { method: 'PUT', path: '/tenants/{tenant}', summary: "Create a tenant (operator) or replace its own fields (name, limits, breaker)", handler: putTenant },
  { method: 'PATCH', path: '/tenants/{tenant}', summary: "Change a tenant's own fields (JSON merge patch)", handler: patchTenant },
  { method: 'DELETE', path: '/tenants/{tenant}', summary: 'Delete a tenant and everything it has (operator)', handler: deleteTenant },
  ...(
    [
      ['services', services, 'service'],
      ['routes', routes, 'route'],
      ['plugins', plugins, 'plugin instance'],
    ] as const
  ).flatMap(([kind, h, one]): ApiRoute[] => [
    { method: 'GET', path: `/tenants/{tenant}/${kind}`, summary: `List the tenant's ${kind}`, handler: h.list },
    { method: 'POST', path: `/tenants/{tenant}/${kind}`, summary: `Add a ${one}`, handler: h.create },
    { method: 'GET', path: `/tenants/{tenant}/${kind}/{id}`, summary: `Show a ${one} (by ${kind === 'plugins' ? 'id' : 'name'})`, handler: h.get },
    { method: 'PUT', path: `/tenants/{tenant}/${kind}/{id}`, summary: `Create or replace a ${one}`, handler: h.put },
    { method: 'PATCH', path: `/tenants/{tenant}/${kind}/{id}`, summary: `Change a ${one} (JSON merge patch)`, handler: h.patch },
    { method: 'DELETE', path: `/tenants/{tenant}/${kind}/{id}`, summary: `Delete a ${one}`, handler: h.remove },
  ]),
  { method: 'POST', path: '/tenants/{tenant}/plugins/{id}/reload', summary: "Load a plugin's code again from its file; plugins whose files did not change are not rebuilt, other tenants keep their isolates", handler: plugins.reload },
  { method: 'GET', path: '/tenants/{tenant}/consumers', summary: "List the tenant's consumers", handler: consumers.list },
  { method: 'POST', path: '/tenants/{tenant}/consumers', summary: 'Add a consumer (an id is generated when none is given)', handler: consumers.create },
  { method: 'GET', path: '/tenants/{tenant}/consumers/{id}', summary: 'Show a consumer (by id or username)', handler: consumers.get },
  { method: 'PUT', path: '/tenants/{tenant}/consumers/{id}', summary: "Create a consumer or replace its own fields (its credentials stay)", handler: consumers.put },
  { method: 'PATCH', path: '/tenants/{tenant}/consumers/{id}', summary: 'Change a consumer (JSON merge patch)', handler: consumers.patch },
  { method: 'DELETE', path: '/tenants/{tenant}/consumers/{id}', summary: 'Delete a consumer and its credentials', handler: consumers.remove },
  ...Object.keys(CREDENTIAL_ENDPOINTS).flatMap((endpoint): ApiRoute[] => {
    const h = credentialHandlers(endpoint);
    const base = `/tenants/{tenant}/consumers/{id}/${endpoint}`;
    const one = endpoint === 'acls' ? 'ACL group' : `${endpoint} credential`;
    const extra = endpoint === 'key-auth' ? ' (a random key when none is given)' : endpoint === 'basic-auth' ? ' (`password` in, stored hashed, never shown)' : '';
    return [
      { method: 'GET', path: base, summary: `List the consumer's ${one}s`, handler: h.list },
      { method: 'POST', path: base, summary: `Add a ${one}${extra}`, handler: h.create },
      { method: 'GET', path: `${base}/{credential}`, summary: `Show a ${one} (by id or ${endpoint === 'acls' ? 'group' : endpoint === 'basic-auth' ? 'username' : 'key'})`, handler: h.get },
      { method: 'PUT', path: `${base}/{credential}`, summary: `Create or replace a ${one}${extra}`, handler: h.put },
      { method: 'PATCH', path: `${base}/{credential}`, summary: `Change a ${one} (JSON merge patch)`, handler: h.patch },
      { method: 'DELETE', path: `${base}/{credential}`, summary: `Delete a ${one}`, handler: h.remove },
    ];
  }),
];

type Compiled = { segments: string[]; byMethod: Map<string, ApiRoute> };
const TABLE: Compiled[] = [];
for (const r of ROUTES) {
  let c = TABLE.find((x) => x.segments.join('/') === r.path.slice(1));
  if (c === undefined) TABLE.push((c = { segments: r.path.slice(1).split('/'), byMethod: new Map() }));
  c.byMethod.set(r.method, r);
}

function match(path: string): { entry: Compiled; params: Call['params'] } | null {
  const parts = path.slice(1).split('/');
  for (const entry of TABLE) {
    if (entry.segments.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < parts.length && ok; i++) {
      const seg = entry.segments[i];
      if (seg.startsWith('{')) {
        if (parts[i] === '') ok = false;
        else {
          try {
            params[seg.slice(1, -1)] = decodeURIComponent(parts[i]);
          } catch {
            ok = false; // a malformed %-escape names nothing
          }
        }
      } else ok = seg === parts[i];
    }
    if (ok) return { entry, params };
  }
  return null;
}

const BODY_MAX = 1024 * 1024;

function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= BODY_MAX) chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > BODY_MAX) return reject(new ApiError('ISG_ERR_ADMIN_BAD_BODY', `the request body is larger than ${BODY_MAX} bytes`));
      const text = Buffer.concat(chunks).toString('utf8');
      let data: unknown;
      try {
        data = JSON.parse(text);
      } catch (err) {
        return reject(new ApiError('ISG_ERR_ADMIN_BAD_BODY', `the request body is not JSON: ${(err as Error).message}`));
      }
      if (data === null || typeof data !== 'object' || Array.isArray(data)) return reject(new ApiError('ISG_ERR_ADMIN_BAD_BODY'));
      resolve(data as Record<string, unknown>);
    });
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (body === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

export type AdminApi = {
  /** Whether `path` belongs to the API (the admin listener hands those requests to handle()). */
  owns(path: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
};

/**
 * The admin REST API, the same in both process models: the listener (core/admin.ts in one
 * process, the supervisor otherwise) passes it the store, whose committer knows how to put
 * a change in service.
 *
 * @example
 *   const api = createAdminApi({ store: new ConfigStore(file, commit), log, tokens: input.admin.tokens });
 *   if (api.owns(path)) return api.handle(req, res);
 */
export function createAdminApi(options: { store: AdminStore; log: Logger; tokens: readonly AdminTokenInput[] }): AdminApi {
  const { store, log } = options;
  if (options.tokens.length === 0) {
    log.warn('admin API is read-only and answers only loopback clients: no admin.tokens in the config');
  }
  const doc = JSON.stringify(openApiDocument(ROUTES));
  return {
    owns: (path) => path === '/openapi.json' || path === '/tenants' || path.startsWith('/tenants/'),
    async handle(req, res) {
      const url = new URL(req.url ?? '/', 'http://admin');
      const path = url.pathname;
      let etag: string | undefined;
      let authed = false;
      try {
        if (path === '/openapi.json') {
          if (req.method !== 'GET' && req.method !== 'HEAD') throw new ApiError('ISG_ERR_ADMIN_METHOD', undefined, { allow: 'GET, HEAD' });
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(doc)) });
          res.end(doc);
          return;
        }
        const m = match(path);
        if (m === null) throw new ApiError('ISG_ERR_ADMIN_NOT_FOUND', `no admin API resource ${path} (see /openapi.json)`);
        const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
        const route = m.entry.byMethod.get(method);
        if (route === undefined) throw new ApiError('ISG_ERR_ADMIN_METHOD', `${path} answers ${[...m.entry.byMethod.keys()].join(', ')}`, { allow: [...m.entry.byMethod.keys()].join(', ') });
        const current = await store.read().catch((err: unknown) => {
          // The file cannot be used: the caller is checked against the tokens of the last good version, to be told why.
          authenticate(req, store.lastGood?.input.admin.tokens ?? options.tokens);
          authed = true;
          throw err;
        });
        etag = current.etag;
        const principal = authenticate(req, current.input.admin.tokens);
        authed = true;
        const answer = await route.handler({
          principal,
          store,
          params: m.params,
          query: url.searchParams,
          path,
          ifMatch: req.headers['if-match'],
          body: () => readBody(req),
        });
        if (method !== 'GET') log.info({ admin: principal.name, method, path, status: answer.status, etag: answer.etag }, 'admin API change applied');
        send(res, answer.status, req.method === 'HEAD' ? undefined : answer.body, { etag: answer.etag });
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError('ISG_ERR_INTERNAL', (err as Error).message);
        if (!(err instanceof ApiError)) log.error({ err: (err as Error).message, path }, 'admin API request failed');
        const { wwwAuthenticate, allow, etag: current, ...more } = e.extra as { wwwAuthenticate?: string; allow?: string; etag?: string };
        // Details (field paths, file messages) only for a caller who proved who they are.
        const extra = authed ? more : {};
        if (!authed && e.code === 'ISG_ERR_ADMIN_STORE') log.error({ details: (more as { details?: unknown }).details }, e.message);
        const headers: Record<string, string> = {};
        if (wwwAuthenticate !== undefined) headers['www-authenticate'] = wwwAuthenticate;
        if (allow !== undefined) headers.allow = allow;
        // 401 before the caller proved who they are: no version either.
        const tag = current ?? (e.code === 'ISG_ERR_ADMIN_UNAUTHORIZED' ? undefined : etag);
        if (tag !== undefined) headers.etag = tag;
        send(res, ERRORS[e.code].status, { error: { code: e.code, message: e.message === '' ? ERRORS[e.code].message : e.message, ...extra } }, headers);
      }
    },
  };
}
